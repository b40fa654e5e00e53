// Portable C row functions: the definition every SIMD twin is tested
// against (src/native/tests/test_rows.cc), and the fallback everywhere.
#include <algorithm>
#include <cstring>
#include <limits>

#include "row.h"

namespace coreseg {

template <typename T>
void RenderMaskRow_C(const T* src, const int32_t* selected, int num_selected,
                     uint32_t color, uint8_t* dst, int width) {
  for (int x = 0; x < width; ++x) {
    const int32_t v = static_cast<int32_t>(src[x]);
    uint32_t c = 0;
    for (int k = 0; k < num_selected; ++k) {
      if (v == selected[k]) {
        c = color;
        break;
      }
    }
    std::memcpy(dst + 4 * x, &c, 4);
  }
}

template <typename T>
void ColorizeRow_C(const T* src, const uint32_t* palette, uint32_t n,
                   uint8_t* dst, int width) {
  for (int x = 0; x < width; ++x) {
    // A negative int32 label becomes a huge unsigned one: outside too.
    uint32_t v = static_cast<uint32_t>(src[x]);
    if (v > n) v = n;
    std::memcpy(dst + 4 * x, &palette[v], 4);
  }
}

template <typename T>
void ResizeLabelsRow_C(const T* src, const int32_t* xmap, T* dst, int width) {
  for (int x = 0; x < width; ++x) dst[x] = src[xmap[x]];
}

void BlendRow_C(const uint8_t* src, ptrdiff_t src_stride, const uint16_t* keep,
                const uint16_t* add, uint8_t* dst, ptrdiff_t dst_stride, int rows,
                int count) {
  for (int r = 0; r < rows; ++r, src += src_stride, dst += dst_stride)
    for (int i = 0; i < count; ++i) dst[i] = BlendPatternByte(src[i], keep[i], add[i]);
}

void BlendPatternRow_C(const uint8_t* src, const uint16_t* keep,
                       const uint16_t* add, int period, uint8_t* dst,
                       int count) {
  int phase = 0;
  for (int i = 0; i < count; ++i) {
    dst[i] = BlendPatternByte(src[i], keep[phase], add[phase]);
    if (++phase == period) phase = 0;
  }
}

void BlendPixelsRow_C(uint8_t* row, const int32_t* xs, int n,
                      const uint16_t* keep, const uint16_t* add, int channels) {
  for (int i = 0; i < n; ++i) {
    uint8_t* p = row + static_cast<ptrdiff_t>(xs[i]) * channels;
    for (int c = 0; c < channels; ++c) p[c] = BlendPatternByte(p[c], keep[c], add[c]);
  }
}

void ResampleVerticalRow_C(const uint8_t* const* rows, const int16_t* coeffs,
                           int taps, int16_t* dst, int count) {
  for (int i = 0; i < count; ++i)
    dst[i] = ResampleVerticalPoint(rows, coeffs, taps, i);
}

void DeinterleaveRow_C(const int16_t* src, int channels, int16_t* planes,
                       ptrdiff_t plane_stride, int width) {
  for (int c = 0; c < channels; ++c)
    for (int x = 0; x < width; ++x) planes[c * plane_stride + x] = src[x * channels + c];
}

void ResampleHorizontalRow_C(const int16_t* planes, ptrdiff_t plane_stride,
                             int channels, const int32_t* start,
                             const int16_t* coeffs, int taps, uint8_t* dst,
                             int width) {
  for (int x = 0; x < width; ++x) {
    const int16_t* c = coeffs + static_cast<ptrdiff_t>(x) * taps;
    for (int ch = 0; ch < channels; ++ch) {
      const int16_t* p = planes + ch * plane_stride + start[x];
      int32_t acc = 0;
      for (int k = 0; k < taps; ++k) acc += p[k] * c[k];
      dst[4 * x + ch] = ResampleHorizontalByte(acc);
    }
    if (channels == 3) dst[4 * x + 3] = 255;
  }
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal half: normalise it into a float.
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {
inline float AsFloat(float v) { return v; }
inline float AsFloat(uint16_t v) { return HalfToFloat(v); }

template <typename T>
void ArgmaxRowT(const T* src, ptrdiff_t plane, int channels, int32_t* dst, int width) {
  for (int x = 0; x < width; ++x) {
    float best = -std::numeric_limits<float>::infinity();
    int32_t index = 0;
    for (int c = 0; c < channels; ++c) {
      const float v = AsFloat(src[c * plane + x]);
      if (v > best) {  // false for NaN; strict, so the first maximum wins
        best = v;
        index = c;
      }
    }
    dst[x] = index;
  }
}
}  // namespace

void ArgmaxRow_C(const float* src, ptrdiff_t plane, int channels, int32_t* dst, int width) {
  ArgmaxRowT(src, plane, channels, dst, width);
}
void ArgmaxRow_C(const uint16_t* src, ptrdiff_t plane, int channels, int32_t* dst, int width) {
  ArgmaxRowT(src, plane, channels, dst, width);
}

void UpsampleVerticalRow_C(const int16_t* a, const int16_t* b, int wa, int wb,
                           int32_t* dst, int count) {
  for (int i = 0; i < count; ++i) dst[i] = a[i] * wa + b[i] * wb;
}

void ArgmaxRow_C(const int32_t* src, ptrdiff_t plane, int channels, int32_t* dst,
                 int width) {
  for (int x = 0; x < width; ++x) {
    int32_t best = src[x], index = 0;
    for (int c = 1; c < channels; ++c) {
      const int32_t v = src[c * plane + x];
      if (v > best) {  // strict: the first maximum wins
        best = v;
        index = c;
      }
    }
    dst[x] = index;
  }
}

void EmaRow_C(const float* x, float alpha, float* state, int count) {
  const float keep = 1.0f - alpha;
  for (int i = 0; i < count; ++i) state[i] = keep * state[i] + alpha * x[i];
}

void EmaRow_C(const uint16_t* x, float alpha, float* state, int count) {
  const float keep = 1.0f - alpha;
  for (int i = 0; i < count; ++i) state[i] = keep * state[i] + alpha * HalfToFloat(x[i]);
}

void HysteresisRow_C(const int32_t* x, const float* gap, float margin,
                     int frames, int32_t* shown, int32_t* candidate,
                     int32_t* count, int width) {
  for (int i = 0; i < width; ++i)
    HysteresisPixel(x[i], gap ? gap + i : nullptr, margin, frames, shown + i,
                    candidate + i, count + i);
}

#define CORESEG_INSTANTIATE_LABEL_ROWS(T)                                  \
  template void RenderMaskRow_C<T>(const T*, const int32_t*, int, uint32_t, \
                                   uint8_t*, int);                          \
  template void ColorizeRow_C<T>(const T*, const uint32_t*, uint32_t,       \
                                 uint8_t*, int);                            \
  template void ResizeLabelsRow_C<T>(const T*, const int32_t*, T*, int);
CORESEG_INSTANTIATE_LABEL_ROWS(uint8_t)
CORESEG_INSTANTIATE_LABEL_ROWS(uint16_t)
CORESEG_INSTANTIATE_LABEL_ROWS(int32_t)
#undef CORESEG_INSTANTIATE_LABEL_ROWS

void ShuffleRow_C(const uint8_t* src, const uint8_t* order, int channels,
                  uint8_t* dst, int width) {
  for (int x = 0; x < width; ++x, src += 4, dst += channels)
    for (int c = 0; c < channels; ++c) dst[c] = src[order[c]];
}

void BlendImagesRow_C(const uint8_t* fg, const uint8_t* bg, const uint8_t* alpha, int channels, uint8_t* dst,
                      int width) {
  for (int x = 0; x < width; ++x, fg += channels, bg += channels, dst += channels) {
    const uint32_t a = alpha[x];
    const uint8_t pass = channels == 4 ? fg[3] : 0;  // read before dst (it may be fg) is written
    for (int c = 0; c < 3; ++c) dst[c] = BlendPixel(bg[c], fg[c], a);
    if (channels == 4) dst[3] = pass;
  }
}

void ColumnSumsRow_C(const uint8_t* src, ptrdiff_t stride, int rows, uint16_t* dst, int count) {
  for (int i = 0; i < count; ++i) {
    uint32_t s = 0;
    for (int r = 0; r < rows; ++r) s += src[r * stride + i];
    dst[i] = static_cast<uint16_t>(s);
  }
}

void BlockMeanRow_C(const uint16_t* sums, int channels, int block, float scale, int16_t* dst, int width) {
  for (int j = 0; j < width; ++j)
    for (int c = 0; c < channels; ++c) {
      uint32_t s = 0;
      for (int k = 0; k < block; ++k) s += sums[(static_cast<ptrdiff_t>(j) * block + k) * channels + c];
      dst[j * channels + c] = BlockMeanValue(s, scale);
    }
}

void TapFilterRow_C(const int16_t* const* rows, const int16_t* coeffs, int taps, int16_t* dst, int count) {
  for (int i = 0; i < count; ++i) dst[i] = TapFilterPoint(rows, coeffs, taps, i);
}

void LerpColumnsRow_C(const int16_t* src, int channels, const int32_t* x0, const int16_t* wq, uint8_t* dst,
                      int width) {
  for (int x = 0; x < width; ++x) {
    const int16_t* a = src + static_cast<ptrdiff_t>(x0[x]) * channels;
    for (int c = 0; c < channels; ++c) dst[x * channels + c] = LerpColumnsByte(a[c], a[c + channels], wq[x]);
  }
}

void LerpRowsRow_C(const uint8_t* a, const uint8_t* b, int w6, uint8_t* dst, int count) {
  for (int i = 0; i < count; ++i) dst[i] = static_cast<uint8_t>((a[i] * (64 - w6) + b[i] * w6 + 32) >> 6);
}

void MatteColumnsRow_C(const int16_t* q, const int32_t* x0, const int16_t* w1, int32_t* dst, int width) {
  // By runs of outputs between the same two values (an upscale's are
  // long): a run between equal values (most of a matte, 0 or 1) is filled.
  for (int x = 0; x < width;) {
    const int32_t i = x0[x];
    int end = x + 1;
    while (end < width && x0[end] == i) ++end;
    const int32_t a = q[i], d = q[i + 1] - a;
    if (d == 0)
      std::fill(dst + x, dst + end, a * kLerpOne);
    else
      for (; x < end; ++x) dst[x] = a * kLerpOne + d * w1[x];
    x = end;
  }
}

void MatteRowsRow_C(const int32_t* a, const int32_t* b, int w1, uint8_t* dst, int count) {
  for (int i = 0; i < count; ++i)
    dst[i] = MatteAlpha(static_cast<uint32_t>(a[i] * kLerpOne + (b[i] - a[i]) * w1));
}

void LumaRow_C(const uint8_t* src, int channels, uint8_t* dst, int width) {
  for (int x = 0; x < width; ++x, src += channels) dst[x] = LumaByte(src[0], src[1], src[2]);
}

void RefineApplyRow_C(const uint8_t* y, const int32_t* a0, const int32_t* a1, const int32_t* b0, const int32_t* b1,
                      int wy, uint8_t* dst, int width) {
  for (int x = 0; x < width; ++x) dst[x] = RefineApplyByte(y[x], a0[x], a1[x], b0[x], b1[x], wy);
}

const RowFunctions kRowsC = {
    "scalar",
    {RenderMaskRow_C<uint8_t>, ColorizeRow_C<uint8_t>, ResizeLabelsRow_C<uint8_t>},
    {RenderMaskRow_C<uint16_t>, ColorizeRow_C<uint16_t>,
     ResizeLabelsRow_C<uint16_t>},
    {RenderMaskRow_C<int32_t>, ColorizeRow_C<int32_t>, ResizeLabelsRow_C<int32_t>},
    BlendRow_C,
    BlendPatternRow_C,
    BlendPixelsRow_C,
    ResampleVerticalRow_C,
    DeinterleaveRow_C,
    ResampleHorizontalRow_C,
    ArgmaxRow_C,
    ArgmaxRow_C,
    UpsampleVerticalRow_C,
    ArgmaxRow_C,
    EmaRow_C,
    EmaRow_C,
    HysteresisRow_C,
    ShuffleRow_C,
    BlendImagesRow_C,
    ColumnSumsRow_C,
    BlockMeanRow_C,
    TapFilterRow_C,
    LerpColumnsRow_C,
    LerpRowsRow_C,
    MatteColumnsRow_C,
    MatteRowsRow_C,
    LumaRow_C,
    RefineApplyRow_C,
};

}  // namespace coreseg
