// Small helpers the image-level kernels share: row addressing, dispatch on
// the label element type, and the band size for the thread pool.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels.h"

namespace coreseg {

template <typename T>
inline const T* LabelRow(const LabelMap& labels, int64_t y) {
  return reinterpret_cast<const T*>(labels.data + y * labels.row_stride);
}

// Calls f(T{}) with T the label map's element type.
template <typename F>
inline void DispatchLabelType(LabelType type, F&& f) {
  switch (type) {
    case LabelType::kUInt8: f(uint8_t{}); break;
    case LabelType::kUInt16: f(uint16_t{}); break;
    case LabelType::kInt32: f(int32_t{}); break;
  }
}

// Rows per band so that a band holds at least ~256K pixels: at memory speed
// a smaller band takes less time than waking a thread (~10-20 us), so a
// model-sized 448x448 map runs on the calling thread alone.
inline int64_t RowGrain(int64_t width) {
  return std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, width));
}

}  // namespace coreseg
