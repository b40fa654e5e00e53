// refine_matte: a matte pulled onto the photo's own edges by a guided
// filter (He et al., "Guided Image Filtering"), computed small and
// enlarged as in the "fast guided filter": the photo's luma and the matte
// are reduced by an integer factor s into block means, the filter's
// linear coefficients (A, b) are solved there over (2r + 1)^2 windows,
// box-averaged, enlarged bilinearly on upsample_argmax's half-pixel grid
// and applied to the full-resolution luma: q = A * Y + b.
//
// Every stage is integer arithmetic (row.h's kRefine* precision; int64 for
// the window statistics), so the numpy twin, coreseg.reference.
// refine_matte (kernels/reference_refine.py), gives the same bytes. The
// full-resolution passes (luma, reduction, the final apply) run on SIMD
// rows; the small statistics are plain loops (1/s^2 of the pixels).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {

RefinePlan PlanRefine(double radius) {
  const int s = static_cast<int>(
      std::min<double>(kMaxRefineFactor, std::max(1.0, std::floor(radius / kRefineStep))));
  return {s, std::max(1, static_cast<int>(std::floor(radius / s + 0.5)))};
}

namespace {

// n / d rounded half up, d > 0: floor((2n + d) / 2d), as numpy's //. In
// double, which is exact here and far cheaper than a 64-bit idiv: with
// num = 2n + d and den = 2d integers below 2^53 (both exact), the quotient
// num / den is rounded once; it is an integer k exactly when the double
// is, and otherwise at least 1/den away from the integers around it, while
// the rounding error is at most |num / den| 2^-53 < 1/den. So the floor of
// the double is the floor of the quotient. Every caller stays below 2^53
// (the largest, A's numerator, below 2^48: |N^2 cov| <= 81^2 (4080^2 / 4),
// times 2^13, with r <= 4).
inline int64_t RoundDiv(int64_t n, int64_t d) {
  const double q = static_cast<double>(2 * n + d) / static_cast<double>(2 * d);
  const int64_t t = static_cast<int64_t>(q);  // toward zero; floor is one less below a negative non-integer
  return t - (q < static_cast<double>(t) ? 1 : 0);
}

// A w x h plane of small values, in memory kept between calls (on the
// calling thread, up to kKeptScratchValues) so a video loop page-faults
// nothing after its first frame.
constexpr size_t kKeptScratchValues = size_t{16} << 20;

template <typename T>
struct Plane {
  int64_t w = 0, h = 0;
  T* v = nullptr;
  std::vector<T> owned;
  Plane(int64_t width, int64_t height, std::vector<T>* kept, size_t offset) : w(width), h(height) {
    const size_t n = static_cast<size_t>(width * height);
    if (kept != nullptr && offset + n <= kept->size()) {
      v = kept->data() + offset;
    } else {
      owned.resize(n);
      v = owned.data();
    }
  }
  T* Row(int64_t y) { return v + y * w; }
  const T* Row(int64_t y) const { return v + y * w; }
};

// Window sums of kCount planes (clipped at the edges), row by row: for
// each row y, emit(y, sums) with sums[k * w + x] the sum of values[j] over
// rows i in y - r..y + r and columns j in x - r..x + r, where fill(k, i,
// values) gives row i of plane k (w values). Each band of rows
// keeps the row sums of its last 2r + 1 rows (int32: at most 9 values
// under 2^24 each) and slides over them (exact integers: adding the new
// row and taking off the old is the sum).
template <int kCount, typename Fill, typename Emit>
void BoxRows(int64_t w, int64_t h, int r, Fill fill, Emit emit) {
  ParallelFor(h, std::max<int64_t>(4 * r, RowGrain(w * 8)), [&](int64_t y0, int64_t y1) {
    const int64_t span = 2 * r + 1, count = kCount * w;
    std::vector<int32_t> ring(static_cast<size_t>(span * count));
    std::vector<int64_t> sums(static_cast<size_t>(count), 0), prefix(static_cast<size_t>(w + 1)),
        values(static_cast<size_t>(w));
    const auto slot = [&](int64_t i) { return ring.data() + (i % span) * count; };
    const auto row_sums = [&](int64_t i) {  // row i's sums over x - r..x + r, into its slot
      int32_t* dst = slot(i);
      for (int k = 0; k < kCount; ++k, dst += w) {
        fill(k, i, values.data());
        int64_t run = 0;
        prefix[0] = 0;
        for (int64_t x = 0; x < w; ++x) prefix[x + 1] = run += values[x];
        // The clipped ends, then the interior without clipping.
        const int64_t lo = std::min<int64_t>(r, w), hi = std::max<int64_t>(lo, w - r - 1);
        for (int64_t x = 0; x < lo; ++x)
          dst[x] = static_cast<int32_t>(prefix[std::min(x + r + 1, w)] - prefix[std::max<int64_t>(x - r, 0)]);
        for (int64_t x = lo; x < hi; ++x) dst[x] = static_cast<int32_t>(prefix[x + r + 1] - prefix[x - r]);
        for (int64_t x = hi; x < w; ++x)
          dst[x] = static_cast<int32_t>(prefix[std::min(x + r + 1, w)] - prefix[std::max<int64_t>(x - r, 0)]);
      }
    };
    // Plain loops over restrict pointers: they vectorise.
    const auto add = [count](int64_t* __restrict acc, const int32_t* __restrict row) {
      for (int64_t k = 0; k < count; ++k) acc[k] += row[k];
    };
    const auto subtract = [count](int64_t* __restrict acc, const int32_t* __restrict row) {
      for (int64_t k = 0; k < count; ++k) acc[k] -= row[k];
    };
    for (int64_t i = std::max<int64_t>(y0 - r, 0); i <= std::min<int64_t>(y0 + r, h - 1); ++i) {
      row_sums(i);
      add(sums.data(), slot(i));
    }
    for (int64_t y = y0; y < y1; ++y) {
      if (y > y0) {
        if (y - r - 1 >= 0) subtract(sums.data(), slot(y - r - 1));  // before its slot is reused
        if (y + r < h) {
          row_sums(y + r);
          add(sums.data(), slot(y + r));
        }
      }
      emit(y, sums.data());
    }
  });
}

// The pixels of window (y, x), clipped at the edges.
inline int64_t WindowCount(int64_t y, int64_t x, int64_t w, int64_t h, int r) {
  return (std::min<int64_t>(y + r, h - 1) - std::max<int64_t>(y - r, 0) + 1) *
         (std::min<int64_t>(x + r, w - 1) - std::max<int64_t>(x - r, 0) + 1);
}

}  // namespace

