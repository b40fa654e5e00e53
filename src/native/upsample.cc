// upsample_argmax: per-class scores (C, h, w) to a class map at another size
// by bilinear interpolation of the scores (half-pixel centres, as
// torch.nn.functional.interpolate(mode="bilinear", align_corners=False))
// and the first argmax per pixel, without ever holding the interpolated
// scores (C x the output size).
//
// Exactness: scores are quantised to 0..kScoreOne and weights to kLerpBits,
// so every interpolated value is an exact integer and every backend and the
// numpy reference give the same class map.
//
// Speed: interpolation along x is linear within each source interval
// [i, i + 1], so a class that is the first maximum at both ends of the
// interval is the first maximum everywhere in it (a convex combination of
// two wins is a win, ties included). Most intervals are such runs and are
// filled; only the intervals where the winner changes (object edges) are
// evaluated per pixel, and then only for classes not beaten at both ends by
// either end's winner.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {

LerpAxis ComputeLerpAxis(int64_t in_size, int64_t out_size) {
  // Source coordinate of output x: (x + 0.5) * in / out - 0.5, clamped at 0,
  // computed exactly as the fraction ((2x + 1) * in - out) / (2 * out).
  LerpAxis axis;
  axis.i0.resize(out_size);
  axis.i1.resize(out_size);
  axis.w1.resize(out_size);
  const int64_t den = 2 * out_size;
  for (int64_t x = 0; x < out_size; ++x) {
    const int64_t num = std::max<int64_t>(0, (2 * x + 1) * in_size - out_size);
    int64_t i0 = num / den;
    int64_t i1 = i0 + 1, w1 = ((num - i0 * den) * kLerpOne + out_size) / den;
    if (i0 >= in_size - 1) i0 = i1 = in_size - 1, w1 = 0;
    axis.i0[x] = static_cast<int32_t>(i0);
    axis.i1[x] = static_cast<int32_t>(i1);
    axis.w1[x] = static_cast<int16_t>(w1);
  }
  return axis;
}

namespace {

inline int16_t QuantiseScore(float p) {
  // NaN and negatives are 0, above 1 is 1. In double, p * 32767 is exact, so
  // contracting it with the + 0.5 into an FMA cannot change the result.
  if (!(p > 0.0f)) return 0;
  if (p >= 1.0f) return static_cast<int16_t>(kScoreOne);
  return static_cast<int16_t>(std::floor(static_cast<double>(p) * kScoreOne + 0.5));
}

// A run of output columns that share one source interval [i0, i1].
struct Run {
  int32_t begin, end, i0, i1;
};

std::vector<Run> ColumnRuns(const LerpAxis& xs) {
  std::vector<Run> runs;
  for (int32_t x = 0; x < static_cast<int32_t>(xs.i0.size()); ++x) {
    if (runs.empty() || runs.back().i0 != xs.i0[x])
      runs.push_back({x, x + 1, xs.i0[x], xs.i1[x]});
    else
      runs.back().end = x + 1;
  }
  return runs;
}

// One output row from the vertically interpolated row `r` (channels x w
// values, plane w) and the winner of each of its columns.
void HorizontalRow(const int32_t* r, int64_t w, int channels, const int32_t* win,
                   const std::vector<Run>& runs, const LerpAxis& xs, std::vector<int>& candidates,
                   int32_t* dst) {
  for (const Run& run : runs) {
    const int k0 = win[run.i0], k1 = win[run.i1];
    if (k0 == k1) {
      std::fill(dst + run.begin, dst + run.end, k0);
      continue;
    }
    // Classes that can win somewhere in the interval: those not beaten at
    // both ends by k0 or by k1 (beaten: smaller index and >=, or strictly >).
    candidates.clear();
    const int32_t* a = r + run.i0;
    const int32_t* b = r + run.i1;
    for (int c = 0; c < channels; ++c) {
      const int64_t o = c * w;
      bool beaten = false;
      for (int k : {k0, k1}) {
        if (k == c) continue;
        const int64_t ok = k * w;
        beaten = beaten || (k < c ? (a[ok] >= a[o] && b[ok] >= b[o]) : (a[ok] > a[o] && b[ok] > b[o]));
      }
      if (!beaten) candidates.push_back(c);
    }
    for (int32_t x = run.begin; x < run.end; ++x) {
      const int64_t w1 = xs.w1[x], w0 = kLerpOne - w1;
      int64_t best = -1;
      int index = 0;
      for (int c : candidates) {
        const int64_t v = a[c * w] * w0 + b[c * w] * w1;
        if (v > best) {
          best = v;
          index = c;
        }
      }
      dst[x] = index;
    }
  }
}

}  // namespace

void UpsampleArgmax(const Logits& scores, int32_t* out, int64_t out_width, int64_t out_height,
                    ptrdiff_t out_stride) {
  const RowFunctions& rows = ActiveRows();
  const int channels = static_cast<int>(scores.channels);
  const int64_t w = scores.width, h = scores.height, plane = channels * w;

  // Quantised scores, one row of all classes after another: [y][c][x].
  std::vector<int16_t> q(static_cast<size_t>(h * plane));
  ParallelFor(h, RowGrain(plane), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y)
      for (int c = 0; c < channels; ++c) {
        const uint8_t* src = scores.data + c * scores.plane_stride + y * scores.row_stride;
        int16_t* dst = &q[static_cast<size_t>(y * plane + c * w)];
        if (scores.half) {
          const auto* s = reinterpret_cast<const uint16_t*>(src);
          for (int64_t x = 0; x < w; ++x) dst[x] = QuantiseScore(HalfToFloat(s[x]));
        } else {
          const auto* s = reinterpret_cast<const float*>(src);
          for (int64_t x = 0; x < w; ++x) dst[x] = QuantiseScore(s[x]);
        }
      }
  });

  const LerpAxis xs = ComputeLerpAxis(w, out_width);
  const LerpAxis ys = ComputeLerpAxis(h, out_height);
  const std::vector<Run> runs = ColumnRuns(xs);
  ParallelFor(out_height, RowGrain(out_width), [&](int64_t y0, int64_t y1) {
    std::vector<int32_t> r(static_cast<size_t>(plane)), win(static_cast<size_t>(w));
    std::vector<int> candidates;
    candidates.reserve(channels);
    for (int64_t y = y0; y < y1; ++y) {
      auto* dst = reinterpret_cast<int32_t*>(reinterpret_cast<uint8_t*>(out) + y * out_stride);
      // Rows with the same source rows and weight are the same row.
      if (y > y0 && ys.i0[y] == ys.i0[y - 1] && ys.w1[y] == ys.w1[y - 1]) {
        std::memcpy(dst, reinterpret_cast<uint8_t*>(dst) - out_stride, out_width * 4);
        continue;
      }
      const int wb = ys.w1[y];
      rows.upsample_vertical(&q[static_cast<size_t>(ys.i0[y] * plane)],
                             &q[static_cast<size_t>(ys.i1[y] * plane)], kLerpOne - wb, wb, r.data(),
                             static_cast<int>(plane));
      rows.argmax_i32(r.data(), w, channels, win.data(), static_cast<int>(w));
      HorizontalRow(r.data(), w, channels, win.data(), runs, xs, candidates, dst);
    }
  });
}

}  // namespace coreseg
