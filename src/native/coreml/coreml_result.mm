// Result: one output array Core ML returned, held (ARC) until the caller
// copies it out with ConvertArray, outside the model's lock.
#import <CoreML/CoreML.h>
#import <Foundation/Foundation.h>

#include <cstdint>
#include <string>

#include "../kernels.h"
#include "coreml_support.h"

namespace coreseg {
namespace coreml {

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
  InPool("reading the result", [&]() -> int {
    MLMultiArray* array = impl_->array;
    if (Squeezed(impl_->shape) != Squeezed(dst.shape))
      throw Failure("Core ML returned output " + impl_->name + " of shape " + ShapeText(impl_->shape) +
                    ", which does not fit an array of shape " + ShapeText(dst.shape));
    StridedArray src{nullptr, ElementType::kInt32, impl_->shape, Numbers(array.strides)};
    if (!ToElementType(array.dataType, &src.type))
      throw Failure("Core ML returned output " + impl_->name + " of an unsupported data type");
    if (src.strides.size() != src.shape.size()) throw Failure("Core ML returned strides of the wrong rank");
    int64_t count = 1;
    for (int64_t d : dst.shape) count *= d;
    if (static_cast<size_t>(count) * ElementSize(dst.type) > dst.bytes)
      throw Failure("the output array is too small for Core ML's result");
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
}

}  // namespace coreml
}  // namespace coreseg
