// composite's row of blend terms for a band of rows (BandTerms). Used by
// composite.cc only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "composite_runs.h"

namespace coreseg {
namespace composite {

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
    const int64_t terms_calls = (band_rows + kRowsPerCall - 1) / kRowsPerCall;
    const int64_t by_runs = band_rows * calls * 40;
    const int64_t by_terms = changed / 4 + terms_calls * bytes / 8;
    if (by_terms >= by_runs) return false;
    Changed(runs, &patterns);
    filled_ = runs;
    spans_.clear();
    for (const Run& r : runs) {
      const bool clear = patterns[r.pattern].clear;
      if (clear || spans_.empty() || spans_.back().clear)
        spans_.push_back({r.x0, r.x1, clear});
      else
        spans_.back().x1 = r.x1;
    }
    return true;
  }

  // Output pixels [x0, x1) to blend from the terms, or to copy (a clear
  // class).
  struct Span {
    int64_t x0, x1;
    bool clear;
  };
  const std::vector<Span>& Spans() const { return spans_; }
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
  std::vector<Span> spans_;
};

}  // namespace composite
}  // namespace coreseg
