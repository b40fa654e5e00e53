// AVX2 row functions (x86-64). Built with -mavx2 and only called when the
// CPU and OS support AVX2 (cpu.cc). Each gives the same bytes as its C twin.
// ResizeLabels uses the AVX2 gather for int32 labels; uint8/uint16 rows
// have no safe gather (it would read past the row) and use the C loop.
#include "row.h"

#if CORESEG_ARCH_X86_64
#include <immintrin.h>

#include <cstring>

namespace coreseg {
namespace {

// Eight labels widened to int32 lanes.
inline __m256i Load8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i Load8(const uint16_t* p) {
  return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i Load8(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

inline int32_t PackPair(int16_t c0, int16_t c1) {
  return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(c0)) |
                              (static_cast<uint32_t>(static_cast<uint16_t>(c1)) << 16));
}

template <typename T>
void RenderMaskRow_AVX2(const T* src, const int32_t* selected,
                        int num_selected, uint32_t color, uint8_t* dst,
                        int width) {
  const __m256i vcolor = _mm256_set1_epi32(static_cast<int32_t>(color));
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const __m256i v = Load8(src + x);
    __m256i hit = _mm256_setzero_si256();
    for (int k = 0; k < num_selected; ++k)
      hit = _mm256_or_si256(hit, _mm256_cmpeq_epi32(v, _mm256_set1_epi32(selected[k])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * x),
                        _mm256_and_si256(hit, vcolor));
  }
  RenderMaskRow_C(src + x, selected, num_selected, color, dst + 4 * x,
                  width - x);
}

template <typename T>
void ColorizeRow_AVX2(const T* src, const uint32_t* palette, uint32_t n,
                      uint8_t* dst, int width) {
  const __m256i vn = _mm256_set1_epi32(static_cast<int32_t>(n));
  const int* table = reinterpret_cast<const int*>(palette);
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const __m256i idx = _mm256_min_epu32(Load8(src + x), vn);
    // Class maps come in blocks: when all eight ids are equal, one load and
    // a broadcast replace the gather.
    const __m256i first = _mm256_broadcastd_epi32(_mm256_castsi256_si128(idx));
    const __m256i colors =
        _mm256_movemask_epi8(_mm256_cmpeq_epi32(idx, first)) == -1
            ? _mm256_set1_epi32(table[_mm256_cvtsi256_si32(idx)])
            : _mm256_i32gather_epi32(table, idx, 4);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * x), colors);
  }
  ColorizeRow_C(src + x, palette, n, dst + 4 * x, width - x);
}

void ResizeLabelsRow_AVX2(const int32_t* src, const int32_t* xmap,
                          int32_t* dst, int width) {
  const int* s = reinterpret_cast<const int*>(src);
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xmap + x));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + x),
                        _mm256_i32gather_epi32(s, idx, 4));
  }
  ResizeLabelsRow_C(src, xmap + x, dst + x, width - x);
}

inline __m256i Widen16(const uint8_t* p) {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 16 lanes of a pattern blend: mullo + add + mulhi.
inline __m256i BlendPre16(__m256i s, const uint16_t* keep, const uint16_t* add) {
  const __m256i t = _mm256_add_epi16(
      _mm256_mullo_epi16(s, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keep))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(add)));
  return _mm256_mulhi_epu16(t, _mm256_set1_epi16(257));
}

// 16 bytes of a pattern blend (for a row's end).
inline void BlendPattern16(const uint8_t* src, const uint16_t* keep, const uint16_t* add,
                           uint8_t* dst) {
  const __m256i v = BlendPre16(Widen16(src), keep, add);
  const __m128i packed = _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), packed);
}

// 32 bytes of a pattern blend.
inline void BlendPattern32(const uint8_t* src, const uint16_t* keep, const uint16_t* add,
                           uint8_t* dst) {
  const __m256i lo = BlendPre16(Widen16(src), keep, add);
  const __m256i hi = BlendPre16(Widen16(src + 16), keep + 16, add + 16);
  // packus works per 128-bit lane; the permute puts the quarters back.
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                      _mm256_permute4x64_epi64(_mm256_packus_epi16(lo, hi), 0xD8));
}

void BlendPatternRow_AVX2(const uint8_t* src, const uint16_t* keep,
                          const uint16_t* add, int period, uint8_t* dst,
                          int count) {
  BlendPatternLoop<32, BlendPattern32, BlendPattern16>(src, keep, add, period, dst, count);
}

