// Background effects on whole images: blend (an image over a background
// by a matte) and blur (a Gaussian blur at memory speed for large radii).
// Their numpy twins are coreseg.reference.blend and .blur
// (kernels/reference_effects.py), equal bit for bit.
//
// blur works small: the image is reduced by an integer factor f chosen
// from the radius (block means, 7 fractional bits), blurred there by a
// sampled Gaussian (one pass along each axis, 16-bit weights), and
// enlarged back bilinearly on the half-pixel grid of UpsampleArgmax. From
// radius 5 (f >= 2) the work at full resolution is one read of the image
// and one write of the result; below, the Gaussian runs at full size.
// Every stage is integer arithmetic except the block means, whose one
// float multiply is IEEE single precision on every backend and in numpy,
// and the Gaussian's weights, computed once per call from exp() (the same
// libm call in numpy's twin).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {

void Blend(const ImageView& foreground, const ImageView* background, const uint8_t color[4],
           const uint8_t* alpha, ptrdiff_t alpha_stride, uint8_t* out, ptrdiff_t out_stride) {
  const int64_t width = foreground.width, channels = foreground.channels;
  if (width == 0 || foreground.height == 0) return;
  const BlendImagesRowFn blend = ActiveRows().blend_images;
  ParallelFor(foreground.height, RowGrain(width), [&](int64_t y0, int64_t y1) {
    // A colour background is one row of it, read for every row (from L1).
    std::vector<uint8_t> fill(background ? 0 : static_cast<size_t>(width * channels));
    for (size_t i = 0; i < fill.size(); ++i) fill[i] = color[i % channels];
    for (int64_t y = y0; y < y1; ++y) {
      const uint8_t* bg = background ? background->data + y * background->row_stride : fill.data();
      blend(foreground.data + y * foreground.row_stride, bg, alpha + y * alpha_stride, static_cast<int>(channels),
            out + y * out_stride, static_cast<int>(width));
    }
  });
}

BlurPlan PlanBlur(double radius) {
  // The variances (pixels^2) of the stages add up to radius^2: block means
  // and bilinear enlargement by f give (f^2 - (f odd)) / 4 together
  // (measured on impulses, averaged over phases), the small Gaussian the
  // rest, f^2 s^2.
  const int f = static_cast<int>(std::min<double>(kMaxBlurFactor, std::max(1.0, std::floor(radius / kBlurSmallSigma))));
  const double reduce_enlarge = (f * f - (f & 1)) / 4.0;
  const double target = std::sqrt(std::max(radius * radius - reduce_enlarge, 0.0) / (f * f));
  // A Gaussian of width s sampled at -k..k (k = ceil(3 s)); its variance
  // falls short of s^2 (the tails cut off), so from s = 1 up, where it
  // follows s^2 closely, the width is corrected once to give `target`.
  std::vector<double> g;
  int k = 0;
  double total = 0.0;
  const auto sample = [&](double s) {
    k = std::max(1, static_cast<int>(std::ceil(3.0 * s)));
    g.assign(2 * k + 1, 0.0);
    total = 0.0;
    for (int i = -k; i <= k; ++i) {
      const double t = i / s;
      g[i + k] = std::exp(-0.5 * (t * t));
      total += g[i + k];
    }
  };
  sample(target);
  if (target >= 1.0) {
    double variance = 0.0;
    for (int i = -k; i <= k; ++i) variance += g[i + k] * (i * i);
    sample(target * target / std::sqrt(variance / total));
  }
  // In 16-bit fixed point summing to exactly 1 << 16 (a flat image stays
  // flat): each weight rounded, the centre takes the remainder.
  std::vector<int> q(2 * k + 1);
  int sum = 0;
  for (int i = 0; i <= 2 * k; ++i) sum += q[i] = static_cast<int>(std::floor(g[i] / total * 65536 + 0.5));
  q[k] += 65536 - sum;
  BlurPlan plan{f, {}, {}};
  for (int i = -k; i <= k; ++i) plan.offsets.push_back(i);
  if (q[k] > 32767) {
    // A narrow Gaussian's centre does not fit int16: two taps at offset 0
    // (its neighbours at least 1 each, so each half fits).
    for (int i : {k - 1, k + 1}) {
      if (q[i] == 0) {
        q[i] = 1;
        --q[k];
      }
    }
    plan.offsets.push_back(0);
    q.push_back(q[k] - q[k] / 2);
    q[k] /= 2;
  } else {
    plan.offsets.push_back(0);  // an even count: the SIMD rows take taps in pairs
    q.push_back(0);
  }
  for (int v : q) plan.coeffs.push_back(static_cast<int16_t>(v));
  return plan;
}

namespace {

// Copies the first and last pixel of a row of `width` pixels (at
// `reach` pixels into `row`) over the `reach` pixels on either side: the
// horizontal passes clamp at the edges.
void ReplicateEdges(int16_t* row, int64_t width, int channels, int reach) {
  int16_t* first = row + static_cast<ptrdiff_t>(reach) * channels;
  int16_t* last = first + (width - 1) * channels;
  for (int p = 1; p <= reach; ++p) {
    std::memcpy(first - p * channels, first, sizeof(int16_t) * channels);
    std::memcpy(last + p * channels, last, sizeof(int16_t) * channels);
  }
}

// The blur's intermediate images, kept between calls on the calling
// thread up to kKeptScratchBytes: a video loop's blur allocates (and
// page-faults) nothing after its first frame. Larger ones are the
// caller's `owned`, freed after the call.
constexpr size_t kKeptScratchBytes = size_t{64} << 20;

int16_t* BlurScratch(size_t values, std::vector<int16_t>* owned) {
  thread_local std::vector<int16_t> kept;
  std::vector<int16_t>& buffer = values * sizeof(int16_t) <= kKeptScratchBytes ? kept : *owned;
  if (buffer.size() < values) buffer.resize(values);
  return buffer.data();
}

}  // namespace

