// coreseg._native: the pybind11 layer. It checks that every array is what
// the kernel will read or write (dtype, dimensions, packed rows, sizes) and
// raises TypeError/ValueError naming the argument otherwise, converts to
// the kernels' plain views, and releases the GIL while a kernel runs.
// coreseg.kernels (Python) normalises user arguments before calling here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <cmath>
#include <exception>
#include <type_traits>
#include <optional>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu.h"
#include "without_gil.h"
#include "kernels.h"
#include "thread_pool.h"

namespace py = pybind11;

namespace coreseg {
namespace {

std::string ShapeString(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// The dtype with its byte order when that is not the machine's ("got >i4").
std::string DtypeString(const py::array& a) {
  const py::dtype d = a.dtype();
  std::string name = py::str(d).cast<std::string>();
  const char order = d.byteorder();
  if (order == '>' || order == '<') {
    if (name[0] != '>' && name[0] != '<') name = std::string(1, order) + name;
    name += " (not the machine's byte order)";
  }
  return name;
}

// Same type and byte order (numpy's PyArray_EquivTypes: a dtype made by
// astype() is not the very object dtype::of<T>() returns).
bool HasDtype(const py::array& a, const py::dtype& d) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), d.ptr());
}

// Elements must sit on their natural alignment: the rows load them as
// int32/uint16/float directly (unaligned loads are undefined behaviour).
void CheckAligned(const py::array& a, const char* name) {
  const py::ssize_t item = a.itemsize();
  bool ok = reinterpret_cast<uintptr_t>(a.data()) % static_cast<uintptr_t>(item) == 0;
  for (py::ssize_t d = 0; ok && d < a.ndim(); ++d) ok = a.strides(d) % item == 0;
  if (a.size() > 0 && !ok)
    throw py::value_error(std::string(name) + " is not aligned to its element size (copy it first)");
}

// Every side of every array a kernel reads or writes (MAX_SIDE in
// coreseg.kernels): index maps and row loops hold positions in int32, and
// resampling filters grow with the ratio of two sides.
constexpr int64_t kMaxSide = int64_t{1} << 24;

// Axes [first, first + count) are the sides.
void CheckSides(const py::array& a, const char* name, int count, int first = 0) {
  for (int d = first; d < first + count && d < a.ndim(); ++d)
    if (a.shape(d) > kMaxSide)
      throw py::value_error(std::string(name) + " has a side of " + std::to_string(a.shape(d)) +
                            " elements; coreseg takes at most " + std::to_string(kMaxSide));
}

// The row functions take int widths; keep every row's byte count in range.
void CheckRowSize(int64_t elements, const char* name) {
  if (elements > INT_MAX / 8)
    throw py::value_error(std::string(name) + " has rows too long for coreseg (" +
                          std::to_string(elements) + " values)");
}

LabelMap AsLabelMap(const py::array& a, const char* name) {
  if (a.ndim() != 2)
    throw py::value_error(std::string(name) + " must be a 2-D array, got shape " + ShapeString(a));
  LabelType type;
  if (HasDtype(a, py::dtype::of<int32_t>()))
    type = LabelType::kInt32;
  else if (HasDtype(a, py::dtype::of<uint8_t>()))
    type = LabelType::kUInt8;
  else if (HasDtype(a, py::dtype::of<uint16_t>()))
    type = LabelType::kUInt16;
  else
    throw py::type_error(std::string(name) + " must have dtype int32, uint8 or uint16, got " +
                         DtypeString(a));
  // An empty array is never read (numpy gives it zero strides).
  if (a.size() > 0 && a.shape(1) > 1 && a.strides(1) != a.itemsize())
    throw py::value_error(std::string(name) + " must have packed rows (strides[1] == itemsize)");
  CheckRowSize(a.shape(1), name);
  CheckAligned(a, name);
  CheckSides(a, name, 2);
  return {static_cast<const uint8_t*>(a.data()), type, a.shape(1), a.shape(0), a.strides(0)};
}

ImageView AsImage(const py::array& a, const char* name) {
  if (!HasDtype(a, py::dtype::of<uint8_t>()))
    throw py::type_error(std::string(name) + " must have dtype uint8, got " + DtypeString(a));
  if (a.ndim() != 3 || (a.shape(2) != 3 && a.shape(2) != 4))
    throw py::value_error(std::string(name) + " must have shape (h, w, 3) or (h, w, 4), got " +
                          ShapeString(a));
  const int channels = static_cast<int>(a.shape(2));
  if (a.size() > 0 && (a.strides(2) != 1 || (a.shape(1) > 1 && a.strides(1) != channels)))
    throw py::value_error(std::string(name) + " must have packed pixels (strides[1:] == (" +
                          std::to_string(channels) + ", 1))");
  CheckRowSize(a.shape(1) * channels, name);
  CheckSides(a, name, 2);
  return {static_cast<const uint8_t*>(a.data()), a.shape(1), a.shape(0), channels, a.strides(0)};
}