void BlendRow_AVX2(const uint8_t* src, ptrdiff_t src_stride, const uint16_t* keep,
                   const uint16_t* add, uint8_t* dst, ptrdiff_t dst_stride, int rows,
                   int count) {
  const __m256i k257 = _mm256_set1_epi16(257);
  int i = 0;
  for (; i + 32 <= count; i += 32) {
    // The terms of 32 bytes, loaded once for every row.
    // In the order unpack widens a row's 32 bytes: bytes 0-7 and 16-23
    // (k0, a0), then 8-15 and 24-31 (k1, a1); packus then restores the
    // order with no permute.
    const auto lanes = [](const uint16_t* t) {
      return _mm256_setr_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)),
                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16)));
    };
    const __m256i k0 = lanes(keep + i), k1 = lanes(keep + i + 8);
    const __m256i a0 = lanes(add + i), a1 = lanes(add + i + 8);
    const __m256i zero = _mm256_setzero_si256();
    for (int r = 0; r < rows; ++r) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + r * src_stride + i));
      const __m256i lo = _mm256_mulhi_epu16(_mm256_add_epi16(_mm256_mullo_epi16(_mm256_unpacklo_epi8(v, zero), k0), a0), k257);
      const __m256i hi = _mm256_mulhi_epu16(_mm256_add_epi16(_mm256_mullo_epi16(_mm256_unpackhi_epi8(v, zero), k1), a1), k257);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + r * dst_stride + i), _mm256_packus_epi16(lo, hi));
    }
  }
  BlendRowEnd<BlendPattern16>(src, src_stride, keep, add, dst, dst_stride, rows, i, count);
}

void ResampleVerticalRow_AVX2(const uint8_t* const* rows,
                              const int16_t* coeffs, int taps, int16_t* dst,
                              int count) {
  const __m256i round = _mm256_set1_epi32(1 << (kVerticalShift - 1));
  int i = 0;
  // 32 values per step: each tap pair's row pointers and coefficients are
  // loaded once for two vectors.
  for (; i + 32 <= count; i += 32) {
    __m256i acc0 = round, acc1 = round, acc2 = round, acc3 = round;
    const auto pair = [&](int k) {
      const uint8_t* ra = rows[k] + i;
      const uint8_t* rb = rows[k + 1] + i;
      const __m256i cc = _mm256_set1_epi32(CoeffPairBits(coeffs + k));
      const __m256i a = Widen16(ra), b = Widen16(rb);
      const __m256i a2 = Widen16(ra + 16), b2 = Widen16(rb + 16);
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), cc));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), cc));
      acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(_mm256_unpacklo_epi16(a2, b2), cc));
      acc3 = _mm256_add_epi32(acc3, _mm256_madd_epi16(_mm256_unpackhi_epi16(a2, b2), cc));
    };
    // Two tap pairs per turn: half the loop's own instructions.
    int k = 0;
    for (; k + 4 <= taps; k += 4) {
      pair(k);
      pair(k + 2);
    }
    if (k < taps) pair(k);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_packs_epi32(_mm256_srai_epi32(acc0, kVerticalShift),
                                           _mm256_srai_epi32(acc1, kVerticalShift)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 16),
                        _mm256_packs_epi32(_mm256_srai_epi32(acc2, kVerticalShift),
                                           _mm256_srai_epi32(acc3, kVerticalShift)));
  }
  for (; i + 16 <= count; i += 16) {
    __m256i acc0 = round, acc1 = round;
    for (int k = 0; k < taps; k += 2) {
      const __m256i a = Widen16(rows[k] + i);
      const __m256i b = Widen16(rows[k + 1] + i);
      const __m256i cc = _mm256_set1_epi32(CoeffPairBits(coeffs + k));
      // Per 128-bit lane: lo holds values 0-3 | 8-11, hi 4-7 | 12-15, so the
      // lane-wise packs below restores the order 0-7 | 8-15.
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), cc));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), cc));
    }
    acc0 = _mm256_srai_epi32(acc0, kVerticalShift);
    acc1 = _mm256_srai_epi32(acc1, kVerticalShift);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_packs_epi32(acc0, acc1));
  }
  for (; i < count; ++i) dst[i] = ResampleVerticalPoint(rows, coeffs, taps, i);
}

// One output's taps (a multiple of 8) against one plane: 8 partial sums,
// 16 taps per madd (the last 8 in the low lane). kTaps > 0 fixes the
// count at compile time (straight-line code for the common filters).
template <int kTaps>
inline __m256i Dot16s(const int16_t* p, const int16_t* c, int taps) {
  const int n = kTaps > 0 ? kTaps : taps;
  __m256i acc = _mm256_setzero_si256();
  int k = 0;
  for (; k + 16 <= n; k += 16)
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k)),
                                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + k))));
  if (k < n) {
    const __m128i last = _mm_madd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k)),
                                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + k)));
    acc = _mm256_add_epi32(acc, _mm256_inserti128_si256(_mm256_setzero_si256(), last, 0));
  }
  return acc;
}

