// NEON row functions (arm64: Apple silicon, Linux aarch64). NEON is always
// present on arm64, so these are the default there. Each gives the same
// bytes as its C twin; src/native/tests/run-aarch64.sh checks that under
// qemu. ResizeLabels has no NEON version: NEON has no gather, so it is the C
// loop; resize_labels gets its speed from copying repeated rows instead.
#include "row.h"

#if CORESEG_ARCH_ARM64
#include <arm_neon.h>

#include <cstring>

namespace coreseg {
namespace {

// Eight labels widened to two uint32x4 halves (int32 labels reinterpreted:
// equality and the unsigned clamp are what the C rows do).
struct Lanes8 {
  uint32x4_t lo, hi;
};
inline Lanes8 Load8(const uint8_t* p) {
  const uint16x8_t w = vmovl_u8(vld1_u8(p));
  return {vmovl_u16(vget_low_u16(w)), vmovl_high_u16(w)};
}
inline Lanes8 Load8(const uint16_t* p) {
  const uint16x8_t w = vld1q_u16(p);
  return {vmovl_u16(vget_low_u16(w)), vmovl_high_u16(w)};
}
inline Lanes8 Load8(const int32_t* p) {
  return {vreinterpretq_u32_s32(vld1q_s32(p)), vreinterpretq_u32_s32(vld1q_s32(p + 4))};
}

template <typename T>
void RenderMaskRow_NEON(const T* src, const int32_t* selected,
                        int num_selected, uint32_t color, uint8_t* dst,
                        int width) {
  const uint32x4_t vcolor = vdupq_n_u32(color);
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const Lanes8 v = Load8(src + x);
    uint32x4_t hit_lo = vdupq_n_u32(0), hit_hi = vdupq_n_u32(0);
    for (int k = 0; k < num_selected; ++k) {
      const uint32x4_t s = vdupq_n_u32(static_cast<uint32_t>(selected[k]));
      hit_lo = vorrq_u32(hit_lo, vceqq_u32(v.lo, s));
      hit_hi = vorrq_u32(hit_hi, vceqq_u32(v.hi, s));
    }
    vst1q_u8(dst + 4 * x, vreinterpretq_u8_u32(vandq_u32(hit_lo, vcolor)));
    vst1q_u8(dst + 4 * x + 16, vreinterpretq_u8_u32(vandq_u32(hit_hi, vcolor)));
  }
  RenderMaskRow_C(src + x, selected, num_selected, color, dst + 4 * x,
                  width - x);
}

// The clamp is vectorised; NEON has no gather, so the palette loads are
// lane loads.
template <typename T>
void ColorizeRow_NEON(const T* src, const uint32_t* palette, uint32_t n,
                      uint8_t* dst, int width) {
  const uint32x4_t vn = vdupq_n_u32(n);
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const Lanes8 v = Load8(src + x);
    const uint32x4_t lo = vminq_u32(v.lo, vn), hi = vminq_u32(v.hi, vn);
    // Class maps come in blocks: eight equal ids need one load, not eight.
    const uint32x4_t first = vdupq_laneq_u32(lo, 0);
    if (vminvq_u32(vandq_u32(vceqq_u32(lo, first), vceqq_u32(hi, first))) == 0xFFFFFFFFu) {
      const uint8x16_t c = vreinterpretq_u8_u32(vdupq_n_u32(palette[vgetq_lane_u32(lo, 0)]));
      vst1q_u8(dst + 4 * x, c);
      vst1q_u8(dst + 4 * x + 16, c);
      continue;
    }
    uint32x4_t c0 = vdupq_n_u32(0), c1 = vdupq_n_u32(0);
    c0 = vld1q_lane_u32(palette + vgetq_lane_u32(lo, 0), c0, 0);
    c0 = vld1q_lane_u32(palette + vgetq_lane_u32(lo, 1), c0, 1);
    c0 = vld1q_lane_u32(palette + vgetq_lane_u32(lo, 2), c0, 2);
    c0 = vld1q_lane_u32(palette + vgetq_lane_u32(lo, 3), c0, 3);
    c1 = vld1q_lane_u32(palette + vgetq_lane_u32(hi, 0), c1, 0);
    c1 = vld1q_lane_u32(palette + vgetq_lane_u32(hi, 1), c1, 1);
    c1 = vld1q_lane_u32(palette + vgetq_lane_u32(hi, 2), c1, 2);
    c1 = vld1q_lane_u32(palette + vgetq_lane_u32(hi, 3), c1, 3);
    vst1q_u8(dst + 4 * x, vreinterpretq_u8_u32(c0));
    vst1q_u8(dst + 4 * x + 16, vreinterpretq_u8_u32(c1));
  }
  ColorizeRow_C(src + x, palette, n, dst + 4 * x, width - x);
}