// A writable output of exactly `shape` and `dtype` with packed rows; returns
// its data pointer, the row stride in *stride.
bool HasShape(const py::array& a, const std::vector<py::ssize_t>& shape) {
  if (a.ndim() != static_cast<py::ssize_t>(shape.size())) return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (a.shape(i) != shape[i]) return false;
  return true;
}

uint8_t* AsOutput(py::array& out, const std::vector<py::ssize_t>& shape, const py::dtype& dtype,
                  ptrdiff_t* stride) {
  if (!HasDtype(out, dtype))
    throw py::type_error("out must have dtype " + py::str(dtype).cast<std::string>() + ", got " +
                         DtypeString(out));
  if (!HasShape(out, shape)) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    throw py::value_error("out must have shape " + want + "), got " + ShapeString(out));
  }
  if (!out.writeable()) throw py::value_error("out must be writable");
  // Everything after the row axis must be packed; a 1-D out is one row.
  py::ssize_t expect = out.itemsize();
  for (py::ssize_t i = out.ndim() - 1; i >= (out.ndim() == 1 ? 0 : 1) && out.size() > 0; --i) {
    if (out.shape(i) > 1 && out.strides(i) != expect)
      throw py::value_error(out.ndim() == 1 ? "out must be contiguous"
                                            : "out must have packed rows (C-contiguous within each row)");
    expect *= out.shape(i);
  }
  CheckAligned(out, "out");
  CheckSides(out, "out", 2);
  *stride = out.strides(0);
  return static_cast<uint8_t*>(out.mutable_data());
}

// resize_image keeps within 1 of Pillow up to this downscale per axis (its
// 14-bit filter coefficients lose precision beyond); MAX_DOWNSCALE in Python.
constexpr int64_t kMaxDownscale = 2048;

void CheckResizeFactor(int64_t in, int64_t out, const char* axis) {
  if (out > 0 && in > out * kMaxDownscale)
    throw py::value_error(std::string("resize_image cannot shrink the ") + axis + " from " + std::to_string(in) +
                          " to " + std::to_string(out) + " pixels in one pass (at most " +
                          std::to_string(kMaxDownscale) + "x per axis); resize in two steps");
}

uint32_t PackColor(const std::vector<int>& rgba, const char* name) {
  if (rgba.size() != 4) throw py::value_error(std::string(name) + " must have 4 values (r, g, b, a)");
  uint8_t bytes[4];
  for (int i = 0; i < 4; ++i) {
    if (rgba[i] < 0 || rgba[i] > 255)
      throw py::value_error(std::string(name) + " values must be in 0..255");
    bytes[i] = static_cast<uint8_t>(rgba[i]);
  }
  uint32_t c;
  std::memcpy(&c, bytes, 4);
  return c;
}

std::vector<uint32_t> AsPalette(const py::array& palette) {
  if (!HasDtype(palette, py::dtype::of<uint8_t>()))
    throw py::type_error("palette must have dtype uint8, got " + DtypeString(palette));
  if (palette.ndim() != 2 || palette.shape(1) != 4)
    throw py::value_error("palette must have shape (n, 4), got " + ShapeString(palette));
  std::vector<uint32_t> colors(palette.shape(0));
  const auto* base = static_cast<const uint8_t*>(palette.data());
  for (py::ssize_t i = 0; i < palette.shape(0); ++i) {
    uint8_t rgba[4];
    for (int c = 0; c < 4; ++c) rgba[c] = base[i * palette.strides(0) + c * palette.strides(1)];
    std::memcpy(&colors[i], rgba, 4);
  }
  return colors;
}

py::dtype LabelDtype(LabelType t) {
  switch (t) {
    case LabelType::kUInt8: return py::dtype::of<uint8_t>();
    case LabelType::kUInt16: return py::dtype::of<uint16_t>();
    default: return py::dtype::of<int32_t>();
  }
}

void RenderMaskPy(const py::array& labels, const std::vector<int64_t>& selected,
                  const std::vector<int>& color, py::array& out) {
  const LabelMap l = AsLabelMap(labels, "labels");
  const uint32_t c = PackColor(color, "color");
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {labels.shape(0), labels.shape(1), 4}, py::dtype::of<uint8_t>(), &stride);
  WithoutGil([&] { RenderMask(l, selected, c, o, stride); });
}

