// Image-level kernels: whole label maps and images, described by pointers,
// sizes and byte strides. They split rows over the thread pool and call the
// active row functions; they validate nothing (bindings.cc does that).
// Each has a numpy twin of the same name in coreseg.reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace coreseg {

enum class LabelType { kUInt8, kUInt16, kInt32 };

// A 2-D label map; elements within a row are packed.
struct LabelMap {
  const uint8_t* data;
  LabelType type;
  int64_t width, height;
  ptrdiff_t row_stride;  // bytes, may be negative
};

// An image of `channels` (3 or 4) uint8 per pixel; pixels within a row are
// packed.
struct ImageView {
  const uint8_t* data;
  int64_t width, height;
  int channels;
  ptrdiff_t row_stride;  // bytes, may be negative
};

// The nearest-neighbour index map of DESIGN.md (Pillow's NEAREST):
// scale = src/dst, f = 0.5*scale; map[i] = min(floor(f), src-1); f += scale.
std::vector<int32_t> NearestIndexMap(int64_t src, int64_t dst);

// out (height x width x 4): `color` where the label is one of `selected`,
// 0 elsewhere.
void RenderMask(const LabelMap& labels, const std::vector<int64_t>& selected,
                uint32_t color, uint8_t* out, ptrdiff_t out_stride);

// out (height x width x 4) = palette[label], or 0 for labels outside
// [0, palette.size()).
void Colorize(const LabelMap& labels, const std::vector<uint32_t>& palette,
              uint8_t* out, ptrdiff_t out_stride);

// Nearest-neighbour resize to out_width x out_height, same element type.
void ResizeLabels(const LabelMap& labels, uint8_t* out, int64_t out_width,
                  int64_t out_height, ptrdiff_t out_stride);

// out = image blended with palette colours of the labels mapped onto it
// (NearestIndexMap), alpha = floor(palette alpha * opacity + 0.5). With an
// outline colour, pixels whose label differs from their right or lower
// neighbour are then blended with it. The image's alpha passes through.
// out may be image.data (in place).
void Composite(const ImageView& image, const LabelMap& labels,
               const std::vector<uint32_t>& palette, double opacity,
               const uint32_t* outline, uint8_t* out, ptrdiff_t out_stride);

// Antialiased bilinear resample (Pillow's BILINEAR filter, fixed point) to
// out_width x out_height, written as out_channels bytes per pixel taken from
// the RGBA result in `order` (e.g. {2, 1, 0, 3} for BGRA).
void ResizeImage(const ImageView& image, uint8_t* out, int64_t out_width,
                 int64_t out_height, ptrdiff_t out_stride, const int* order,
                 int out_channels);

// Logits [channels, height, width] of float32 or float16 (`half`); values
// within a row are packed; strides in bytes, plane_stride a multiple of the
// element size.
struct Logits {
  const uint8_t* data;
  bool half;
  int64_t channels, width, height;
  ptrdiff_t plane_stride, row_stride;
};

// out (height x width, int32) = the first channel with the largest logit;
// NaN is never the largest.
void Argmax(const Logits& logits, int32_t* out, ptrdiff_t out_stride);

// out (out_height x out_width, int32) = the first class with the largest
// bilinearly interpolated score (half-pixel centres; scores in [0, 1],
// quantised to kScoreOne, weights to kLerpBits: exact integers, row.h).
// `scores` is (channels, height, width), float32 or float16.
void UpsampleArgmax(const Logits& scores, int32_t* out, int64_t out_width, int64_t out_height,
                    ptrdiff_t out_stride);

// The per-axis map of UpsampleArgmax: output x interpolates source i0[x]
// and i1[x] with weight w1[x] / kLerpOne on i1 (i0 == i1 at the edges).
struct LerpAxis {
  std::vector<int32_t> i0, i1;
  std::vector<int16_t> w1;
};
LerpAxis ComputeLerpAxis(int64_t in_size, int64_t out_size);

// Element types of model outputs (ConvertArray).
enum class ElementType { kInt32, kFloat16, kFloat32, kFloat64 };
size_t ElementSize(ElementType type);

// Round-to-nearest-even float -> IEEE half (numpy's astype(float16)).
uint16_t FloatToHalf(float f);

// An N-d array; strides in elements (any sign).
struct StridedArray {
  const uint8_t* data;
  ElementType type;
  std::vector<int64_t> shape, strides;
};

