// SSE4.1 row functions (x86-64). Built with -msse4.1 and only called when
// the CPU has SSE4.1 (cpu.cc). Each gives the same bytes as its C twin.
// ResizeLabels has no SSE4.1 version: without a gather instruction it is the
// C loop; resize_labels gets its speed from copying repeated rows instead.
#include "row.h"

#if CORESEG_ARCH_X86_64
#include <smmintrin.h>

#include <cstring>

namespace coreseg {
namespace {

// Four labels widened to int32 lanes.
inline __m128i Load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm_cvtepu8_epi32(_mm_cvtsi32_si128(v));
}
inline __m128i Load4(const uint16_t* p) {
  return _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline __m128i Load4(const int32_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Two int16 coefficients as the (lo, hi) pair that _mm_madd_epi16 expects.
inline __m128i CoeffPair(int16_t c0, int16_t c1) {
  return _mm_set1_epi32(static_cast<int32_t>(
      static_cast<uint32_t>(static_cast<uint16_t>(c0)) |
      (static_cast<uint32_t>(static_cast<uint16_t>(c1)) << 16)));
}

// CoeffPair(c[0], c[1]) of coefficients in memory, as one broadcast load.
inline __m128i CoeffPairAt(const int16_t* c) { return _mm_set1_epi32(CoeffPairBits(c)); }

template <typename T>
void RenderMaskRow_SSE41(const T* src, const int32_t* selected,
                         int num_selected, uint32_t color, uint8_t* dst,
                         int width) {
  const __m128i vcolor = _mm_set1_epi32(static_cast<int32_t>(color));
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    const __m128i v = Load4(src + x);
    __m128i hit = _mm_setzero_si128();
    for (int k = 0; k < num_selected; ++k)
      hit = _mm_or_si128(hit, _mm_cmpeq_epi32(v, _mm_set1_epi32(selected[k])));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * x),
                     _mm_and_si128(hit, vcolor));
  }
  RenderMaskRow_C(src + x, selected, num_selected, color, dst + 4 * x,
                  width - x);
}

// The clamp is vectorised; SSE4.1 has no gather, so the four palette loads
// are scalar.
template <typename T>
void ColorizeRow_SSE41(const T* src, const uint32_t* palette, uint32_t n,
                       uint8_t* dst, int width) {
  const __m128i vn = _mm_set1_epi32(static_cast<int32_t>(n));
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    const __m128i idx = _mm_min_epu32(Load4(src + x), vn);
    // Class maps come in blocks: four equal ids need one load, not four.
    if (_mm_movemask_epi8(_mm_cmpeq_epi32(idx, _mm_shuffle_epi32(idx, 0))) == 0xFFFF) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * x),
                       _mm_set1_epi32(static_cast<int32_t>(palette[_mm_cvtsi128_si32(idx)])));
      continue;
    }
    const __m128i c = _mm_setr_epi32(
        static_cast<int32_t>(palette[_mm_cvtsi128_si32(idx)]),
        static_cast<int32_t>(palette[_mm_extract_epi32(idx, 1)]),
        static_cast<int32_t>(palette[_mm_extract_epi32(idx, 2)]),
        static_cast<int32_t>(palette[_mm_extract_epi32(idx, 3)]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * x), c);
  }
  ColorizeRow_C(src + x, palette, n, dst + 4 * x, width - x);
}

// 16 bytes of a pattern blend, keep and add from the pattern's phase:
// mullo + add + mulhi per 8 lanes.
inline void BlendPattern16(const uint8_t* src, const uint16_t* keep, const uint16_t* add,
                           uint8_t* dst) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i k257 = _mm_set1_epi16(257);
  const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  const __m128i lo = _mm_mulhi_epu16(
      _mm_add_epi16(_mm_mullo_epi16(_mm_unpacklo_epi8(s, zero),
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(keep))),
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(add))),
      k257);
  const __m128i hi = _mm_mulhi_epu16(
      _mm_add_epi16(_mm_mullo_epi16(_mm_unpackhi_epi8(s, zero),
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(keep + 8))),
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(add + 8))),
      k257);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_packus_epi16(lo, hi));
}

void BlendPatternRow_SSE41(const uint8_t* src, const uint16_t* keep,
                           const uint16_t* add, int period, uint8_t* dst,
                           int count) {
  BlendPatternLoop<16, BlendPattern16, BlendPattern16>(src, keep, add, period, dst, count);
}

void BlendRow_SSE41(const uint8_t* src, ptrdiff_t src_stride, const uint16_t* keep,
                    const uint16_t* add, uint8_t* dst, ptrdiff_t dst_stride, int rows,
                    int count) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i k257 = _mm_set1_epi16(257);
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    // The terms of 16 bytes, loaded once for every row.
    const __m128i k0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(keep + i));
    const __m128i k1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(keep + i + 8));
    const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(add + i));
    const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(add + i + 8));
    for (int r = 0; r < rows; ++r) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + r * src_stride + i));
      const __m128i lo = _mm_mulhi_epu16(_mm_add_epi16(_mm_mullo_epi16(_mm_unpacklo_epi8(v, zero), k0), a0), k257);
      const __m128i hi = _mm_mulhi_epu16(_mm_add_epi16(_mm_mullo_epi16(_mm_unpackhi_epi8(v, zero), k1), a1), k257);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + r * dst_stride + i), _mm_packus_epi16(lo, hi));
    }
  }
  BlendRowEnd<BlendPattern16>(src, src_stride, keep, add, dst, dst_stride, rows, i, count);
}

