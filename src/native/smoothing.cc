// Temporal smoothing of a frame sequence: an exponential moving average of
// per-class scores, and hysteresis of class labels (row.h gives the rules).
// One row band per thread; the state planes are updated in place.
#include <atomic>
#include <vector>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {

void EmaUpdate(const Logits& scores, float alpha, float* state) {
  const RowFunctions& rows = ActiveRows();
  const int width = static_cast<int>(scores.width);
  // One task per (class, row): plane c, row y is task c * height + y.
  ParallelFor(scores.channels * scores.height, RowGrain(scores.width), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c = t / scores.height, y = t % scores.height;
      const uint8_t* row = scores.data + c * scores.plane_stride + y * scores.row_stride;
      float* s = state + t * scores.width;
      if (scores.half)
        rows.ema_f16(reinterpret_cast<const uint16_t*>(row), alpha, s, width);
      else
        rows.ema_f32(reinterpret_cast<const float*>(row), alpha, s, width);
    }
  });
}

namespace {

float ScoreAt(const Logits& scores, int64_t c, int64_t y, int64_t x) {
  const uint8_t* p = scores.data + c * scores.plane_stride + y * scores.row_stride;
  if (scores.half) return HalfToFloat(reinterpret_cast<const uint16_t*>(p)[x]);
  return reinterpret_cast<const float*>(p)[x];
}

}  // namespace

bool HysteresisUpdate(const int32_t* labels, ptrdiff_t labels_stride, int64_t width, int64_t height,
                      const Logits* scores, float margin, int frames, int32_t* state, int64_t* bad_value) {
  const RowFunctions& rows = ActiveRows();
  const int64_t plane = width * height;
  auto label_row = [&](int64_t y) {
    return reinterpret_cast<const int32_t*>(reinterpret_cast<const uint8_t*>(labels) + y * labels_stride);
  };
  if (scores) {
    // Every label and shown class must have a score: checked for the whole
    // frame before any pixel changes, so a refused frame leaves the state
    // as it was.
    std::atomic<bool> bad{false};
    std::atomic<int64_t> bad_label{0};
    ParallelFor(height, RowGrain(width), [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1 && !bad.load(std::memory_order_relaxed); ++y) {
        const int32_t* x = label_row(y);
        const int32_t* shown = state + y * width;
        for (int64_t i = 0; i < width; ++i) {
          const int64_t a = x[i], b = shown[i];
          if (a < 0 || a >= scores->channels || b < 0 || b >= scores->channels) {
            bad_label.store(a < 0 || a >= scores->channels ? a : b);
            bad.store(true);
            return;
          }
        }
      }
    });
    if (bad.load()) {
      *bad_value = bad_label.load();
      return false;
    }
  }
  ParallelFor(height, RowGrain(width), [&](int64_t y0, int64_t y1) {
    // The score gap of each pixel is a gather across planes: computed here
    // in scalar code for every backend, one row at a time.
    std::vector<float> gap(scores ? width : 0);
    for (int64_t y = y0; y < y1; ++y) {
      const int32_t* x = label_row(y);
      int32_t* shown = state + y * width;
      if (scores) {
        for (int64_t i = 0; i < width; ++i) gap[i] = ScoreAt(*scores, x[i], y, i) - ScoreAt(*scores, shown[i], y, i);
      }
      rows.hysteresis(x, scores ? gap.data() : nullptr, margin, frames, shown, shown + plane,
                      shown + 2 * plane, static_cast<int>(width));
    }
  });
  return true;
}

}  // namespace coreseg