void ColorizePy(const py::array& labels, const py::array& palette, py::array& out) {
  const LabelMap l = AsLabelMap(labels, "labels");
  const std::vector<uint32_t> colors = AsPalette(palette);
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {labels.shape(0), labels.shape(1), 4}, py::dtype::of<uint8_t>(), &stride);
  WithoutGil([&] { Colorize(l, colors, o, stride); });
}

void ResizeLabelsPy(const py::array& labels, py::array& out) {
  const LabelMap l = AsLabelMap(labels, "labels");
  if (out.ndim() != 2) throw py::value_error("out must be a 2-D array, got shape " + ShapeString(out));
  const int64_t w = out.shape(1), h = out.shape(0);
  if ((w > 0 && h > 0) && (l.width == 0 || l.height == 0))
    throw py::value_error("labels is empty: there is nothing to resize from");
  CheckRowSize(w, "out");
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {h, w}, LabelDtype(l.type), &stride);
  WithoutGil([&] { ResizeLabels(l, o, w, h, stride); });
}

void CompositePy(const py::array& image, const py::array& labels, const py::array& palette,
                 double opacity, const std::optional<std::vector<int>>& outline, py::array& out) {
  const ImageView img = AsImage(image, "image");
  const LabelMap l = AsLabelMap(labels, "labels");
  const std::vector<uint32_t> colors = AsPalette(palette);
  if (!(opacity >= 0.0 && opacity <= 1.0))
    throw py::value_error("opacity must be a number in [0, 1], got " + std::to_string(opacity));
  if (img.width > 0 && img.height > 0 && (l.width == 0 || l.height == 0))
    throw py::value_error("labels is empty but image is not");
  uint32_t outline_color = 0;
  if (outline) outline_color = PackColor(*outline, "outline");
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {image.shape(0), image.shape(1), image.shape(2)},
                        py::dtype::of<uint8_t>(), &stride);
  WithoutGil([&] { Composite(img, l, colors, opacity, outline ? &outline_color : nullptr, o, stride); });
}

void ResizeImagePy(const py::array& image, const std::vector<int>& order, py::array& out) {
  const ImageView img = AsImage(image, "image");
  if (img.width == 0 || img.height == 0) throw py::value_error("image is empty");
  const int out_channels = static_cast<int>(order.size());
  if (out_channels != 3 && out_channels != 4) throw py::value_error("order must have 3 or 4 entries");
  for (int c : order)
    if (c < 0 || c > 3) throw py::value_error("order entries must be in 0..3");
  if (out.ndim() != 3) throw py::value_error("out must be a 3-D array, got shape " + ShapeString(out));
  const int64_t w = out.shape(1), h = out.shape(0);
  if (w < 1 || h < 1) throw py::value_error("out must be at least 1x1");
  CheckRowSize(w * 4, "out");
  CheckResizeFactor(img.width, w, "width");
  CheckResizeFactor(img.height, h, "height");
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {h, w, out_channels}, py::dtype::of<uint8_t>(), &stride);
  WithoutGil([&] { ResizeImage(img, o, w, h, stride, order.data(), out_channels); });
}

// Per-class planes (classes, h, w) of float32 or float16, rows packed,
// every stride a whole number of elements.
Logits AsLogits(const py::array& a, const char* name, int64_t max_classes) {
  const bool half = HasDtype(a, py::dtype("float16"));
  if (!half && !HasDtype(a, py::dtype::of<float>()))
    throw py::type_error(std::string(name) + " must have dtype float32 or float16, got " + DtypeString(a));
  if (a.ndim() != 3)
    throw py::value_error(std::string(name) + " must have shape (classes, h, w), got " + ShapeString(a));
  if (a.shape(0) < 1 || a.shape(0) > max_classes)
    throw py::value_error(std::string(name) + " must have 1.." + std::to_string(max_classes) +
                          " classes, got " + std::to_string(a.shape(0)));
  const py::ssize_t item = a.itemsize();
  if (a.size() > 0 && ((a.shape(2) > 1 && a.strides(2) != item) || a.strides(0) % item != 0 ||
                       a.strides(1) % item != 0))
    throw py::value_error(std::string(name) + " must have packed rows (strides[2] == itemsize)");
  CheckAligned(a, name);
  CheckSides(a, name, 2, 1);  // (classes, h, w): h and w
  return {static_cast<const uint8_t*>(a.data()), half, a.shape(0), a.shape(2), a.shape(1), a.strides(0),
          a.strides(1)};
}