void ResampleVerticalRow_SSE41(const uint8_t* const* rows,
                               const int16_t* coeffs, int taps, int16_t* dst,
                               int count) {
  const __m128i round = _mm_set1_epi32(1 << (kVerticalShift - 1));
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    __m128i acc0 = round, acc1 = round;
    for (int k = 0; k < taps; k += 2) {
      const __m128i a = _mm_cvtepu8_epi16(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(rows[k] + i)));
      const __m128i b = _mm_cvtepu8_epi16(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(rows[k + 1] + i)));
      const __m128i cc = CoeffPairAt(coeffs + k);
      acc0 = _mm_add_epi32(acc0, _mm_madd_epi16(_mm_unpacklo_epi16(a, b), cc));
      acc1 = _mm_add_epi32(acc1, _mm_madd_epi16(_mm_unpackhi_epi16(a, b), cc));
    }
    acc0 = _mm_srai_epi32(acc0, kVerticalShift);
    acc1 = _mm_srai_epi32(acc1, kVerticalShift);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_packs_epi32(acc0, acc1));
  }
  for (; i < count; ++i) dst[i] = ResampleVerticalPoint(rows, coeffs, taps, i);
}

// One output's taps (a multiple of 8) against one plane: 4 partial sums.
// kTaps > 0 fixes the count at compile time.
template <int kTaps>
inline __m128i Dot8s(const int16_t* p, const int16_t* c, int taps) {
  const int n = kTaps > 0 ? kTaps : taps;
  __m128i acc = _mm_madd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)),
                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
  for (int k = 8; k < n; k += 8)
    acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k)),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + k))));
  return acc;
}

// Four pixels' sums for one plane, in pixel order, rounded and shifted as
// the C row.
template <int kTaps>
inline __m128i Sums4(const int16_t* p, const int32_t* start, const int16_t* c, int taps) {
  const __m128i sum = _mm_hadd_epi32(
      _mm_hadd_epi32(Dot8s<kTaps>(p + start[0], c, taps), Dot8s<kTaps>(p + start[1], c + taps, taps)),
      _mm_hadd_epi32(Dot8s<kTaps>(p + start[2], c + 2 * taps, taps), Dot8s<kTaps>(p + start[3], c + 3 * taps, taps)));
  return _mm_srai_epi32(_mm_add_epi32(sum, _mm_set1_epi32(1 << (kHorizontalShift - 1))), kHorizontalShift);
}

// Whole blocks of four output pixels; returns how many pixels were done.
template <int kTaps>
int ResampleHorizontalBlocks(const int16_t* planes, ptrdiff_t plane_stride, int channels,
                             const int32_t* start, const int16_t* coeffs, int taps, uint8_t* dst,
                             int width) {
  // Bytes R0-3 G0-3 B0-3 A0-3 to RGBA per pixel.
  const __m128i interleave = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const int16_t* r = planes;
  const int16_t* g = planes + plane_stride;
  const int16_t* b = planes + 2 * plane_stride;
  const int16_t* a = planes + 3 * plane_stride;
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    const int16_t* c = coeffs + static_cast<ptrdiff_t>(x) * taps;
    const __m128i vr = Sums4<kTaps>(r, start + x, c, taps);
    const __m128i vg = Sums4<kTaps>(g, start + x, c, taps);
    const __m128i vb = Sums4<kTaps>(b, start + x, c, taps);
    const __m128i va = channels == 4 ? Sums4<kTaps>(a, start + x, c, taps) : _mm_set1_epi32(255);
    // packs then packus clamp to 0..255 as the C row does.
    const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(vr, vg), _mm_packs_epi32(vb, va));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 4 * x), _mm_shuffle_epi8(bytes, interleave));
  }
  return x;
}

void ResampleHorizontalRow_SSE41(const int16_t* planes, ptrdiff_t plane_stride,
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

void ArgmaxRow_SSE41(const float* src, ptrdiff_t plane, int channels, int32_t* dst,
                     int width) {
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    __m128 best = _mm_set1_ps(-__builtin_inff());
    __m128i index = _mm_setzero_si128();
    for (int c = 0; c < channels; ++c) {
      const __m128 v = _mm_loadu_ps(src + c * plane + x);
      const __m128 greater = _mm_cmpgt_ps(v, best);  // false for NaN
      best = _mm_blendv_ps(best, v, greater);
      index = _mm_blendv_epi8(index, _mm_set1_epi32(c), _mm_castps_si128(greater));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), index);
  }
  ArgmaxRow_C(src + x, plane, channels, dst + x, width - x);
}