// Eight pixels' sums for one plane, in pixel order: per 128-bit lane, hadd
// twice leaves pixels 0-3 (and 4-7) summed over that lane's half of the
// taps; the two halves are then added. Rounded and shifted as the C row.
template <int kTaps>
inline __m256i Sums8(const int16_t* p, const int32_t* start, const int16_t* c, int taps) {
  const __m256i h0 = _mm256_hadd_epi32(
      _mm256_hadd_epi32(Dot16s<kTaps>(p + start[0], c, taps), Dot16s<kTaps>(p + start[1], c + taps, taps)),
      _mm256_hadd_epi32(Dot16s<kTaps>(p + start[2], c + 2 * taps, taps),
                        Dot16s<kTaps>(p + start[3], c + 3 * taps, taps)));
  const __m256i h1 = _mm256_hadd_epi32(
      _mm256_hadd_epi32(Dot16s<kTaps>(p + start[4], c + 4 * taps, taps),
                        Dot16s<kTaps>(p + start[5], c + 5 * taps, taps)),
      _mm256_hadd_epi32(Dot16s<kTaps>(p + start[6], c + 6 * taps, taps),
                        Dot16s<kTaps>(p + start[7], c + 7 * taps, taps)));
  const __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
  return _mm256_srai_epi32(_mm256_add_epi32(sum, _mm256_set1_epi32(1 << (kHorizontalShift - 1))), kHorizontalShift);
}

// Whole blocks of eight output pixels; returns how many pixels were done.
template <int kTaps>
int ResampleHorizontalBlocks(const int16_t* planes, ptrdiff_t plane_stride, int channels,
                             const int32_t* start, const int16_t* coeffs, int taps, uint8_t* dst,
                             int width) {
  // Per 128-bit lane, bytes R0-3 G0-3 B0-3 A0-3 to RGBA per pixel.
  const __m256i interleave = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                              0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const int16_t* r = planes;
  const int16_t* g = planes + plane_stride;
  const int16_t* b = planes + 2 * plane_stride;
  const int16_t* a = planes + 3 * plane_stride;
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const int16_t* c = coeffs + static_cast<ptrdiff_t>(x) * taps;
    const __m256i vr = Sums8<kTaps>(r, start + x, c, taps);
    const __m256i vg = Sums8<kTaps>(g, start + x, c, taps);
    const __m256i vb = Sums8<kTaps>(b, start + x, c, taps);
    const __m256i va = channels == 4 ? Sums8<kTaps>(a, start + x, c, taps) : _mm256_set1_epi32(255);
    // packs then packus clamp to 0..255 as the C row does; per 128-bit
    // lane: pixels 0-3, then 4-7.
    const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(vr, vg), _mm256_packs_epi32(vb, va));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 4 * x), _mm256_shuffle_epi8(bytes, interleave));
  }
  return x;
}

void ResampleHorizontalRow_AVX2(const int16_t* planes, ptrdiff_t plane_stride,
                                int channels, const int32_t* start,
                                const int16_t* coeffs, int taps, uint8_t* dst,
                                int width) {
  ResampleHorizontalByTaps(
      [&](auto k) {
        return ResampleHorizontalBlocks<decltype(k)::value>(planes, plane_stride, channels, start, coeffs, taps,
                                                           dst, width);
      },
      planes, plane_stride, channels, start, coeffs, taps, dst, width);
}

// Logits are float32, or float16 widened with F16C (part of the AVX2 table:
// cpu.cc requires both).
inline __m256 Load8f(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 Load8f(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <typename T>
void ArgmaxRow_AVX2(const T* src, ptrdiff_t plane, int channels, int32_t* dst, int width) {
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    __m256 best = _mm256_set1_ps(-__builtin_inff());
    __m256i index = _mm256_setzero_si256();
    for (int c = 0; c < channels; ++c) {
      const __m256 v = Load8f(src + c * plane + x);
      const __m256 greater = _mm256_cmp_ps(v, best, _CMP_GT_OQ);  // false for NaN
      best = _mm256_blendv_ps(best, v, greater);
      index = _mm256_blendv_epi8(index, _mm256_set1_epi32(c), _mm256_castps_si256(greater));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + x), index);
  }
  ArgmaxRow_C(src + x, plane, channels, dst + x, width - x);
}