// 8 lanes of a pattern blend: add + src * keep, then (t + (t >> 8)) >> 8.
inline uint8x8_t BlendPre8(uint8x8_t s, const uint16_t* keep, const uint16_t* add) {
  const uint16x8_t t = vmlaq_u16(vld1q_u16(add), vmovl_u8(s), vld1q_u16(keep));
  return vshrn_n_u16(vsraq_n_u16(t, t, 8), 8);
}

inline void BlendPattern16(const uint8_t* src, const uint16_t* keep, const uint16_t* add,
                           uint8_t* dst) {
  const uint8x16_t s = vld1q_u8(src);
  vst1q_u8(dst, vcombine_u8(BlendPre8(vget_low_u8(s), keep, add), BlendPre8(vget_high_u8(s), keep + 8, add + 8)));
}

void BlendPatternRow_NEON(const uint8_t* src, const uint16_t* keep,
                          const uint16_t* add, int period, uint8_t* dst,
                          int count) {
  BlendPatternLoop<16, BlendPattern16, BlendPattern16>(src, keep, add, period, dst, count);
}

void BlendRow_NEON(const uint8_t* src, ptrdiff_t src_stride, const uint16_t* keep,
                   const uint16_t* add, uint8_t* dst, ptrdiff_t dst_stride, int rows,
                   int count) {
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    // The terms of 16 bytes, loaded once for every row.
    const uint16x8_t k0 = vld1q_u16(keep + i), k1 = vld1q_u16(keep + i + 8);
    const uint16x8_t a0 = vld1q_u16(add + i), a1 = vld1q_u16(add + i + 8);
    for (int r = 0; r < rows; ++r) {
      const uint8x16_t v = vld1q_u8(src + r * src_stride + i);
      const uint16x8_t lo = vmlaq_u16(a0, vmovl_u8(vget_low_u8(v)), k0);
      const uint16x8_t hi = vmlaq_u16(a1, vmovl_u8(vget_high_u8(v)), k1);
      vst1q_u8(dst + r * dst_stride + i, vcombine_u8(vshrn_n_u16(vsraq_n_u16(lo, lo, 8), 8),
                                                     vshrn_n_u16(vsraq_n_u16(hi, hi, 8), 8)));
    }
  }
  BlendRowEnd<BlendPattern16>(src, src_stride, keep, add, dst, dst_stride, rows, i, count);
}

void BlendPixelsRow_NEON(uint8_t* row, const int32_t* xs, int n,
                         const uint16_t* keep, const uint16_t* add, int channels) {
  // Four lanes of terms; for 3 channels the fourth is the identity (keep
  // 255, add 128), so the byte after the pixel is rewritten as it was.
  const bool rgba = channels == 4;
  const uint16_t k4[4] = {keep[0], keep[1], keep[2], static_cast<uint16_t>(rgba ? keep[3] : 255)};
  const uint16_t a4[4] = {add[0], add[1], add[2], static_cast<uint16_t>(rgba ? add[3] : 128)};
  const uint16x4_t k = vld1_u16(k4), a = vld1_u16(a4);
  for (int i = 0; i < n; ++i) {
    uint8_t* p = row + static_cast<ptrdiff_t>(xs[i]) * channels;
    uint32_t v;
    std::memcpy(&v, p, 4);
    const uint16x4_t s = vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(v))));
    const uint16x4_t t = vmla_u16(a, s, k);
    const uint16x4_t q = vshr_n_u16(vsra_n_u16(t, t, 8), 8);
    v = vget_lane_u32(vreinterpret_u32_u8(vmovn_u16(vcombine_u16(q, q))), 0);
    std::memcpy(p, &v, 4);
  }
}

void ResampleVerticalRow_NEON(const uint8_t* const* rows,
                              const int16_t* coeffs, int taps, int16_t* dst,
                              int count) {
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    int32x4_t acc_lo = vdupq_n_s32(0), acc_hi = vdupq_n_s32(0);
    for (int k = 0; k < taps; ++k) {
      const int16x8_t v = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(rows[k] + i)));
      acc_lo = vmlal_n_s16(acc_lo, vget_low_s16(v), coeffs[k]);
      acc_hi = vmlal_high_n_s16(acc_hi, v, coeffs[k]);
    }
    // vrshrn: (acc + 64) >> 7, the C rounding.
    vst1q_s16(dst + i, vcombine_s16(vrshrn_n_s32(acc_lo, kVerticalShift),
                                    vrshrn_n_s32(acc_hi, kVerticalShift)));
  }
  for (; i < count; ++i) dst[i] = ResampleVerticalPoint(rows, coeffs, taps, i);
}