// SSE4.1 has no half-to-float conversion: float16 logits use the C row.
void ArgmaxRowHalf_C(const uint16_t* src, ptrdiff_t plane, int channels, int32_t* dst,
                     int width) {
  ArgmaxRow_C(src, plane, channels, dst, width);
}

void UpsampleVerticalRow_SSE41(const int16_t* a, const int16_t* b, int wa, int wb,
                               int32_t* dst, int count) {
  // (a, b) pairs times (wa, wb) pairs: one madd gives a*wa + b*wb per lane.
  const __m128i w = CoeffPair(static_cast<int16_t>(wa), static_cast<int16_t>(wb));
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_madd_epi16(_mm_unpacklo_epi16(va, vb), w));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 4), _mm_madd_epi16(_mm_unpackhi_epi16(va, vb), w));
  }
  UpsampleVerticalRow_C(a + i, b + i, wa, wb, dst + i, count - i);
}

void ArgmaxInt32Row_SSE41(const int32_t* src, ptrdiff_t plane, int channels, int32_t* dst,
                          int width) {
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    __m128i best = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + x));
    __m128i index = _mm_setzero_si128();
    for (int c = 1; c < channels; ++c) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + c * plane + x));
      const __m128i greater = _mm_cmpgt_epi32(v, best);
      best = _mm_max_epi32(best, v);
      index = _mm_blendv_epi8(index, _mm_set1_epi32(c), greater);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), index);
  }
  ArgmaxRow_C(src + x, plane, channels, dst + x, width - x);
}

void EmaRow_SSE41(const float* x, float alpha, float* state, int count) {
  const __m128 a = _mm_set1_ps(alpha), keep = _mm_set1_ps(1.0f - alpha);
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    const __m128 s = _mm_mul_ps(keep, _mm_loadu_ps(state + i));
    _mm_storeu_ps(state + i, _mm_add_ps(s, _mm_mul_ps(a, _mm_loadu_ps(x + i))));
  }
  EmaRow_C(x + i, alpha, state + i, count - i);
}

// SSE4.1 has no half-to-float conversion: float16 scores use the C row.
void EmaRowHalf_C(const uint16_t* x, float alpha, float* state, int count) {
  EmaRow_C(x, alpha, state, count);
}

void HysteresisRow_SSE41(const int32_t* x, const float* gap, float margin, int frames,
                         int32_t* shown, int32_t* candidate, int32_t* count, int width) {
  const __m128i one = _mm_set1_epi32(1), last = _mm_set1_epi32(frames - 1);
  const __m128 m = _mm_set1_ps(margin);
  int i = 0;
  for (; i + 4 <= width; i += 4) {
    const __m128i vx = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    const __m128i vs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(shown + i));
    const __m128i vc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(candidate + i));
    const __m128i vn = _mm_loadu_si128(reinterpret_cast<const __m128i*>(count + i));
    const __m128i n1 =
        _mm_blendv_epi8(one, _mm_add_epi32(_mm_min_epi32(vn, last), one), _mm_cmpeq_epi32(vx, vc));
    const __m128i same = _mm_cmpeq_epi32(vx, vs);
    __m128i flip = _mm_cmpgt_epi32(n1, last);  // n1 >= frames
    if (gap) flip = _mm_or_si128(flip, _mm_castps_si128(_mm_cmpge_ps(_mm_loadu_ps(gap + i), m)));
    flip = _mm_andnot_si128(same, flip);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(shown + i), _mm_blendv_epi8(vs, vx, flip));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(count + i), _mm_andnot_si128(_mm_or_si128(same, flip), n1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(candidate + i), vx);
  }
  HysteresisRow_C(x + i, gap ? gap + i : nullptr, margin, frames, shown + i, candidate + i, count + i,
                  width - i);
}

void ShuffleRow_SSE41(const uint8_t* src, const uint8_t* order, int channels,
                      uint8_t* dst, int width) {
  alignas(16) uint8_t m[16];
  ShuffleMaskBytes(order, channels, m);
  const __m128i mask = _mm_load_si128(reinterpret_cast<const __m128i*>(m));
  int x = 0;
  // Each step stores 16 bytes; with 3 channels only 12 are the step's, so
  // it stops while the 4 after them are still inside the row.
  const int stop = channels == 4 ? width - 4 : width - 6;
  for (; x <= stop; x += 4) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 4 * x));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + channels * x), _mm_shuffle_epi8(v, mask));
  }
  ShuffleRow_C(src + 4 * x, order, channels, dst + channels * x, width - x);
}

// blend_images: 16 pixels a step. Each output byte's terms are the pair
// (a, 255 - a) of its pixel, taken by pshufb from the pixels' pairs, and
// pmaddubsw multiplies them with (fg - 128, bg - 128):
//   t' = a * (fg - 128) + (255 - a) * (bg - 128) = t - 32640 (|t'| < 2^15),
// so t + 128 = t' + 32768 (the top bit flipped) and (t + 128) * 257 >> 16
// is BlendPixel. An RGBA alpha byte gets the pair (0, 0) and is replaced
// by the foreground's.
struct BlendMasks {
  alignas(16) uint8_t lo[3][16], hi[3][16];  // per 16-byte chunk of a step
};

