// Ground truth and scoring: decode_colors (colour-coded maps to class ids),
// confusion_matrix and class_histogram.
//
// Segmentation maps are long runs of one class, so each loop keeps the last
// value (or pair) and its count in registers and only touches the table or
// the histogram when it changes: no store-to-load stalls on one counter, and
// the colour hash is looked up once per run, not once per pixel. These
// loops have no SIMD twins: their cost is the branch on "same as before".
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {
namespace {

// Open addressing, power-of-two size, at most 1/4 full.
class ColorTable {
 public:
  explicit ColorTable(const std::vector<uint64_t>& keys) {
    size_t size = 16;
    while (size < keys.size() * 4) size <<= 1;
    mask_ = size - 1;
    keys_.assign(size, kEmpty);
    ids_.assign(size, -1);
    for (size_t i = 0; i < keys.size(); ++i) {
      size_t slot = Hash(keys[i]);
      while (keys_[slot] != kEmpty && keys_[slot] != keys[i]) slot = (slot + 1) & mask_;
      if (keys_[slot] == kEmpty) {  // first entry wins; duplicates are refused upstream
        keys_[slot] = keys[i];
        ids_[slot] = static_cast<int32_t>(i);
      }
    }
  }

  int32_t Find(uint64_t key) const {
    size_t slot = Hash(key);
    while (keys_[slot] != kEmpty) {
      if (keys_[slot] == key) return ids_[slot];
      slot = (slot + 1) & mask_;
    }
    return -1;
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no 48-bit colour packs to this
  size_t Hash(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_; }
  size_t mask_;
  std::vector<uint64_t> keys_;
  std::vector<int32_t> ids_;
};

template <typename T>
inline uint64_t PackColor(const T* p) {
  return static_cast<uint64_t>(p[0]) | (static_cast<uint64_t>(p[1]) << 16) | (static_cast<uint64_t>(p[2]) << 32);
}

template <typename T>
int64_t DecodeT(const ColorMap& map, const std::vector<uint64_t>& keys, int32_t unknown, int32_t* out,
                ptrdiff_t out_stride) {
  const ColorTable table(keys);
  std::atomic<int64_t> missing{0};
  ParallelFor(map.height, RowGrain(map.width), [&](int64_t y0, int64_t y1) {
    int64_t local_missing = 0;
    for (int64_t y = y0; y < y1; ++y) {
      const T* row = reinterpret_cast<const T*>(map.data + y * map.row_stride);
      int32_t* dst = reinterpret_cast<int32_t*>(reinterpret_cast<uint8_t*>(out) + y * out_stride);
      uint64_t last = ~uint64_t{0};
      int32_t id = unknown;
      for (int64_t x = 0; x < map.width; ++x) {
        const uint64_t key = PackColor(row + 3 * x);
        if (key != last) {
          last = key;
          const int32_t found = table.Find(key);
          id = found >= 0 ? found : unknown;
        }
        dst[x] = id;
        local_missing += id == unknown;
      }
    }
    missing += local_missing;
  });
  return missing.load();
}

// The first out-of-range value in raster order (gt before pred within a
// pixel), whichever thread finds it: the error does not depend on timing.
class BadValue {
 public:
  bool Found() const { return first_ < kNone; }
  // Rows after the first bad one need no scan.
  bool Past(int64_t y) const { return y > first_.load(std::memory_order_relaxed) / kRowScale; }
  void Record(int64_t y, int64_t x, int which, int64_t value) {
    const int64_t position = y * kRowScale + x * 2 + which;
    std::lock_guard<std::mutex> lock(mu_);
    if (position < first_) first_ = position, which_ = which, value_ = value;
  }
  int which() const { return which_; }
  int64_t value() const { return value_; }

 private:
  static constexpr int64_t kNone = INT64_MAX;
  static constexpr int64_t kRowScale = int64_t{1} << 34;  // room for 2 * x + which
  std::mutex mu_;
  std::atomic<int64_t> first_{kNone};
  int which_ = 0;
  int64_t value_ = 0;
};

// Counts of (a, b) pairs into a histogram of `columns` per value of a, run
// by run (b absent: one column). Stops at the first out-of-range value.
template <typename A, typename B>
void PairCounts(const LabelMap& a, const LabelMap* b, int64_t rows_of_a, int64_t columns, int64_t ignore,
                bool use_ignore, int64_t* hist, BadValue* bad) {
  const int64_t bins = rows_of_a * columns;
  std::mutex merge;
  ParallelFor(a.height, RowGrain(a.width), [&](int64_t y0, int64_t y1) {
    std::vector<int64_t> local(static_cast<size_t>(bins), 0);
    for (int64_t y = y0; y < y1 && !bad->Past(y); ++y) {
      const A* ra = LabelRow<A>(a, y);
      const B* rb = b != nullptr ? LabelRow<B>(*b, y) : nullptr;
      int64_t run_a = 0, run_b = 0, run = 0, start = 0;
      for (int64_t x = 0; x <= a.width; ++x) {
        int64_t va = 0, vb = 0;
        if (x < a.width) {
          va = static_cast<int64_t>(ra[x]);
          vb = rb != nullptr ? static_cast<int64_t>(rb[x]) : 0;
          if (run > 0 && va == run_a && vb == run_b) {
            ++run;
            continue;
          }
        }
        if (run > 0 && !(use_ignore && run_a == ignore)) {
          if (run_a < 0 || run_a >= rows_of_a) {
            bad->Record(y, start, 0, run_a);
            break;
          }
          if (run_b < 0 || run_b >= columns) {
            bad->Record(y, start, 1, run_b);
            break;
          }
          local[static_cast<size_t>(run_a * columns + run_b)] += run;
        }
        run_a = va, run_b = vb, run = 1, start = x;
      }
    }
    if (bad->Found()) return;  // the counts are discarded
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t i = 0; i < bins; ++i) hist[i] += local[static_cast<size_t>(i)];
  });
}

}  // namespace

int64_t DecodeColors(const ColorMap& map, const void* colors, int64_t num_colors, int32_t unknown,
                     int32_t* out, ptrdiff_t out_stride) {
  std::vector<uint64_t> keys(static_cast<size_t>(num_colors));
  for (int64_t i = 0; i < num_colors; ++i)
    keys[i] = map.sixteen_bit ? PackColor(static_cast<const uint16_t*>(colors) + 3 * i)
                              : PackColor(static_cast<const uint8_t*>(colors) + 3 * i);
  return map.sixteen_bit ? DecodeT<uint16_t>(map, keys, unknown, out, out_stride)
                         : DecodeT<uint8_t>(map, keys, unknown, out, out_stride);
}

bool ConfusionMatrix(const LabelMap& gt, const LabelMap& pred, int64_t num_classes, int64_t ignore_index,
                     bool use_ignore, int64_t* out, int* bad_array, int64_t* bad_value) {
  BadValue bad;
  std::fill(out, out + num_classes * num_classes, 0);
  DispatchLabelType(gt.type, [&](auto ta) {
    DispatchLabelType(pred.type, [&](auto tb) {
      PairCounts<decltype(ta), decltype(tb)>(gt, &pred, num_classes, num_classes, ignore_index, use_ignore, out,
                                             &bad);
    });
  });
  if (bad.Found()) *bad_array = bad.which(), *bad_value = bad.value();
  return !bad.Found();
}

bool ClassHistogram(const LabelMap& labels, int64_t num_classes, int64_t* out, int64_t* bad_value) {
  BadValue bad;
  std::fill(out, out + num_classes, 0);
  DispatchLabelType(labels.type, [&](auto t) {
    PairCounts<decltype(t), uint8_t>(labels, nullptr, num_classes, 1, 0, false, out, &bad);
  });
  if (bad.Found()) *bad_value = bad.value();
  return !bad.Found();
}

}  // namespace coreseg
