// What the first stage of a SIMD JSON scanner (simdjson's "stage 1") costs per log line on
// this machine: a lower bound for any rewrite of `FieldSelector.scan` along those lines.
//
// For every line of a plain log file, 64 bytes at a time: masks of quotes, backslashes,
// structural characters and control bytes; the in-string mask (prefix XOR of the quotes,
// carried from block to block); control bytes inside strings; then a walk over the structural
// positions, one count of trailing zeros each. Nothing else: no grammar checked, no numbers,
// literals or escapes validated, no keys matched, no timestamps parsed, nothing stored. A real
// scanner does all of that on top (feedbackd's does it all in 167-190 ns per line).
//
//   cc -O2 -o /tmp/stage1 Benchmarks/stage1_floor.c && /tmp/stage1 .build/bench-corpus/logs/app.log
//   cc -O2 -mavx2 -o /tmp/stage1-avx2 Benchmarks/stage1_floor.c && /tmp/stage1-avx2 .build/bench-corpus/logs/app.log
//
// x86-64 only (SSE2, or AVX2 with -mavx2). Prints the best of 5 passes.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  uint64_t quotes, backslashes, structurals, controls;
} masks;

#if defined(__AVX2__)
static inline uint64_t eq32(__m256i v, char c) {
  return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)));
}
static masks block_masks(const uint8_t *p) {
  masks m = {0, 0, 0, 0};
  for (int k = 0; k < 2; k++) {
    __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * k));
    int shift = 32 * k;
    m.quotes |= eq32(v, '"') << shift;
    m.backslashes |= eq32(v, '\\') << shift;
    m.structurals |= (eq32(v, '{') | eq32(v, '}') | eq32(v, '[') | eq32(v, ']') | eq32(v, ':') | eq32(v, ','))
                     << shift;
    __m256i low = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1F)), v);
    m.controls |= (uint64_t)(uint32_t)_mm256_movemask_epi8(low) << shift;
  }
  return m;
}
#else
static inline uint64_t eq16(__m128i v, char c) {
  return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
}
static masks block_masks(const uint8_t *p) {
  masks m = {0, 0, 0, 0};
  for (int k = 0; k < 4; k++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
    int shift = 16 * k;
    m.quotes |= eq16(v, '"') << shift;
    m.backslashes |= eq16(v, '\\') << shift;
    m.structurals |= (eq16(v, '{') | eq16(v, '}') | eq16(v, '[') | eq16(v, ']') | eq16(v, ':') | eq16(v, ','))
                     << shift;
    __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
    m.controls |= (uint64_t)(uint32_t)_mm_movemask_epi8(low) << shift;
  }
  return m;
}
#endif

// The in-string mask's prefix XOR is the scanner's own (`feedbackd_prefix_xor`).
#include "../Sources/CByteScan/include/ByteScan.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PLAIN_LOG_FILE\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *text = malloc(n + 64);
  if (!text || fread(text, 1, n, f) != (size_t)n) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  fclose(f);
  double best = 1e9;
  long lines = 0, positions = 0, withEscapes = 0, controlInString = 0;
  for (int pass = 0; pass < 5; pass++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lines = positions = withEscapes = controlInString = 0;
    const uint8_t *p = text, *end = text + n;
    while (p < end) {
      const uint8_t *newline = memchr(p, '\n', end - p);
      if (!newline) break;
      long length = newline - p;
      lines++;
      uint64_t inString = 0;  // all ones while a string is open at a block's end
      for (long offset = 0; offset < length; offset += 64) {
        uint8_t tail[64];
        const uint8_t *block = p + offset;
        if (length - offset < 64) {
          memset(tail, ' ', 64);
          memcpy(tail, block, length - offset);
          block = tail;
        }
        masks m = block_masks(block);
        if (m.backslashes) withEscapes++;  // a real scanner takes a slower path here
        uint64_t strings = feedbackd_prefix_xor(m.quotes) ^ inString;
        inString = (uint64_t)((int64_t)strings >> 63);
        if (m.controls & strings) controlInString++;
        for (uint64_t s = (m.structurals & ~strings) | m.quotes; s; s &= s - 1) positions += __builtin_ctzll(s);
      }
      p = newline + 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (seconds < best) best = seconds;
  }
#if defined(__AVX2__)
  const char *kind = "AVX2";
#else
  const char *kind = "SSE2";
#endif
  printf("%s: %ld lines, %.1f MB in %.3f s: %.1f ns/line, %.0f MB/s (lines with escapes %ld, control bytes in strings %ld; %ld)\n",
         kind, lines, n / 1e6, best, best * 1e9 / lines, n / 1e6 / best, withEscapes, controlInString, positions & 1);
  return 0;
}
