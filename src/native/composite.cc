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
#include <cstring>
#include <utility>
#include <vector>

#include "composite_runs.h"
#include "composite_terms.h"
#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {
namespace {

using composite::BandTerms;
using composite::ColumnStarts;
using composite::MakePattern;
using composite::OutlineRanges;
using composite::Pattern;
using composite::Patterns;
using composite::RowRuns;
using composite::Run;
using composite::SplitRightPixels;

// BlendPatternRowFn's blend of a few pixels (outline pixels, short runs),
// inline: with the channel count known, each pixel is unrolled.
template <int kChannels>
inline void BlendFewPixels(const uint8_t* src, const Pattern& p, int64_t pixels, uint8_t* dst) {
  for (int64_t x = 0; x < pixels; ++x, src += kChannels, dst += kChannels)
    for (int c = 0; c < kChannels; ++c)
      dst[c] = BlendPatternByte(src[c], p.keep[c], p.add[c]);
}

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
          for (const BandTerms::Span& span : terms.Spans()) {
            const int64_t b0 = span.x0 * channels;
            const int bytes = static_cast<int>((span.x1 - span.x0) * channels);
            if (!span.clear) {
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