// The pair of 16 pixels p (0..15) sits at bytes 2p, 2p + 1 of two vectors
// of 8 pixels each; chunk k of a step reads the window of 8 pixels that
// starts at pixel kWindow[k].
BlendMasks MakeBlendMasks(int channels) {
  static const int kWindow3[3] = {0, 4, 8}, kWindow4[3] = {0, 0, 8};
  BlendMasks m;
  for (int k = 0; k < 3; ++k)
    for (int j = 0; j < 16; ++j) {
      const int byte = 16 * k + j, pixel = byte / channels, rel = pixel - (channels == 4 ? kWindow4[k] : kWindow3[k]);
      const bool alpha_lane = channels == 4 && byte % 4 == 3;
      uint8_t* dst = j < 8 ? &m.lo[k][2 * j] : &m.hi[k][2 * (j - 8)];
      dst[0] = alpha_lane ? 0x80 : static_cast<uint8_t>(2 * rel);
      dst[1] = alpha_lane ? 0x80 : static_cast<uint8_t>(2 * rel + 1);
    }
  return m;
}

}  // namespace

const uint8_t* BlendMaskBytes(int channels) {
  static const BlendMasks m3 = MakeBlendMasks(3), m4 = MakeBlendMasks(4);
  return reinterpret_cast<const uint8_t*>(channels == 4 ? &m4 : &m3);
}

namespace {

inline __m128i LoadMask(const uint8_t* masks, int half, int k) {
  return _mm_load_si128(reinterpret_cast<const __m128i*>(masks + 48 * half + 16 * k));
}

inline __m128i BlendChunk(__m128i f, __m128i b, __m128i pairs, __m128i mlo, __m128i mhi) {
  const __m128i k80 = _mm_set1_epi8(-128), top = _mm_set1_epi16(-32768), k257 = _mm_set1_epi16(257);
  const __m128i flo = _mm_xor_si128(_mm_unpacklo_epi8(f, b), k80);
  const __m128i fhi = _mm_xor_si128(_mm_unpackhi_epi8(f, b), k80);
  const __m128i tlo = _mm_xor_si128(_mm_maddubs_epi16(_mm_shuffle_epi8(pairs, mlo), flo), top);
  const __m128i thi = _mm_xor_si128(_mm_maddubs_epi16(_mm_shuffle_epi8(pairs, mhi), fhi), top);
  return _mm_packus_epi16(_mm_mulhi_epu16(tlo, k257), _mm_mulhi_epu16(thi, k257));
}

inline __m128i Load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void Store16(uint8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }

void BlendImagesRow_SSE41(const uint8_t* fg, const uint8_t* bg, const uint8_t* alpha, int channels, uint8_t* dst,
                          int width) {
  const uint8_t* masks = BlendMaskBytes(channels);
  const __m128i ones = _mm_set1_epi8(-1), zero = _mm_setzero_si128();
  const __m128i amask = channels == 4 ? _mm_set1_epi32(static_cast<int32_t>(0xFF000000u)) : zero;
  const int chunks = channels;  // 16 pixels are `channels` chunks of 16 bytes
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    const __m128i a = Load16(alpha + x);
    const uint8_t* f = fg + x * channels;
    const uint8_t* b = bg + x * channels;
    uint8_t* d = dst + x * channels;
    // Mattes are mostly 0 or 255: whole steps of either are copies.
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(a, ones)) == 0xFFFF) {
      if (d != f)
        for (int k = 0; k < chunks; ++k) Store16(d + 16 * k, Load16(f + 16 * k));
      continue;
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(a, zero)) == 0xFFFF) {
      if (channels == 4)
        for (int k = 0; k < 4; ++k) Store16(d + 16 * k, _mm_blendv_epi8(Load16(b + 16 * k), Load16(f + 16 * k), amask));
      else if (d != b)
        for (int k = 0; k < 3; ++k) Store16(d + 16 * k, Load16(b + 16 * k));
      continue;
    }
    const __m128i na = _mm_xor_si128(a, ones);
    const __m128i p0 = _mm_unpacklo_epi8(a, na), p8 = _mm_unpackhi_epi8(a, na);
    if (channels == 4) {
      for (int k = 0; k < 4; ++k) {
        const __m128i fk = Load16(f + 16 * k);
        const __m128i v = BlendChunk(fk, Load16(b + 16 * k), k < 2 ? p0 : p8, LoadMask(masks, 0, k & 1),
                                     LoadMask(masks, 1, k & 1));
        Store16(d + 16 * k, _mm_blendv_epi8(v, fk, amask));
      }
    } else {
      const __m128i p4 = _mm_alignr_epi8(p8, p0, 8);
      const __m128i v0 = BlendChunk(Load16(f), Load16(b), p0, LoadMask(masks, 0, 0), LoadMask(masks, 1, 0));
      const __m128i v1 = BlendChunk(Load16(f + 16), Load16(b + 16), p4, LoadMask(masks, 0, 1), LoadMask(masks, 1, 1));
      const __m128i v2 = BlendChunk(Load16(f + 32), Load16(b + 32), p8, LoadMask(masks, 0, 2), LoadMask(masks, 1, 2));
      Store16(d, v0);
      Store16(d + 16, v1);
      Store16(d + 32, v2);
    }
  }
  BlendImagesRow_C(fg + x * channels, bg + x * channels, alpha + x, channels, dst + x * channels, width - x);
}