void UpsampleVerticalRow_AVX2(const int16_t* a, const int16_t* b, int wa, int wb,
                              int32_t* dst, int count) {
  // Interleave (a, b) in 128-bit halves so the 256-bit madd keeps lane order.
  const __m256i w = _mm256_set1_epi32(PackPair(static_cast<int16_t>(wa), static_cast<int16_t>(wb)));
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    const __m256i pairs = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_unpacklo_epi16(va, vb)), _mm_unpackhi_epi16(va, vb), 1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_madd_epi16(pairs, w));
  }
  UpsampleVerticalRow_C(a + i, b + i, wa, wb, dst + i, count - i);
}

void ArgmaxInt32Row_AVX2(const int32_t* src, ptrdiff_t plane, int channels, int32_t* dst,
                         int width) {
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    __m256i best = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + x));
    __m256i index = _mm256_setzero_si256();
    for (int c = 1; c < channels; ++c) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c * plane + x));
      const __m256i greater = _mm256_cmpgt_epi32(v, best);
      best = _mm256_max_epi32(best, v);
      index = _mm256_blendv_epi8(index, _mm256_set1_epi32(c), greater);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + x), index);
  }
  ArgmaxRow_C(src + x, plane, channels, dst + x, width - x);
}

template <typename T>
void EmaRow_AVX2(const T* x, float alpha, float* state, int count) {
  const __m256 a = _mm256_set1_ps(alpha), keep = _mm256_set1_ps(1.0f - alpha);
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 s = _mm256_mul_ps(keep, _mm256_loadu_ps(state + i));
    _mm256_storeu_ps(state + i, _mm256_add_ps(s, _mm256_mul_ps(a, Load8f(x + i))));
  }
  EmaRow_C(x + i, alpha, state + i, count - i);
}

void HysteresisRow_AVX2(const int32_t* x, const float* gap, float margin, int frames,
                        int32_t* shown, int32_t* candidate, int32_t* count, int width) {
  const __m256i one = _mm256_set1_epi32(1), last = _mm256_set1_epi32(frames - 1);
  const __m256 m = _mm256_set1_ps(margin);
  int i = 0;
  for (; i + 8 <= width; i += 8) {
    const __m256i vx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i vs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shown + i));
    const __m256i vc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(candidate + i));
    const __m256i vn = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(count + i));
    const __m256i n1 = _mm256_blendv_epi8(one, _mm256_add_epi32(_mm256_min_epi32(vn, last), one),
                                          _mm256_cmpeq_epi32(vx, vc));
    const __m256i same = _mm256_cmpeq_epi32(vx, vs);
    __m256i flip = _mm256_cmpgt_epi32(n1, last);  // n1 >= frames
    if (gap)
      flip = _mm256_or_si256(flip, _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(gap + i), m, _CMP_GE_OQ)));
    flip = _mm256_andnot_si256(same, flip);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(shown + i), _mm256_blendv_epi8(vs, vx, flip));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(count + i), _mm256_andnot_si256(_mm256_or_si256(same, flip), n1));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(candidate + i), vx);
  }
  HysteresisRow_C(x + i, gap ? gap + i : nullptr, margin, frames, shown + i, candidate + i, count + i,
                  width - i);
}

void ShuffleRow_AVX2(const uint8_t* src, const uint8_t* order, int channels,
                     uint8_t* dst, int width) {
  // vpshufb works per 128-bit lane: the same 4-pixel mask in both.
  alignas(16) uint8_t m[16];
  ShuffleMaskBytes(order, channels, m);
  const __m256i mask = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(m)));
  // 3 channels: each lane's 12 bytes joined into 24 (dwords 0-2 and 4-6).
  const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
  int x = 0;
  // Each step stores 32 bytes; with 3 channels only 24 are the step's, so
  // it stops while the 8 after them are still inside the row.
  const int stop = channels == 4 ? width - 8 : width - 11;
  for (; x <= stop; x += 8) {
    __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 4 * x)), mask);
    if (channels == 3) v = _mm256_permutevar8x32_epi32(v, join);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + channels * x), v);
  }
  ShuffleRow_C(src + 4 * x, order, channels, dst + channels * x, width - x);
}

// blend_images (the SSE4.1 row's method, row_sse41.cc): 16 pixels a step,
// two chunks of 16 bytes per 256-bit vector (pshufb works per lane, so each
// lane reads its own window of pixel pairs).
inline __m256i BlendChunk32(__m256i f, __m256i b, __m256i pairs, __m256i mlo, __m256i mhi) {
  const __m256i k80 = _mm256_set1_epi8(-128), top = _mm256_set1_epi16(-32768), k257 = _mm256_set1_epi16(257);
  const __m256i flo = _mm256_xor_si256(_mm256_unpacklo_epi8(f, b), k80);
  const __m256i fhi = _mm256_xor_si256(_mm256_unpackhi_epi8(f, b), k80);
  const __m256i tlo = _mm256_xor_si256(_mm256_maddubs_epi16(_mm256_shuffle_epi8(pairs, mlo), flo), top);
  const __m256i thi = _mm256_xor_si256(_mm256_maddubs_epi16(_mm256_shuffle_epi8(pairs, mhi), fhi), top);
  return _mm256_packus_epi16(_mm256_mulhi_epu16(tlo, k257), _mm256_mulhi_epu16(thi, k257));
}

