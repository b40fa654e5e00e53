// Ground truth and scoring: decode_colors (colour-coded maps to class ids),
// confusion_matrix and class_histogram.
//
// decode_colors keeps the last colour and its id: colour-coded maps are long
// runs of one class, so the hash is looked up once per run, not per pixel.
// The counting loops are branch-free instead (see PairCounts): in real
// predictions runs are short, and a branch per run boundary costs more than
// it saves. These loops have no SIMD twins: a hash lookup and a histogram
// increment have no vector form worth its complexity here.
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
  // Rows after the first bad one need no scan (none are, before one is
  // found: the sentinel is not a position).
  bool Past(int64_t y) const {
    const int64_t first = first_.load(std::memory_order_relaxed);
    return first != kNone && y > first / kRowScale;
  }
  void Record(int64_t y, int64_t x, int which, int64_t value) {
    const int64_t position = y * kRowScale + x * 2 + which;
    std::lock_guard<std::mutex> lock(mu_);
    if (position < first_) first_ = position, which_ = which, value_ = value;
  }
  int which() const { return which_; }
  int64_t value() const { return value_; }

 private:
  static constexpr int64_t kNone = INT64_MAX;
  // Room for 2 * x + which; y * kRowScale fits int64 for every y below
  // the side limit (2^24, bindings.cc).
  static constexpr int64_t kRowScale = int64_t{1} << 34;
  std::mutex mu_;
  std::atomic<int64_t> first_{kNone};
  int which_ = 0;
  int64_t value_ = 0;
};

// One row of PairCounts. The flags are template parameters so the inner
// loop carries no test that is the same for every pixel.
template <typename A, typename B, bool kPairs, bool kIgnore>
bool CountRow(const A* ra, const B* rb, int64_t width, uint64_t ua, uint64_t ub, int64_t columns,
              int64_t ignore, int64_t spare, uint32_t* const* sub) {
  uint64_t out_of_range = 0;
  auto bin = [&](int64_t x) -> int64_t {
    const int64_t va = static_cast<int64_t>(ra[x]);
    const int64_t vb = kPairs ? static_cast<int64_t>(rb[x]) : 0;
    const bool out = (static_cast<uint64_t>(va) >= ua) | (static_cast<uint64_t>(vb) >= ub);
    const bool ignored = kIgnore && va == ignore;
    out_of_range |= out & !ignored;
    return (out | ignored) ? spare : va * columns + vb;
  };
  int64_t x = 0;
  for (; x + 4 <= width; x += 4) {
    ++sub[0][bin(x)];
    ++sub[1][bin(x + 1)];
    ++sub[2][bin(x + 2)];
    ++sub[3][bin(x + 3)];
  }
  for (; x < width; ++x) ++sub[0][bin(x)];
  return out_of_range != 0;
}

// Counts of (a, b) pairs into a histogram of `columns` per value of a (b
// absent: one column). Branch-free per pixel: an ignored or out-of-range
// pixel goes to a spare bin, and four interleaved sub-histograms break the
// load-add-store chain when neighbours hit the same bin (they usually do).
// They count in uint32 (half the cache of int64) and are added into int64
// every 2^30 pixels at most. A row that had an out-of-range value is
// scanned again for the first one.
// Tables larger than this many bins are counted straight into the output,
// on one thread: banded tables (24 bytes a bin per band) would take many
// times the output's memory (2 GB per band for 8192 classes).
constexpr int64_t kMaxBandedBins = int64_t{1} << 17;

template <typename A, typename B>
void DirectCounts(const LabelMap& a, const LabelMap* b, int64_t rows_of_a, int64_t columns, int64_t ignore,
                  bool use_ignore, int64_t* hist, BadValue* bad) {
  const uint64_t ua = static_cast<uint64_t>(rows_of_a), ub = static_cast<uint64_t>(columns);
  for (int64_t y = 0; y < a.height; ++y) {
    const A* ra = LabelRow<A>(a, y);
    const B* rb = b != nullptr ? LabelRow<B>(*b, y) : nullptr;
    for (int64_t x = 0; x < a.width; ++x) {
      const int64_t va = static_cast<int64_t>(ra[x]);
      const int64_t vb = rb != nullptr ? static_cast<int64_t>(rb[x]) : 0;
      if (use_ignore && va == ignore) continue;
      if (static_cast<uint64_t>(va) >= ua) return bad->Record(y, x, 0, va);
      if (static_cast<uint64_t>(vb) >= ub) return bad->Record(y, x, 1, vb);
      ++hist[va * columns + vb];
    }
  }
}

template <typename A, typename B>
void PairCounts(const LabelMap& a, const LabelMap* b, int64_t rows_of_a, int64_t columns, int64_t ignore,
                bool use_ignore, int64_t* hist, BadValue* bad) {
  const int64_t bins = rows_of_a * columns;
  if (bins > kMaxBandedBins) return DirectCounts<A, B>(a, b, rows_of_a, columns, ignore, use_ignore, hist, bad);
  const uint64_t ua = static_cast<uint64_t>(rows_of_a), ub = static_cast<uint64_t>(columns);
  const auto count_row = b != nullptr ? (use_ignore ? CountRow<A, B, true, true> : CountRow<A, B, true, false>)
                                      : (use_ignore ? CountRow<A, B, false, true> : CountRow<A, B, false, false>);
  std::mutex merge;
  // Bands of at least ~128K pixels: each band clears and merges its tables.
  ParallelFor(a.height, 2 * RowGrain(a.width), [&](int64_t y0, int64_t y1) {
    const size_t stride = static_cast<size_t>(bins + 1);
    std::vector<uint32_t> tables(4 * stride, 0);
    uint32_t* sub[4] = {&tables[0], &tables[stride], &tables[2 * stride], &tables[3 * stride]};
    std::vector<int64_t> total(static_cast<size_t>(bins), 0);
    int64_t pending = 0;  // pixels counted since the last flush into `total`
    auto flush = [&] {
      for (size_t i = 0; i < static_cast<size_t>(bins); ++i)
        total[i] += int64_t{sub[0][i]} + sub[1][i] + sub[2][i] + sub[3][i];
      std::fill(tables.begin(), tables.end(), 0);
      pending = 0;
    };
    for (int64_t y = y0; y < y1 && !bad->Past(y); ++y) {
      const A* ra = LabelRow<A>(a, y);
      const B* rb = b != nullptr ? LabelRow<B>(*b, y) : nullptr;
      if (pending + a.width > (int64_t{1} << 30)) flush();  // no uint32 overflow
      pending += a.width;
      if (!count_row(ra, rb, a.width, ua, ub, columns, ignore, bins, sub)) continue;
      for (int64_t i = 0; i < a.width; ++i) {
        const int64_t va = static_cast<int64_t>(ra[i]);
        const int64_t vb = rb != nullptr ? static_cast<int64_t>(rb[i]) : 0;
        if (use_ignore && va == ignore) continue;
        if (static_cast<uint64_t>(va) >= ua) {
          bad->Record(y, i, 0, va);
          break;
        }
        if (static_cast<uint64_t>(vb) >= ub) {
          bad->Record(y, i, 1, vb);
          break;
        }
      }
      break;
    }
    if (bad->Found()) return;  // the counts are discarded
    flush();
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t i = 0; i < bins; ++i) hist[i] += total[static_cast<size_t>(i)];
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
