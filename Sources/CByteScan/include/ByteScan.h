#ifndef FEEDBACKD_BYTESCAN_H
#define FEEDBACKD_BYTESCAN_H

#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/// What the bytes seen so far hold: their smallest value (below 0x20: a control byte; 0x20: a
/// space), their OR (a high bit: a byte that is not ASCII), and whether one was a backslash.
/// With SSE2, byte by byte across 16 lanes: three vector operations per 16 bytes.
#if defined(__SSE2__)
typedef struct {
  __m128i smallest;
  __m128i any;
  __m128i backslashes;
} feedbackd_seen;
static inline feedbackd_seen feedbackd_nothing_seen(void) {
  feedbackd_seen seen = {_mm_set1_epi8((char)0xFF), _mm_setzero_si128(), _mm_setzero_si128()};
  return seen;
}
static inline uint8_t feedbackd_seen_smallest(feedbackd_seen seen) {
  __m128i m = seen.smallest;
  m = _mm_min_epu8(m, _mm_srli_si128(m, 8));
  m = _mm_min_epu8(m, _mm_srli_si128(m, 4));
  m = _mm_min_epu8(m, _mm_srli_si128(m, 2));
  m = _mm_min_epu8(m, _mm_srli_si128(m, 1));
  return (uint8_t)_mm_cvtsi128_si32(m);
}
/// A byte that is not ASCII, or a backslash.
static inline int feedbackd_seen_high_or_backslash(feedbackd_seen seen) {
  return _mm_movemask_epi8(_mm_or_si128(seen.any, seen.backslashes)) != 0;
}

/// The bytes equal to `byte` among the 64 at `block`, one bit each.
static inline uint64_t feedbackd_block_equal(const uint8_t *block, char byte) {
  const __m128i wanted = _mm_set1_epi8(byte);
  uint64_t bits = 0;
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(block + 16 * i));
    bits |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, wanted)) << (16 * i);
  }
  return bits;
}

/// `feedbackd_block_equal(block, '"')`, noting what the bytes hold in `seen` on the way.
/// Unrolled: left as a loop, clang kept it (variable shifts, a counter) once the caller grew.
__attribute__((always_inline)) static inline uint64_t feedbackd_block_quotes(const uint8_t *block, feedbackd_seen *seen) {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  uint64_t quotes = 0;
#if defined(__clang__)
#pragma clang loop unroll(full)
#endif
  for (int i = 0; i < 4; i++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(block + 16 * i));
    quotes |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) << (16 * i);
    seen->smallest = _mm_min_epu8(seen->smallest, v);
    seen->any = _mm_or_si128(seen->any, v);
    seen->backslashes = _mm_or_si128(seen->backslashes, _mm_cmpeq_epi8(v, backslash));
  }
  return quotes;
}
#else
typedef struct {
  uint8_t smallest;
  uint8_t any;
  int backslashes;
} feedbackd_seen;
static inline feedbackd_seen feedbackd_nothing_seen(void) {
  feedbackd_seen seen = {0xFF, 0, 0};
  return seen;
}
static inline uint8_t feedbackd_seen_smallest(feedbackd_seen seen) { return seen.smallest; }
static inline int feedbackd_seen_high_or_backslash(feedbackd_seen seen) {
  return (seen.any & 0x80) != 0 || seen.backslashes;
}

static inline uint64_t feedbackd_block_equal(const uint8_t *block, char byte) {
  uint64_t bits = 0;
  for (int i = 0; i < 64; i++) bits |= (uint64_t)(block[i] == (uint8_t)byte) << i;
  return bits;
}