inline __m128i BlendChunk16(__m128i f, __m128i b, __m128i pairs, __m128i mlo, __m128i mhi) {
  const __m128i k80 = _mm_set1_epi8(-128), top = _mm_set1_epi16(-32768), k257 = _mm_set1_epi16(257);
  const __m128i flo = _mm_xor_si128(_mm_unpacklo_epi8(f, b), k80);
  const __m128i fhi = _mm_xor_si128(_mm_unpackhi_epi8(f, b), k80);
  const __m128i tlo = _mm_xor_si128(_mm_maddubs_epi16(_mm_shuffle_epi8(pairs, mlo), flo), top);
  const __m128i thi = _mm_xor_si128(_mm_maddubs_epi16(_mm_shuffle_epi8(pairs, mhi), fhi), top);
  return _mm_packus_epi16(_mm_mulhi_epu16(tlo, k257), _mm_mulhi_epu16(thi, k257));
}

inline __m256i Load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void Store32(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m128i LoadX(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void StoreX(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }

void BlendImagesRow_AVX2(const uint8_t* fg, const uint8_t* bg, const uint8_t* alpha, int channels, uint8_t* dst,
                         int width) {
  const uint8_t* masks = BlendMaskBytes(channels);
  const auto mask = [&](int half, int k) { return LoadX(masks + 48 * half + 16 * k); };
  // Chunks 0 and 1 of a step share a vector (lo lane, hi lane).
  const __m256i mlo01 = _mm256_setr_m128i(mask(0, 0), mask(0, 1)), mhi01 = _mm256_setr_m128i(mask(1, 0), mask(1, 1));
  const __m128i mlo2 = mask(0, 2), mhi2 = mask(1, 2);
  const __m128i ones = _mm_set1_epi8(-1), zero = _mm_setzero_si128();
  const __m256i amask = _mm256_set1_epi32(channels == 4 ? static_cast<int32_t>(0xFF000000u) : 0);
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    const __m128i a = LoadX(alpha + x);
    const uint8_t* f = fg + x * channels;
    const uint8_t* b = bg + x * channels;
    uint8_t* d = dst + x * channels;
    // Mattes are mostly 0 or 255: whole steps of either are copies.
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(a, ones)) == 0xFFFF) {
      if (d != f) {
        Store32(d, Load32(f));
        if (channels == 4) Store32(d + 32, Load32(f + 32)); else StoreX(d + 32, LoadX(f + 32));
      }
      continue;
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(a, zero)) == 0xFFFF) {
      if (channels == 4) {
        Store32(d, _mm256_blendv_epi8(Load32(b), Load32(f), amask));
        Store32(d + 32, _mm256_blendv_epi8(Load32(b + 32), Load32(f + 32), amask));
      } else if (d != b) {
        Store32(d, Load32(b));
        StoreX(d + 32, LoadX(b + 32));
      }
      continue;
    }
    const __m128i na = _mm_xor_si128(a, ones);
    const __m128i p0 = _mm_unpacklo_epi8(a, na), p8 = _mm_unpackhi_epi8(a, na);
    if (channels == 4) {
      const __m256i f0 = Load32(f), f1 = Load32(f + 32);
      const __m256i v0 = BlendChunk32(f0, Load32(b), _mm256_broadcastsi128_si256(p0), mlo01, mhi01);
      const __m256i v1 = BlendChunk32(f1, Load32(b + 32), _mm256_broadcastsi128_si256(p8), mlo01, mhi01);
      Store32(d, _mm256_blendv_epi8(v0, f0, amask));
      Store32(d + 32, _mm256_blendv_epi8(v1, f1, amask));
    } else {
      const __m256i pairs = _mm256_setr_m128i(p0, _mm_alignr_epi8(p8, p0, 8));
      const __m256i v0 = BlendChunk32(Load32(f), Load32(b), pairs, mlo01, mhi01);
      const __m128i v2 = BlendChunk16(LoadX(f + 32), LoadX(b + 32), p8, mlo2, mhi2);
      Store32(d, v0);
      StoreX(d + 32, v2);
    }
  }
  BlendImagesRow_C(fg + x * channels, bg + x * channels, alpha + x, channels, dst + x * channels, width - x);
}

