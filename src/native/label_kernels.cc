// render_mask, colorize and resize_labels over whole label maps.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {

std::vector<int32_t> NearestIndexMap(int64_t src, int64_t dst) {
  std::vector<int32_t> map(static_cast<size_t>(dst));
  const double scale = static_cast<double>(src) / static_cast<double>(dst);
  double f = 0.5 * scale;
  for (int64_t i = 0; i < dst; ++i) {
    map[i] = static_cast<int32_t>(std::min<int64_t>(static_cast<int64_t>(std::floor(f)), src - 1));
    f += scale;
  }
  return map;
}

namespace {

// A colour table indexed by id, drawn by the colorize rows (which skip the
// lookup on uniform runs), beats comparing every pixel with each id: use
// one whenever it stays small (16 KiB, L1-sized), or whenever there are
// many ids and it fits 256 KiB. Huge or negative ids are compared.
constexpr int64_t kSmallTableIds = 1 << 12;
constexpr int64_t kMaxTableIds = 1 << 16;
constexpr size_t kMaxComparedIds = 8;

template <typename T>
void RenderMaskT(const LabelMap& labels, const std::vector<int32_t>& ids,
                 uint32_t color, uint8_t* out, ptrdiff_t out_stride) {
  const LabelRowFunctions<T>& rows = ActiveRows().labels<T>();
  const int width = static_cast<int>(labels.width);
  ParallelFor(labels.height, RowGrain(labels.width), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y)
      rows.render_mask(LabelRow<T>(labels, y), ids.data(), static_cast<int>(ids.size()),
                       color, out + y * out_stride, width);
  });
}

}  // namespace

void RenderMask(const LabelMap& labels, const std::vector<int64_t>& selected,
                uint32_t color, uint8_t* out, ptrdiff_t out_stride) {
  // Only ids the label type can hold can match; the rest are dropped.
  int64_t lo = 0, hi = 0;
  switch (labels.type) {
    case LabelType::kUInt8: lo = 0, hi = 255; break;
    case LabelType::kUInt16: lo = 0, hi = 65535; break;
    case LabelType::kInt32: lo = INT32_MIN, hi = INT32_MAX; break;
  }
  std::vector<int32_t> ids;
  for (int64_t s : selected)
    if (s >= lo && s <= hi) ids.push_back(static_cast<int32_t>(s));
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());

  const bool table_fits = !ids.empty() && ids.front() >= 0 &&
                          (ids.back() < kSmallTableIds ||
                           (ids.size() > kMaxComparedIds && ids.back() < kMaxTableIds));
  if (table_fits) {
    std::vector<uint32_t> table(static_cast<size_t>(ids.back()) + 1, 0);
    for (int32_t id : ids) table[id] = color;
    Colorize(labels, table, out, out_stride);
    return;
  }
  DispatchLabelType(labels.type, [&](auto tag) {
    RenderMaskT<decltype(tag)>(labels, ids, color, out, out_stride);
  });
}

void Colorize(const LabelMap& labels, const std::vector<uint32_t>& palette,
              uint8_t* out, ptrdiff_t out_stride) {
  // One extra, transparent entry for every label outside the palette.
  std::vector<uint32_t> table(palette);
  table.push_back(0);
  const uint32_t n = static_cast<uint32_t>(palette.size());
  const int width = static_cast<int>(labels.width);
  DispatchLabelType(labels.type, [&](auto tag) {
    using T = decltype(tag);
    const LabelRowFunctions<T>& rows = ActiveRows().labels<T>();
    ParallelFor(labels.height, RowGrain(labels.width), [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y)
        rows.colorize(LabelRow<T>(labels, y), table.data(), n, out + y * out_stride, width);
    });
  });
}

void ResizeLabels(const LabelMap& labels, uint8_t* out, int64_t out_width,
                  int64_t out_height, ptrdiff_t out_stride) {
  if (out_width == 0 || out_height == 0) return;
  const std::vector<int32_t> xmap = NearestIndexMap(labels.width, out_width);
  const std::vector<int32_t> ymap = NearestIndexMap(labels.height, out_height);
  DispatchLabelType(labels.type, [&](auto tag) {
    using T = decltype(tag);
    const LabelRowFunctions<T>& rows = ActiveRows().labels<T>();
    const size_t row_bytes = static_cast<size_t>(out_width) * sizeof(T);
    ParallelFor(out_height, RowGrain(out_width), [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        uint8_t* dst = out + y * out_stride;
        // Upscaling repeats source rows: copy the row just made.
        if (y > y0 && ymap[y] == ymap[y - 1])
          std::memcpy(dst, dst - out_stride, row_bytes);
        else
          rows.resize_labels(LabelRow<T>(labels, ymap[y]), xmap.data(),
                             reinterpret_cast<T*>(dst), static_cast<int>(out_width));
      }
    });
  });
}

}  // namespace coreseg