void DeinterleaveRow_NEON(const int16_t* src, int channels, int16_t* planes,
                          ptrdiff_t plane_stride, int width) {
  int16_t* r = planes;
  int16_t* g = planes + plane_stride;
  int16_t* b = planes + 2 * plane_stride;
  int x = 0;
  if (channels == 4) {
    for (; x + 8 <= width; x += 8) {
      const int16x8x4_t v = vld4q_s16(src + 4 * x);
      vst1q_s16(r + x, v.val[0]);
      vst1q_s16(g + x, v.val[1]);
      vst1q_s16(b + x, v.val[2]);
      vst1q_s16(planes + 3 * plane_stride + x, v.val[3]);
    }
  } else {
    for (; x + 8 <= width; x += 8) {
      const int16x8x3_t v = vld3q_s16(src + 3 * x);
      vst1q_s16(r + x, v.val[0]);
      vst1q_s16(g + x, v.val[1]);
      vst1q_s16(b + x, v.val[2]);
    }
  }
  DeinterleaveRow_C(src + x * channels, channels, planes + x, plane_stride, width - x);
}

// One output's taps (a multiple of 8) against one plane: 4 partial sums.
inline int32x4_t Dot8s(const int16_t* p, const int16_t* c, int taps) {
  int32x4_t acc = vdupq_n_s32(0);
  for (int k = 0; k < taps; k += 8) {
    const int16x8_t pv = vld1q_s16(p + k), cv = vld1q_s16(c + k);
    acc = vmlal_s16(acc, vget_low_s16(pv), vget_low_s16(cv));
    acc = vmlal_high_s16(acc, pv, cv);
  }
  return acc;
}

void ResampleHorizontalRow_NEON(const int16_t* planes, ptrdiff_t plane_stride,
                                int channels, const int32_t* start,
                                const int16_t* coeffs, int taps, uint8_t* dst,
                                int width) {
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const int16_t* c = coeffs + static_cast<ptrdiff_t>(x) * taps;
    uint8x8x4_t px;
    px.val[3] = vdup_n_u8(255);
    for (int ch = 0; ch < channels; ++ch) {
      const int16_t* p = planes + ch * plane_stride;
      uint16x4_t half[2];
      for (int h = 0; h < 2; ++h) {
        const int j = 4 * h;
        // Pairwise adds fold four pixels' partial sums, in pixel order.
        const int32x4_t sum = vpaddq_s32(
            vpaddq_s32(Dot8s(p + start[x + j], c + j * taps, taps), Dot8s(p + start[x + j + 1], c + (j + 1) * taps, taps)),
            vpaddq_s32(Dot8s(p + start[x + j + 2], c + (j + 2) * taps, taps),
                       Dot8s(p + start[x + j + 3], c + (j + 3) * taps, taps)));
        // vrshr is the C rounding; the two saturating narrows are its clamp.
        half[h] = vqmovun_s32(vrshrq_n_s32(sum, kHorizontalShift));
      }
      px.val[ch] = vqmovn_u16(vcombine_u16(half[0], half[1]));
    }
    vst4_u8(dst + 4 * x, px);
  }
  ResampleHorizontalRow_C(planes, plane_stride, channels, start + x, coeffs + static_cast<ptrdiff_t>(x) * taps,
                          taps, dst + 4 * x, width - x);
}

inline float32x4_t Load4f(const float* p) { return vld1q_f32(p); }
inline float32x4_t Load4f(const uint16_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

template <typename T>
void ArgmaxRow_NEON(const T* src, ptrdiff_t plane, int channels, int32_t* dst, int width) {
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    float32x4_t best = vdupq_n_f32(-__builtin_inff());
    uint32x4_t index = vdupq_n_u32(0);
    for (int c = 0; c < channels; ++c) {
      const float32x4_t v = Load4f(src + c * plane + x);
      const uint32x4_t greater = vcgtq_f32(v, best);  // false for NaN
      best = vbslq_f32(greater, v, best);
      index = vbslq_u32(greater, vdupq_n_u32(static_cast<uint32_t>(c)), index);
    }
    vst1q_s32(dst + x, vreinterpretq_s32_u32(index));
  }
  ArgmaxRow_C(src + x, plane, channels, dst + x, width - x);
}