static inline uint64_t feedbackd_block_quotes(const uint8_t *block, feedbackd_seen *seen) {
  for (int i = 0; i < 64; i++) {
    uint8_t byte = block[i];
    if (byte < seen->smallest) seen->smallest = byte;
    seen->any |= byte;
    seen->backslashes |= byte == '\\';
  }
  return feedbackd_block_equal(block, '"');
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
  for (long offset = 0, word = 0; offset < count; offset += 64, word++) {
    uint64_t spaces;
    if (offset + 64 <= count) {
      spaces = feedbackd_block_equal(bytes + offset, ' ');
    } else if (count >= 64) {
      // The last, partial block as in `feedbackd_json_index_quotes`.
      spaces = feedbackd_block_equal(bytes + count - 64, ' ') >> (64 - (count - offset));
    } else {
      uint8_t padded[64];
      memset(padded, 'a', sizeof padded);
      memcpy(padded, bytes, (size_t)count);
      spaces = feedbackd_block_equal(padded, ' ');
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
  uint8_t smallest = feedbackd_seen_smallest(seen);
  if (smallest < 0x20 || feedbackd_seen_high_or_backslash(seen)) return 0;
  if (smallest == 0x20 && feedbackd_space_outside_strings(bytes, count, quotes)) return FEEDBACKD_INDEX_PLAIN;
  return FEEDBACKD_INDEX_PLAIN | FEEDBACKD_INDEX_COMPACT;
}

/// Where a string of a plain text ends, for a scan that has no index of the text's quotes
/// (`LineShapes`): the position of the first quote at or after `start` in the `count` bytes at
/// `bytes`, when no special byte (a backslash, a control byte, a byte that is not ASCII) comes
/// before it; -1 when one does, or when no quote follows. Reads only the `count` bytes; 16 at a
/// time with SSE2 (a signed comparison with 0x20 finds the control bytes and the bytes from
/// 0x80 up at once).
static inline long feedbackd_plain_string_end(const uint8_t *bytes, long start, long count) {
  long at = start;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  for (;;) {
    unsigned shift = 0;
    const uint8_t *block;
    if (at + 16 <= count) {
      block = bytes + at;
    } else if (count >= 16 && at < count) {
      // The last bytes: the text's last 16, with those before `at` shifted out.
      block = bytes + count - 16;
      shift = (unsigned)(at - (count - 16));
    } else {
      break;
    }
    __m128i v = _mm_loadu_si128((const __m128i *)block);
    unsigned quotes = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) >> shift;
    unsigned special =
      (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, backslash), _mm_cmplt_epi8(v, space))) >> shift;
    unsigned either = quotes | special;
    if (either != 0) {
      // A quote is never special: the first of the two decides.
      unsigned first = either & (0u - either);
      return (quotes & first) ? at + __builtin_ctz(first) : -1;
    }
    if (shift != 0) return -1;
    at += 16;
  }
#endif
  for (; at < count; at++) {
    uint8_t byte = bytes[at];
    if (byte == '"') return at;
    if (byte == '\\' || byte < 0x20 || byte >= 0x80) return -1;
  }
  return -1;
}

/// Whether the `length` bytes at `text` equal the `length` bytes at `constant`. Reads the
/// bytes in blocks of 16: both `text` and `constant` must have `length` rounded up to a
/// multiple of 16 readable bytes (what lies past `length` is not compared).
static inline int feedbackd_equal_blocks(const uint8_t *text, const uint8_t *constant, long length) {
  long at = 0;
#if defined(__SSE2__)
  for (; at + 16 <= length; at += 16) {
    __m128i a = _mm_loadu_si128((const __m128i *)(text + at));
    __m128i b = _mm_loadu_si128((const __m128i *)(constant + at));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) != 0xFFFF) return 0;
  }
  if (at < length) {
    __m128i a = _mm_loadu_si128((const __m128i *)(text + at));
    __m128i b = _mm_loadu_si128((const __m128i *)(constant + at));
    unsigned wanted = (1u << (length - at)) - 1;
    return ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) & wanted) == wanted;
  }
  return 1;
#else
  return memcmp(text, constant, (size_t)length) == 0;
#endif
}

/// Whether the `length` bytes (at most 16) that end at `end` equal the last `length` bytes of
/// the 16 at `tail`. Reads the 16 bytes before `end`, which must be readable.
static inline int feedbackd_equal_tail(const uint8_t *end, const uint8_t *tail, long length) {
#if defined(__SSE2__)
  __m128i a = _mm_loadu_si128((const __m128i *)(end - 16));
  __m128i b = _mm_loadu_si128((const __m128i *)tail);
  unsigned wanted = (0xFFFFu << (16 - length)) & 0xFFFFu;
  return ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) & wanted) == wanted;
#else
  return memcmp(end - length, tail + 16 - length, (size_t)length) == 0;
#endif
}

/// What `feedbackd_simple_array_ends` looks at in 16 bytes, one bit per byte each: quotes;
/// commas; brackets, braces and spaces; and bytes that are special anywhere (a backslash, a
/// control byte). (`feedbackd_array_block` is always inlined: called from Swift, it was not,
/// and the calls took about 60 instructions a row.)
typedef struct {
  uint32_t quotes, commas, structure, special;
} feedbackd_array_bits;

