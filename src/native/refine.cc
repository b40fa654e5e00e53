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

// n / d rounded half up, d > 0 (floor((2n + d) / 2d), as numpy's //).
inline int64_t RoundDiv(int64_t n, int64_t d) {
  const int64_t num = 2 * n + d, den = 2 * d;
  const int64_t q = num / den;
  return q - (num % den != 0 && num < 0 ? 1 : 0);
}

// A w x h plane of small values.
template <typename T>
struct Plane {
  int64_t w = 0, h = 0;
  std::vector<T> v;
  Plane(int64_t width, int64_t height) : w(width), h(height), v(static_cast<size_t>(width * height)) {}
  T* Row(int64_t y) { return v.data() + y * w; }
  const T* Row(int64_t y) const { return v.data() + y * w; }
};

// Window sums of kCount planes (clipped at the edges), row by row: for
// each row y, emit(y, sums) with sums[k * w + x] the sum of f(k, i, j) over
// rows i in y - r..y + r and columns j in x - r..x + r. Each band of rows
// keeps the row sums of its last 2r + 1 rows and slides over them (exact
// integers: adding the new row and taking off the old is the sum).
template <int kCount, typename F, typename Emit>
void BoxRows(int64_t w, int64_t h, int r, F f, Emit emit) {
  ParallelFor(h, std::max<int64_t>(4 * r, RowGrain(w * 8)), [&](int64_t y0, int64_t y1) {
    const int64_t span = 2 * r + 1;
    std::vector<int64_t> ring(static_cast<size_t>(span * kCount * w)), sums(static_cast<size_t>(kCount * w), 0);
    std::vector<int64_t> prefix(static_cast<size_t>(w + 1));
    const auto slot = [&](int64_t i) { return ring.data() + (i % span) * kCount * w; };
    const auto row_sums = [&](int64_t i) {  // row i's sums over x - r..x + r, into its slot
      int64_t* dst = slot(i);
      for (int k = 0; k < kCount; ++k, dst += w) {
        prefix[0] = 0;
        for (int64_t x = 0; x < w; ++x) prefix[x + 1] = prefix[x] + f(k, i, x);
        for (int64_t x = 0; x < w; ++x) dst[x] = prefix[std::min(x + r + 1, w)] - prefix[std::max<int64_t>(x - r, 0)];
      }
    };
    const auto add = [&](int64_t i, int64_t sign) {
      const int64_t* src = slot(i);
      for (int64_t k = 0; k < kCount * w; ++k) sums[k] += sign * src[k];
    };
    for (int64_t i = std::max<int64_t>(y0 - r, 0); i <= std::min<int64_t>(y0 + r, h - 1); ++i) {
      row_sums(i);
      add(i, 1);
    }
    for (int64_t y = y0; y < y1; ++y) {
      if (y > y0) {
        if (y - r - 1 >= 0) add(y - r - 1, -1);  // before its slot is reused
        if (y + r < h) {
          row_sums(y + r);
          add(y + r, 1);
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
  Plane<int32_t> small_i(w, h), small_p(w, h);
  ParallelFor(h, std::max<int64_t>(1, RowGrain(width * s)), [&](int64_t j0, int64_t j1) {
    std::vector<uint8_t> luma(static_cast<size_t>(width));
    std::vector<uint32_t> sum_y(static_cast<size_t>(width)), sum_p(static_cast<size_t>(width));
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t first = j * s, n = std::min<int64_t>(s, height - first);
      std::fill(sum_y.begin(), sum_y.end(), 0u);
      std::fill(sum_p.begin(), sum_p.end(), 0u);
      for (int64_t y = first; y < first + n; ++y) {
        rows.luma(guide.data + y * guide.row_stride, guide.channels, luma.data(), static_cast<int>(width));
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
  Plane<int32_t> coef_a(w, h), coef_b(w, h);
  BoxRows<4>(w, h, r, [&](int k, int64_t y, int64_t x) -> int64_t {
    const int64_t i = small_i.Row(y)[x], p = small_p.Row(y)[x];
    return k == 0 ? i : k == 1 ? p : k == 2 ? i * p : i * i;
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
  Plane<int32_t> mean_a(w + 1, h), mean_b(w + 1, h);
  BoxRows<2>(w, h, r, [&](int k, int64_t y, int64_t x) -> int64_t {
    return k == 0 ? coef_a.Row(y)[x] : coef_b.Row(y)[x];
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
    std::vector<uint8_t> luma(static_cast<size_t>(width));
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
      rows.luma(guide.data + y * guide.row_stride, guide.channels, luma.data(), static_cast<int>(width));
      rows.refine_apply(luma.data(), ra, rb, ra + width, rb + width, ys.w1[y], out + y * out_stride,
                        static_cast<int>(width));
    }
  });
}

}  // namespace coreseg