void UpsampleVerticalRow_NEON(const int16_t* a, const int16_t* b, int wa, int wb,
                              int32_t* dst, int count) {
  const int16x4_t va_w = vdup_n_s16(static_cast<int16_t>(wa));
  const int16x4_t vb_w = vdup_n_s16(static_cast<int16_t>(wb));
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    const int16x8_t va = vld1q_s16(a + i), vb = vld1q_s16(b + i);
    const int32x4_t lo = vmlal_s16(vmull_s16(vget_low_s16(va), va_w), vget_low_s16(vb), vb_w);
    const int32x4_t hi = vmlal_s16(vmull_s16(vget_high_s16(va), va_w), vget_high_s16(vb), vb_w);
    vst1q_s32(dst + i, lo);
    vst1q_s32(dst + i + 4, hi);
  }
  UpsampleVerticalRow_C(a + i, b + i, wa, wb, dst + i, count - i);
}

void ArgmaxInt32Row_NEON(const int32_t* src, ptrdiff_t plane, int channels, int32_t* dst,
                         int width) {
  int x = 0;
  for (; x + 4 <= width; x += 4) {
    int32x4_t best = vld1q_s32(src + x);
    uint32x4_t index = vdupq_n_u32(0);
    for (int c = 1; c < channels; ++c) {
      const int32x4_t v = vld1q_s32(src + c * plane + x);
      const uint32x4_t greater = vcgtq_s32(v, best);
      best = vmaxq_s32(best, v);
      index = vbslq_u32(greater, vdupq_n_u32(static_cast<uint32_t>(c)), index);
    }
    vst1q_s32(dst + x, vreinterpretq_s32_u32(index));
  }
  ArgmaxRow_C(src + x, plane, channels, dst + x, width - x);
}

template <typename T>
void EmaRow_NEON(const T* x, float alpha, float* state, int count) {
  const float32x4_t a = vdupq_n_f32(alpha), keep = vdupq_n_f32(1.0f - alpha);
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    // vmulq + vaddq, not vfmaq: each product is rounded before the add, as in C.
    const float32x4_t s = vmulq_f32(keep, vld1q_f32(state + i));
    vst1q_f32(state + i, vaddq_f32(s, vmulq_f32(a, Load4f(x + i))));
  }
  EmaRow_C(x + i, alpha, state + i, count - i);
}

void HysteresisRow_NEON(const int32_t* x, const float* gap, float margin, int frames,
                        int32_t* shown, int32_t* candidate, int32_t* count, int width) {
  const int32x4_t one = vdupq_n_s32(1), last = vdupq_n_s32(frames - 1);
  const float32x4_t m = vdupq_n_f32(margin);
  int i = 0;
  for (; i + 4 <= width; i += 4) {
    const int32x4_t vx = vld1q_s32(x + i), vs = vld1q_s32(shown + i);
    const int32x4_t vc = vld1q_s32(candidate + i), vn = vld1q_s32(count + i);
    const int32x4_t n1 = vbslq_s32(vceqq_s32(vx, vc), vaddq_s32(vminq_s32(vn, last), one), one);
    const uint32x4_t same = vceqq_s32(vx, vs);
    uint32x4_t flip = vcgtq_s32(n1, last);  // n1 >= frames
    if (gap) flip = vorrq_u32(flip, vcgeq_f32(vld1q_f32(gap + i), m));
    flip = vbicq_u32(flip, same);
    vst1q_s32(shown + i, vbslq_s32(flip, vx, vs));
    vst1q_s32(count + i, vbicq_s32(n1, vreinterpretq_s32_u32(vorrq_u32(same, flip))));
    vst1q_s32(candidate + i, vx);
  }
  HysteresisRow_C(x + i, gap ? gap + i : nullptr, margin, frames, shown + i, candidate + i, count + i,
                  width - i);
}

void ShuffleRow_NEON(const uint8_t* src, const uint8_t* order, int channels,
                     uint8_t* dst, int width) {
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    // De-interleaved: one register per channel, stored back in `order`.
    const uint8x16x4_t v = vld4q_u8(src + 4 * x);
    if (channels == 4) {
      const uint8x16x4_t o = {{v.val[order[0]], v.val[order[1]], v.val[order[2]], v.val[order[3]]}};
      vst4q_u8(dst + 4 * x, o);
    } else {
      const uint8x16x3_t o = {{v.val[order[0]], v.val[order[1]], v.val[order[2]]}};
      vst3q_u8(dst + 3 * x, o);
    }
  }
  ShuffleRow_C(src + 4 * x, order, channels, dst + channels * x, width - x);
}