// Column sums of 64 values at a time, kept in registers down the rows
// (each row's 64 bytes read once, one store per column block).
void ColumnSumsRow_SSE41(const uint8_t* src, ptrdiff_t stride, int rows, uint16_t* dst, int count) {
  const __m128i zero = _mm_setzero_si128();
  int i = 0;
  for (; i + 64 <= count; i += 64) {
    __m128i acc[8];
    for (__m128i& a : acc) a = zero;
    const uint8_t* p = src + i;
    for (int r = 0; r < rows; ++r, p += stride)
      for (int k = 0; k < 4; ++k) {
        const __m128i s = Load16(p + 16 * k);
        acc[2 * k] = _mm_add_epi16(acc[2 * k], _mm_cvtepu8_epi16(s));
        acc[2 * k + 1] = _mm_add_epi16(acc[2 * k + 1], _mm_unpackhi_epi8(s, zero));
      }
    for (int k = 0; k < 8; ++k) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 8 * k), acc[k]);
  }
  for (; i + 16 <= count; i += 16) {
    __m128i lo = zero, hi = zero;
    const uint8_t* p = src + i;
    for (int r = 0; r < rows; ++r, p += stride) {
      const __m128i s = Load16(p);
      lo = _mm_add_epi16(lo, _mm_cvtepu8_epi16(s));
      hi = _mm_add_epi16(hi, _mm_unpackhi_epi8(s, zero));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 8), hi);
  }
  ColumnSumsRow_C(src + i, stride, rows, dst + i, count - i);
}

void TapFilterRow_SSE41(const int16_t* const* rows, const int16_t* coeffs, int taps, int16_t* dst, int count) {
  const __m128i round = _mm_set1_epi32(1 << 15);
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    __m128i acc0 = round, acc1 = round;
    for (int k = 0; k < taps; k += 2) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k] + i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k + 1] + i));
      const __m128i cc = CoeffPairAt(coeffs + k);
      acc0 = _mm_add_epi32(acc0, _mm_madd_epi16(_mm_unpacklo_epi16(a, b), cc));
      acc1 = _mm_add_epi32(acc1, _mm_madd_epi16(_mm_unpackhi_epi16(a, b), cc));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm_packs_epi32(_mm_srai_epi32(acc0, 16), _mm_srai_epi32(acc1, 16)));
  }
  for (; i < count; ++i) dst[i] = TapFilterPoint(rows, coeffs, taps, i);
}

// (a, b) byte pairs times the (64 - w6, w6) pair: pmaddubsw gives the sum
// (<= 255 * 64), pmulhrsw by 512 its (t + 32) >> 6.
void LerpRowsRow_SSE41(const uint8_t* a, const uint8_t* b, int w6, uint8_t* dst, int count) {
  const __m128i w = _mm_set1_epi16(static_cast<int16_t>((64 - w6) | (w6 << 8))), k512 = _mm_set1_epi16(512);
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m128i va = Load16(a + i), vb = Load16(b + i);
    const __m128i lo = _mm_mulhrs_epi16(_mm_maddubs_epi16(_mm_unpacklo_epi8(va, vb), w), k512);
    const __m128i hi = _mm_mulhrs_epi16(_mm_maddubs_epi16(_mm_unpackhi_epi8(va, vb), w), k512);
    Store16(dst + i, _mm_packus_epi16(lo, hi));
  }
  LerpRowsRow_C(a + i, b + i, w6, dst + i, count - i);
}

// The matte's alpha of four interpolated values (MatteAlpha).
inline __m128i MatteAlpha4(__m128i a, __m128i b, __m128i w) {
  const __m128i v = _mm_add_epi32(_mm_slli_epi32(a, kLerpBits), _mm_mullo_epi32(_mm_sub_epi32(b, a), w));
  const __m128i hi = _mm_srli_epi32(v, 16), lo = _mm_and_si128(v, _mm_set1_epi32(0xFFFF));
  const __m128i lo255 = _mm_sub_epi32(_mm_slli_epi32(lo, 8), lo);
  const __m128i m = _mm_add_epi32(_mm_sub_epi32(_mm_slli_epi32(hi, 8), hi),
                                  _mm_srli_epi32(_mm_add_epi32(lo255, _mm_set1_epi32(kScoreOne << 15)), 16));
  return _mm_srli_epi32(_mm_add_epi32(_mm_add_epi32(m, _mm_srli_epi32(m, 15)), _mm_set1_epi32(1)), 15);
}

