#ifndef FEEDBACKD_BYTESCAN_H
#define FEEDBACKD_BYTESCAN_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__SSE2__)
/// What the bytes seen so far hold: their smallest value, byte by byte (below 0x20: a control
/// byte; 0x20: a space), their OR (a high bit: a byte that is not ASCII), and where backslashes
/// were. Three vector operations per 16 bytes, whatever the text.
typedef struct {
  __m128i smallest;
  __m128i any;
  __m128i backslashes;
} feedbackd_seen;
static inline feedbackd_seen feedbackd_nothing_seen(void) {
  feedbackd_seen seen = {_mm_set1_epi8((char)0xFF), _mm_setzero_si128(), _mm_setzero_si128()};
  return seen;
}
/// The smallest byte seen.
static inline uint8_t feedbackd_seen_smallest(feedbackd_seen seen) {
  __m128i m = seen.smallest;
  m = _mm_min_epu8(m, _mm_srli_si128(m, 8));
  m = _mm_min_epu8(m, _mm_srli_si128(m, 4));
  m = _mm_min_epu8(m, _mm_srli_si128(m, 2));
  m = _mm_min_epu8(m, _mm_srli_si128(m, 1));
  return (uint8_t)_mm_cvtsi128_si32(m);
}
static inline int feedbackd_seen_special(feedbackd_seen seen) {
  return _mm_movemask_epi8(_mm_or_si128(seen.any, seen.backslashes)) != 0 || feedbackd_seen_smallest(seen) < 0x20;
}
/// Whether a space was seen (meaningful when no special byte was).
static inline int feedbackd_seen_space(feedbackd_seen seen) { return feedbackd_seen_smallest(seen) == 0x20; }

/// The quotes among the 64 bytes at `block`, one bit each; notes the special bytes and spaces.
/// Unrolled: left as a loop, clang kept it (variable shifts, a counter) once the caller grew.
__attribute__((always_inline)) static inline uint64_t feedbackd_block_quotes(const uint8_t *block, feedbackd_seen *seen) {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  uint64_t quotes = 0;
#pragma clang loop unroll(full)
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(block + 16 * i));
    quotes |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) << (16 * i);
    seen->smallest = _mm_min_epu8(seen->smallest, v);
    seen->any = _mm_or_si128(seen->any, v);
    seen->backslashes = _mm_or_si128(seen->backslashes, _mm_cmpeq_epi8(v, backslash));
  }
  return quotes;
}

/// The spaces among the 64 bytes at `block`, one bit each.
static inline uint64_t feedbackd_block_spaces(const uint8_t *block) {
  const __m128i space = _mm_set1_epi8(0x20);
  uint64_t spaces = 0;
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(block + 16 * i));
    spaces |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, space)) << (16 * i);
  }
  return spaces;
}
#else
typedef struct {
  int special;
  int space;
} feedbackd_seen;
static inline feedbackd_seen feedbackd_nothing_seen(void) {
  feedbackd_seen seen = {0, 0};
  return seen;
}
static inline int feedbackd_seen_special(feedbackd_seen seen) { return seen.special != 0; }
static inline int feedbackd_seen_space(feedbackd_seen seen) { return seen.space != 0; }

static inline uint64_t feedbackd_block_quotes(const uint8_t *block, feedbackd_seen *seen) {
  uint64_t quotes = 0;
  for (int i = 0; i < 64; i++) {
    uint8_t byte = block[i];
    quotes |= (uint64_t)(byte == '"') << i;
    seen->special |= byte == '\\' || byte < 0x20 || byte >= 0x80;
    seen->space |= byte == ' ';
  }
  return quotes;
}

static inline uint64_t feedbackd_block_spaces(const uint8_t *block) {
  uint64_t spaces = 0;
  for (int i = 0; i < 64; i++) spaces |= (uint64_t)(block[i] == ' ') << i;
  return spaces;
}
#endif