void RefineMatte(const uint8_t* matte, ptrdiff_t matte_stride, const ImageView& guide, double radius, double eps,
                 uint8_t* out, ptrdiff_t out_stride) {
  const int64_t width = guide.width, height = guide.height;
  if (width == 0 || height == 0) return;
  const RowFunctions& rows = ActiveRows();
  const RefinePlan plan = PlanRefine(radius);
  const int s = plan.factor, r = plan.radius;
  const int64_t w = (width + s - 1) / s, h = (height + s - 1) / s;

  // Block means of luma and matte, kRefineMeanBits fractional bits,
  // rounded half up: column sums of s rows (< 2^24 in uint32), then sums of
  // s columns.
  // The small planes: luma and matte means, A and b, and their means (a
  // column wider: the enlargement reads one past the last, weight 0).
  thread_local std::vector<int32_t> kept;
  const size_t plane = static_cast<size_t>(w * h), wide = static_cast<size_t>((w + 1) * h);
  if (4 * plane + 2 * wide <= kKeptScratchValues && kept.size() < 4 * plane + 2 * wide) kept.resize(4 * plane + 2 * wide);
  std::vector<int32_t>* scratch = 4 * plane + 2 * wide <= kKeptScratchValues ? &kept : nullptr;
  Plane<int32_t> small_i(w, h, scratch, 0), small_p(w, h, scratch, plane);
  // The luma at full resolution is kept for the final pass (a byte a pixel
  // read again instead of the photo's three or four).
  thread_local std::vector<uint8_t> kept_luma;
  std::vector<uint8_t> owned_luma;
  const size_t pixels_total = static_cast<size_t>(width * height);
  std::vector<uint8_t>& luma_buffer = pixels_total <= (size_t{64} << 20) ? kept_luma : owned_luma;
  if (luma_buffer.size() < pixels_total) luma_buffer.resize(pixels_total);
  uint8_t* const luma_plane = luma_buffer.data();
  ParallelFor(h, std::max<int64_t>(1, RowGrain(width * s)), [&](int64_t j0, int64_t j1) {
    std::vector<uint32_t> sum_y(static_cast<size_t>(width)), sum_p(static_cast<size_t>(width));
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t first = j * s, n = std::min<int64_t>(s, height - first);
      std::fill(sum_y.begin(), sum_y.end(), 0u);
      std::fill(sum_p.begin(), sum_p.end(), 0u);
      for (int64_t y = first; y < first + n; ++y) {
        uint8_t* luma = luma_plane + y * width;
        rows.luma(guide.data + y * guide.row_stride, guide.channels, luma, static_cast<int>(width));
        const uint8_t* p = matte + y * matte_stride;
        for (int64_t x = 0; x < width; ++x) sum_y[x] += luma[x];  // plain loops: they vectorise
        for (int64_t x = 0; x < width; ++x) sum_p[x] += p[x];
      }
      for (int64_t i = 0; i < w; ++i) {
        const int64_t x0 = i * s, x1 = std::min<int64_t>(x0 + s, width), pixels = n * (x1 - x0);
        int64_t sy = 0, sp = 0;
        for (int64_t x = x0; x < x1; ++x) sy += sum_y[x], sp += sum_p[x];
        small_i.Row(j)[i] = static_cast<int32_t>(RoundDiv(sy << kRefineMeanBits, pixels));
        small_p.Row(j)[i] = static_cast<int32_t>(RoundDiv(sp << kRefineMeanBits, pixels));
      }
    }
  });

  // The guided filter's coefficients from the window sums of I, p, I p
  // and I^2 (times the count N, nothing divided before A: N^2 cov and N^2
  // var are exact), eps in the means' units ((255 << 4)^2 is a variance
  // of 1): A = N^2 cov / (N^2 var + E N^2), b = mean_p - A mean_I.
  const int64_t one = 255 << kRefineMeanBits;
  const int64_t e = static_cast<int64_t>(std::floor(eps * static_cast<double>(one * one) + 0.5));
  Plane<int32_t> coef_a(w, h, scratch, 2 * plane), coef_b(w, h, scratch, 3 * plane);
  BoxRows<4>(w, h, r, [&](int k, int64_t y, int64_t* __restrict values) {
    const int32_t* __restrict i = small_i.Row(y);
    const int32_t* __restrict p = small_p.Row(y);
    switch (k) {  // plain loops: they vectorise
      case 0: for (int64_t x = 0; x < w; ++x) values[x] = i[x]; break;
      case 1: for (int64_t x = 0; x < w; ++x) values[x] = p[x]; break;
      case 2: for (int64_t x = 0; x < w; ++x) values[x] = int64_t{i[x]} * p[x]; break;
      default: for (int64_t x = 0; x < w; ++x) values[x] = int64_t{i[x]} * i[x];
    }
  }, [&](int64_t y, const int64_t* sums) {
    for (int64_t x = 0; x < w; ++x) {
      const int64_t n = WindowCount(y, x, w, h, r);
      const int64_t si = sums[x], sp = sums[w + x];
      const int64_t cov = n * sums[2 * w + x] - si * sp, var = n * sums[3 * w + x] - si * si;
      const int64_t a = std::clamp<int64_t>(RoundDiv(cov * (int64_t{1} << kRefineABits), var + e * n * n),
                                            -kRefineMaxA, kRefineMaxA);
      coef_a.Row(y)[x] = static_cast<int32_t>(a);
      coef_b.Row(y)[x] = static_cast<int32_t>(RoundDiv(sp * (int64_t{1} << kRefineABits) - a * si, n << kRefineABits));
    }
  });

  // The coefficients averaged over the same windows, each small row padded
  // by a copy of its last value (the enlargement reads one past, weight 0).
  Plane<int32_t> mean_a(w + 1, h, scratch, 4 * plane), mean_b(w + 1, h, scratch, 4 * plane + wide);
  BoxRows<2>(w, h, r, [&](int k, int64_t y, int64_t* __restrict values) {
    const int32_t* __restrict v = k == 0 ? coef_a.Row(y) : coef_b.Row(y);
    for (int64_t x = 0; x < w; ++x) values[x] = v[x];
  }, [&](int64_t y, const int64_t* sums) {
    int32_t* a = mean_a.Row(y);
    int32_t* b = mean_b.Row(y);
    for (int64_t x = 0; x < w; ++x) {
      const int64_t n = WindowCount(y, x, w, h, r);
      a[x] = static_cast<int32_t>(RoundDiv(sums[x], n));
      b[x] = static_cast<int32_t>(RoundDiv(sums[w + x], n));
    }
    a[w] = a[w - 1], b[w] = b[w - 1];
  });

  // Enlargement on the half-pixel grid of the blocks: a small row along x
  // into A and b for every column (once per band, TwoRowCache), then each
  // output row from two of them, applied to its luma (the hot pass).
  const LerpAxis xs = ComputeLerpAxis(w, w * s), ys = ComputeLerpAxis(h, h * s);
  ParallelFor(height, RowGrain(width * 2), [&](int64_t y0, int64_t y1) {
    TwoRowCache<int32_t> cache(static_cast<size_t>(2 * width));
    const auto make = [&](int64_t i, int32_t* dst) {
      const int32_t* a = mean_a.Row(i);
      const int32_t* b = mean_b.Row(i);
      for (int64_t x = 0; x < width; ++x) {
        const int32_t k = xs.i0[x], wx = xs.w1[x];
        dst[x] = a[k] + (((a[k + 1] - a[k]) * wx + 128) >> 8);
        dst[width + x] = b[k] + (((b[k + 1] - b[k]) * wx + 128) >> 8);
      }
    };
    for (int64_t y = y0; y < y1; ++y) {
      const auto [ra, rb] = cache.Get(ys.i0[y], ys.i1[y], make);
      rows.refine_apply(luma_plane + y * width, ra, rb, ra + width, rb + width, ys.w1[y], out + y * out_stride,
                        static_cast<int>(width));
    }
  });
}

}  // namespace coreseg