void MatteRowsRow_SSE41(const int32_t* a, const int32_t* b, int w1, uint8_t* dst, int count) {
  const __m128i w = _mm_set1_epi32(w1), full = _mm_set1_epi32(kScoreOne << kLerpBits);
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    __m128i va[4], vb[4];
    for (int k = 0; k < 4; ++k) {
      va[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 4 * k));
      vb[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 4 * k));
    }
    // Mattes are mostly 0 or 1: 16 values all 0 or all full are 0 or 255.
    const __m128i any = _mm_or_si128(_mm_or_si128(_mm_or_si128(va[0], va[1]), _mm_or_si128(va[2], va[3])),
                                     _mm_or_si128(_mm_or_si128(vb[0], vb[1]), _mm_or_si128(vb[2], vb[3])));
    const __m128i all = _mm_and_si128(_mm_and_si128(_mm_and_si128(va[0], va[1]), _mm_and_si128(va[2], va[3])),
                                      _mm_and_si128(_mm_and_si128(vb[0], vb[1]), _mm_and_si128(vb[2], vb[3])));
    if (_mm_testz_si128(any, any)) {
      Store16(dst + i, _mm_setzero_si128());
      continue;
    }
    if (_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi32(any, full), _mm_cmpeq_epi32(all, full))) == 0xFFFF) {
      Store16(dst + i, _mm_set1_epi8(-1));
      continue;
    }
    const __m128i r01 = _mm_packus_epi32(MatteAlpha4(va[0], vb[0], w), MatteAlpha4(va[1], vb[1], w));
    const __m128i r23 = _mm_packus_epi32(MatteAlpha4(va[2], vb[2], w), MatteAlpha4(va[3], vb[3], w));
    Store16(dst + i, _mm_packus_epi16(r01, r23));
  }
  MatteRowsRow_C(a + i, b + i, w1, dst + i, count - i);
}

}  // namespace

// Outside the anonymous namespace: the AVX2 table uses them too.
void BlockMeanRow_SSE41(const uint16_t* sums, int channels, int block, float scale, int16_t* dst, int width) {
  const __m128 vs = _mm_set1_ps(scale), half = _mm_set1_ps(0.5f);
  // One pixel (3 or 4 sums) a step; for 3 channels the 8-byte store's
  // fourth value is the next pixel's first, written again by its step, so
  // the last pixel is the C row's.
  const int last = channels == 4 ? width : width - 1;
  const ptrdiff_t step = static_cast<ptrdiff_t>(block) * channels;
  int j = 0;
  for (; j < last; ++j) {
    const uint16_t* p = sums + j * step;
    __m128i acc = _mm_setzero_si128();
    for (int k = 0; k < block; ++k, p += channels)
      acc = _mm_add_epi32(acc, _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    const __m128i v = _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(acc), vs), half));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + j * channels), _mm_packus_epi32(v, v));
  }
  BlockMeanRow_C(sums + j * step, channels, block, scale, dst + j * channels, width - j);
}

void LerpColumnsRow_SSE41(const int16_t* src, int channels, const int32_t* x0, const int16_t* wq, uint8_t* dst,
                          int width) {
  const __m128i k256 = _mm_set1_epi16(256);  // pmulhrsw by 256: (v + 64) >> 7
  int x = 0;
  if (channels == 4) {
    // Two pixels a step: each 16-byte load holds a pixel and its right
    // neighbour (a, b).
    const __m128i spread = _mm_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3);
    for (; x + 2 <= width; x += 2) {
      const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 4 * static_cast<ptrdiff_t>(x0[x])));
      const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 4 * static_cast<ptrdiff_t>(x0[x + 1])));
      int32_t wpair;
      std::memcpy(&wpair, wq + x, 4);
      const __m128i w = _mm_shuffle_epi8(_mm_cvtsi32_si128(wpair), spread);
      const __m128i a = _mm_unpacklo_epi64(v0, v1), b = _mm_unpackhi_epi64(v0, v1);
      const __m128i v = _mm_mulhrs_epi16(_mm_add_epi16(a, _mm_mulhrs_epi16(_mm_sub_epi16(b, a), w)), k256);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + 4 * x), _mm_packus_epi16(v, v));
    }
  } else {
    // One pixel a step; the 4-byte store's fourth byte is the next pixel's,
    // written again by its step.
    for (; x + 1 < width; ++x) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 3 * static_cast<ptrdiff_t>(x0[x])));
      const __m128i b = _mm_srli_si128(a, 6);
      const __m128i v = _mm_mulhrs_epi16(_mm_add_epi16(a, _mm_mulhrs_epi16(_mm_sub_epi16(b, a), _mm_set1_epi16(wq[x]))), k256);
      const int32_t bytes = _mm_cvtsi128_si32(_mm_packus_epi16(v, v));
      std::memcpy(dst + 3 * x, &bytes, 4);
    }
  }
  LerpColumnsRow_C(src, channels, x0 + x, wq + x, dst + channels * x, width - x);
}