__attribute__((always_inline)) static inline feedbackd_array_bits feedbackd_array_block(const uint8_t *block) {
  feedbackd_array_bits bits;
#if defined(__SSE2__)
  __m128i v = _mm_loadu_si128((const __m128i *)block);
  // `[` `]` `{` `}` are 0x5B 0x5D 0x7B 0x7D: with bit 0x20 set, 0x7B or 0x7D.
  __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
  __m128i structure = _mm_or_si128(
    _mm_or_si128(_mm_cmpeq_epi8(folded, _mm_set1_epi8(0x7B)), _mm_cmpeq_epi8(folded, _mm_set1_epi8(0x7D))),
    _mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
  // Below 0x20 (unsigned): the byte equals its minimum with 0x1F.
  __m128i special =
    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')), _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v));
  bits.quotes = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
  bits.commas = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')));
  bits.structure = (uint32_t)_mm_movemask_epi8(structure);
  bits.special = (uint32_t)_mm_movemask_epi8(special);
#else
  bits.quotes = bits.commas = bits.structure = bits.special = 0;
  for (int i = 0; i < 16; i++) {
    uint8_t byte = block[i];
    uint8_t folded = byte | 0x20;
    bits.quotes |= (uint32_t)(byte == '"') << i;
    bits.commas |= (uint32_t)(byte == ',') << i;
    bits.structure |= (uint32_t)(folded == 0x7B || folded == 0x7D || byte == ' ') << i;
    bits.special |= (uint32_t)(byte == '\\' || byte < 0x20) << i;
  }
#endif
  return bits;
}

/// The largest array `feedbackd_simple_array_ends` splits (a bit per byte in one word).
#define FEEDBACKD_SIMPLE_ARRAY_MAX 64

/// Splits a simple JSON array, `[a,b,…]` with each element a string with no escape or a
/// number or literal (the `count` bytes at `bytes`; the kept columns of a row): writes the
/// offset just past each of the first `capacity` elements (where its comma or the closing
/// bracket is) to `ends` and returns how many elements there are. Returns -1 when the text is
/// not that simple, and the caller splits it the long way: when it does not start with `[`
/// and end with `]`, is longer than `FEEDBACKD_SIMPLE_ARRAY_MAX` or shorter than 2 bytes, holds
/// a backslash or a control byte, holds a bracket, brace or space outside its strings (other
/// than the outer brackets), or has an empty element or one with more than a string in it (a
/// quote not right after `[` or a comma, or not right before a comma or `]`).
///
/// Reads only the `count` bytes, 16 at a time with SSE2: the whole blocks from the start, then
/// the last 16 bytes (overlapping the blocks before), their bits shifted into place; a text
/// shorter than 16 bytes is copied into 16 zeros first. (The last block's bits shifted one by
/// one, in a loop, took twice the instructions.)
static inline long feedbackd_simple_array_ends(const uint8_t *bytes, long count, int32_t *ends, long capacity) {
  if (count < 2 || count > FEEDBACKD_SIMPLE_ARRAY_MAX || bytes[0] != '[' || bytes[count - 1] != ']') return -1;
  if (count == 2) return 0;
  uint64_t quotes = 0, commas = 0, structure = 0, special = 0;
#define FEEDBACKD_ARRAY_BLOCK(at, shift)                                                                     \
  do {                                                                                                     \
    feedbackd_array_bits bits = feedbackd_array_block(at);                                                 \
    quotes |= (uint64_t)bits.quotes << (shift);                                                            \
    commas |= (uint64_t)bits.commas << (shift);                                                            \
    structure |= (uint64_t)bits.structure << (shift);                                                      \
    special |= (uint64_t)bits.special << (shift);                                                          \
  } while (0)
  if (count >= 16) {
    FEEDBACKD_ARRAY_BLOCK(bytes, 0);
    if (count >= 32) FEEDBACKD_ARRAY_BLOCK(bytes + 16, 16);
    if (count >= 48) FEEDBACKD_ARRAY_BLOCK(bytes + 32, 32);
    if (count & 15) FEEDBACKD_ARRAY_BLOCK(bytes + count - 16, count - 16);
    else if (count == 64) FEEDBACKD_ARRAY_BLOCK(bytes + 48, 48);
  } else {
    uint8_t text[16] = {0};
    memcpy(text, bytes, (size_t)count);
    FEEDBACKD_ARRAY_BLOCK(text, 0);
  }
#undef FEEDBACKD_ARRAY_BLOCK
  uint64_t valid = count == 64 ? ~(uint64_t)0 : ((uint64_t)1 << count) - 1;
  uint64_t last = (uint64_t)1 << (count - 1);
  // Only `special` has bits past `count`: the short copy's padding zeros are control bytes.
  if ((special & valid) != 0) return -1;
  // From each opening quote up to its closing one (with no backslash, each quote opens or
  // closes a string); the closing quote itself is not inside.
  uint64_t inside = feedbackd_prefix_xor(quotes);
  if ((inside & last) != 0) return -1;
  uint64_t outside = ~inside & valid;
  // Structure outside strings: only the outer brackets.
  if ((structure & outside & ~(uint64_t)1 & ~last) != 0) return -1;
  uint64_t separators = commas & outside;
  uint64_t before = separators | 1;     // what an element starts after: `[` or a comma
  uint64_t after = separators | last;   // what it ends before: a comma or `]`
  // No empty element, and each quote right after `before` (opening) or right before `after`
  // (closing).
  if (((before << 1) & after) != 0) return -1;
  uint64_t opening = quotes & inside;
  uint64_t closing = quotes & ~inside;
  if ((opening & ~(before << 1)) != 0 || (closing & ~(after >> 1)) != 0) return -1;
  long elements = 0;
  for (uint64_t rest = after; rest != 0; rest &= rest - 1) {
    if (elements < capacity) ends[elements] = (int32_t)__builtin_ctzll(rest);
    elements++;
  }
  return elements;
}

#endif
