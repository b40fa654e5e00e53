// Result: one output Core ML returned, held until the caller copies it out,
// outside the model's lock: a multi-array (ARC) with ConvertArray, or the
// pixel buffer of a grayscale image output (class ids as pixels), read
// locked read-only, row by row, into int32.
#import <CoreML/CoreML.h>
#import <CoreVideo/CoreVideo.h>
#import <Foundation/Foundation.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "../kernels.h"
#include "coreml_support.h"

namespace coreseg {
namespace coreml {
namespace {

// A read-only lock on a pixel buffer's base address, undone (with the same
// flags, as CVPixelBuffer.h requires) however the reading ends.
class ReadLock {
 public:
  explicit ReadLock(CVPixelBufferRef buffer)
      : buffer_(buffer), status_(CVPixelBufferLockBaseAddress(buffer, kCVPixelBufferLock_ReadOnly)) {}
  ~ReadLock() {
    if (status_ == kCVReturnSuccess) CVPixelBufferUnlockBaseAddress(buffer_, kCVPixelBufferLock_ReadOnly);
  }
  ReadLock(const ReadLock&) = delete;
  ReadLock& operator=(const ReadLock&) = delete;
  CVReturn status() const { return status_; }

 private:
  CVPixelBufferRef buffer_;
  CVReturn status_;
};

// An image output's pixels (class ids) into `dst`, int32 (height, width).
void CopyPixels(CVPixelBufferRef pixels, const std::string& name, const Array& dst) {
  if (dst.type != ElementType::kInt32)
    throw Failure("image output " + name + " holds class ids: it is read into int32, not another type");
  const OSType format = CVPixelBufferGetPixelFormatType(pixels);
  const size_t pixel = ClassIdPixelBytes(format);
  if (pixel == 0 || CVPixelBufferIsPlanar(pixels))
    throw Failure("Core ML returned image output " + name +
                  " in a pixel format that is not one-component 8-bit or 16-bit float");
  const size_t width = CVPixelBufferGetWidth(pixels), height = CVPixelBufferGetHeight(pixels);
  const ReadLock lock(pixels);
  if (lock.status() != kCVReturnSuccess)
    throw Failure("CVPixelBufferLockBaseAddress failed for output " + name + " (CVReturn " +
                  std::to_string(lock.status()) + ")");
  const auto* base = static_cast<const uint8_t*>(CVPixelBufferGetBaseAddress(pixels));
  const size_t stride = CVPixelBufferGetBytesPerRow(pixels);
  // Every row Core ML's bytes per row reach must lie within its buffer.
  if (base == nullptr || stride < width * pixel || stride % pixel != 0 ||
      (height > 0 && (height - 1) * stride + width * pixel > CVPixelBufferGetDataSize(pixels)))
    throw Failure("Core ML's rows for image output " + name + " reach outside its buffer");
  if (format == kCVPixelFormatType_OneComponent8) {
    uint8_t* out = dst.data;
    for (size_t y = 0; y < height; ++y) {
      const uint8_t* row = base + y * stride;
      for (size_t x = 0; x < width; ++x, out += sizeof(int32_t)) {
        const int32_t id = row[x];
        std::memcpy(out, &id, sizeof id);
      }
    }
    return;
  }
  // 16-bit float pixels: whole numbers, as for float class maps.
  const StridedArray view{base, ElementType::kFloat16, {static_cast<int64_t>(height), static_cast<int64_t>(width)},
                          {static_cast<int64_t>(stride / pixel), 1}};
  double bad = 0;
  if (!ConvertArray(view, dst.data, ElementType::kInt32, &bad))
    throw Failure("Core ML returned " + std::to_string(bad) + " in output " + name +
                  ", which is not a class id (a whole number that fits int32)");
}

}  // namespace

Result::Result() = default;
Result::Result(Result&&) noexcept = default;
Result& Result::operator=(Result&&) noexcept = default;
Result::~Result() {
  // Releasing Core ML's array may autorelease objects of its own.
  @autoreleasepool {
    impl_.reset();
  }
}

bool Result::empty() const { return impl_ == nullptr; }

const std::vector<int64_t>& Result::shape() const {
  static const std::vector<int64_t> none;
  return impl_ ? impl_->shape : none;
}

void Result::CopyTo(const Array& dst) const {
  if (!impl_) throw Failure("no Core ML result to copy");
  if (@available(macOS 13, *)) {
    InPool("reading the result", [&]() -> int {
      if (Squeezed(impl_->shape) != Squeezed(dst.shape))
        throw Failure("Core ML returned output " + impl_->name + " of shape " + ShapeText(impl_->shape) +
                      ", which does not fit an array of shape " + ShapeText(dst.shape));
      int64_t elements = 1;
      for (int64_t d : dst.shape) elements *= d;
      if (static_cast<size_t>(elements) * ElementSize(dst.type) > dst.bytes)
        throw Failure("the output array is too small for Core ML's result");
      if (impl_->pixels != nullptr) {
        CopyPixels(impl_->pixels, impl_->name, dst);
        return 0;
      }
      MLMultiArray* array = impl_->array;
      StridedArray src{nullptr, ElementType::kInt32, impl_->shape, Numbers(array.strides)};
      if (!ToElementType(array.dataType, &src.type))
        throw Failure("Core ML returned output " + impl_->name + " as " + DtypeName(array.dataType) +
                      ", which coreseg does not read");
      if (src.strides.size() != src.shape.size()) throw Failure("Core ML returned strides of the wrong rank");
      __block bool ok = true;
      __block bool in_bounds = true;
      __block double bad = 0;
      [array getBytesWithHandler:^(const void* bytes, NSInteger size) {
        // Every element Core ML's strides reach must lie within its buffer.
        int64_t last = 0;
        for (size_t d = 0; d < src.shape.size(); ++d) {
          if (src.shape[d] == 0) return;
          if (src.strides[d] < 0) { in_bounds = false; return; }
          last += (src.shape[d] - 1) * src.strides[d];
        }
        if ((last + 1) * static_cast<int64_t>(ElementSize(src.type)) > static_cast<int64_t>(size)) {
          in_bounds = false;
          return;
        }
        StridedArray view = src;
        view.data = static_cast<const uint8_t*>(bytes);
        ok = ConvertArray(view, dst.data, dst.type, &bad);
      }];
      if (!in_bounds) throw Failure("Core ML's strides for output " + impl_->name + " reach outside its buffer");
      if (!ok)
        throw Failure("Core ML returned " + std::to_string(bad) + " in output " + impl_->name +
                      ", which is not a class id (a whole number that fits int32)");
      return 0;
    });
  } else {
    throw Failure(NeedsNewerOS());
  }
}

}  // namespace coreml
}  // namespace coreseg
