// Row functions: the innermost loops of every coreseg kernel.
//
// Modelled on libyuv: each row function has a portable C version
// (row_common.cc) that is the definition, and SIMD twins for x86-64
// (row_sse41.cc, row_avx2.cc) and arm64 (row_neon64.cc) that must give the
// same bytes. One RowFunctions table per backend; cpu.cc picks one at run
// time. The image-level kernels (label_kernels.cc, composite.cc,
// resample.cc) only ever call rows through that table.
//
// All row functions work on plain pointers and a width; none allocates.
// Pixels are RGBA bytes in memory order; a "colour" is those 4 bytes read as
// one uint32_t with memcpy, so the code is endian-neutral.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) || defined(_M_X64)
#define CORESEG_ARCH_X86_64 1
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define CORESEG_ARCH_ARM64 1
#endif

namespace coreseg {

// Fixed-point precision of resize_image (resample.cc): coefficients carry
// kCoeffBits fractional bits (they fit int16), the vertical pass keeps
// kInterBits fractional bits in its int16 intermediate (255 << 7 < 32768).
constexpr int kCoeffBits = 14;
constexpr int kInterBits = 7;
constexpr int kVerticalShift = kCoeffBits - kInterBits;    // 7
constexpr int kHorizontalShift = kCoeffBits + kInterBits;  // 21

// Fixed point of upsample_argmax (upsample.cc): scores in [0, 1] become
// integers 0..kScoreOne, bilinear weights carry kLerpBits fractional bits,
// and a fully interpolated value (< kScoreOne << 2 * kLerpBits < 2^31) is
// exact in int32, so every backend and the numpy reference agree.
constexpr int kScoreOne = 32767;
constexpr int kLerpBits = 8;
constexpr int kLerpOne = 1 << kLerpBits;

// dst[x] (4 bytes) = color if src[x] equals one of selected[0..n) else 0.
template <typename T>
using RenderMaskRowFn = void (*)(const T* src, const int32_t* selected,
                                 int num_selected, uint32_t color,
                                 uint8_t* dst, int width);

// dst[x] (4 bytes) = palette[min((uint32_t)src[x], n)]; palette has n + 1
// entries and palette[n] is the colour for "outside the palette".
template <typename T>
using ColorizeRowFn = void (*)(const T* src, const uint32_t* palette,
                               uint32_t n, uint8_t* dst, int width);

// dst[x] = src[xmap[x]]: one row of a nearest-neighbour resize.
template <typename T>
using ResizeLabelsRowFn = void (*)(const T* src, const int32_t* xmap, T* dst,
                                   int width);

// The blend, its terms given per byte, on `rows` rows under the same
// terms: for each row r < rows and byte i < count,
//   d = dst + r * dst_stride, s = src + r * src_stride,
//   d[i] = ((s[i] * keep[i] + add[i]) * 257) >> 16,
// with keep = 255 - alpha and add = color * alpha + 128 for that byte's
// colour and alpha: round((s * (255 - alpha) + color * alpha) / 255)
// exactly (BlendPixel). Composite's bands of rows of many short runs are
// blended in one call over terms expanded once, each term vector loaded
// once for all the rows. dst may equal src (with equal strides); when it
// does not, no row of dst may overlap a row of src (SIMD rows may write a
// byte twice, the same value both times).
using BlendRowFn = void (*)(const uint8_t* src, ptrdiff_t src_stride,
                            const uint16_t* keep, const uint16_t* add,
                            uint8_t* dst, ptrdiff_t dst_stride, int rows,
                            int count);

// The blend of BlendRowFn with one class's repeating colour: keep[j] and
// add[j] for j < kPatternBytes, repeating every `period` (3 or 4) bytes;
// byte i is dst[i] = ((src[i] * keep[i % period] + add[i % period]) * 257)
// >> 16, which equals BlendPixel exactly (t * 257 >> 16 == (t + (t >> 8))
// >> 8 for every 16-bit t). Composites a run of one class without
// expanding it into a row first. dst may equal src; when it does not, src
// and dst must not overlap otherwise (SIMD rows may write a byte twice,
// the same value both times).
constexpr int kPatternBytes = 64;
using BlendPatternRowFn = void (*)(const uint8_t* src, const uint16_t* keep,
                                   const uint16_t* add, int period,
                                   uint8_t* dst, int count);

// The blend of one pattern's first `channels` (3 or 4) terms onto single
// pixels of a row, in place: for each of xs[0..n), bytes row[x * channels
// + c] as BlendPatternRowFn. Composite's outline pixels. Each x must have
// a pixel after it in the row (SIMD rows read and rewrite, unchanged, the
// byte after a 3-byte pixel).
using BlendPixelsRowFn = void (*)(uint8_t* row, const int32_t* xs, int n,
                                  const uint16_t* keep, const uint16_t* add,
                                  int channels);

// Vertical resample pass, one output row of `count` bytes-positions:
// dst[i] = (sum_k rows[k][i] * coeffs[k] + 64) >> 7, k < taps (taps even).
using ResampleVerticalRowFn = void (*)(const uint8_t* const* rows,
                                       const int16_t* coeffs, int taps,
                                       int16_t* dst, int count);

// The vertical pass's int16 row of `channels` (3 or 4) interleaved values
// per pixel split into planes: planes[c * plane_stride + x] = src[x *
// channels + c] for x < width.
using DeinterleaveRowFn = void (*)(const int16_t* src, int channels,
                                   int16_t* planes, ptrdiff_t plane_stride,
                                   int width);

// Horizontal resample pass over those planes. For output pixel x and
// channel c < channels (3 or 4):
//   v_c = sum_{k < taps} planes[c * plane_stride + start[x] + k] * coeffs[x * taps + k],
//   dst[4x + c] = clamp((v_c + (1 << 20)) >> 21, 0, 255);
// for 3 channels the alpha byte is 255. taps is a multiple of 8 (the
// filter zero padded), so each output's taps are whole vectors of
// same-channel neighbours; each plane must be readable for start[x] + taps
// values.
using ResampleHorizontalRowFn = void (*)(const int16_t* planes,
                                         ptrdiff_t plane_stride, int channels,
                                         const int32_t* start,
                                         const int16_t* coeffs, int taps,
                                         uint8_t* dst, int width);

// dst[x] = the first c in [0, channels) with the largest src[c * plane + x]
// (float32, or float16 given as its bits); NaN is never the largest, so a
// pixel whose values are all NaN or -inf gets 0.
template <typename T>
using ArgmaxRowFn = void (*)(const T* src, ptrdiff_t plane, int channels,
                             int32_t* dst, int width);

// Vertical pass of upsample_argmax: dst[i] = a[i] * wa + b[i] * wb, exact
// (a, b in 0..kScoreOne; wa + wb == kLerpOne).
using UpsampleVerticalRowFn = void (*)(const int16_t* a, const int16_t* b,
                                       int wa, int wb, int32_t* dst, int count);

// dst[x] = the first c in [0, channels) with the largest src[c * plane + x].
using ArgmaxInt32RowFn = void (*)(const int32_t* src, ptrdiff_t plane,
                                  int channels, int32_t* dst, int width);

// Temporal smoothing (smoothing.cc), an exponential moving average:
// state[i] = (1 - alpha) * state[i] + alpha * x[i] in float32, with
// 1 - alpha rounded to float32 first, each product rounded, then the sum:
// multiplies and adds are never fused (every native file is built with
// -ffp-contract=off), so every backend and numpy round alike, and alpha 0
// and 1 give the state and x exactly. x is float32, or float16 as its bits.
template <typename T>
using EmaRowFn = void (*)(const T* x, float alpha, float* state, int count);

// Label hysteresis (smoothing.cc), per pixel, x the new label:
//   n1     = x == candidate ? min(count, frames - 1) + 1 : 1
//   switch = x != shown && (n1 >= frames || (gap && gap[i] >= margin))
//   shown  = switch ? x : shown
//   count  = x == shown(before) || switch ? 0 : n1
//   candidate = x
// so a pixel changes class once the new class has held `frames`
// consecutive frames, or at once when its score beats the shown class's by
// `margin` (gap[i] = score(x) - score(shown), or null without scores).
using HysteresisRowFn = void (*)(const int32_t* x, const float* gap,
                                 float margin, int frames, int32_t* shown,
                                 int32_t* candidate, int32_t* count,
                                 int width);

// resize_image's output layout: dst[x * channels + c] = src[4 * x + order[c]]
// for `width` RGBA pixels; channels is 3 or 4, order[c] in 0..3. dst and
// src do not overlap.
using ShuffleRowFn = void (*)(const uint8_t* src, const uint8_t* order,
                              int channels, uint8_t* dst, int width);

// Background effects (effects.cc, matte.cc). The blend of two images under
// a per-pixel alpha plane, for c < 3:
//   dst[x * channels + c] = BlendPixel(bg[x * channels + c], fg[x * channels + c], alpha[x])
// and for 4 channels the foreground's alpha passes through: dst[4x + 3] =
// fg[4x + 3]. dst may be fg or bg (in place); otherwise it must not
// overlap them.
using BlendImagesRowFn = void (*)(const uint8_t* fg, const uint8_t* bg, const uint8_t* alpha, int channels,
                                  uint8_t* dst, int width);

// blur's reduction, vertical: the column sums of a block of rows,
//   dst[i] = sum_{r < rows} src[r * stride + i],
// rows <= 257 so no sum passes 65535.
using ColumnSumsRowFn = void (*)(const uint8_t* src, ptrdiff_t stride, int rows, uint16_t* dst, int count);

// blur's reduction, horizontal: the mean of each block of `block` pixels
// of column sums, with 7 fractional bits. For j < width, c < channels
// (3 or 4), S = sum_{k < block} sums[(j * block + k) * channels + c]
// (S < 2^24, so exact in float):
//   dst[j * channels + c] = (int16_t)trunc(fl(fl((float)S * scale) + 0.5f))
// with scale = (float)(128.0 / pixels of the block). For 3 channels, sums
// must be readable for one value past the row's last block.
using BlockMeanRowFn = void (*)(const uint16_t* sums, int channels, int block, float scale, int16_t* dst,
                                int width);

// blur's small Gaussian passes (one tap per row pointer, so the same row
// serves the vertical pass and, with pointers a pixel apart, the
// horizontal one):
//   dst[i] = (sum_{k < taps} rows[k][i] * coeffs[k] + (1 << 15)) >> 16
// taps even; values in 0..kBlurOne, coeffs >= 0 summing to 1 << 16, so
// every sum fits int32 and dst stays in 0..kBlurOne.
constexpr int kBlurOne = 255 << 7;  // blur's intermediate: 7 fractional bits
using TapFilterRowFn = void (*)(const int16_t* const* rows, const int16_t* coeffs, int taps, int16_t* dst,
                                int count);

// blur's enlargement, horizontal, into bytes: output pixel x interpolates
// source pixels x0[x] and x0[x] + 1 with weight wq[x] = w1 * 128 (w1 < 256,
// the LerpAxis weight) on the second, for c < channels (3 or 4):
//   a = src[x0[x] * channels + c], b = src[(x0[x] + 1) * channels + c],
//   v = a + (((b - a) * wq[x] + (1 << 14)) >> 15)    (pmulhrsw exactly)
//   dst[x * channels + c] = (v * 256 + (1 << 14)) >> 15    (= (v + 64) >> 7)
// src must be readable for one pixel (and, for 3 channels, two values)
// past the last x0[x] + 1; wq[x] is 0 where x0[x] + 1 is past the row.
using LerpColumnsRowFn = void (*)(const int16_t* src, int channels, const int32_t* x0, const int16_t* wq,
                                  uint8_t* dst, int width);

// blur's enlargement, vertical, in 1/64 steps (w6 in 0..64; a, b <= 255,
// so the sum fits pmaddubsw's int16 and (t + 32) >> 6 is pmulhrsw by 512):
//   dst[i] = (a[i] * (64 - w6) + b[i] * w6 + 32) >> 6
using LerpRowsRowFn = void (*)(const uint8_t* a, const uint8_t* b, int w6, uint8_t* dst, int count);

// upsample_matte, horizontal: dst[x] = q[x0[x]] * (kLerpOne - w1[x]) +
// q[x0[x] + 1] * w1[x] (exact; q in 0..kScoreOne, w1 in 0..kLerpOne; q
// readable one past the last x0[x], w1 0 there). C in every table: it runs
// only on a matte's soft spans, once per pair of model rows.
using MatteColumnsRowFn = void (*)(const int16_t* q, const int32_t* x0, const int16_t* w1, int32_t* dst,
                                   int width);

// upsample_matte, vertical, and the alpha byte (MatteAlpha):
//   dst[i] = MatteAlpha(a[i] * (kLerpOne - w1) + b[i] * w1)
// a, b in 0..kScoreOne << kLerpBits, so the value is exact in int32.
using MatteRowsRowFn = void (*)(const int32_t* a, const int32_t* b, int w1, uint8_t* dst, int count);

// refine_matte (refine.cc). The guide's luma (BT.601, integer):
//   dst[x] = (77 R + 150 G + 29 B + 128) >> 8
// of pixel x's first three bytes, for `channels` (3 or 4) bytes a pixel.
using LumaRowFn = void (*)(const uint8_t* src, int channels, uint8_t* dst, int width);

// refine_matte's full-resolution pass: the guided filter's coefficients
// of two enlarged rows (a0, b0 and a1, b1: A with kRefineABits fractional
// bits, |A| <= kRefineMaxA; b with kRefineMeanBits, |b| < 2^20)
// interpolated with weight wy (0..kLerpOne) on the second, and applied to
// the luma y:
//   A = a0 + (((a1 - a0) * wy + 128) >> 8),  B likewise from b0, b1,
//   dst[x] = clamp((A * y[x] + B * 2^8 + 2^11) >> 12, 0, 255)
// (>> of a negative value floors). Every intermediate fits int32.
constexpr int kRefineABits = 12;
constexpr int kRefineMeanBits = 4;
constexpr int32_t kRefineMaxA = 1 << 19;
using RefineApplyRowFn = void (*)(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0,
                                  const int32_t* b1, int wy, uint8_t* dst, int width);

template <typename T>
struct LabelRowFunctions {
  RenderMaskRowFn<T> render_mask;
  ColorizeRowFn<T> colorize;
  ResizeLabelsRowFn<T> resize_labels;
};

struct RowFunctions {
  const char* name;  // "scalar", "sse41", "avx2", "neon"
  LabelRowFunctions<uint8_t> u8;
  LabelRowFunctions<uint16_t> u16;
  LabelRowFunctions<int32_t> i32;
  BlendRowFn blend;
  BlendPatternRowFn blend_pattern;
  BlendPixelsRowFn blend_pixels;
  ResampleVerticalRowFn resample_vertical;
  DeinterleaveRowFn deinterleave;
  ResampleHorizontalRowFn resample_horizontal;
  ArgmaxRowFn<float> argmax_f32;
  ArgmaxRowFn<uint16_t> argmax_f16;
  UpsampleVerticalRowFn upsample_vertical;
  ArgmaxInt32RowFn argmax_i32;
  EmaRowFn<float> ema_f32;
  EmaRowFn<uint16_t> ema_f16;
  HysteresisRowFn hysteresis;
  ShuffleRowFn shuffle;
  BlendImagesRowFn blend_images;
  ColumnSumsRowFn column_sums;
  BlockMeanRowFn block_mean;
  TapFilterRowFn tap_filter;
  LerpColumnsRowFn lerp_columns;
  LerpRowsRowFn lerp_rows;
  MatteColumnsRowFn matte_columns;
  MatteRowsRowFn matte_rows;
  LumaRowFn luma;
  RefineApplyRowFn refine_apply;

