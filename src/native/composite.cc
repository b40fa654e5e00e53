// composite: a label map of any size blended onto a full-resolution image in
// one pass, without ever making the upscaled label map.
//
// Output rows are taken in bands whose label rows are equal (an upscaled
// map repeats each label row; flat regions repeat too). A band's label
// row is cut once into runs of equal labels, and the band is blended one
// of two ways, whichever a rough cycle count says is cheaper:
// - run by run, straight from the image with each class's repeating
//   colour (BlendPatternRowFn): no row of colours is ever expanded;
// - from a row of blend terms (BandTerms, BlendRowFn), several rows per
//   call, when the runs are many and short. The terms row is kept from
//   band to band and rewritten only where the classes changed.
// Runs of clear classes are copied. Outlines are blended over ranges
// found per label column, not per pixel.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>
#include <cstring>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {
namespace {

// The output columns of each label column: label column sx covers output
// x in [begin[sx], begin[sx + 1]) (empty when the label map is wider).
std::vector<int64_t> ColumnStarts(const std::vector<int32_t>& xmap, int64_t src_width) {
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

Pattern MakePattern(uint32_t color, uint32_t alpha, int channels) {
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

// BlendPatternRowFn's blend of a few pixels (outline pixels, short runs),
// inline: with the channel count known, each pixel is unrolled.
template <int kChannels>
inline void BlendFewPixels(const uint8_t* src, const Pattern& p, int64_t pixels, uint8_t* dst) {
  for (int64_t x = 0; x < pixels; ++x, src += kChannels, dst += kChannels)
    for (int c = 0; c < kChannels; ++c)
      dst[c] = BlendPatternByte(src[c], p.keep[c], p.add[c]);
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
void SplitRightPixels(int32_t outline_pattern, std::vector<Run>* runs, std::vector<Run>* split) {
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

// A band's runs as one row of blend terms (BlendRowFn): a row of many
// short runs is then blended in one call, several rows at a time, instead
// of one call per run per row. The terms row is kept from band to band and
// only pixels whose pattern changed are rewritten, so following a map
// whose rows differ by a few boundary pixels costs little.
class BandTerms {
 public:
  // Rows per BlendRowFn call: each term vector is loaded once for them.
  static constexpr int64_t kRowsPerCall = 8;

  BandTerms(int64_t width, int channels)
      : width_(width), channels_(channels),
        keep_(static_cast<size_t>(width * channels)), add_(keep_.size()) {}

  // Makes the terms hold `runs` and returns true when blending the band
  // from them is cheaper than run by run, by a rough cycle count:
  // run by run, a call per run per row (~40 cycles); from the terms,
  // rewriting the changed pixels' terms (4 bytes per byte, ~16 bytes a
  // cycle) and loading the terms once per call (~32 bytes a cycle).
  bool Update(const std::vector<Run>& runs, const Patterns& patterns, int64_t band_rows) {
    int64_t calls = 0, bytes = 0;
    for (const Run& r : runs)
      if (!patterns[r.pattern].clear) {
        ++calls;
        bytes += (r.x1 - r.x0) * channels_;
      }
    if (calls < 2) return false;
    const int64_t changed = Changed(runs, nullptr) * channels_;
    const int64_t calls_per_row = (band_rows + kRowsPerCall - 1) / kRowsPerCall;
    const int64_t by_runs = band_rows * calls * 40;
    const int64_t by_terms = changed / 4 + calls_per_row * bytes / 8;
    if (by_terms >= by_runs) return false;
    Changed(runs, &patterns);
    filled_ = runs;
    spans_.clear();
    clear_.clear();
    for (const Run& r : runs) {
      const bool clear = patterns[r.pattern].clear;
      if (clear || spans_.empty() || clear_.back()) {
        spans_.emplace_back(r.x0, r.x1);
        clear_.push_back(clear);
      } else {
        spans_.back().second = r.x1;
      }
    }
    return true;
  }

  // Output pixel ranges [x0, x1) to blend from the terms (Clear(i) false)
  // or to copy (a clear class).
  const std::vector<std::pair<int64_t, int64_t>>& Spans() const { return spans_; }
  bool Clear(size_t span) const { return clear_[span]; }
  const uint16_t* Keep() const { return keep_.data(); }
  const uint16_t* Add() const { return add_.data(); }

 private:
  // The pixels whose pattern differs between `runs` and the terms held
  // (all of them at first); with `patterns`, their terms are rewritten.
  int64_t Changed(const std::vector<Run>& runs, const Patterns* patterns) {
    if (filled_.empty()) {
      if (patterns != nullptr)
        for (const Run& r : runs) FillRange((*patterns)[r.pattern], r.x0, r.x1);
      return width_;
    }
    // Both lists cover [0, width) in order: walk them together.
    int64_t changed = 0;
    size_t j = 0;
    for (const Run& r : runs) {
      while (j < filled_.size() && filled_[j].x1 <= r.x0) ++j;
      for (size_t k = j; k < filled_.size() && filled_[k].x0 < r.x1; ++k) {
        if (filled_[k].pattern == r.pattern) continue;
        const int64_t x0 = std::max(r.x0, filled_[k].x0), x1 = std::min(r.x1, filled_[k].x1);
        changed += x1 - x0;
        if (patterns != nullptr) FillRange((*patterns)[r.pattern], x0, x1);
      }
    }
    return changed;
  }

  // Pixels [x0, x1) get the pattern's terms: whole blocks of pixels, then
  // pixel by pixel (copies of a constant size: a few stores, no call), so
  // the pixels after x1 keep theirs.
  void FillRange(const Pattern& p, int64_t x0, int64_t x1) {
    if (channels_ == 4)
      FillRangeOf<4>(p, x0, x1);
    else
      FillRangeOf<3>(p, x0, x1);
  }

  template <int kChannels>
  void FillRangeOf(const Pattern& p, int64_t x0, int64_t x1) {
    constexpr int64_t kBlock = kChannels == 4 ? 64 : 48;  // terms of whole pixels
    static_assert(kBlock <= kPatternBytes, "a block is within the pattern");
    uint16_t* keep = keep_.data();
    uint16_t* add = add_.data();
    int64_t i = x0 * kChannels;
    const int64_t end = x1 * kChannels;
    for (; i + kBlock <= end; i += kBlock) {
      std::memcpy(keep + i, p.keep, kBlock * sizeof(p.keep[0]));
      std::memcpy(add + i, p.add, kBlock * sizeof(p.add[0]));
    }
    for (; i < end; i += kChannels) {
      std::memcpy(keep + i, p.keep, kChannels * sizeof(p.keep[0]));
      std::memcpy(add + i, p.add, kChannels * sizeof(p.add[0]));
    }
  }

  int64_t width_;
  int channels_;
  std::vector<uint16_t> keep_, add_;
  std::vector<Run> filled_;  // the runs whose terms keep_ and add_ hold
  std::vector<std::pair<int64_t, int64_t>> spans_;
  std::vector<bool> clear_;
};

template <typename T>
void CompositeT(const ImageView& image, const LabelMap& labels,
                const std::vector<uint32_t>& colors, const std::vector<uint32_t>& alphas,
                uint32_t n, const uint8_t* outline, uint8_t* out, ptrdiff_t out_stride) {
  const int64_t width = image.width, height = image.height;
  const int channels = image.channels;
  const std::vector<int32_t> xmap = NearestIndexMap(labels.width, width);
  const std::vector<int32_t> ymap = NearestIndexMap(labels.height, height);
  const std::vector<int64_t> begin = ColumnStarts(xmap, labels.width);
  bool all_visible = true;  // every label column covers an output pixel
  for (int64_t sx = 0; sx < labels.width; ++sx) all_visible = all_visible && begin[sx + 1] > begin[sx];
  const BlendPatternRowFn blend = ActiveRows().blend_pattern;
  Pattern outline_pattern{};
  const bool opaque_outline = outline != nullptr && outline[3] == 255;
  if (outline != nullptr) {
    const uint8_t oc[4] = {outline[0], outline[1], outline[2], 0};
    const uint8_t oa[4] = {outline[3], outline[3], outline[3], 0};
    uint32_t pc, pa;
    std::memcpy(&pc, oc, 4);
    std::memcpy(&pa, oa, 4);
    outline_pattern = MakePattern(pc, pa, channels);
  }
  const BlendRowFn blend_terms = ActiveRows().blend;
  const BlendPixelsRowFn blend_pixels = ActiveRows().blend_pixels;
  const size_t label_bytes = static_cast<size_t>(labels.width) * sizeof(T);
  auto draw = [&](const uint8_t* src, uint8_t* dst, int64_t x0, int64_t x1, const Pattern& p) {
    const size_t offset = static_cast<size_t>(x0 * channels), bytes = static_cast<size_t>((x1 - x0) * channels);
    if (p.clear) {
      if (src != dst) std::memcpy(dst + offset, src + offset, bytes);
    } else if (bytes < 16) {  // a pixel or a few (outlines): not worth a call
      if (channels == 4)
        BlendFewPixels<4>(src + offset, p, x1 - x0, dst + offset);
      else
        BlendFewPixels<3>(src + offset, p, x1 - x0, dst + offset);
    } else {
      blend(src + offset, p.keep, p.add, channels, dst + offset, static_cast<int>(bytes));
    }
  };

  ParallelFor(height, RowGrain(width), [&](int64_t y0, int64_t y1) {
    Patterns patterns(colors, alphas, channels);
    std::vector<Run> runs, split;
    std::vector<int32_t> right;
    const int32_t outline_slot = opaque_outline ? patterns.Add(outline_pattern) : -1;
    std::vector<std::pair<int64_t, int64_t>> ranges;
    BandTerms terms(width, channels);
    for (int64_t y = y0; y < y1;) {
      // A band: the output rows from y whose label rows equal y's
      // (neighbouring label rows often do: a map upscaled by the model,
      // flat regions). They share one set of runs.
      const int64_t sy = ymap[y];
      const T* lrow = LabelRow<T>(labels, sy);
      int64_t band_end = y + 1;
      for (int64_t last = sy; band_end < y1; ++band_end) {
        const int64_t s = ymap[band_end];
        if (s != last && std::memcmp(LabelRow<T>(labels, s), lrow, label_bytes) != 0) break;
        last = s;
      }
      RowRuns<T>(lrow, labels.width, begin, all_visible, n, &patterns, outline != nullptr, &runs, &right);
      if (opaque_outline) SplitRightPixels(outline_slot, &runs, &split);
      const bool expanded = terms.Update(runs, patterns, band_end - y);
      // From the terms, a few rows per call (each term vector is loaded
      // once for them); run by run, a row at a time. Each group's outline
      // follows at once, while its rows are still in cache.
      const int64_t group = expanded ? BandTerms::kRowsPerCall : 1;
      for (int rows; y < band_end; y += rows) {
        rows = static_cast<int>(std::min(group, band_end - y));
        const uint8_t* src = image.data + y * image.row_stride;
        uint8_t* dst = out + y * out_stride;
        if (expanded) {
          for (size_t i = 0; i < terms.Spans().size(); ++i) {
            const auto [x0, x1] = terms.Spans()[i];
            const int64_t b0 = x0 * channels;
            const int bytes = static_cast<int>((x1 - x0) * channels);
            if (!terms.Clear(i)) {
              blend_terms(src + b0, image.row_stride, terms.Keep() + b0, terms.Add() + b0, dst + b0, out_stride, rows, bytes);
            } else if (src != dst) {
              for (int r = 0; r < rows; ++r)
                std::memcpy(dst + r * out_stride + b0, src + r * image.row_stride + b0, static_cast<size_t>(bytes));
            }
          }
        } else {
          for (const Run& r : runs) draw(src, dst, r.x0, r.x1, patterns[r.pattern]);
        }
        if (outline == nullptr || outline_pattern.clear) continue;
        for (int k = 0; k < rows; ++k) {
          uint8_t* row = dst + k * out_stride;
          const int64_t yk = y + k;
          const T* next = yk + 1 == band_end && yk + 1 < height && ymap[yk + 1] != sy
                              ? LabelRow<T>(labels, ymap[yk + 1]) : nullptr;
          if (next != nullptr && std::memcmp(lrow, next, label_bytes) != 0) {
            // The band's last row, and the next label row differs: lower
            // neighbours differ too.
            OutlineRanges<T>(lrow, next, labels.width, begin, right, &ranges);
            for (const auto& [x0, x1] : ranges) draw(row, row, x0, x1, outline_pattern);
          } else if (!opaque_outline) {
            blend_pixels(row, right.data(), static_cast<int>(right.size()), outline_pattern.keep,
                         outline_pattern.add, channels);
          }
        }
      }
    }
  });
}

}  // namespace

void Composite(const ImageView& image, const LabelMap& labels,
               const std::vector<uint32_t>& palette, double opacity,
               const uint32_t* outline, uint8_t* out, ptrdiff_t out_stride) {
  if (image.width == 0 || image.height == 0) return;
  // Per palette entry, the colour bytes and the alpha bytes in the image's
  // channel order; one extra entry (alpha 0) for labels outside the palette.
  const uint32_t n = static_cast<uint32_t>(palette.size());
  std::vector<uint32_t> colors(n + 1, 0), alphas(n + 1, 0);
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t rgba[4];
    std::memcpy(rgba, &palette[i], 4);
    const uint8_t a = static_cast<uint8_t>(std::floor(rgba[3] * opacity + 0.5));
    const uint8_t c[4] = {rgba[0], rgba[1], rgba[2], 0};
    const uint8_t w[4] = {a, a, a, 0};  // the image's alpha passes through
    std::memcpy(&colors[i], c, 4);
    std::memcpy(&alphas[i], w, 4);
  }
  uint8_t outline_rgba[4];
  if (outline != nullptr) std::memcpy(outline_rgba, outline, 4);
  DispatchLabelType(labels.type, [&](auto tag) {
    CompositeT<decltype(tag)>(image, labels, colors, alphas, n,
                              outline != nullptr ? outline_rgba : nullptr, out, out_stride);
  });
}

}  // namespace coreseg