// Outside the anonymous namespace: the AVX2 table uses it too (a pixel is
// one 128-bit step either way).
void BlendPixelsRow_SSE41(uint8_t* row, const int32_t* xs, int n,
                          const uint16_t* keep, const uint16_t* add, int channels) {
  // Four lanes of terms; for 3 channels the fourth is the identity (keep
  // 255, add 128), so the byte after the pixel is rewritten as it was.
  const bool rgba = channels == 4;
  const __m128i k = _mm_setr_epi16(static_cast<int16_t>(keep[0]), static_cast<int16_t>(keep[1]),
                                   static_cast<int16_t>(keep[2]), static_cast<int16_t>(rgba ? keep[3] : 255),
                                   0, 0, 0, 0);
  const __m128i a = _mm_setr_epi16(static_cast<int16_t>(add[0]), static_cast<int16_t>(add[1]),
                                   static_cast<int16_t>(add[2]), static_cast<int16_t>(rgba ? add[3] : 128),
                                   0, 0, 0, 0);
  const __m128i k257 = _mm_set1_epi16(257);
  for (int i = 0; i < n; ++i) {
    uint8_t* p = row + static_cast<ptrdiff_t>(xs[i]) * channels;
    int32_t v;
    std::memcpy(&v, p, 4);
    const __m128i s = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(v));
    const __m128i t = _mm_mulhi_epu16(_mm_add_epi16(_mm_mullo_epi16(s, k), a), k257);
    v = _mm_cvtsi128_si32(_mm_packus_epi16(t, t));
    std::memcpy(p, &v, 4);
  }
}

// Outside the anonymous namespace: the AVX2 table uses it too.
void DeinterleaveRow_SSE41(const int16_t* src, int channels, int16_t* planes,
                           ptrdiff_t plane_stride, int width) {
  int16_t* r = planes;
  int16_t* g = planes + plane_stride;
  int16_t* b = planes + 2 * plane_stride;
  int x = 0;
  if (channels == 4) {
    int16_t* a = planes + 3 * plane_stride;
    for (; x + 8 <= width; x += 8) {  // a 4x8 transpose of 16-bit values
      const __m128i* s = reinterpret_cast<const __m128i*>(src + 4 * x);
      const __m128i v0 = _mm_loadu_si128(s), v1 = _mm_loadu_si128(s + 1);
      const __m128i v2 = _mm_loadu_si128(s + 2), v3 = _mm_loadu_si128(s + 3);
      const __m128i t0 = _mm_unpacklo_epi16(v0, v1), t1 = _mm_unpackhi_epi16(v0, v1);
      const __m128i t2 = _mm_unpacklo_epi16(v2, v3), t3 = _mm_unpackhi_epi16(v2, v3);
      const __m128i u0 = _mm_unpacklo_epi16(t0, t1), u1 = _mm_unpackhi_epi16(t0, t1);
      const __m128i u2 = _mm_unpacklo_epi16(t2, t3), u3 = _mm_unpackhi_epi16(t2, t3);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r + x), _mm_unpacklo_epi64(u0, u2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(g + x), _mm_unpackhi_epi64(u0, u2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(b + x), _mm_unpacklo_epi64(u1, u3));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a + x), _mm_unpackhi_epi64(u1, u3));
    }
  } else {
    // Eight pixels are three vectors; channel c's value j is element
    // 3j + c: mask[c][v] picks those in vector v into place j (others 0).
    struct Masks {
      alignas(16) uint8_t bytes[3][3][16];
    };
    static const Masks masks = [] {
      Masks m;
      for (int c = 0; c < 3; ++c)
        for (int v = 0; v < 3; ++v)
          for (int j = 0; j < 8; ++j) {
            const int e = 3 * j + c;
            const bool here = e / 8 == v;
            m.bytes[c][v][2 * j] = here ? static_cast<uint8_t>(2 * (e % 8)) : 0x80;
            m.bytes[c][v][2 * j + 1] = here ? static_cast<uint8_t>(2 * (e % 8) + 1) : 0x80;
          }
      return m;
    }();
    __m128i mask[3][3];
    for (int c = 0; c < 3; ++c)
      for (int v = 0; v < 3; ++v) mask[c][v] = _mm_load_si128(reinterpret_cast<const __m128i*>(masks.bytes[c][v]));
    int16_t* out[3] = {r, g, b};
    for (; x + 8 <= width; x += 8) {
      const __m128i* s = reinterpret_cast<const __m128i*>(src + 3 * x);
      const __m128i v0 = _mm_loadu_si128(s), v1 = _mm_loadu_si128(s + 1), v2 = _mm_loadu_si128(s + 2);
      for (int c = 0; c < 3; ++c)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out[c] + x),
                         _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(v0, mask[c][0]), _mm_shuffle_epi8(v1, mask[c][1])),
                                      _mm_shuffle_epi8(v2, mask[c][2])));
    }
  }
  DeinterleaveRow_C(src + x * channels, channels, planes + x, plane_stride, width - x);
}