  template <typename T>
  const LabelRowFunctions<T>& labels() const;
};

template <>
inline const LabelRowFunctions<uint8_t>& RowFunctions::labels<uint8_t>() const {
  return u8;
}
template <>
inline const LabelRowFunctions<uint16_t>& RowFunctions::labels<uint16_t>()
    const {
  return u16;
}
template <>
inline const LabelRowFunctions<int32_t>& RowFunctions::labels<int32_t>() const {
  return i32;
}

// The tables, one per backend. Each SIMD table falls back to the C row for
// the rows it has no better version of (documented in its file).
extern const RowFunctions kRowsC;
#if CORESEG_ARCH_X86_64
extern const RowFunctions kRowsSSE41;
extern const RowFunctions kRowsAVX2;
#endif
#if CORESEG_ARCH_ARM64
extern const RowFunctions kRowsNEON;
#endif

// The C rows, exported so SIMD rows can finish a row's tail with them.
template <typename T>
void RenderMaskRow_C(const T* src, const int32_t* selected, int num_selected,
                     uint32_t color, uint8_t* dst, int width);
template <typename T>
void ColorizeRow_C(const T* src, const uint32_t* palette, uint32_t n,
                   uint8_t* dst, int width);
template <typename T>
void ResizeLabelsRow_C(const T* src, const int32_t* xmap, T* dst, int width);
void BlendRow_C(const uint8_t* src, ptrdiff_t src_stride, const uint16_t* keep,
                const uint16_t* add, uint8_t* dst, ptrdiff_t dst_stride, int rows,
                int count);
void BlendPatternRow_C(const uint8_t* src, const uint16_t* keep,
                       const uint16_t* add, int period, uint8_t* dst,
                       int count);
void BlendPixelsRow_C(uint8_t* row, const int32_t* xs, int n,
                      const uint16_t* keep, const uint16_t* add, int channels);
void ResampleVerticalRow_C(const uint8_t* const* rows, const int16_t* coeffs,
                           int taps, int16_t* dst, int count);
void DeinterleaveRow_C(const int16_t* src, int channels, int16_t* planes,
                       ptrdiff_t plane_stride, int width);
void ResampleHorizontalRow_C(const int16_t* planes, ptrdiff_t plane_stride,
                             int channels, const int32_t* start,
                             const int16_t* coeffs, int taps, uint8_t* dst,
                             int width);
void ArgmaxRow_C(const float* src, ptrdiff_t plane, int channels, int32_t* dst,
                 int width);
void ArgmaxRow_C(const uint16_t* src, ptrdiff_t plane, int channels,
                 int32_t* dst, int width);
void UpsampleVerticalRow_C(const int16_t* a, const int16_t* b, int wa, int wb,
                           int32_t* dst, int count);
void ArgmaxRow_C(const int32_t* src, ptrdiff_t plane, int channels,
                 int32_t* dst, int width);
void EmaRow_C(const float* x, float alpha, float* state, int count);
void EmaRow_C(const uint16_t* x, float alpha, float* state, int count);
void HysteresisRow_C(const int32_t* x, const float* gap, float margin,
                     int frames, int32_t* shown, int32_t* candidate,
                     int32_t* count, int width);
void ShuffleRow_C(const uint8_t* src, const uint8_t* order, int channels,
                  uint8_t* dst, int width);
void BlendImagesRow_C(const uint8_t* fg, const uint8_t* bg, const uint8_t* alpha, int channels, uint8_t* dst,
                      int width);
void ColumnSumsRow_C(const uint8_t* src, ptrdiff_t stride, int rows, uint16_t* dst, int count);
void BlockMeanRow_C(const uint16_t* sums, int channels, int block, float scale, int16_t* dst, int width);
void TapFilterRow_C(const int16_t* const* rows, const int16_t* coeffs, int taps, int16_t* dst, int count);
void LerpColumnsRow_C(const int16_t* src, int channels, const int32_t* x0, const int16_t* wq, uint8_t* dst,
                      int width);
void LerpRowsRow_C(const uint8_t* a, const uint8_t* b, int w6, uint8_t* dst, int count);
void MatteColumnsRow_C(const int16_t* q, const int32_t* x0, const int16_t* w1, int32_t* dst, int width);
void MatteRowsRow_C(const int32_t* a, const int32_t* b, int w1, uint8_t* dst, int count);
void LumaRow_C(const uint8_t* src, int channels, uint8_t* dst, int width);
void RefineApplyRow_C(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0, const int32_t* b1,
                      int wy, uint8_t* dst, int width);

#if CORESEG_ARCH_X86_64
// The SSE4.1 rows the AVX2 table shares (wider registers do not help them).
void BlendPixelsRow_SSE41(uint8_t* row, const int32_t* xs, int n,
                          const uint16_t* keep, const uint16_t* add, int channels);
void DeinterleaveRow_SSE41(const int16_t* src, int channels, int16_t* planes,
                           ptrdiff_t plane_stride, int width);
void BlockMeanRow_SSE41(const uint16_t* sums, int channels, int block, float scale, int16_t* dst, int width);
void LerpColumnsRow_SSE41(const int16_t* src, int channels, const int32_t* x0, const int16_t* wq, uint8_t* dst,
                          int width);
void LumaRow_SSE41(const uint8_t* src, int channels, uint8_t* dst, int width);
// blend_images' pshufb masks (SSE4.1 and AVX2): lo[3][16] then hi[3][16],
// the pairs of each 16-byte chunk of a step of 16 pixels (row_sse41.cc).
const uint8_t* BlendMaskBytes(int channels);
#endif

// One pixel of the hysteresis, shared by the C row and the SIMD tails.
inline void HysteresisPixel(int32_t x, const float* gap, float margin,
                            int frames, int32_t* shown, int32_t* candidate,
                            int32_t* count) {
  const int32_t kept = *count < frames - 1 ? *count : frames - 1;
  const int32_t n1 = x == *candidate ? kept + 1 : 1;
  const bool same = x == *shown;
  const bool flip = !same && (n1 >= frames || (gap != nullptr && *gap >= margin));
  if (flip) *shown = x;
  *count = same || flip ? 0 : n1;
  *candidate = x;
}

// The loop every SIMD BlendPatternRowFn shares around its vector blends:
// `Wide` blends kWide bytes (32 or 16), `Narrow` 16, each with the pattern
// from the current phase (row byte i uses phase i % period). Three Wide
// steps (48 or 96 bytes, a multiple of both periods) end at phase 0
// again, so the main loop's three pattern offsets are fixed: no division
// or phase arithmetic per vector. A ragged end is one Narrow ending at
// the row's end, overlapping bytes already done (the same values again)
// unless the blend is in place; else the C row.
using BlendPatternVectorFn = void (*)(const uint8_t* src, const uint16_t* keep,
                                      const uint16_t* add, uint8_t* dst);

template <int kWide, BlendPatternVectorFn Wide, BlendPatternVectorFn Narrow>
inline void BlendPatternLoop(const uint8_t* src, const uint16_t* keep,
                             const uint16_t* add, int period, uint8_t* dst,
                             int count) {
  // period is 3 or 4: constant remainders instead of a division per call.
  const int p1 = period == 3 ? kWide % 3 : 0, p2 = period == 3 ? 2 * kWide % 3 : 0;
  int i = 0;
  for (; i + 3 * kWide <= count; i += 3 * kWide) {
    Wide(src + i, keep, add, dst + i);
    Wide(src + i + kWide, keep + p1, add + p1, dst + i + kWide);
    Wide(src + i + 2 * kWide, keep + p2, add + p2, dst + i + 2 * kWide);
  }
  // Under three Wide steps left: they start at phase 0, p1, p2 in turn.
  int phase = 0;
  if (i + kWide <= count) {
    Wide(src + i, keep, add, dst + i);
    i += kWide;
    phase = p1;
  }
  if (i + kWide <= count) {
    Wide(src + i, keep + p1, add + p1, dst + i);
    i += kWide;
    phase = p2;
  }
  if (kWide > 16 && i + 16 <= count) {
    Narrow(src + i, keep + phase, add + phase, dst + i);
    i += 16;
    phase += period == 3 ? 1 : 0;  // 16 % period
    if (phase >= period) phase -= period;
  }
  if (i == count) return;
  if (count >= 16 && src != dst) {
    const int j = count - 16;
    Narrow(src + j, keep + j % period, add + j % period, dst + j);
    return;
  }
  BlendPatternRow_C(src + i, keep + phase, add + phase, period, dst + i, count - i);
}

// The end of a BlendRowFn row from byte i on, row by row, shared by the
// SIMD rows after their main loop: 16 bytes at a time, the last 16 ending
// at the row's end (overlapping bytes already done, the same values again)
// unless the blend is in place; else the C row.
template <BlendPatternVectorFn Narrow>
inline void BlendRowEnd(const uint8_t* src, ptrdiff_t src_stride,
                        const uint16_t* keep, const uint16_t* add,
                        uint8_t* dst, ptrdiff_t dst_stride, int rows, int i,
                        int count) {
  if (i == count) return;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* s = src + r * src_stride;
    uint8_t* d = dst + r * dst_stride;
    int j = i;
    for (; j + 16 <= count; j += 16) Narrow(s + j, keep + j, add + j, d + j);
    if (j == count) continue;
    if (count >= 16 && s != d)
      Narrow(s + count - 16, keep + count - 16, add + count - 16, d + count - 16);
    else
      BlendRow_C(s + j, 0, keep + j, add + j, d + j, 0, 1, count - j);
  }
}