void Blur(const ImageView& image, double radius, uint8_t* out, ptrdiff_t out_stride) {
  const int64_t width = image.width, height = image.height;
  if (width == 0 || height == 0) return;
  const int channels = image.channels;
  const RowFunctions& rows = ActiveRows();
  const BlurPlan plan = PlanBlur(radius);
  const int f = plan.factor, taps = static_cast<int>(plan.offsets.size());
  int reach = 0;
  for (int o : plan.offsets) reach = std::max(reach, std::abs(o));
  const int64_t w = (width + f - 1) / f, h = (height + f - 1) / f;
  const int64_t count = w * channels;  // values per small row
  // The small image after the horizontal pass, and after the vertical one;
  // the enlargement reads a pixel (and two values) past the last row
  // (weight 0, but kept defined).
  const size_t small_values = static_cast<size_t>(h * count) + channels + 2;
  std::vector<int16_t> owned;
  int16_t* small = BlurScratch(2 * small_values, &owned);
  int16_t* other = small + small_values;
  std::fill(other + h * count, other + small_values, int16_t{0});

  // Reduction and the horizontal pass, one small row at a time.
  const int64_t full_blocks = width / f, rest = width % f;
  ParallelFor(h, std::max<int64_t>(1, RowGrain(width * f * channels / 4)), [&](int64_t j0, int64_t j1) {
    std::vector<uint16_t> sums(static_cast<size_t>(width * channels) + 1, 0);
    std::vector<int16_t> pad(static_cast<size_t>((w + 2 * reach) * channels));
    std::vector<const int16_t*> ptrs(taps);
    int16_t* interior = pad.data() + static_cast<ptrdiff_t>(reach) * channels;
    for (int k = 0; k < taps; ++k) ptrs[k] = interior + static_cast<ptrdiff_t>(plan.offsets[k]) * channels;
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t first = j * f, n = std::min<int64_t>(f, height - first);
      rows.column_sums(image.data + first * image.row_stride, image.row_stride, static_cast<int>(n), sums.data(),
                       static_cast<int>(width * channels));
      const auto scale = [&](int64_t pixels) { return static_cast<float>(128.0 / static_cast<double>(pixels * n)); };
      if (full_blocks > 0)
        rows.block_mean(sums.data(), channels, f, scale(f), interior, static_cast<int>(full_blocks));
      if (rest > 0)
        rows.block_mean(sums.data() + full_blocks * f * channels, channels, static_cast<int>(rest), scale(rest),
                        interior + full_blocks * channels, 1);
      ReplicateEdges(pad.data(), w, channels, reach);
      rows.tap_filter(ptrs.data(), plan.coeffs.data(), taps, small + j * count, static_cast<int>(count));
    }
  });

  // The vertical pass, small -> other (rows clamped at the edges).
  ParallelFor(h, std::max<int64_t>(1, RowGrain(count * taps / 8)), [&](int64_t y0, int64_t y1) {
    std::vector<const int16_t*> ptrs(taps);
    for (int64_t y = y0; y < y1; ++y) {
      for (int k = 0; k < taps; ++k) ptrs[k] = small + std::clamp<int64_t>(y + plan.offsets[k], 0, h - 1) * count;
      rows.tap_filter(ptrs.data(), plan.coeffs.data(), taps, other + y * count, static_cast<int>(count));
    }
  });
  const int16_t* blurred = other;

  // Enlargement by f on the half-pixel grid: small row i0 or i1 enlarged
  // along x into bytes once per band (TwoRowCache), then each output row
  // from two of them. Weights as LerpAxis gives them: along x times 128
  // for pmulhrsw; along y rounded to 1/64 for pmaddubsw, because that pass
  // runs at full resolution (its error, 1/128 of the difference of two
  // neighbouring blurred rows, is under a level).
  const LerpAxis xs = ComputeLerpAxis(w, w * f), ys = ComputeLerpAxis(h, h * f);
  std::vector<int16_t> wq(static_cast<size_t>(width));
  for (int64_t x = 0; x < width; ++x) wq[x] = static_cast<int16_t>(xs.w1[x] * 128);
  ParallelFor(height, RowGrain(width * channels / 4), [&](int64_t y0, int64_t y1) {
    if (f == 1) {
      // No reduction: every weight is 0, each output row its small row
      // rounded to bytes, which the columns row writes straight to out.
      for (int64_t y = y0; y < y1; ++y)
        rows.lerp_columns(blurred + y * count, channels, xs.i0.data(), wq.data(), out + y * out_stride,
                          static_cast<int>(width));
      return;
    }
    TwoRowCache<uint8_t> cache(static_cast<size_t>(width * channels));
    const auto make = [&](int64_t i, uint8_t* dst) {
      rows.lerp_columns(blurred + i * count, channels, xs.i0.data(), wq.data(), dst, static_cast<int>(width));
    };
    for (int64_t y = y0; y < y1; ++y) {
      const auto [a, b] = cache.Get(ys.i0[y], ys.i1[y], make);
      rows.lerp_rows(a, b, (ys.w1[y] + 2) >> 2, out + y * out_stride, static_cast<int>(width * channels));
    }
  });
}

}  // namespace coreseg