// Outside the anonymous namespace: the AVX2 table finishes its rows with
// it. A 16-byte load holds 4 pixels (RGBA, or RGB with 4 bytes to spare);
// each pair becomes the words (R, G, B, 0), and pmaddwd by (77, 150, 29,
// 0) then phaddd give each pixel's sum.
void LumaRow_SSE41(const uint8_t* src, int channels, uint8_t* dst, int width) {
  const bool rgba = channels == 4;
  const __m128i m01 = rgba ? _mm_setr_epi8(0, -1, 1, -1, 2, -1, -1, -1, 4, -1, 5, -1, 6, -1, -1, -1)
                           : _mm_setr_epi8(0, -1, 1, -1, 2, -1, -1, -1, 3, -1, 4, -1, 5, -1, -1, -1);
  const __m128i m23 = rgba ? _mm_setr_epi8(8, -1, 9, -1, 10, -1, -1, -1, 12, -1, 13, -1, 14, -1, -1, -1)
                           : _mm_setr_epi8(6, -1, 7, -1, 8, -1, -1, -1, 9, -1, 10, -1, 11, -1, -1, -1);
  const __m128i k = _mm_setr_epi16(77, 150, 29, 0, 77, 150, 29, 0), half = _mm_set1_epi32(128);
  const auto four = [&](const uint8_t* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i sum = _mm_hadd_epi32(_mm_madd_epi16(_mm_shuffle_epi8(v, m01), k),
                                       _mm_madd_epi16(_mm_shuffle_epi8(v, m23), k));
    return _mm_srli_epi32(_mm_add_epi32(sum, half), 8);
  };
  int x = 0;
  // The second load of a step reads 16 bytes from pixel x + 4.
  for (; (x + 4) * channels + 16 <= width * channels && x + 8 <= width; x += 8) {
    const __m128i words = _mm_packs_epi32(four(src + x * channels), four(src + (x + 4) * channels));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + x), _mm_packus_epi16(words, words));
  }
  LumaRow_C(src + static_cast<ptrdiff_t>(x) * channels, channels, dst + x, width - x);
}

namespace {

// Four values of RefineApplyRowFn as int32 (before the clamp).
inline __m128i RefineApply4(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0,
                            const int32_t* b1, __m128i wy) {
  const __m128i half = _mm_set1_epi32(128);
  const auto lerp = [&](const int32_t* p, const int32_t* q) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i d = _mm_sub_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), a);
    return _mm_add_epi32(a, _mm_srai_epi32(_mm_add_epi32(_mm_mullo_epi32(d, wy), half), 8));
  };
  int32_t bytes;
  std::memcpy(&bytes, y, 4);
  const __m128i v = _mm_add_epi32(_mm_mullo_epi32(lerp(a0, a1), _mm_cvtepu8_epi32(_mm_cvtsi32_si128(bytes))),
                                  _mm_slli_epi32(lerp(b0, b1), 8));  // b * 256, as bits
  return _mm_srai_epi32(_mm_add_epi32(v, _mm_set1_epi32(2048)), 12);
}

void RefineApplyRow_SSE41(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0,
                          const int32_t* b1, int wy, uint8_t* dst, int width) {
  const __m128i w = _mm_set1_epi32(wy);
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    // packs then packus: the clamp to 0..255.
    const __m128i words = _mm_packs_epi32(RefineApply4(y + x, a0 + x, a1 + x, b0 + x, b1 + x, w),
                                          RefineApply4(y + x + 4, a0 + x + 4, a1 + x + 4, b0 + x + 4, b1 + x + 4, w));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + x), _mm_packus_epi16(words, words));
  }
  RefineApplyRow_C(y + x, a0 + x, a1 + x, b0 + x, b1 + x, wy, dst + x, width - x);
}

}  // namespace

const RowFunctions kRowsSSE41 = {
    "sse41",
    {RenderMaskRow_SSE41<uint8_t>, ColorizeRow_SSE41<uint8_t>,
     ResizeLabelsRow_C<uint8_t>},
    {RenderMaskRow_SSE41<uint16_t>, ColorizeRow_SSE41<uint16_t>,
     ResizeLabelsRow_C<uint16_t>},
    {RenderMaskRow_SSE41<int32_t>, ColorizeRow_SSE41<int32_t>,
     ResizeLabelsRow_C<int32_t>},
    BlendRow_SSE41,
    BlendPatternRow_SSE41,
    BlendPixelsRow_SSE41,
    ResampleVerticalRow_SSE41,
    DeinterleaveRow_SSE41,
    ResampleHorizontalRow_SSE41,
    ArgmaxRow_SSE41,
    ArgmaxRowHalf_C,
    UpsampleVerticalRow_SSE41,
    ArgmaxInt32Row_SSE41,
    EmaRow_SSE41,
    EmaRowHalf_C,
    HysteresisRow_SSE41,
    ShuffleRow_SSE41,
    BlendImagesRow_SSE41,
    ColumnSumsRow_SSE41,
    BlockMeanRow_SSE41,
    TapFilterRow_SSE41,
    LerpColumnsRow_SSE41,
    LerpRowsRow_SSE41,
    MatteColumnsRow_C,
    MatteRowsRow_SSE41,
    LumaRow_SSE41,
    RefineApplyRow_SSE41,
};

}  // namespace coreseg
#endif  // CORESEG_ARCH_X86_64