// dst (packed, C order, same element count) = src converted to `to`.
// float64 -> float16 goes through float32 (the backend never asks for it).
// Floats converted to int32 must be whole numbers in range; otherwise
// returns false with the offending value in bad_value (dst partly written).
bool ConvertArray(const StridedArray& src, uint8_t* dst, ElementType to, double* bad_value);

// A colour-coded map: 3 channels of uint8 or uint16 per pixel, pixels packed.
struct ColorMap {
  const uint8_t* data;
  bool sixteen_bit;
  int64_t width, height;
  ptrdiff_t row_stride;
};

// out = the index in `colors` (num_colors x 3, same element type as the map)
// of each pixel's colour, or `unknown` for colours not in the table.
// Returns the number of unknown pixels.
int64_t DecodeColors(const ColorMap& map, const void* colors, int64_t num_colors, int32_t unknown,
                     int32_t* out, ptrdiff_t out_stride);

// out (num_classes^2 int64, rows ground truth, columns prediction). Pixels
// whose ground truth is ignore_index (if use_ignore) are left out. Returns
// false on a value outside [0, num_classes), with the array (0 gt, 1 pred)
// and the value.
bool ConfusionMatrix(const LabelMap& gt, const LabelMap& pred, int64_t num_classes, int64_t ignore_index,
                     bool use_ignore, int64_t* out, int* bad_array, int64_t* bad_value);

// out (num_classes int64) = pixels of each class; false on a value outside
// [0, num_classes), with the value.
bool ClassHistogram(const LabelMap& labels, int64_t num_classes, int64_t* out, int64_t* bad_value);

// Boundary metrics (boundary.cc). out (num_classes x kBoundaryColumns
// int64), per class c: pixels of c's boundary band in gt and in pred (the
// pixels of c whose (2 distance + 1)^2 square holds another label or the
// outside of the image), pixels in both bands, then for the F-score the
// pred contour pixels of c (distance 1), those with a gt contour pixel of c
// within Chebyshev distance `tolerance`, and the same two for gt against
// pred. Pixels whose gt is ignore_index (if use_ignore) are counted
// nowhere but are a label of their own; pred may hold ignore_index as
// "no class". Returns false on any other value outside [0, num_classes),
// with the array (0 gt, 1 pred) and the value of the first in raster order.
constexpr int kBoundaryColumns = 7;
bool BoundaryCounts(const LabelMap& gt, const LabelMap& pred, int64_t num_classes, int64_t distance,
                    int64_t tolerance, int64_t ignore_index, bool use_ignore, int64_t* out, int* bad_array,
                    int64_t* bad_value);

// The per-axis filter of ResizeImage: for each output index its first
// source index and `taps` int16 coefficients summing to 1 << kCoeffBits;
// `taps` is the widest nonzero window rounded up to a multiple of
// `tap_multiple` (even), the rest zero.
struct ResampleAxis {
  int taps;
  std::vector<int32_t> start;
  std::vector<int16_t> coeffs;  // out_size * taps
};
ResampleAxis ComputeResampleAxis(int64_t in_size, int64_t out_size, int tap_multiple = 2);

// Temporal smoothing (smoothing.cc). `state` is coreseg's own, contiguous.
//
// state (channels x height x width float32) = state + alpha * (scores -
// state): an exponential moving average of per-class scores (EmaRowFn).
void EmaUpdate(const Logits& scores, float alpha, float* state);

// Label hysteresis (HysteresisRowFn) of a height x width int32 label map
// (row stride in bytes): `state` is three planes, shown / candidate /
// count. With `scores` (channels x height x width) a class also switches
// at once when its score beats the shown class's by `margin`; then every
// label and shown class must be in [0, channels): false if one is not,
// with the value, before anything is written (the state is left as it was).
bool HysteresisUpdate(const int32_t* labels, ptrdiff_t labels_stride, int64_t width, int64_t height,
                      const Logits* scores, float margin, int frames, int32_t* state, int64_t* bad_value);

// Background effects (effects.cc, matte.cc).
//
// out (the foreground's size and channels) = foreground blended over a
// background by `alpha` (height x width uint8, 255 = foreground; rows
// packed, any row stride): BlendImagesRowFn per row, the foreground's
// alpha channel passing through. The background is an image of the same
// size and channels, or, with background == nullptr, the colour `color`
// (its first `channels` bytes; the alpha byte is never used). out may be
// foreground.data or background->data (in place).
void Blend(const ImageView& foreground, const ImageView* background, const uint8_t color[4],
           const uint8_t* alpha, ptrdiff_t alpha_stride, uint8_t* out, ptrdiff_t out_stride);

