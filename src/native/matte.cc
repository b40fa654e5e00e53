// upsample_matte: the alpha matte at the photo's resolution from a model's
// per-class probabilities, on exactly upsample_argmax's grid and fixed
// point (upsample.cc): scores quantised to 0..kScoreOne, combined per
// pixel (sum clamped to kScoreOne, or max), interpolated with kLerpBits
// weights (exact integers), and rounded to a byte by MatteAlpha (row.h).
// The numpy twin is coreseg.reference.upsample_matte.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {
namespace {

// upsample_argmax's quantisation (upsample.cc's QuantiseScore): NaN and
// negatives are 0, above 1 is 1; p * 32767 is exact in double, and the
// floor of a positive value its truncation (no libm call: it vectorises).
inline int32_t QuantiseProbability(float p) {
  const double v = p > 0.0f ? (p < 1.0f ? p : 1.0f) : 0.0f;
  return static_cast<int32_t>(v * kScoreOne + 0.5);
}

// A run of output columns that interpolate the same two source columns
// (i and i + 1, or i twice at the right edge, where the plane's padding
// repeats it).
struct ColumnRun {
  int32_t begin, end, i;
};

std::vector<ColumnRun> RunsOf(const LerpAxis& xs) {
  std::vector<ColumnRun> runs;
  for (int32_t x = 0; x < static_cast<int32_t>(xs.i0.size()); ++x) {
    if (runs.empty() || runs.back().i != xs.i0[x])
      runs.push_back({x, x + 1, xs.i0[x]});
    else
      runs.back().end = x + 1;
  }
  return runs;
}

// The output columns of a pair of source rows: spans where all four
// corners are one value (most of a matte: 0 or 1) are that value's byte
// everywhere (fill >= 0); the others are computed (fill < 0).
struct Span {
  int32_t begin, end;
  int fill;
};

void SpansOf(const int16_t* qa, const int16_t* qb, const std::vector<ColumnRun>& runs, std::vector<Span>* spans) {
  spans->clear();
  for (const ColumnRun& r : runs) {
    const int16_t c = qa[r.i];
    const bool flat = qa[r.i + 1] == c && qb[r.i] == c && qb[r.i + 1] == c;
    const int fill = flat ? MatteAlpha(static_cast<uint32_t>(c) << (2 * kLerpBits)) : -1;
    if (!spans->empty() && spans->back().fill == fill && spans->back().end == r.begin)
      spans->back().end = r.end;
    else
      spans->push_back({r.begin, r.end, fill});
  }
}

}  // namespace

void UpsampleMatte(const Logits& planes, bool max_reduce, uint8_t* out, int64_t out_width, int64_t out_height,
                   ptrdiff_t out_stride) {
  if (out_width == 0 || out_height == 0) return;
  const RowFunctions& rows = ActiveRows();
  const int64_t w = planes.width, h = planes.height, channels = planes.channels;
  // The combined plane, each row padded by a copy of its last value (the
  // columns row reads one past the last x0, with weight 0).
  const int64_t stride = w + 1;
  std::vector<int16_t> q(static_cast<size_t>(h * stride));
  ParallelFor(h, RowGrain(w * channels), [&](int64_t y0, int64_t y1) {
    std::vector<int32_t> acc(static_cast<size_t>(w)), v(static_cast<size_t>(w));
    std::vector<float> f(planes.half ? static_cast<size_t>(w) : 0);
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t c = 0; c < channels; ++c) {
        const uint8_t* row = planes.data + c * planes.plane_stride + y * planes.row_stride;
        const float* p = reinterpret_cast<const float*>(row);
        if (planes.half) {
          for (int64_t x = 0; x < w; ++x) f[x] = HalfToFloat(reinterpret_cast<const uint16_t*>(row)[x]);
          p = f.data();
        }
        // Plain loops over a row, so they vectorise.
        int32_t* dst = c == 0 ? acc.data() : v.data();
        for (int64_t x = 0; x < w; ++x) dst[x] = QuantiseProbability(p[x]);
        if (c == 0) continue;
        if (max_reduce)
          for (int64_t x = 0; x < w; ++x) acc[x] = std::max(acc[x], v[x]);
        else
          for (int64_t x = 0; x < w; ++x) acc[x] += v[x];  // < 2^16 * 32767: no overflow
      }
      int16_t* dst = &q[static_cast<size_t>(y * stride)];
      for (int64_t x = 0; x < w; ++x) dst[x] = static_cast<int16_t>(std::min<int32_t>(acc[x], kScoreOne));
      dst[w] = dst[w - 1];
    }
  });

  const LerpAxis xs = ComputeLerpAxis(w, out_width), ys = ComputeLerpAxis(h, out_height);
  const std::vector<ColumnRun> runs = RunsOf(xs);
  ParallelFor(out_height, RowGrain(out_width), [&](int64_t y0, int64_t y1) {
    // Per pair of source rows (an upscale's output rows share them), the
    // spans, and the interpolated source rows where they are needed.
    std::vector<int32_t> ha(static_cast<size_t>(out_width)), hb(static_cast<size_t>(out_width));
    std::vector<Span> spans;
    int64_t pair0 = -1, pair1 = -1;
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t i0 = ys.i0[y], i1 = ys.i1[y];
      if (i0 != pair0 || i1 != pair1) {
        const int16_t* qa = &q[static_cast<size_t>(i0 * stride)];
        const int16_t* qb = &q[static_cast<size_t>(i1 * stride)];
        SpansOf(qa, qb, runs, &spans);
        for (const Span& s : spans) {
          if (s.fill >= 0) continue;
          const int n = s.end - s.begin;
          rows.matte_columns(qa, xs.i0.data() + s.begin, xs.w1.data() + s.begin, ha.data() + s.begin, n);
          rows.matte_columns(qb, xs.i0.data() + s.begin, xs.w1.data() + s.begin, hb.data() + s.begin, n);
        }
        pair0 = i0, pair1 = i1;
      }
      uint8_t* dst = out + y * out_stride;
      for (const Span& s : spans) {
        if (s.fill >= 0)
          std::memset(dst + s.begin, s.fill, static_cast<size_t>(s.end - s.begin));
        else
          rows.matte_rows(ha.data() + s.begin, hb.data() + s.begin, ys.w1[y], dst + s.begin, s.end - s.begin);
      }
    }
  });
}

}  // namespace coreseg
