#ifndef FEEDBACKD_BYTESCAN_H
#define FEEDBACKD_BYTESCAN_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__SSE2__)
typedef __m128i feedbackd_specials;
static inline feedbackd_specials feedbackd_no_specials(void) { return _mm_setzero_si128(); }
static inline int feedbackd_any_special(feedbackd_specials specials) { return _mm_movemask_epi8(specials) != 0; }

/// The quotes among the 64 bytes at `block`, one bit each; ORs the special bytes into `specials`.
static inline uint64_t feedbackd_block_quotes(const uint8_t *block, feedbackd_specials *specials) {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  // Compared signed: a byte is below 0x20 then when it is a control byte or 0x80 and above.
  const __m128i space = _mm_set1_epi8(0x20);
  uint64_t quotes = 0;
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(block + 16 * i));
    quotes |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) << (16 * i);
    *specials = _mm_or_si128(*specials, _mm_or_si128(_mm_cmpeq_epi8(v, backslash), _mm_cmpgt_epi8(space, v)));
  }
  return quotes;
}
#else
typedef int feedbackd_specials;
static inline feedbackd_specials feedbackd_no_specials(void) { return 0; }
static inline int feedbackd_any_special(feedbackd_specials specials) { return specials != 0; }

static inline uint64_t feedbackd_block_quotes(const uint8_t *block, feedbackd_specials *specials) {
  uint64_t quotes = 0;
  for (int i = 0; i < 64; i++) {
    uint8_t byte = block[i];
    quotes |= (uint64_t)(byte == '"') << i;
    *specials |= byte == '\\' || byte < 0x20 || byte >= 0x80;
  }
  return quotes;
}
#endif

/// The JSON scanner's first pass over a text of `count` bytes (`count` > 0): sets bit `i % 64`
/// of `quotes[i / 64]` when byte `i` is a quote (`"`), and clears every other bit of the
/// `(count + 63) / 64` words. Returns 1 when no byte is special, 0 otherwise. Special: a
/// backslash, a control byte (below 0x20) or a byte that is not ASCII (0x80 and above), the
/// bytes that make a string more than "every byte up to the next quote".
///
/// Reads only the `count` bytes at `bytes`. 16 bytes at a time with SSE2 where the compiler
/// targets it (every x86-64 CPU), a byte at a time elsewhere: Swift has no way to turn a vector
/// comparison into a bit mask (`pmovmskb`) itself.
static inline int feedbackd_json_index_quotes(const uint8_t *bytes, long count, uint64_t *quotes) {
  feedbackd_specials specials = feedbackd_no_specials();
  long offset = 0;
  long word = 0;
  for (; offset + 64 <= count; offset += 64, word++) quotes[word] = feedbackd_block_quotes(bytes + offset, &specials);
  if (offset < count) {
    // The last, partial 64 bytes: the text's last 64 bytes, shifted, when it has 64; otherwise
    // a copy padded with a byte that is neither a quote nor special.
    if (count >= 64) {
      quotes[word] = feedbackd_block_quotes(bytes + count - 64, &specials) >> (64 - (count - offset));
    } else {
      uint8_t padded[64];
      memset(padded, 'a', sizeof padded);
      memcpy(padded, bytes, (size_t)count);
      quotes[word] = feedbackd_block_quotes(padded, &specials);
    }
  }
  return !feedbackd_any_special(specials);
}

#endif