// blur's parameters for a radius (reference_effects.blur_plan is the same
// arithmetic): the image is reduced by `factor` (block means), blurred
// small by one pass of the taps (offset, coeff) along each axis - a
// sampled Gaussian, the coefficients summing to 1 << 16, an even count -
// and enlarged bilinearly back.
struct BlurPlan {
  int factor;
  std::vector<int> offsets;
  std::vector<int16_t> coeffs;
};
constexpr double kBlurSmallSigma = 2.5;  // radius per reduction step
// At most 255: column sums of a block fit uint16, and the enlargement's
// weights stay under 256 (255 * 128 fits pmulhrsw's int16).
constexpr int kMaxBlurFactor = 255;
constexpr double kMaxBlurRadius = 1024;  // MAX_BLUR_RADIUS
BlurPlan PlanBlur(double radius);

// out = image blurred (every channel, no premultiplication) with a
// Gaussian-like kernel of standard deviation about `radius` pixels
// (0 < radius <= kMaxBlurRadius). out may be image.data (the image is
// read whole before out is written).
void Blur(const ImageView& image, double radius, uint8_t* out, ptrdiff_t out_stride);

// out (out_height x out_width uint8) = the alpha of a matte: per-class
// planes (channels, height, width) of probabilities, quantised as
// UpsampleArgmax's scores and combined per pixel by their sum (clamped to
// kScoreOne) or their maximum, interpolated bilinearly on UpsampleArgmax's
// grid (exact integers) and rounded to 0..255 (MatteAlpha).
void UpsampleMatte(const Logits& planes, bool max_reduce, uint8_t* out, int64_t out_width, int64_t out_height,
                   ptrdiff_t out_stride);

// refine_matte (refine.cc): the factor s the photo is reduced by and the
// small window's radius r for a radius in photo pixels (reference_refine.
// refine_plan): s = floor(radius / kRefineStep) in 1..kMaxRefineFactor
// (block sums of s^2 bytes stay under 2^24), r = max(1, round(radius / s)),
// at most 4 (2 or 3 from radius 4 to 512).
struct RefinePlan {
  int factor, radius;
};
constexpr double kRefineStep = 2;
constexpr int kMaxRefineFactor = 256;
constexpr double kMaxRefineRadius = 1024;  // MAX_REFINE_RADIUS
constexpr double kMinRefineEps = 1e-6, kMaxRefineEps = 100;
RefinePlan PlanRefine(double radius);

// out (the guide's height x width uint8) = the matte (same size, rows
// packed) refined by a guided filter with the guide's luma (BT.601,
// LumaRowFn) as the guide, computed on block means of PlanRefine(radius)
// and enlarged bilinearly (upsample_argmax's grid): the exact arithmetic
// is reference_refine.refine_matte's. 1 <= radius <= kMaxRefineRadius,
// kMinRefineEps <= eps <= kMaxRefineEps ((0..1)^2 units). out may be the
// matte (read whole before out is written).
void RefineMatte(const uint8_t* matte, ptrdiff_t matte_stride, const ImageView& guide, double radius, double eps,
                 uint8_t* out, ptrdiff_t out_stride);

// The two source rows a bilinear enlargement reads for an output row,
// each made once (by `make(source_row, buffer)`) and kept while the next
// output rows use it: a band of output rows makes each source row it
// touches once. One per thread.
template <typename T>
class TwoRowCache {
 public:
  explicit TwoRowCache(size_t values) : rows_{std::vector<T>(values), std::vector<T>(values)} {}

  // The rows for source rows i0 and i1 (maybe equal).
  template <typename Make>
  std::pair<const T*, const T*> Get(int64_t i0, int64_t i1, Make&& make) {
    const T* a = Row(i0, i1, make);
    return {a, Row(i1, i0, make)};
  }

 private:
  template <typename Make>
  const T* Row(int64_t i, int64_t keep, Make& make) {
    for (int s = 0; s < 2; ++s)
      if (index_[s] == i) return rows_[s].data();
    const int s = index_[0] == keep ? 1 : 0;  // never evict the other row in use
    make(i, rows_[s].data());
    index_[s] = i;
    return rows_[s].data();
  }

  std::vector<T> rows_[2];
  int64_t index_[2] = {-1, -1};
};

}  // namespace coreseg