// blend_images: 16 pixels a step, de-interleaved by vld3/vld4 into one
// register per channel, so the alpha bytes line up with each channel's as
// they are. t = fg * a + bg * (255 - a) (vmull + vmlal), then vrshr gives
// (t + 128) >> 8 and vraddhn (t + that + 128) >> 8: BlendPixel.
inline uint8x16_t BlendChannel16(uint8x16_t f, uint8x16_t b, uint8x16_t a, uint8x16_t na) {
  const uint16x8_t lo = vmlal_u8(vmull_u8(vget_low_u8(f), vget_low_u8(a)), vget_low_u8(b), vget_low_u8(na));
  const uint16x8_t hi = vmlal_high_u8(vmull_high_u8(f, a), b, na);
  return vcombine_u8(vraddhn_u16(lo, vrshrq_n_u16(lo, 8)), vraddhn_u16(hi, vrshrq_n_u16(hi, 8)));
}

void BlendImagesRow_NEON(const uint8_t* fg, const uint8_t* bg, const uint8_t* alpha, int channels, uint8_t* dst,
                         int width) {
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    const uint8x16_t a = vld1q_u8(alpha + x);
    const uint8_t* f = fg + x * channels;
    const uint8_t* b = bg + x * channels;
    uint8_t* d = dst + x * channels;
    // Mattes are mostly 0 or 255: whole steps of either are copies.
    if (vminvq_u8(a) == 255) {
      if (d != f) std::memcpy(d, f, 16 * channels);
      continue;
    }
    const bool clear = vmaxvq_u8(a) == 0;
    if (clear && channels == 3) {
      if (d != b) std::memcpy(d, b, 48);
      continue;
    }
    const uint8x16_t na = vmvnq_u8(a);
    if (channels == 4) {
      const uint8x16x4_t vf = vld4q_u8(f), vb = vld4q_u8(b);
      uint8x16x4_t o;
      for (int c = 0; c < 3; ++c) o.val[c] = clear ? vb.val[c] : BlendChannel16(vf.val[c], vb.val[c], a, na);
      o.val[3] = vf.val[3];
      vst4q_u8(d, o);
    } else {
      const uint8x16x3_t vf = vld3q_u8(f), vb = vld3q_u8(b);
      uint8x16x3_t o;
      for (int c = 0; c < 3; ++c) o.val[c] = BlendChannel16(vf.val[c], vb.val[c], a, na);
      vst3q_u8(d, o);
    }
  }
  BlendImagesRow_C(fg + x * channels, bg + x * channels, alpha + x, channels, dst + x * channels, width - x);
}

// Column sums of 64 values at a time, kept in registers down the rows
// (each row's 64 bytes read once, one store per column block).
void ColumnSumsRow_NEON(const uint8_t* src, ptrdiff_t stride, int rows, uint16_t* dst, int count) {
  int i = 0;
  for (; i + 64 <= count; i += 64) {
    uint16x8_t acc[8];
    for (uint16x8_t& a : acc) a = vdupq_n_u16(0);
    const uint8_t* p = src + i;
    for (int r = 0; r < rows; ++r, p += stride)
      for (int k = 0; k < 4; ++k) {
        const uint8x16_t s = vld1q_u8(p + 16 * k);
        acc[2 * k] = vaddw_u8(acc[2 * k], vget_low_u8(s));
        acc[2 * k + 1] = vaddw_high_u8(acc[2 * k + 1], s);
      }
    for (int k = 0; k < 8; ++k) vst1q_u16(dst + i + 8 * k, acc[k]);
  }
  for (; i + 16 <= count; i += 16) {
    uint16x8_t lo = vdupq_n_u16(0), hi = lo;
    const uint8_t* p = src + i;
    for (int r = 0; r < rows; ++r, p += stride) {
      const uint8x16_t s = vld1q_u8(p);
      lo = vaddw_u8(lo, vget_low_u8(s));
      hi = vaddw_high_u8(hi, s);
    }
    vst1q_u16(dst + i, lo);
    vst1q_u16(dst + i + 8, hi);
  }
  ColumnSumsRow_C(src + i, stride, rows, dst + i, count - i);
}