void ArgmaxPy(const py::array& logits, py::array& out) {
  const Logits l = AsLogits(logits, "logits", INT_MAX);
  CheckRowSize(l.width, "logits");
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {logits.shape(1), logits.shape(2)}, py::dtype::of<int32_t>(), &stride);
  WithoutGil([&] { Argmax(l, reinterpret_cast<int32_t*>(o), stride); });
}

void UpsampleArgmaxPy(const py::array& scores, py::array& out) {
  const Logits s = AsLogits(scores, "scores", 1 << 16);
  CheckRowSize(s.channels * s.width, "scores (classes x width)");
  if (out.ndim() != 2) throw py::value_error("out must be a 2-D array, got shape " + ShapeString(out));
  const int64_t w = out.shape(1), h = out.shape(0);
  if (w > 0 && h > 0 && (s.height == 0 || s.width == 0))
    throw py::value_error("scores is empty: there is nothing to upsample from");
  CheckRowSize(w, "out");
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {h, w}, py::dtype::of<int32_t>(), &stride);
  if (w == 0 || h == 0) return;
  WithoutGil([&] { UpsampleArgmax(s, reinterpret_cast<int32_t*>(o), w, h, stride); });
}

ElementType ElementTypeOf(const py::array& a, const char* name) {
  if (HasDtype(a, py::dtype::of<int32_t>())) return ElementType::kInt32;
  if (HasDtype(a, py::dtype("float16"))) return ElementType::kFloat16;
  if (HasDtype(a, py::dtype::of<float>())) return ElementType::kFloat32;
  if (HasDtype(a, py::dtype::of<double>())) return ElementType::kFloat64;
  throw py::type_error(std::string(name) + " must have dtype int32, float16, float32 or float64, got " +
                       DtypeString(a));
}

// out (C-contiguous, same element count) = src converted, as the Core ML
// backend copies results; a float that is no whole int32 raises ValueError.
void ConvertArrayPy(const py::array& src, py::array& out) {
  const ElementType from = ElementTypeOf(src, "src"), to = ElementTypeOf(out, "out");
  if (!(out.flags() & py::array::c_style) || !out.writeable())
    throw py::value_error("out must be a writable C-contiguous array");
  if (out.size() != src.size())
    throw py::value_error("out must have as many elements as src: " + ShapeString(out) + " vs " + ShapeString(src));
  StridedArray a{static_cast<const uint8_t*>(src.data()), from, {}, {}};
  for (py::ssize_t d = 0; d < src.ndim(); ++d) {
    if (src.strides(d) % src.itemsize() != 0)
      throw py::value_error("src has strides that are not whole elements");
    a.shape.push_back(src.shape(d));
    a.strides.push_back(src.strides(d) / src.itemsize());
  }
  double bad = 0;
  bool ok;
  uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
  ok = WithoutGil([&] { return ConvertArray(a, dst, to, &bad); });
  if (!ok) throw py::value_error("src holds " + py::repr(py::float_(bad)).cast<std::string>() +
                                 ", which is not a whole number that fits int32");
}

int64_t DecodeColorsPy(const py::array& rgb, const py::array& colors, int32_t unknown, py::array& out) {
  const bool sixteen = HasDtype(rgb, py::dtype::of<uint16_t>());
  if (!sixteen && !HasDtype(rgb, py::dtype::of<uint8_t>()))
    throw py::type_error("rgb must have dtype uint8 or uint16, got " + DtypeString(rgb));
  if (rgb.ndim() != 3 || rgb.shape(2) != 3)
    throw py::value_error("rgb must have shape (h, w, 3), got " + ShapeString(rgb));
  const py::ssize_t item = rgb.itemsize();
  if (rgb.size() > 0 && (rgb.strides(2) != item || (rgb.shape(1) > 1 && rgb.strides(1) != 3 * item)))
    throw py::value_error("rgb must have packed pixels");
  if (!HasDtype(colors, rgb.dtype()))
    throw py::type_error("colors must have the dtype of rgb (" + DtypeString(rgb) + "), got " + DtypeString(colors));
  if (colors.ndim() != 2 || colors.shape(1) != 3 || !(colors.flags() & py::array::c_style))
    throw py::value_error("colors must be a C-contiguous (n, 3) array, got shape " + ShapeString(colors));
  CheckAligned(colors, "colors");
  CheckRowSize(rgb.shape(1) * 3, "rgb");
  CheckAligned(rgb, "rgb");
  CheckSides(rgb, "rgb", 2);
  const ColorMap map{static_cast<const uint8_t*>(rgb.data()), sixteen, rgb.shape(1), rgb.shape(0), rgb.strides(0)};
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {rgb.shape(0), rgb.shape(1)}, py::dtype::of<int32_t>(), &stride);
  return WithoutGil([&] { return DecodeColors(map, colors.data(), colors.shape(0), unknown, reinterpret_cast<int32_t*>(o), stride); });
}

