// argmax: a model's logits [C, h, w] (float32 or float16) to an int32 class
// map, read in place (no copy of the logits), one row band per thread.
#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {

void Argmax(const Logits& logits, int32_t* out, ptrdiff_t out_stride) {
  const RowFunctions& rows = ActiveRows();
  const int width = static_cast<int>(logits.width);
  const int channels = static_cast<int>(logits.channels);
  // Bands sized by the values read, not the pixels written.
  const int64_t grain = RowGrain(logits.width * logits.channels);
  ParallelFor(logits.height, grain, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const uint8_t* row = logits.data + y * logits.row_stride;
      int32_t* dst = reinterpret_cast<int32_t*>(reinterpret_cast<uint8_t*>(out) + y * out_stride);
      if (logits.half)
        rows.argmax_f16(reinterpret_cast<const uint16_t*>(row), logits.plane_stride / 2, channels,
                        dst, width);
      else
        rows.argmax_f32(reinterpret_cast<const float*>(row), logits.plane_stride / 4, channels, dst,
                        width);
    }
  });
}

}  // namespace coreseg