void BlockMeanRow_NEON(const uint16_t* sums, int channels, int block, float scale, int16_t* dst, int width) {
  const float32x4_t vs = vdupq_n_f32(scale), half = vdupq_n_f32(0.5f);
  // One pixel (3 or 4 sums) a step; for 3 channels the 4-value store's last
  // value is the next pixel's first, written again by its step, so the last
  // pixel is the C row's. vmulq + vaddq, never fused, as in C.
  const int last = channels == 4 ? width : width - 1;
  const ptrdiff_t step = static_cast<ptrdiff_t>(block) * channels;
  int j = 0;
  for (; j < last; ++j) {
    const uint16_t* p = sums + j * step;
    uint32x4_t acc = vdupq_n_u32(0);
    for (int k = 0; k < block; ++k, p += channels) acc = vaddw_u16(acc, vld1_u16(p));
    const int32x4_t v = vcvtq_s32_f32(vaddq_f32(vmulq_f32(vcvtq_f32_u32(acc), vs), half));
    vst1_s16(dst + j * channels, vmovn_s32(v));
  }
  BlockMeanRow_C(sums + j * step, channels, block, scale, dst + j * channels, width - j);
}

void TapFilterRow_NEON(const int16_t* const* rows, const int16_t* coeffs, int taps, int16_t* dst, int count) {
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    int32x4_t lo = vdupq_n_s32(1 << 15), hi = lo;
    for (int k = 0; k < taps; ++k) {
      const int16x8_t v = vld1q_s16(rows[k] + i);
      lo = vmlal_n_s16(lo, vget_low_s16(v), coeffs[k]);
      hi = vmlal_high_n_s16(hi, v, coeffs[k]);
    }
    vst1q_s16(dst + i, vcombine_s16(vshrn_n_s32(lo, 16), vshrn_n_s32(hi, 16)));
  }
  for (; i < count; ++i) dst[i] = TapFilterPoint(rows, coeffs, taps, i);
}

// vqrdmulh is (2 x y + 2^15) >> 16 = (x y + 2^14) >> 15, pmulhrsw's rounding.
void LerpColumnsRow_NEON(const int16_t* src, int channels, const int32_t* x0, const int16_t* wq, uint8_t* dst,
                         int width) {
  int x = 0;
  if (channels == 4) {
    // Two pixels a step; each 8-value load holds a pixel and its right
    // neighbour (a, b).
    for (; x + 2 <= width; x += 2) {
      const int16x8_t v0 = vld1q_s16(src + 4 * static_cast<ptrdiff_t>(x0[x]));
      const int16x8_t v1 = vld1q_s16(src + 4 * static_cast<ptrdiff_t>(x0[x + 1]));
      const int16x8_t a = vcombine_s16(vget_low_s16(v0), vget_low_s16(v1));
      const int16x8_t b = vcombine_s16(vget_high_s16(v0), vget_high_s16(v1));
      const int16x8_t w = vcombine_s16(vdup_n_s16(wq[x]), vdup_n_s16(wq[x + 1]));
      // vqrshrun: (v + 64) >> 7 into bytes.
      vst1_u8(dst + 4 * x, vqrshrun_n_s16(vaddq_s16(a, vqrdmulhq_s16(vsubq_s16(b, a), w)), 7));
    }
  } else {
    // One pixel a step; the 4-byte store's last byte is the next pixel's,
    // written again by its step.
    for (; x + 1 < width; ++x) {
      const int16x8_t a = vld1q_s16(src + 3 * static_cast<ptrdiff_t>(x0[x]));
      const int16x8_t b = vextq_s16(a, a, 3);
      const uint8x8_t v = vqrshrun_n_s16(vaddq_s16(a, vqrdmulhq_n_s16(vsubq_s16(b, a), wq[x])), 7);
      vst1_lane_u32(reinterpret_cast<uint32_t*>(dst + 3 * x), vreinterpret_u32_u8(v), 0);
    }
  }
  LerpColumnsRow_C(src, channels, x0 + x, wq + x, dst + channels * x, width - x);
}

