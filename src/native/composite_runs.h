// composite's runs: a label row cut into runs of equal labels, in output
// pixels, each drawn with its class's blend pattern; and the outline pixels
// and ranges found from them. Used by composite.cc only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "row.h"

namespace coreseg {
namespace composite {

// The output columns of each label column: label column sx covers output
// x in [begin[sx], begin[sx + 1]) (empty when the label map is wider).
inline std::vector<int64_t> ColumnStarts(const std::vector<int32_t>& xmap, int64_t src_width) {
  std::vector<int64_t> begin(src_width + 1, static_cast<int64_t>(xmap.size()));
  for (int64_t x = static_cast<int64_t>(xmap.size()) - 1; x >= 0; --x) begin[xmap[x]] = x;
  for (int64_t sx = src_width - 1; sx >= 0; --sx) begin[sx] = std::min(begin[sx], begin[sx + 1]);
  return begin;
}

// One class's blend terms as kPatternBytes repeating every `channels`
// bytes (BlendPatternRowFn), alpha 0 on the image's alpha channel so it
// passes through.
struct Pattern {
  uint16_t keep[kPatternBytes], add[kPatternBytes];
  bool clear;  // alpha 0 everywhere: the image shows through unchanged
};

inline Pattern MakePattern(uint32_t color, uint32_t alpha, int channels) {
  Pattern p;
  uint8_t c[4], a[4];
  std::memcpy(c, &color, 4);
  std::memcpy(a, &alpha, 4);
  for (int i = 0; i < kPatternBytes; ++i) {
    const int ch = i % channels;
    p.keep[i] = static_cast<uint16_t>(255 - a[ch]);
    p.add[i] = static_cast<uint16_t>(c[ch] * a[ch] + 128);
  }
  p.clear = a[0] == 0 && a[1] == 0 && a[2] == 0;
  return p;
}

// A run of output pixels [x0, x1) drawn with one pattern.
struct Run {
  int64_t x0, x1;
  int32_t pattern;
};

// The patterns of the classes a band meets, made on first use (palettes
// can have 65536 entries; a band meets a few).
class Patterns {
 public:
  Patterns(const std::vector<uint32_t>& colors, const std::vector<uint32_t>& alphas, int channels)
      : colors_(colors), alphas_(alphas), channels_(channels), slot_(colors.size(), -1) {}
  int32_t Of(uint32_t v) {
    if (slot_[v] < 0) {
      slot_[v] = static_cast<int32_t>(patterns_.size());
      patterns_.push_back(MakePattern(colors_[v], alphas_[v], channels_));
    }
    return slot_[v];
  }
  // A pattern of no class (the outline's).
  int32_t Add(const Pattern& p) {
    patterns_.push_back(p);
    return static_cast<int32_t>(patterns_.size() - 1);
  }
  const Pattern& operator[](int32_t i) const { return patterns_[i]; }

 private:
  const std::vector<uint32_t>& colors_;
  const std::vector<uint32_t>& alphas_;
  int channels_;
  std::vector<int32_t> slot_;
  std::vector<Pattern> patterns_;
};

// The runs of equal labels of one label row, in output pixels, and the
// output x whose right neighbour's label differs (for outlines).
template <typename T>
void RowRuns(const T* lrow, int64_t src_width, const std::vector<int64_t>& begin,
             bool all_visible, uint32_t n, Patterns* patterns, bool find_right, std::vector<Run>* runs, std::vector<int32_t>* right) {
  runs->clear();
  right->clear();
  // Label columns that cover no output pixel (a map wider than the image)
  // are skipped: runs and right neighbours are those of the output. A map
  // no wider than the image has none, and its scan is a plain compare.
  auto visible = [&](int64_t sx) { return begin[sx + 1] > begin[sx]; };
  int64_t sx = 0;
  while (sx < src_width) {
    if (!all_visible && !visible(sx)) {
      ++sx;
      continue;
    }
    const T value = lrow[sx];
    int64_t end = sx + 1;
    if (all_visible) {
      while (end < src_width && lrow[end] == value) ++end;
    } else {
      while (end < src_width && (!visible(end) || lrow[end] == value)) ++end;
    }
    uint32_t v = static_cast<uint32_t>(value);
    if (v > n) v = n;
    runs->push_back({begin[sx], begin[end], patterns->Of(v)});
    // A visible column with another label follows: the run's last pixel
    // differs from its right neighbour.
    if (find_right && end < src_width) right->push_back(static_cast<int32_t>(begin[end] - 1));
    sx = end;
  }
}

// An opaque outline pixel is the outline colour whatever was blended
// under it, so the outline colour blended straight from the image gives
// the same bytes as blending it over the class: each run's last pixel
// whose right neighbour differs (all runs but the row's last) becomes a
// run of the outline pattern, and the band's rows need no outline pass.
inline void SplitRightPixels(int32_t outline_pattern, std::vector<Run>* runs, std::vector<Run>* split) {
  split->clear();
  for (size_t i = 0; i < runs->size(); ++i) {
    const Run& r = (*runs)[i];
    if (i + 1 == runs->size()) {
      split->push_back(r);
      break;
    }
    if (r.x1 - 1 > r.x0) split->push_back({r.x0, r.x1 - 1, r.pattern});
    split->push_back({r.x1 - 1, r.x1, outline_pattern});
  }
  runs->swap(*split);
}

// Output ranges [x0, x1) to outline on the last row of a band of equal
// label rows: the columns whose label differs below, joined with the
// pixels whose right neighbour differs; both are in order, and each pixel
// appears once. Columns are scanned in stretches (equal below, then
// differing below) with plain compares.
template <typename T>
void OutlineRanges(const T* lrow, const T* next, int64_t src_width, const std::vector<int64_t>& begin,
                   const std::vector<int32_t>& right, std::vector<std::pair<int64_t, int64_t>>* ranges) {
  ranges->clear();
  size_t r = 0;
  int64_t sx = 0;
  while (true) {
    int64_t e = sx;
    while (e < src_width && lrow[e] == next[e]) ++e;
    // Right pixels over the stretch equal below are ranges of their own.
    const int64_t x0 = begin[e];
    for (; r < right.size() && right[r] < x0; ++r) {
      if (!ranges->empty() && ranges->back().second == right[r])
        ranges->back().second = right[r] + 1;
      else
        ranges->emplace_back(right[r], right[r] + 1);
    }
    if (e == src_width) break;
    sx = e;
    while (sx < src_width && lrow[sx] != next[sx]) ++sx;
    // The differing stretch's pixels hold its right pixels already.
    const int64_t x1 = begin[sx];
    while (r < right.size() && right[r] < x1) ++r;
    if (x1 <= x0) continue;  // columns that cover no output pixel
    if (!ranges->empty() && ranges->back().second == x0)
      ranges->back().second = x1;
    else
      ranges->emplace_back(x0, x1);
  }
}

}  // namespace composite
}  // namespace coreseg