// Column sums of 128 values at a time, kept in registers down the rows
// (each row's 128 bytes read once, one store per column block).
void ColumnSumsRow_AVX2(const uint8_t* src, ptrdiff_t stride, int rows, uint16_t* dst, int count) {
  int i = 0;
  for (; i + 128 <= count; i += 128) {
    __m256i acc[8];
    for (__m256i& a : acc) a = _mm256_setzero_si256();
    const uint8_t* p = src + i;
    for (int r = 0; r < rows; ++r, p += stride)
      for (int k = 0; k < 8; ++k) acc[k] = _mm256_add_epi16(acc[k], Widen16(p + 16 * k));
    for (int k = 0; k < 8; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 16 * k), acc[k]);
  }
  for (; i + 16 <= count; i += 16) {
    __m256i acc = _mm256_setzero_si256();
    const uint8_t* p = src + i;
    for (int r = 0; r < rows; ++r, p += stride) acc = _mm256_add_epi16(acc, Widen16(p));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), acc);
  }
  ColumnSumsRow_C(src + i, stride, rows, dst + i, count - i);
}

void TapFilterRow_AVX2(const int16_t* const* rows, const int16_t* coeffs, int taps, int16_t* dst, int count) {
  const __m256i round = _mm256_set1_epi32(1 << 15);
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    __m256i acc0 = round, acc1 = round;
    for (int k = 0; k < taps; k += 2) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k] + i));
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[k + 1] + i));
      const __m256i cc = _mm256_set1_epi32(CoeffPairBits(coeffs + k));
      // Per lane, lo holds values 0-3 | 8-11 and hi 4-7 | 12-15: the
      // lane-wise packs restores the order.
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), cc));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), cc));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_packs_epi32(_mm256_srai_epi32(acc0, 16), _mm256_srai_epi32(acc1, 16)));
  }
  for (; i < count; ++i) dst[i] = TapFilterPoint(rows, coeffs, taps, i);
}

void LerpColumnsRow_AVX2(const int16_t* src, int channels, const int32_t* x0, const int16_t* wq, uint8_t* dst,
                         int width) {
  if (channels != 4) {  // a 3-channel pixel is a step of 128 bits either way
    LerpColumnsRow_SSE41(src, channels, x0, wq, dst, width);
    return;
  }
  // Four pixels a step, two per lane; each 16-byte load holds a pixel and
  // its right neighbour (a, b).
  const __m256i spread = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3,
                                          4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7);
  const auto at = [&](int x) { return reinterpret_cast<const __m128i*>(src + 4 * static_cast<ptrdiff_t>(x0[x])); };
  const __m256i k256 = _mm256_set1_epi16(256);  // pmulhrsw by 256: (v + 64) >> 7
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    const __m256i v02 = _mm256_setr_m128i(_mm_loadu_si128(at(x)), _mm_loadu_si128(at(x + 2)));
    const __m256i v13 = _mm256_setr_m128i(_mm_loadu_si128(at(x + 1)), _mm_loadu_si128(at(x + 3)));
    int64_t w4;
    std::memcpy(&w4, wq + x, 8);
    const __m256i w = _mm256_shuffle_epi8(_mm256_set1_epi64x(w4), spread);
    const __m256i a = _mm256_unpacklo_epi64(v02, v13), b = _mm256_unpackhi_epi64(v02, v13);
    const __m256i v = _mm256_mulhrs_epi16(_mm256_add_epi16(a, _mm256_mulhrs_epi16(_mm256_sub_epi16(b, a), w)), k256);
    // Bytes of pixels 0-1 in the low lane, 2-3 in the high one.
    const __m256i bytes = _mm256_packus_epi16(v, v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * x),
                     _mm256_castsi256_si128(_mm256_permute4x64_epi64(bytes, 0x08)));
  }
  LerpColumnsRow_C(src, channels, x0 + x, wq + x, dst + 4 * x, width - x);
}

// (a, b) byte pairs times the (64 - w6, w6) pair: pmaddubsw gives the sum
// (<= 255 * 64), pmulhrsw by 512 its (t + 32) >> 6; unpack and packus
// both work per lane, so the bytes come back in order.
void LerpRowsRow_AVX2(const uint8_t* a, const uint8_t* b, int w6, uint8_t* dst, int count) {
  const __m256i w = _mm256_set1_epi16(static_cast<int16_t>((64 - w6) | (w6 << 8))), k512 = _mm256_set1_epi16(512);
  int i = 0;
  for (; i + 32 <= count; i += 32) {
    const __m256i va = Load32(a + i), vb = Load32(b + i);
    const __m256i lo = _mm256_mulhrs_epi16(_mm256_maddubs_epi16(_mm256_unpacklo_epi8(va, vb), w), k512);
    const __m256i hi = _mm256_mulhrs_epi16(_mm256_maddubs_epi16(_mm256_unpackhi_epi8(va, vb), w), k512);
    Store32(dst + i, _mm256_packus_epi16(lo, hi));
  }
  LerpRowsRow_C(a + i, b + i, w6, dst + i, count - i);
}