void LerpRowsRow_NEON(const uint8_t* a, const uint8_t* b, int w6, uint8_t* dst, int count) {
  const uint8x8_t wa = vdup_n_u8(static_cast<uint8_t>(64 - w6)), wb = vdup_n_u8(static_cast<uint8_t>(w6));
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    const uint8x16_t va = vld1q_u8(a + i), vb = vld1q_u8(b + i);
    const uint16x8_t lo = vmlal_u8(vmull_u8(vget_low_u8(va), wa), vget_low_u8(vb), wb);
    const uint16x8_t hi = vmlal_u8(vmull_u8(vget_high_u8(va), wa), vget_high_u8(vb), wb);
    // vrshrn: (t + 32) >> 6.
    vst1q_u8(dst + i, vcombine_u8(vrshrn_n_u16(lo, 6), vrshrn_n_u16(hi, 6)));
  }
  LerpRowsRow_C(a + i, b + i, w6, dst + i, count - i);
}

// The matte's alpha of four interpolated values (MatteAlpha).
inline uint32x4_t MatteAlpha4(int32x4_t a, int32x4_t b, int32_t w) {
  const uint32x4_t v = vreinterpretq_u32_s32(vmlaq_n_s32(vshlq_n_s32(a, kLerpBits), vsubq_s32(b, a), w));
  const uint32x4_t hi = vshrq_n_u32(v, 16), lo = vandq_u32(v, vdupq_n_u32(0xFFFF));
  const uint32x4_t lo255 = vsubq_u32(vshlq_n_u32(lo, 8), lo);
  const uint32x4_t m = vaddq_u32(vsubq_u32(vshlq_n_u32(hi, 8), hi),
                                 vshrq_n_u32(vaddq_u32(lo255, vdupq_n_u32(uint32_t{kScoreOne} << 15)), 16));
  return vshrq_n_u32(vaddq_u32(vsraq_n_u32(m, m, 15), vdupq_n_u32(1)), 15);
}

void MatteRowsRow_NEON(const int32_t* a, const int32_t* b, int w1, uint8_t* dst, int count) {
  const uint32_t full = uint32_t{kScoreOne} << kLerpBits;
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    int32x4_t va[4], vb[4];
    for (int k = 0; k < 4; ++k) {
      va[k] = vld1q_s32(a + i + 4 * k);
      vb[k] = vld1q_s32(b + i + 4 * k);
    }
    // Mattes are mostly 0 or 1: 16 values all 0 or all full are 0 or 255.
    const uint32x4_t lo = vreinterpretq_u32_s32(vminq_s32(vminq_s32(vminq_s32(va[0], va[1]), vminq_s32(va[2], va[3])),
                                                          vminq_s32(vminq_s32(vb[0], vb[1]), vminq_s32(vb[2], vb[3]))));
    const uint32x4_t hi = vreinterpretq_u32_s32(vmaxq_s32(vmaxq_s32(vmaxq_s32(va[0], va[1]), vmaxq_s32(va[2], va[3])),
                                                          vmaxq_s32(vmaxq_s32(vb[0], vb[1]), vmaxq_s32(vb[2], vb[3]))));
    if (vmaxvq_u32(hi) == 0) {
      vst1q_u8(dst + i, vdupq_n_u8(0));
      continue;
    }
    if (vminvq_u32(lo) == full && vmaxvq_u32(hi) == full) {
      vst1q_u8(dst + i, vdupq_n_u8(255));
      continue;
    }
    const uint16x8_t r01 = vcombine_u16(vmovn_u32(MatteAlpha4(va[0], vb[0], w1)), vmovn_u32(MatteAlpha4(va[1], vb[1], w1)));
    const uint16x8_t r23 = vcombine_u16(vmovn_u32(MatteAlpha4(va[2], vb[2], w1)), vmovn_u32(MatteAlpha4(va[3], vb[3], w1)));
    vst1q_u8(dst + i, vcombine_u8(vmovn_u16(r01), vmovn_u16(r23)));
  }
  MatteRowsRow_C(a + i, b + i, w1, dst + i, count - i);
}

