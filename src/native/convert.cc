// ConvertArray: a strided N-d array of int32 / float16 / float32 / float64
// elements copied into packed memory of another of those types. The Core ML
// backend reads results with it (Core ML's strides may pad rows, and old
// neural networks return class maps as floats); coreseg._native binds it so
// it is tested everywhere against numpy.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels.h"
#include "row.h"  // HalfToFloat

namespace coreseg {
namespace {

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

double ReadDouble(const uint8_t* p, ElementType type) {
  switch (type) {
    case ElementType::kInt32: return Load<int32_t>(p);
    case ElementType::kFloat16: return HalfToFloat(Load<uint16_t>(p));
    case ElementType::kFloat32: return Load<float>(p);
    case ElementType::kFloat64: return Load<double>(p);
  }
  return 0;
}

// One row (the innermost axis) converted; false with the bad value when a
// float is not a whole number in int32's range (NaN included): casting it
// would be undefined behaviour, and it is no class id anyway.
bool ConvertRow(const uint8_t* src, ptrdiff_t step, ElementType from, int64_t n, uint8_t* dst, ElementType to,
                double* bad) {
  const size_t out_size = ElementSize(to);
  for (int64_t i = 0; i < n; ++i, src += step, dst += out_size) {
    if (from == to) {
      std::memcpy(dst, src, out_size);
      continue;
    }
    const double v = ReadDouble(src, from);
    switch (to) {
      case ElementType::kInt32: {
        if (!(v >= -2147483648.0 && v <= 2147483647.0) || v != std::floor(v)) {
          *bad = v;
          return false;
        }
        const int32_t x = static_cast<int32_t>(v);
        std::memcpy(dst, &x, 4);
        break;
      }
      case ElementType::kFloat16: {
        const uint16_t x = FloatToHalf(static_cast<float>(v));
        std::memcpy(dst, &x, 2);
        break;
      }
      case ElementType::kFloat32: {
        const float x = static_cast<float>(v);
        std::memcpy(dst, &x, 4);
        break;
      }
      case ElementType::kFloat64:
        std::memcpy(dst, &v, 8);
        break;
    }
  }
  return true;
}

}  // namespace

size_t ElementSize(ElementType type) {
  switch (type) {
    case ElementType::kInt32: return 4;
    case ElementType::kFloat16: return 2;
    case ElementType::kFloat32: return 4;
    case ElementType::kFloat64: return 8;
  }
  return 0;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return static_cast<uint16_t>(sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u));
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {
    // Below 2^-14: a subnormal half, round(|f| * 2^24) (exact scaling; the
    // default rounding mode is to nearest, ties to even).
    float a;
    std::memcpy(&a, &ax, 4);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  // Normal: rebias the exponent (127 -> 15) and round the mantissa to 10
  // bits, to nearest, ties to even (a carry into the exponent is right).
  ax += 0xC8000FFFu + ((ax >> 13) & 1u);
  return static_cast<uint16_t>(sign | (ax >> 13));
}

bool ConvertArray(const StridedArray& src, uint8_t* dst, ElementType to, double* bad_value) {
  const int rank = static_cast<int>(src.shape.size());
  int64_t count = 1;
  for (int64_t d : src.shape) count *= d;
  if (count == 0) return true;
  if (rank == 0) return ConvertRow(src.data, 0, src.type, 1, dst, to, bad_value);
  const size_t in_size = ElementSize(src.type), out_size = ElementSize(to);
  const int64_t row = src.shape[rank - 1];
  const ptrdiff_t step = static_cast<ptrdiff_t>(src.strides[rank - 1]) * static_cast<ptrdiff_t>(in_size);
  std::vector<int64_t> index(rank, 0);
  for (int64_t done = 0; done < count; done += row) {
    ptrdiff_t offset = 0;
    for (int d = 0; d < rank - 1; ++d) offset += static_cast<ptrdiff_t>(index[d] * src.strides[d]);
    if (!ConvertRow(src.data + offset * static_cast<ptrdiff_t>(in_size), step, src.type, row, dst, to, bad_value))
      return false;
    dst += row * static_cast<int64_t>(out_size);
    for (int d = rank - 2; d >= 0; --d) {
      if (++index[d] < src.shape[d]) break;
      index[d] = 0;
    }
  }
  return true;
}

}  // namespace coreseg