void ConfusionMatrixPy(const py::array& gt, const py::array& pred, int64_t num_classes,
                       std::optional<int64_t> ignore_index, py::array& out) {
  const LabelMap g = AsLabelMap(gt, "gt"), p = AsLabelMap(pred, "pred");
  if (g.width != p.width || g.height != p.height)
    throw py::value_error("gt and pred must have the same shape, got " + ShapeString(gt) + " and " +
                          ShapeString(pred));
  // MAX_CONFUSION_CLASSES: the output is num_classes^2 int64 (2 GiB at most).
  if (num_classes < 1 || num_classes > (1 << 14))
    throw py::value_error("num_classes must be in 1..16384, got " + std::to_string(num_classes));
  ptrdiff_t stride;
  auto* o = reinterpret_cast<int64_t*>(
      AsOutput(out, {static_cast<py::ssize_t>(num_classes), static_cast<py::ssize_t>(num_classes)},
               py::dtype::of<int64_t>(), &stride));
  if (num_classes > 1 && stride != num_classes * 8) throw py::value_error("out must be C-contiguous");
  int which = 0;
  int64_t value = 0;
  bool ok;
  ok = WithoutGil([&] { return ConfusionMatrix(g, p, num_classes, ignore_index.value_or(0), ignore_index.has_value(), o, &which, &value); });
  if (!ok)
    throw py::value_error(std::string(which == 0 ? "gt" : "pred") + " has value " + std::to_string(value) +
                          " outside [0, " + std::to_string(num_classes) + ")");
}

void ClassHistogramPy(const py::array& labels, int64_t num_classes, py::array& out) {
  const LabelMap l = AsLabelMap(labels, "labels");
  if (num_classes < 1 || num_classes > (1 << 24))
    throw py::value_error("num_classes must be in 1..16777216, got " + std::to_string(num_classes));
  ptrdiff_t stride;
  auto* o = reinterpret_cast<int64_t*>(
      AsOutput(out, {static_cast<py::ssize_t>(num_classes)}, py::dtype::of<int64_t>(), &stride));
  int64_t value = 0;
  bool ok;
  ok = WithoutGil([&] { return ClassHistogram(l, num_classes, o, &value); });
  if (!ok)
    throw py::value_error("labels has value " + std::to_string(value) + " outside [0, " +
                          std::to_string(num_classes) + ")");
}

// boundary_counts (boundary.cc): MAX_CONFUSION_CLASSES classes at most, as
// confusion_matrix (each row band keeps a table of num_classes x 7).
void BoundaryCountsPy(const py::array& gt, const py::array& pred, int64_t num_classes, int64_t distance,
                      int64_t tolerance, std::optional<int64_t> ignore_index, py::array& out) {
  const LabelMap g = AsLabelMap(gt, "gt"), p = AsLabelMap(pred, "pred");
  if (g.width != p.width || g.height != p.height)
    throw py::value_error("gt and pred must have the same shape, got " + ShapeString(gt) + " and " +
                          ShapeString(pred));
  if (num_classes < 1 || num_classes > (1 << 14))
    throw py::value_error("num_classes must be in 1..16384, got " + std::to_string(num_classes));
  if (distance < 0) throw py::value_error("distance must be >= 0, got " + std::to_string(distance));
  if (tolerance < 0) throw py::value_error("tolerance must be >= 0, got " + std::to_string(tolerance));
  ptrdiff_t stride;
  auto* o = reinterpret_cast<int64_t*>(
      AsOutput(out, {static_cast<py::ssize_t>(num_classes), kBoundaryColumns}, py::dtype::of<int64_t>(), &stride));
  if (num_classes > 1 && stride != kBoundaryColumns * 8) throw py::value_error("out must be C-contiguous");
  int which = 0;
  int64_t value = 0;
  const bool ok = WithoutGil([&] {
    return BoundaryCounts(g, p, num_classes, distance, tolerance, ignore_index.value_or(0), ignore_index.has_value(),
                          o, &which, &value);
  });
  if (!ok)
    throw py::value_error(std::string(which == 0 ? "gt" : "pred") + " has value " + std::to_string(value) +
                          " outside [0, " + std::to_string(num_classes) + ")" +
                          (ignore_index ? " that is not ignore_index" : ""));
}