// 16 pixels a step, deinterleaved by ld3/ld4: 77 R + 150 G + 29 B + 128
// fits uint16 (at most 65408), then the high byte.
void LumaRow_NEON(const uint8_t* src, int channels, uint8_t* dst, int width) {
  const uint8x8_t kr = vdup_n_u8(77), kg = vdup_n_u8(150), kb = vdup_n_u8(29);
  const uint8x16_t kr16 = vdupq_n_u8(77), kg16 = vdupq_n_u8(150), kb16 = vdupq_n_u8(29);
  const uint16x8_t half = vdupq_n_u16(128);
  const auto luma = [&](uint8x16_t r, uint8x16_t g, uint8x16_t b) {
    uint16x8_t lo = vmull_u8(vget_low_u8(r), kr), hi = vmull_high_u8(r, kr16);
    lo = vmlal_u8(lo, vget_low_u8(g), kg), hi = vmlal_high_u8(hi, g, kg16);
    lo = vmlal_u8(lo, vget_low_u8(b), kb), hi = vmlal_high_u8(hi, b, kb16);
    return vcombine_u8(vshrn_n_u16(vaddq_u16(lo, half), 8), vshrn_n_u16(vaddq_u16(hi, half), 8));
  };
  int x = 0;
  if (channels == 4) {
    for (; x + 16 <= width; x += 16) {
      const uint8x16x4_t v = vld4q_u8(src + 4 * x);
      vst1q_u8(dst + x, luma(v.val[0], v.val[1], v.val[2]));
    }
  } else {
    for (; x + 16 <= width; x += 16) {
      const uint8x16x3_t v = vld3q_u8(src + 3 * x);
      vst1q_u8(dst + x, luma(v.val[0], v.val[1], v.val[2]));
    }
  }
  LumaRow_C(src + static_cast<ptrdiff_t>(x) * channels, channels, dst + x, width - x);
}

// Four values of RefineApplyRowFn, clamped to int16 (vqmovn).
inline int16x4_t RefineApply4(uint16x4_t y, const int32_t* a0, const int32_t* a1, const int32_t* b0,
                              const int32_t* b1, int32x4_t wy) {
  const int32x4_t half = vdupq_n_s32(128);
  const auto lerp = [&](const int32_t* p, const int32_t* q) {
    const int32x4_t a = vld1q_s32(p);
    return vaddq_s32(a, vshrq_n_s32(vaddq_s32(vmulq_s32(vsubq_s32(vld1q_s32(q), a), wy), half), 8));
  };
  const int32x4_t luma = vreinterpretq_s32_u32(vmovl_u16(y));
  const int32x4_t v = vaddq_s32(vmulq_s32(lerp(a0, a1), luma), vshlq_n_s32(lerp(b0, b1), 8));
  return vqmovn_s32(vshrq_n_s32(vaddq_s32(v, vdupq_n_s32(2048)), 12));
}

void RefineApplyRow_NEON(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0,
                         const int32_t* b1, int wy, uint8_t* dst, int width) {
  const int32x4_t w = vdupq_n_s32(wy);
  int x = 0;
  for (; x + 8 <= width; x += 8) {
    const uint16x8_t luma = vmovl_u8(vld1_u8(y + x));
    const int16x8_t v = vcombine_s16(RefineApply4(vget_low_u16(luma), a0 + x, a1 + x, b0 + x, b1 + x, w),
                                     RefineApply4(vget_high_u16(luma), a0 + x + 4, a1 + x + 4, b0 + x + 4, b1 + x + 4, w));
    vst1_u8(dst + x, vqmovun_s16(v));  // the clamp to 0..255
  }
  RefineApplyRow_C(y + x, a0 + x, a1 + x, b0 + x, b1 + x, wy, dst + x, width - x);
}

}  // namespace

const RowFunctions kRowsNEON = {
    "neon",
    {RenderMaskRow_NEON<uint8_t>, ColorizeRow_NEON<uint8_t>, ResizeLabelsRow_C<uint8_t>},
    {RenderMaskRow_NEON<uint16_t>, ColorizeRow_NEON<uint16_t>,
     ResizeLabelsRow_C<uint16_t>},
    {RenderMaskRow_NEON<int32_t>, ColorizeRow_NEON<int32_t>, ResizeLabelsRow_C<int32_t>},
    BlendRow_NEON,
    BlendPatternRow_NEON,
    BlendPixelsRow_NEON,
    ResampleVerticalRow_NEON,
    DeinterleaveRow_NEON,
    ResampleHorizontalRow_NEON,
    ArgmaxRow_NEON<float>,
    ArgmaxRow_NEON<uint16_t>,
    UpsampleVerticalRow_NEON,
    ArgmaxInt32Row_NEON,
    EmaRow_NEON<float>,
    EmaRow_NEON<uint16_t>,
    HysteresisRow_NEON,
    ShuffleRow_NEON,
    BlendImagesRow_NEON,
    ColumnSumsRow_NEON,
    BlockMeanRow_NEON,
    TapFilterRow_NEON,
    LerpColumnsRow_NEON,
    LerpRowsRow_NEON,
    MatteColumnsRow_C,
    MatteRowsRow_NEON,
    LumaRow_NEON,
    RefineApplyRow_NEON,
};

}  // namespace coreseg
#endif  // CORESEG_ARCH_ARM64
