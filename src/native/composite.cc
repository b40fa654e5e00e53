// composite: a label map of any size blended onto a full-resolution image in
// one pass, without ever making the upscaled label map.
//
// Per output row, the label row it maps to is expanded once into a row of
// colour bytes and a row of alpha bytes laid out like the image's own bytes
// (alpha 0 on the image's alpha channel, so it passes through), a run of
// equal labels at a time; rows that map to the same label row reuse it. The
// blend row then streams the image. Outlines are blended over ranges found
// per label column, not per pixel.
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

// Fill `pixels` pixels of `channels` bytes with one 4-byte pattern, by
// doubling copies (wide stores). Writes one byte past the run for RGB; the
// rows have a spare byte, and a later run overwrites it.
inline void FillPattern(uint8_t* dst, uint32_t pattern, int channels, int64_t pixels) {
  if (pixels <= 0) return;
  std::memcpy(dst, &pattern, 4);
  const int64_t total = pixels * channels;
  int64_t done = channels;
  while (done < total) {
    const int64_t n = std::min(done, total - done);
    std::memcpy(dst + done, dst, static_cast<size_t>(n));
    done += n;
  }
}

struct Expanded {
  std::vector<uint8_t> color, alpha;  // width * channels (+1, above)
  std::vector<int32_t> right;         // output x whose right neighbour's label differs
};

// Colour and alpha bytes of one output row from its label row: runs of
// equal labels are found once per label column, then each run is filled
// with wide stores instead of pixel by pixel.
template <typename T>
void ExpandRow(const T* lrow, int64_t src_width, const std::vector<int64_t>& begin,
               const std::vector<uint32_t>& colors, const std::vector<uint32_t>& alphas, uint32_t n,
               int channels, bool find_right, Expanded* e) {
  uint8_t* c = e->color.data();
  uint8_t* a = e->alpha.data();
  e->right.clear();
  // Label columns that cover no output pixel (a map wider than the image)
  // are skipped: runs and right neighbours are those of the output.
  auto visible = [&](int64_t sx) { return begin[sx + 1] > begin[sx]; };
  int64_t sx = 0;
  while (sx < src_width) {
    if (!visible(sx)) {
      ++sx;
      continue;
    }
    const T value = lrow[sx];
    int64_t end = sx + 1;
    while (end < src_width && (!visible(end) || lrow[end] == value)) ++end;
    const int64_t x0 = begin[sx], x1 = begin[end];
    uint32_t v = static_cast<uint32_t>(value);
    if (v > n) v = n;
    FillPattern(c + x0 * channels, colors[v], channels, x1 - x0);
    FillPattern(a + x0 * channels, alphas[v], channels, x1 - x0);
    // A visible column with another label follows: the run's last pixel
    // differs from its right neighbour.
    if (find_right && end < src_width) e->right.push_back(static_cast<int32_t>(x1 - 1));
    sx = end;
  }
}

// Output ranges [x0, x1) to outline on the last row of a band of equal
// label rows: the columns whose label differs below, joined with the
// pixels whose right neighbour differs; both are in order, and each pixel
// appears once.
template <typename T>
void OutlineRanges(const T* lrow, const T* next, int64_t src_width, const std::vector<int64_t>& begin,
                   const std::vector<int32_t>& right, std::vector<std::pair<int64_t, int64_t>>* ranges) {
  ranges->clear();
  auto add = [&](int64_t x0, int64_t x1) {
    if (x1 <= x0) return;
    if (!ranges->empty() && ranges->back().second >= x0)
      ranges->back().second = std::max(ranges->back().second, x1);
    else
      ranges->emplace_back(x0, x1);
  };
  size_t r = 0;
  for (int64_t sx = 0; sx < src_width; ++sx) {
    const int64_t x0 = begin[sx], x1 = begin[sx + 1];
    for (; r < right.size() && right[r] < x0; ++r) add(right[r], right[r] + 1);
    if (lrow[sx] != next[sx]) add(x0, x1);
  }
  for (; r < right.size(); ++r) add(right[r], right[r] + 1);
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
  const BlendRowFn blend = ActiveRows().blend;
  const int count = static_cast<int>(width * channels);
  // The outline as a row of colour and alpha bytes, blended over ranges by
  // the same SIMD row as the classes (alpha 0 on the image's alpha channel).
  std::vector<uint8_t> outline_color, outline_alpha;
  if (outline != nullptr) {
    const uint8_t oc[4] = {outline[0], outline[1], outline[2], 0};
    const uint8_t oa[4] = {outline[3], outline[3], outline[3], 0};
    uint32_t pc, pa;
    std::memcpy(&pc, oc, 4);
    std::memcpy(&pa, oa, 4);
    outline_color.resize(count + 1);
    outline_alpha.resize(count + 1);
    FillPattern(outline_color.data(), pc, channels, width);
    FillPattern(outline_alpha.data(), pa, channels, width);
  }
  auto draw = [&](uint8_t* row, int64_t x0, int64_t x1) {
    blend(row + x0 * channels, outline_color.data(), outline_alpha.data(), row + x0 * channels,
          static_cast<int>((x1 - x0) * channels));
  };

  ParallelFor(height, RowGrain(width), [&](int64_t y0, int64_t y1) {
    Expanded e;
    e.color.resize(count + 1);
    e.alpha.resize(count + 1);
    std::vector<std::pair<int64_t, int64_t>> ranges;
    int64_t cached = -1;
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t sy = ymap[y];
      const T* lrow = LabelRow<T>(labels, sy);
      if (sy != cached) {
        ExpandRow<T>(lrow, labels.width, begin, colors, alphas, n, channels, outline != nullptr, &e);
        cached = sy;
      }
      uint8_t* dst = out + y * out_stride;
      blend(image.data + y * image.row_stride, e.color.data(), e.alpha.data(), dst, count);
      if (outline == nullptr) continue;
      if (y + 1 < height && ymap[y + 1] != sy) {
        // Last row of a band of equal labels: lower neighbours differ too.
        OutlineRanges<T>(lrow, LabelRow<T>(labels, ymap[y + 1]), labels.width, begin, e.right, &ranges);
        for (const auto& [x0, x1] : ranges) draw(dst, x0, x1);
      } else {
        for (int32_t x : e.right) draw(dst, x, x + 1);
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