// Smoothing state is coreseg's own: contiguous, aligned, writable, native.
void* AsState(py::array& state, const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
  if (!HasDtype(state, dtype))
    throw py::type_error("state must have dtype " + py::str(dtype).cast<std::string>() + ", got " +
                         DtypeString(state));
  if (!HasShape(state, shape))
    throw py::value_error("state has shape " + ShapeString(state) + ", which does not fit the frame");
  if (!(state.flags() & py::array::c_style) || !state.writeable())
    throw py::value_error("state must be a writable C-contiguous array");
  CheckAligned(state, "state");
  return state.mutable_data();
}

void EmaUpdatePy(py::array& state, const py::array& scores, float alpha) {
  const Logits s = AsLogits(scores, "scores", INT_MAX);
  CheckRowSize(s.width, "scores");
  if (!(alpha >= 0.0f && alpha <= 1.0f)) throw py::value_error("alpha must be in [0, 1]");
  auto* st = static_cast<float*>(AsState(state, {scores.shape(0), scores.shape(1), scores.shape(2)},
                                         py::dtype::of<float>()));
  WithoutGil([&] { EmaUpdate(s, alpha, st); });
}

void HysteresisUpdatePy(py::array& state, const py::array& labels, int frames, const py::object& scores,
                        float margin) {
  const LabelMap l = AsLabelMap(labels, "labels");
  if (l.type != LabelType::kInt32) throw py::type_error("labels must have dtype int32, got " + DtypeString(labels));
  if (frames < 1 || frames > (1 << 20)) throw py::value_error("frames must be in 1..1048576");
  auto* st = static_cast<int32_t*>(AsState(state, {3, labels.shape(0), labels.shape(1)},
                                           py::dtype::of<int32_t>()));
  Logits s{};
  const bool with_scores = !scores.is_none();
  if (with_scores) {
    const py::array a = scores.cast<py::array>();
    s = AsLogits(a, "scores", INT_MAX);
    if (s.height != l.height || s.width != l.width)
      throw py::value_error("scores " + ShapeString(a) + " and labels " + ShapeString(labels) +
                            " differ in size");
    if (!std::isfinite(margin)) throw py::value_error("margin must be finite");
  }
  int64_t value = 0;
  const bool ok = WithoutGil([&] {
    return HysteresisUpdate(reinterpret_cast<const int32_t*>(l.data), l.row_stride, l.width, l.height,
                            with_scores ? &s : nullptr, margin, frames, st, &value);
  });
  if (!ok)
    throw py::value_error("class " + std::to_string(value) + " (in labels or the state) has no score: scores has " +
                          std::to_string(s.channels) + " classes");
}

// A 2-D uint8 plane of exactly (height, width) with packed rows (an alpha
// matte); returns its data, the row stride in *stride.
const uint8_t* AsPlane(const py::array& a, const char* name, int64_t height, int64_t width, ptrdiff_t* stride) {
  if (!HasDtype(a, py::dtype::of<uint8_t>()))
    throw py::type_error(std::string(name) + " must have dtype uint8, got " + DtypeString(a));
  if (a.ndim() != 2 || a.shape(0) != height || a.shape(1) != width)
    throw py::value_error(std::string(name) + " must have shape (" + std::to_string(height) + ", " +
                          std::to_string(width) + "), got " + ShapeString(a));
  if (a.size() > 0 && a.shape(1) > 1 && a.strides(1) != 1)
    throw py::value_error(std::string(name) + " must have packed rows (strides[1] == 1)");
  *stride = a.strides(0);
  return static_cast<const uint8_t*>(a.data());
}

void BlendPy(const py::array& foreground, const py::object& background, const py::array& alpha, py::array& out) {
  const ImageView fg = AsImage(foreground, "foreground");
  ImageView bg{};
  uint8_t color[4] = {0, 0, 0, 0};
  const bool image_background = py::isinstance<py::array>(background);
  if (image_background) {
    const py::array b = background.cast<py::array>();
    bg = AsImage(b, "background");
    if (bg.width != fg.width || bg.height != fg.height || bg.channels != fg.channels)
      throw py::value_error("background must have the shape of foreground " + ShapeString(foreground) + ", got " +
                            ShapeString(b));
  } else {
    const std::vector<int> rgba = background.cast<std::vector<int>>();
    if (rgba.size() != 3 && rgba.size() != 4) throw py::value_error("background colour must have 3 or 4 values");
    for (size_t i = 0; i < rgba.size(); ++i) {
      if (rgba[i] < 0 || rgba[i] > 255) throw py::value_error("background colour values must be in 0..255");
      color[i] = static_cast<uint8_t>(rgba[i]);
    }
  }
  ptrdiff_t alpha_stride;
  const uint8_t* a = AsPlane(alpha, "alpha", fg.height, fg.width, &alpha_stride);
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {foreground.shape(0), foreground.shape(1), foreground.shape(2)}, py::dtype::of<uint8_t>(),
                        &stride);
  WithoutGil([&] { Blend(fg, image_background ? &bg : nullptr, color, a, alpha_stride, o, stride); });
}