// The matte's alpha of eight interpolated values (MatteAlpha).
inline __m256i MatteAlpha8(__m256i a, __m256i b, __m256i w) {
  const __m256i v = _mm256_add_epi32(_mm256_slli_epi32(a, kLerpBits), _mm256_mullo_epi32(_mm256_sub_epi32(b, a), w));
  const __m256i hi = _mm256_srli_epi32(v, 16), lo = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
  const __m256i lo255 = _mm256_sub_epi32(_mm256_slli_epi32(lo, 8), lo);
  const __m256i m = _mm256_add_epi32(_mm256_sub_epi32(_mm256_slli_epi32(hi, 8), hi),
                                     _mm256_srli_epi32(_mm256_add_epi32(lo255, _mm256_set1_epi32(kScoreOne << 15)), 16));
  return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(m, _mm256_srli_epi32(m, 15)), _mm256_set1_epi32(1)), 15);
}

void MatteRowsRow_AVX2(const int32_t* a, const int32_t* b, int w1, uint8_t* dst, int count) {
  const __m256i w = _mm256_set1_epi32(w1), full = _mm256_set1_epi32(kScoreOne << kLerpBits);
  int i = 0;
  for (; i + 32 <= count; i += 32) {
    __m256i va[4], vb[4];
    for (int k = 0; k < 4; ++k) {
      va[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 8 * k));
      vb[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 8 * k));
    }
    // Mattes are mostly 0 or 1: 32 values all 0 or all full are 0 or 255.
    const __m256i any = _mm256_or_si256(_mm256_or_si256(_mm256_or_si256(va[0], va[1]), _mm256_or_si256(va[2], va[3])),
                                        _mm256_or_si256(_mm256_or_si256(vb[0], vb[1]), _mm256_or_si256(vb[2], vb[3])));
    const __m256i all = _mm256_and_si256(_mm256_and_si256(_mm256_and_si256(va[0], va[1]), _mm256_and_si256(va[2], va[3])),
                                         _mm256_and_si256(_mm256_and_si256(vb[0], vb[1]), _mm256_and_si256(vb[2], vb[3])));
    if (_mm256_testz_si256(any, any)) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_setzero_si256());
      continue;
    }
    if (_mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi32(any, full), _mm256_cmpeq_epi32(all, full))) == -1) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_set1_epi8(-1));
      continue;
    }
    // packus works per lane: the dwords end up 0-3 8-11 16-19 24-27 |
    // 4-7 12-15 20-23 28-31, which one permute of dwords puts in order.
    const __m256i r01 = _mm256_packus_epi32(MatteAlpha8(va[0], vb[0], w), MatteAlpha8(va[1], vb[1], w));
    const __m256i r23 = _mm256_packus_epi32(MatteAlpha8(va[2], vb[2], w), MatteAlpha8(va[3], vb[3], w));
    const __m256i bytes = _mm256_packus_epi16(r01, r23);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  MatteRowsRow_C(a + i, b + i, w1, dst + i, count - i);
}

