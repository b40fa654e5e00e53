// resize_image: the model-input preprocessor. An antialiased bilinear
// resample with the filter of Pillow's Image.resize(BILINEAR), in fixed
// point: a vertical pass from the uint8 source rows into an int16 row with 7
// fractional bits, split into one plane per channel, then a horizontal pass
// into RGBA bytes, then the bytes are written in the requested order. One
// output row at a time, so there is no whole intermediate image. Differs
// from Pillow (which goes horizontal first, rounding to 8 bits in between)
// by at most 1 per channel.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu.h"
#include "kernels.h"
#include "thread_pool.h"

namespace coreseg {

ResampleAxis ComputeResampleAxis(int64_t in_size, int64_t out_size, int tap_multiple) {
  // Pillow's precompute_coeffs with its triangle (bilinear) filter.
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  std::vector<int16_t> q(static_cast<size_t>(out_size) * ksize, 0);
  std::vector<int32_t> first(out_size), count(out_size);
  std::vector<double> w(ksize);
  int widest = 1;
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    const int n = static_cast<int>(xmax - xmin);
    double ww = 0.0;
    for (int x = 0; x < n; ++x) {
      double t = (static_cast<double>(x + xmin) - center + 0.5) * ss;
      if (t < 0.0) t = -t;
      w[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += w[x];
    }
    // Quantise, then give the rounding remainder to the largest tap so the
    // taps sum to exactly 1: a flat image stays flat.
    int16_t* row = &q[static_cast<size_t>(xx) * ksize];
    int sum = 0, largest = 0;
    for (int x = 0; x < n; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : 0.0;
      row[x] = static_cast<int16_t>(std::floor(v * (1 << kCoeffBits) + 0.5));
      sum += row[x];
      if (row[x] > row[largest]) largest = x;
    }
    row[largest] = static_cast<int16_t>(row[largest] + ((1 << kCoeffBits) - sum));
    // Zero taps at either end are left out (the same sums, fewer
    // multiply-adds): the window starts at the first nonzero tap.
    int lo = 0, hi = n - 1;
    while (lo < largest && row[lo] == 0) ++lo;
    while (hi > largest && row[hi] == 0) --hi;
    first[xx] = static_cast<int32_t>(xmin + lo);
    count[xx] = hi - lo + 1;
    std::memmove(row, row + lo, sizeof(int16_t) * count[xx]);
    std::fill(row + count[xx], row + ksize, int16_t{0});
    widest = std::max(widest, count[xx]);
  }
  ResampleAxis axis;
  axis.taps = (widest + tap_multiple - 1) / tap_multiple * tap_multiple;
  axis.start = std::move(first);
  axis.coeffs.assign(static_cast<size_t>(out_size) * axis.taps, 0);
  for (int64_t xx = 0; xx < out_size; ++xx)
    std::memcpy(&axis.coeffs[static_cast<size_t>(xx) * axis.taps], &q[static_cast<size_t>(xx) * ksize],
                sizeof(int16_t) * count[xx]);
  return axis;
}

void ResizeImage(const ImageView& image, uint8_t* out, int64_t out_width,
                 int64_t out_height, ptrdiff_t out_stride, const int* order,
                 int out_channels) {
  // Vertical taps in pairs (the SIMD rows take them so); horizontal taps
  // in whole vectors of 8, so each output's taps are whole vectors of one
  // plane (ResampleHorizontalRowFn).
  const ResampleAxis xs = ComputeResampleAxis(image.width, out_width, 8);
  const ResampleAxis ys = ComputeResampleAxis(image.height, out_height, 2);
  const RowFunctions& rows = ActiveRows();
  const int channels = image.channels;
  const int64_t src_count = image.width * channels;
  const bool rgba_order = out_channels == 4 && order[0] == 0 && order[1] == 1 &&
                          order[2] == 2 && order[3] == 3;
  uint8_t shuffle_order[4] = {0, 1, 2, 3};
  for (int c = 0; c < out_channels; ++c) shuffle_order[c] = static_cast<uint8_t>(order[c]);
  // Bands of at least ~1M multiply-adds in the vertical pass.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / (src_count * ys.taps + 1));

  // A plane is read up to start + taps values: zeros past the row.
  const ptrdiff_t plane_stride = image.width + xs.taps;

  ParallelFor(out_height, grain, [&](int64_t y0, int64_t y1) {
    std::vector<int16_t> inter(static_cast<size_t>(src_count));
    std::vector<int16_t> planes(static_cast<size_t>(plane_stride) * channels, 0);
    std::vector<uint8_t> rgba(rgba_order ? 0 : static_cast<size_t>(out_width) * 4);
    std::vector<const uint8_t*> src_rows(ys.taps);
    for (int64_t y = y0; y < y1; ++y) {
      // Only the row's nonzero taps are read (an even count, as the SIMD
      // rows take them in pairs).
      const int16_t* coeffs = &ys.coeffs[static_cast<size_t>(y) * ys.taps];
      int first = 0, last = ys.taps - 1;
      while (first < last && coeffs[first] == 0) ++first;
      while (last > first && coeffs[last] == 0) --last;
      int taps = last - first + 1;
      if (taps % 2 != 0) {
        ++taps;
        if (first + taps > ys.taps) --first;  // a zero tap before instead of after
      }
      for (int k = 0; k < taps; ++k) {
        // Taps past the image have coefficient 0; any valid row will do.
        const int64_t sy = std::min<int64_t>(ys.start[y] + first + k, image.height - 1);
        src_rows[k] = image.data + sy * image.row_stride;
      }
      rows.resample_vertical(src_rows.data(), coeffs + first, taps, inter.data(), static_cast<int>(src_count));
      rows.deinterleave(inter.data(), channels, planes.data(), plane_stride, static_cast<int>(image.width));
      uint8_t* dst = out + y * out_stride;
      uint8_t* px = rgba_order ? dst : rgba.data();
      rows.resample_horizontal(planes.data(), plane_stride, channels, xs.start.data(), xs.coeffs.data(), xs.taps,
                               px, static_cast<int>(out_width));
      if (!rgba_order) rows.shuffle(px, shuffle_order, out_channels, dst, static_cast<int>(out_width));
    }
  });
}

}  // namespace coreseg