void CheckBlurRadius(double radius) {
  if (!(std::isfinite(radius) && radius > 0.0 && radius <= kMaxBlurRadius))
    throw py::value_error("radius must be a number in (0, MAX_BLUR_RADIUS = " +
                          std::to_string(static_cast<int>(kMaxBlurRadius)) + "], got " + std::to_string(radius));
}

void BlurPy(const py::array& image, double radius, py::array& out) {
  const ImageView img = AsImage(image, "image");
  CheckBlurRadius(radius);
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {image.shape(0), image.shape(1), image.shape(2)}, py::dtype::of<uint8_t>(), &stride);
  WithoutGil([&] { Blur(img, radius, o, stride); });
}

py::tuple BlurPlanPy(double radius) {
  CheckBlurRadius(radius);
  const BlurPlan plan = PlanBlur(radius);
  return py::make_tuple(plan.factor, plan.offsets, std::vector<int>(plan.coeffs.begin(), plan.coeffs.end()));
}

void RefineMattePy(const py::array& matte, const py::array& guide, double radius, double eps, py::array& out) {
  const ImageView g = AsImage(guide, "guide");
  ptrdiff_t matte_stride;
  const uint8_t* m = AsPlane(matte, "matte", g.height, g.width, &matte_stride);
  if (!(std::isfinite(radius) && radius >= 1.0 && radius <= kMaxRefineRadius))
    throw py::value_error("radius must be a number in [1, MAX_REFINE_RADIUS = " +
                          std::to_string(static_cast<int>(kMaxRefineRadius)) + "], got " + std::to_string(radius));
  if (!(eps >= kMinRefineEps && eps <= kMaxRefineEps))  // NaN fails too
    throw py::value_error("eps must be a number in [1e-06, 100], got " + std::to_string(eps));
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {guide.shape(0), guide.shape(1)}, py::dtype::of<uint8_t>(), &stride);
  WithoutGil([&] { RefineMatte(m, matte_stride, g, radius, eps, o, stride); });
}

py::tuple RefinePlanPy(double radius) {
  if (!(std::isfinite(radius) && radius >= 1.0 && radius <= kMaxRefineRadius))
    throw py::value_error("radius must be a number in [1, MAX_REFINE_RADIUS]");
  const RefinePlan plan = PlanRefine(radius);
  return py::make_tuple(plan.factor, plan.radius);
}

void UpsampleMattePy(const py::array& planes, const std::string& reduce, py::array& out) {
  const Logits p = AsLogits(planes, "planes", 1 << 16);
  CheckRowSize(p.width, "planes");
  if (reduce != "sum" && reduce != "max") throw py::value_error("reduce must be 'sum' or 'max', got '" + reduce + "'");
  if (out.ndim() != 2) throw py::value_error("out must be a 2-D array, got shape " + ShapeString(out));
  const int64_t w = out.shape(1), h = out.shape(0);
  if (w > 0 && h > 0 && (p.height == 0 || p.width == 0))
    throw py::value_error("planes is empty: there is nothing to upsample from");
  CheckRowSize(w, "out");
  ptrdiff_t stride;
  uint8_t* o = AsOutput(out, {h, w}, py::dtype::of<uint8_t>(), &stride);
  WithoutGil([&] { UpsampleMatte(p, reduce == "max", o, w, h, stride); });
}

py::array_t<int32_t> NearestIndexMapPy(int64_t src, int64_t dst) {
  if (src < 1 || dst < 0) throw py::value_error("need src >= 1 and dst >= 0");
  const std::vector<int32_t> map = NearestIndexMap(src, dst);
  return py::array_t<int32_t>(static_cast<py::ssize_t>(map.size()), map.data());
}