// LumaRow_SSE41's shuffles and sums on 8 pixels a step, two loads of 4
// pixels in the two lanes (phaddd keeps each lane's order), 16 a loop.
void LumaRow_AVX2(const uint8_t* src, int channels, uint8_t* dst, int width) {
  const bool rgba = channels == 4;
  const __m256i m01 = rgba ? _mm256_setr_epi8(0, -1, 1, -1, 2, -1, -1, -1, 4, -1, 5, -1, 6, -1, -1, -1, 0, -1, 1, -1, 2,
                                              -1, -1, -1, 4, -1, 5, -1, 6, -1, -1, -1)
                           : _mm256_setr_epi8(0, -1, 1, -1, 2, -1, -1, -1, 3, -1, 4, -1, 5, -1, -1, -1, 0, -1, 1, -1, 2,
                                              -1, -1, -1, 3, -1, 4, -1, 5, -1, -1, -1);
  const __m256i m23 = rgba ? _mm256_setr_epi8(8, -1, 9, -1, 10, -1, -1, -1, 12, -1, 13, -1, 14, -1, -1, -1, 8, -1, 9,
                                              -1, 10, -1, -1, -1, 12, -1, 13, -1, 14, -1, -1, -1)
                           : _mm256_setr_epi8(6, -1, 7, -1, 8, -1, -1, -1, 9, -1, 10, -1, 11, -1, -1, -1, 6, -1, 7, -1,
                                              8, -1, -1, -1, 9, -1, 10, -1, 11, -1, -1, -1);
  const __m256i k = _mm256_setr_epi16(77, 150, 29, 0, 77, 150, 29, 0, 77, 150, 29, 0, 77, 150, 29, 0);
  const __m256i half = _mm256_set1_epi32(128);
  const auto eight = [&](const uint8_t* p) {  // pixels p[0..8), as 8 int32 in order
    const __m256i v = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4 * channels)), 1);
    const __m256i sum = _mm256_hadd_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(v, m01), k),
                                          _mm256_madd_epi16(_mm256_shuffle_epi8(v, m23), k));
    const __m256i y = _mm256_srli_epi32(_mm256_add_epi32(sum, half), 8);
    return _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
  };
  int x = 0;
  // The last load of a step reads 16 bytes from pixel x + 12.
  for (; (x + 12) * channels + 16 <= width * channels && x + 16 <= width; x += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x),
                     _mm_packus_epi16(eight(src + x * channels), eight(src + (x + 8) * channels)));
  LumaRow_SSE41(src + static_cast<ptrdiff_t>(x) * channels, channels, dst + x, width - x);
}

// Eight values of RefineApplyRowFn as int32 (before the clamp).
inline __m256i RefineApply8(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0,
                            const int32_t* b1, __m256i wy) {
  const __m256i half = _mm256_set1_epi32(128);
  const auto lerp = [&](const int32_t* p, const int32_t* q) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i d = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), a);
    return _mm256_add_epi32(a, _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(d, wy), half), 8));
  };
  const __m256i luma = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(y)));
  const __m256i v = _mm256_add_epi32(_mm256_mullo_epi32(lerp(a0, a1), luma), _mm256_slli_epi32(lerp(b0, b1), 8));
  return _mm256_srai_epi32(_mm256_add_epi32(v, _mm256_set1_epi32(2048)), 12);
}

void RefineApplyRow_AVX2(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0,
                         const int32_t* b1, int wy, uint8_t* dst, int width) {
  const __m256i w = _mm256_set1_epi32(wy);
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    // packs then packus clamp to 0..255, per lane: the dwords (4 bytes
    // each) come out 0 2 . . | 1 3 . ., which one permute puts in order.
    const __m256i words = _mm256_packs_epi32(RefineApply8(y + x, a0 + x, a1 + x, b0 + x, b1 + x, w),
                                             RefineApply8(y + x + 8, a0 + x + 8, a1 + x + 8, b0 + x + 8, b1 + x + 8, w));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(words, words),
                                                      _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), _mm256_castsi256_si128(bytes));
  }
  RefineApplyRow_C(y + x, a0 + x, a1 + x, b0 + x, b1 + x, wy, dst + x, width - x);
}

}  // namespace

const RowFunctions kRowsAVX2 = {
    "avx2",
    {RenderMaskRow_AVX2<uint8_t>, ColorizeRow_AVX2<uint8_t>, ResizeLabelsRow_C<uint8_t>},
    {RenderMaskRow_AVX2<uint16_t>, ColorizeRow_AVX2<uint16_t>,
     ResizeLabelsRow_C<uint16_t>},
    {RenderMaskRow_AVX2<int32_t>, ColorizeRow_AVX2<int32_t>, ResizeLabelsRow_AVX2},
    BlendRow_AVX2,
    BlendPatternRow_AVX2,
    BlendPixelsRow_SSE41,
    ResampleVerticalRow_AVX2,
    DeinterleaveRow_SSE41,
    ResampleHorizontalRow_AVX2,
    ArgmaxRow_AVX2<float>,
    ArgmaxRow_AVX2<uint16_t>,
    UpsampleVerticalRow_AVX2,
    ArgmaxInt32Row_AVX2,
    EmaRow_AVX2<float>,
    EmaRow_AVX2<uint16_t>,
    HysteresisRow_AVX2,
    ShuffleRow_AVX2,
    BlendImagesRow_AVX2,
    ColumnSumsRow_AVX2,
    BlockMeanRow_SSE41,
    TapFilterRow_AVX2,
    LerpColumnsRow_AVX2,
    LerpRowsRow_AVX2,
    MatteColumnsRow_C,
    MatteRowsRow_AVX2,
    LumaRow_AVX2,
    RefineApplyRow_AVX2,
};

}  // namespace coreseg
#endif  // CORESEG_ARCH_X86_64