// The SIMD horizontal resample rows around their blocks of pixels:
// `blocks(std::integral_constant<int, K>{})` runs whole blocks with K taps
// fixed at compile time (0: taps at run time) and returns the pixels done;
// the C row finishes the row.
template <typename Blocks>
inline void ResampleHorizontalByTaps(Blocks blocks, const int16_t* planes,
                                     ptrdiff_t plane_stride, int channels,
                                     const int32_t* start, const int16_t* coeffs,
                                     int taps, uint8_t* dst, int width) {
  int x;
  switch (taps) {  // the filters of upscales and downscales up to 4x, 8x, 12x and 16x
    case 8: x = blocks(std::integral_constant<int, 8>{}); break;
    case 16: x = blocks(std::integral_constant<int, 16>{}); break;
    case 24: x = blocks(std::integral_constant<int, 24>{}); break;
    case 32: x = blocks(std::integral_constant<int, 32>{}); break;
    default: x = blocks(std::integral_constant<int, 0>{});
  }
  ResampleHorizontalRow_C(planes, plane_stride, channels, start + x,
                          coeffs + static_cast<ptrdiff_t>(x) * taps, taps,
                          dst + 4 * x, width - x);
}

// IEEE half (as bits) to float, exactly: subnormals, infinities and NaN too.
float HalfToFloat(uint16_t h);