/// Bit `i` of the result: the XOR of bits 0...i of `bits`. With `bits` a text's quotes taken
/// two by two as the strings' ends: whether byte `i` lies in a string (its opening quote in,
/// its closing quote out).
static inline uint64_t feedbackd_prefix_xor(uint64_t bits) {
  bits ^= bits << 1;
  bits ^= bits << 2;
  bits ^= bits << 4;
  bits ^= bits << 8;
  bits ^= bits << 16;
  bits ^= bits << 32;
  return bits;
}

/// Whether a space of the `count` bytes at `bytes` (`count` > 0), whose quotes `quotes` holds
/// (`feedbackd_json_index_quotes`), lies outside the strings.
__attribute__((noinline)) static int feedbackd_space_outside_strings(const uint8_t *bytes, long count, const uint64_t *quotes) {
  // All ones while the bytes so far leave a string open.
  uint64_t open = 0;
  long offset = 0;
  long word = 0;
  for (; offset < count; offset += 64, word++) {
    uint64_t spaces;
    if (offset + 64 <= count) {
      spaces = feedbackd_block_spaces(bytes + offset);
    } else if (count >= 64) {
      spaces = feedbackd_block_spaces(bytes + count - 64) >> (64 - (count - offset));
    } else {
      uint8_t padded[64];
      memset(padded, 'a', sizeof padded);
      memcpy(padded, bytes, (size_t)count);
      spaces = feedbackd_block_spaces(padded);
    }
    uint64_t inside = feedbackd_prefix_xor(quotes[word]) ^ open;
    if (spaces & ~inside) return 1;
    open = (uint64_t)((int64_t)inside >> 63);
  }
  return 0;
}

/// What `feedbackd_json_index_quotes` found: no special byte (the index tells where every
/// string ends) ...
#define FEEDBACKD_INDEX_PLAIN 1
/// ... and, on top of that, no space outside the strings (nor any other whitespace: the other
/// whitespace bytes are control bytes, which are special).
#define FEEDBACKD_INDEX_COMPACT 2

/// The JSON scanner's first pass over a text of `count` bytes (`count` > 0): sets bit `i % 64`
/// of `quotes[i / 64]` when byte `i` is a quote (`"`), and clears every other bit of the
/// `(count + 63) / 64` words. Returns 0 when a byte is special: a backslash, a control byte
/// (below 0x20) or a byte that is not ASCII (0x80 and above), the bytes that make a string
/// more than "every byte up to the next quote". Otherwise returns `FEEDBACKD_INDEX_PLAIN`, with
/// `FEEDBACKD_INDEX_COMPACT` set too when no space lies outside the strings, taking every quote
/// for a string's start or end (what each quote is in a text with no backslash, up to where a
/// scan finds the text is not JSON). Where strings lie is worked out only for a text that has
/// a space (log lines mostly have none).
///
/// Reads only the `count` bytes at `bytes`. 16 bytes at a time with SSE2 where the compiler
/// targets it (every x86-64 CPU), a byte at a time elsewhere: Swift has no way to turn a vector
/// comparison into a bit mask (`pmovmskb`) itself.
static inline int feedbackd_json_index_quotes(const uint8_t *bytes, long count, uint64_t *quotes) {
  feedbackd_seen seen = feedbackd_nothing_seen();
  long offset = 0;
  long word = 0;
  for (; offset + 64 <= count; offset += 64, word++) quotes[word] = feedbackd_block_quotes(bytes + offset, &seen);
  if (offset < count) {
    // The last, partial 64 bytes: the text's last 64 bytes, shifted, when it has 64; otherwise
    // a copy padded with a byte that is neither a quote, a space nor special.
    if (count >= 64) {
      quotes[word] = feedbackd_block_quotes(bytes + count - 64, &seen) >> (64 - (count - offset));
    } else {
      uint8_t padded[64];
      memset(padded, 'a', sizeof padded);
      memcpy(padded, bytes, (size_t)count);
      quotes[word] = feedbackd_block_quotes(padded, &seen);
    }
  }
  if (feedbackd_seen_special(seen)) return 0;
  if (feedbackd_seen_space(seen) && feedbackd_space_outside_strings(bytes, count, quotes)) return FEEDBACKD_INDEX_PLAIN;
  return FEEDBACKD_INDEX_PLAIN | FEEDBACKD_INDEX_COMPACT;
}

#endif
