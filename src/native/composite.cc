// composite: a label map of any size blended onto a full-resolution image in
// one pass, without ever making the upscaled label map.
//
// Per output row, the label row it maps to is expanded once into a row of
// colour bytes and a row of alpha bytes laid out like the image's own bytes
// (alpha 0 on the image's alpha channel, so it passes through); rows that map
// to the same label row reuse it. The blend row then streams the image.
#include <cmath>
#include <cstring>

#include "cpu.h"
#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {
namespace {

struct Expanded {
  std::vector<uint32_t> src_color, src_alpha;  // per label column
  std::vector<uint8_t> color, alpha;           // width * channels (+1, below)
  std::vector<int32_t> right;                  // x whose right neighbour differs
};

// Colour and alpha bytes of one output row from its label row: each label
// column is looked up once, then spread over the output with fixed-size
// stores (for RGB a 4-byte store whose last byte the next pixel overwrites;
// the rows have one spare byte for it).
template <typename T, int kChannels>
void ExpandRow(const T* lrow, const std::vector<int32_t>& xmap, const std::vector<int32_t>& run_ends,
               const std::vector<uint32_t>& colors, const std::vector<uint32_t>& alphas,
               uint32_t n, bool find_right, Expanded* e) {
  const int64_t src_width = static_cast<int64_t>(e->src_color.size());
  for (int64_t sx = 0; sx < src_width; ++sx) {
    uint32_t v = static_cast<uint32_t>(lrow[sx]);
    if (v > n) v = n;
    e->src_color[sx] = colors[v];
    e->src_alpha[sx] = alphas[v];
  }
  const int64_t width = static_cast<int64_t>(xmap.size());
  uint8_t* c = e->color.data();
  uint8_t* a = e->alpha.data();
  for (int64_t x = 0; x < width; ++x) {
    std::memcpy(c + x * kChannels, &e->src_color[xmap[x]], 4);
    std::memcpy(a + x * kChannels, &e->src_alpha[xmap[x]], 4);
  }
  // Only the last pixel of a run of equal label columns can differ from
  // its right neighbour.
  e->right.clear();
  if (find_right)
    for (int32_t x : run_ends)
      if (lrow[xmap[x]] != lrow[xmap[x + 1]]) e->right.push_back(x);
}

inline void DrawOutline(uint8_t* row, const std::vector<int32_t>& xs, int channels,
                        const uint8_t* outline) {
  const int color_channels = channels < 3 ? channels : 3;
  for (int32_t x : xs) {
    uint8_t* p = row + static_cast<int64_t>(x) * channels;
    for (int ch = 0; ch < color_channels; ++ch) p[ch] = BlendPixel(p[ch], outline[ch], outline[3]);
  }
}

template <typename T>
void CompositeT(const ImageView& image, const LabelMap& labels,
                const std::vector<uint32_t>& colors, const std::vector<uint32_t>& alphas,
                uint32_t n, const uint8_t* outline, uint8_t* out, ptrdiff_t out_stride) {
  const int64_t width = image.width, height = image.height;
  const int channels = image.channels;
  const std::vector<int32_t> xmap = NearestIndexMap(labels.width, width);
  const std::vector<int32_t> ymap = NearestIndexMap(labels.height, height);
  const BlendRowFn blend = ActiveRows().blend;
  const int count = static_cast<int>(width * channels);
  std::vector<int32_t> run_ends;  // x with xmap[x] != xmap[x + 1]
  if (outline != nullptr)
    for (int64_t x = 0; x + 1 < width; ++x)
      if (xmap[x] != xmap[x + 1]) run_ends.push_back(static_cast<int32_t>(x));

  ParallelFor(height, RowGrain(width), [&](int64_t y0, int64_t y1) {
    Expanded e;
    e.src_color.resize(labels.width);
    e.src_alpha.resize(labels.width);
    e.color.resize(count + 1);
    e.alpha.resize(count + 1);
    std::vector<int32_t> marks;
    std::vector<uint8_t> differs(outline != nullptr ? labels.width : 0);
    int64_t cached = -1;
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t sy = ymap[y];
      const T* lrow = LabelRow<T>(labels, sy);
      if (sy != cached) {
        if (channels == 4)
          ExpandRow<T, 4>(lrow, xmap, run_ends, colors, alphas, n, outline != nullptr, &e);
        else
          ExpandRow<T, 3>(lrow, xmap, run_ends, colors, alphas, n, outline != nullptr, &e);
        cached = sy;
      }
      uint8_t* dst = out + y * out_stride;
      blend(image.data + y * image.row_stride, e.color.data(), e.alpha.data(), dst, count);
      if (outline == nullptr) continue;
      if (y + 1 < height && ymap[y + 1] != sy) {
        // Last row of a band of equal labels: lower neighbours differ too.
        // Compare the two label rows once per column, then spread.
        const T* next = LabelRow<T>(labels, ymap[y + 1]);
        bool any = false;
        for (int64_t sx = 0; sx < labels.width; ++sx) any |= (differs[sx] = lrow[sx] != next[sx]);
        if (!any) {
          DrawOutline(dst, e.right, channels, outline);
          continue;
        }
        marks.clear();
        size_t r = 0;
        for (int64_t x = 0; x < width; ++x) {
          const bool right = r < e.right.size() && e.right[r] == x;
          r += right;
          if (right || differs[xmap[x]]) marks.push_back(static_cast<int32_t>(x));
        }
        DrawOutline(dst, marks, channels, outline);
      } else {
        DrawOutline(dst, e.right, channels, outline);
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