// One value of the vertical pass, shared by the C row and the SIMD tails.
inline int16_t ResampleVerticalPoint(const uint8_t* const* rows,
                                     const int16_t* coeffs, int taps, int i) {
  int32_t acc = 1 << (kVerticalShift - 1);
  for (int k = 0; k < taps; ++k) acc += rows[k][i] * coeffs[k];
  return static_cast<int16_t>(acc >> kVerticalShift);
}

// One output byte of the horizontal pass from its sum, shared by the C row
// and the SIMD tails.
inline uint8_t ResampleHorizontalByte(int32_t acc) {
  const int32_t v = (acc + (1 << (kHorizontalShift - 1))) >> kHorizontalShift;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One byte of the blend, shared by the rows' tails (the definition the
// pattern blend is tested against).
inline uint8_t BlendPixel(uint32_t src, uint32_t color, uint32_t alpha) {
  const uint32_t t = src * (255 - alpha) + color * alpha + 128;
  return static_cast<uint8_t>((t + (t >> 8)) >> 8);
}

// One byte of BlendPatternRowFn, its terms precomputed: shared by the C row
// and composite's few-pixel blends.
inline uint8_t BlendPatternByte(uint32_t src, uint32_t keep, uint32_t add) {
  return static_cast<uint8_t>(((src * keep + add) * 257) >> 16);
}

// The SIMD resample rows' coefficient pair (c[0], c[1]) as madd takes it:
// the one little-endian int32 the two int16 already are in memory.
inline int32_t CoeffPairBits(const int16_t* c) {
  int32_t pair;
  std::memcpy(&pair, c, 4);
  return pair;
}

// The byte-shuffle mask of ShuffleRowFn for 4 RGBA pixels (pshufb, one
// 128-bit lane): byte channels * p + c takes 4 * p + order[c]; for 3
// channels the last 4 bytes are 0x80 (zero).
inline void ShuffleMaskBytes(const uint8_t* order, int channels, uint8_t mask[16]) {
  std::memset(mask, 0x80, 16);
  for (int p = 0; p < 4; ++p)
    for (int c = 0; c < channels; ++c) mask[channels * p + c] = static_cast<uint8_t>(4 * p + order[c]);
}

// One value of BlockMeanRowFn from its block sum (< 2^24: exact in float;
// multiply and add are never fused, -ffp-contract=off).
inline int16_t BlockMeanValue(uint32_t sum, float scale) {
  const float v = static_cast<float>(sum) * scale + 0.5f;
  return static_cast<int16_t>(static_cast<int32_t>(v));
}

// One value of the blur's filter pass, shared by the C row and the SIMD tails.
inline int16_t TapFilterPoint(const int16_t* const* rows, const int16_t* coeffs, int taps, int i) {
  int32_t acc = 1 << 15;
  for (int k = 0; k < taps; ++k) acc += rows[k][i] * coeffs[k];
  return static_cast<int16_t>(acc >> 16);
}

// a + round((b - a) * wq / 2^15) as pmulhrsw computes it (|b - a| <=
// kBlurOne, wq <= 255 * 128: the product fits int32).
inline int16_t LerpQ15(int32_t a, int32_t b, int32_t wq) {
  return static_cast<int16_t>(a + (((b - a) * wq + (1 << 14)) >> 15));
}

// One byte of LerpColumnsRowFn.
inline uint8_t LerpColumnsByte(int16_t a, int16_t b, int wq) {
  const int32_t v = LerpQ15(a, b, wq);
  return static_cast<uint8_t>((v * 256 + (1 << 14)) >> 15);
}

// The matte's alpha byte from its interpolated value v in 0..kScoreOne <<
// 2 * kLerpBits (D = kScoreOne << 16, the value of a probability of 1):
// round half up of 255 * v / D, exactly, i.e. floor((255 v + D / 2) / D),
// in 32-bit steps: m = floor((255 v + D / 2) / 2^16), split over v's
// halves so nothing passes 2^31, then floor(m / 32767) = (m + (m >> 15) +
// 1) >> 15, which holds for every m < 2^24. Checked once against the
// 64-bit division for every v in 0..D; the row tests check the ends, every
// rounding edge and random values.
inline uint8_t MatteAlpha(uint32_t v) {
  const uint32_t m = 255 * (v >> 16) + ((255 * (v & 0xFFFFu) + (uint32_t{kScoreOne} << 15)) >> 16);
  return static_cast<uint8_t>((m + (m >> 15) + 1) >> 15);
}

// One byte of LumaRowFn.
inline uint8_t LumaByte(uint32_t r, uint32_t g, uint32_t b) {
  return static_cast<uint8_t>((77 * r + 150 * g + 29 * b + 128) >> 8);
}

// One byte of RefineApplyRowFn, shared by the C row and the SIMD tails.
inline uint8_t RefineApplyByte(uint8_t y, int32_t a0, int32_t a1, int32_t b0, int32_t b1, int wy) {
  const int32_t a = a0 + (((a1 - a0) * wy + 128) >> 8), b = b0 + (((b1 - b0) * wy + 128) >> 8);
  const int32_t v = (a * y + b * 256 + 2048) >> 12;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace coreseg