py::tuple ResampleAxisPy(int64_t in_size, int64_t out_size) {
  if (in_size < 1 || out_size < 1) throw py::value_error("need sizes >= 1");
  const ResampleAxis a = ComputeResampleAxis(in_size, out_size);
  py::array_t<int32_t> start(static_cast<py::ssize_t>(a.start.size()), a.start.data());
  py::array_t<int16_t> coeffs({static_cast<py::ssize_t>(out_size), static_cast<py::ssize_t>(a.taps)},
                              a.coeffs.data());
  return py::make_tuple(start, coeffs);
}

}  // namespace
}  // namespace coreseg

PYBIND11_MODULE(_native, m) {
  using namespace coreseg;
  m.doc() = "coreseg's native kernels. Use the coreseg package, not this module.";
  m.def("simd_backend", [] { return std::string(ActiveRows().name); },
        "Name of the row functions in use: scalar, sse41, avx2 or neon.");
  m.def("available_backends", &AvailableBackends, "Backends this CPU can run, best last.");
  m.def("set_simd_backend", [](const std::string& name) {
    try {
      SetActiveBackend(name);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }, py::arg("name"));
  m.def("set_num_threads", [](int64_t n) {
    if (n < 1 || n > kMaxThreads)
      throw py::value_error("n must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(n));
    SetNumThreads(static_cast<int>(n));
  }, py::arg("n"));
  m.attr("MAX_THREADS") = kMaxThreads;
  m.attr("MAX_SIDE") = kMaxSide;
  m.attr("MAX_DOWNSCALE") = kMaxDownscale;
  m.def("get_num_threads", &NumThreads);
  m.def("render_mask", &RenderMaskPy, py::arg("labels"), py::arg("selected"), py::arg("color"),
        py::arg("out"));
  m.def("colorize", &ColorizePy, py::arg("labels"), py::arg("palette"), py::arg("out"));
  m.def("resize_labels", &ResizeLabelsPy, py::arg("labels"), py::arg("out"));
  m.def("composite", &CompositePy, py::arg("image"), py::arg("labels"), py::arg("palette"),
        py::arg("opacity"), py::arg("outline"), py::arg("out"));
  m.def("resize_image", &ResizeImagePy, py::arg("image"), py::arg("order"), py::arg("out"));
  m.def("decode_colors", &DecodeColorsPy, py::arg("rgb"), py::arg("colors"), py::arg("unknown"), py::arg("out"));
  m.def("confusion_matrix", &ConfusionMatrixPy, py::arg("gt"), py::arg("pred"), py::arg("num_classes"),
        py::arg("ignore_index"), py::arg("out"));
  m.def("class_histogram", &ClassHistogramPy, py::arg("labels"), py::arg("num_classes"), py::arg("out"));
  m.def("boundary_counts", &BoundaryCountsPy, py::arg("gt"), py::arg("pred"), py::arg("num_classes"),
        py::arg("distance"), py::arg("tolerance"), py::arg("ignore_index"), py::arg("out"));
  m.def("argmax", &ArgmaxPy, py::arg("logits"), py::arg("out"));
  m.def("upsample_argmax", &UpsampleArgmaxPy, py::arg("scores"), py::arg("out"));
  m.def("ema_update", &EmaUpdatePy, py::arg("state"), py::arg("scores"), py::arg("alpha"));
  m.def("hysteresis_update", &HysteresisUpdatePy, py::arg("state"), py::arg("labels"), py::arg("frames"),
        py::arg("scores"), py::arg("margin"));
  m.def("convert_array", &ConvertArrayPy, py::arg("src"), py::arg("out"));
  m.def("nearest_index_map", &NearestIndexMapPy, py::arg("src"), py::arg("dst"));
  m.attr("MAX_BLUR_RADIUS") = kMaxBlurRadius;
  m.def("blend", &BlendPy, py::arg("foreground"), py::arg("background"), py::arg("alpha"), py::arg("out"));
  m.def("blur", &BlurPy, py::arg("image"), py::arg("radius"), py::arg("out"));
  m.def("blur_plan", &BlurPlanPy, py::arg("radius"));
  m.attr("MAX_REFINE_RADIUS") = kMaxRefineRadius;
  m.def("refine_matte", &RefineMattePy, py::arg("matte"), py::arg("guide"), py::arg("radius"), py::arg("eps"),
        py::arg("out"));
  m.def("refine_plan", &RefinePlanPy, py::arg("radius"));
  m.def("upsample_matte", &UpsampleMattePy, py::arg("planes"), py::arg("reduce"), py::arg("out"));
  m.def("resample_axis", &ResampleAxisPy, py::arg("in_size"), py::arg("out_size"));
}
