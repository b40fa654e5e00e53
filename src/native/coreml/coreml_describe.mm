// What Core ML's MLModelDescription says of a model's features, as plain
// C++ (FeatureSummary) for the bindings to turn into Python dicts. ARC.
#import <CoreML/CoreML.h>
#import <Foundation/Foundation.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "coreml_support.h"

namespace coreseg {
namespace coreml {
namespace {

std::pair<int64_t, int64_t> RangeOf(NSRange r) {
  const int64_t lo = static_cast<int64_t>(r.location);
  // NSRange covers [location, location + length); an open range has a
  // length near NSIntegerMax, kept as it is (Python reads it as unbounded).
  const int64_t length = static_cast<int64_t>(r.length > static_cast<NSUInteger>(INT64_MAX / 2) ? INT64_MAX / 2 : r.length);
  return {lo, length > 0 ? lo + length - 1 : lo};
}

}  // namespace

std::string DtypeName(MLMultiArrayDataType t) {
  switch (t) {
    case MLMultiArrayDataTypeInt32: return "int32";
    case MLMultiArrayDataTypeFloat32: return "float32";
    case MLMultiArrayDataTypeFloat64: return "float64";
    case MLMultiArrayDataTypeFloat16: return "float16";
    default: break;
  }
  // A model made for a newer Core ML can declare a type this SDK does not.
  // MLMultiArrayDataType's values are the model spec's ArrayDataType
  // numbers (MLMultiArray.h: 0x10000 | bits for floats, 0x20000 | bits for
  // integers); the spec's INT8 is 0x20000 | 8. coreseg reads neither: the
  // name is only for the refusal (coreseg.running.backends.coreml, and
  // Model::Predict), which must say what the model has.
  const auto raw = static_cast<long long>(t);
  if (raw == (0x20000 | 8)) return "int8";
  char text[48];
  std::snprintf(text, sizeof text, "unknown (0x%llX)", raw);
  return text;
}

bool ToElementType(MLMultiArrayDataType t, ElementType* out) {
  switch (t) {
    case MLMultiArrayDataTypeInt32: *out = ElementType::kInt32; return true;
    case MLMultiArrayDataTypeFloat16: *out = ElementType::kFloat16; return true;
    case MLMultiArrayDataTypeFloat32: *out = ElementType::kFloat32; return true;
    case MLMultiArrayDataTypeFloat64: *out = ElementType::kFloat64; return true;
    default: return false;
  }
}

MLMultiArrayDataType ToDataType(ElementType t) {
  switch (t) {
    case ElementType::kInt32: return MLMultiArrayDataTypeInt32;
    case ElementType::kFloat16: return MLMultiArrayDataTypeFloat16;
    case ElementType::kFloat32: return MLMultiArrayDataTypeFloat32;
    case ElementType::kFloat64: return MLMultiArrayDataTypeFloat64;
  }
  return MLMultiArrayDataTypeFloat32;
}

FeatureSummary Summarise(MLFeatureDescription* f) {
  FeatureSummary s;
  s.name = FromNS(f.name);
  s.optional = f.optional;
  switch (f.type) {
    case MLFeatureTypeImage: {
      MLImageConstraint* c = f.imageConstraint;
      s.kind = "image";
      s.shape = {static_cast<int64_t>(c.pixelsHigh), static_cast<int64_t>(c.pixelsWide)};
      s.pixel_format = c.pixelFormatType;
      MLImageSizeConstraint* size = c.sizeConstraint;
      switch (size.type) {
        case MLImageSizeConstraintTypeRange:
          s.constraint = "range";
          s.ranges = {RangeOf(size.pixelsWideRange), RangeOf(size.pixelsHighRange)};
          break;
        case MLImageSizeConstraintTypeEnumerated:
          s.constraint = "enumerated";
          for (MLImageSize* e in size.enumeratedImageSizes)
            s.enumerated.push_back({static_cast<int64_t>(e.pixelsWide), static_cast<int64_t>(e.pixelsHigh)});
          break;
        default: s.constraint = "unspecified"; break;
      }
      break;
    }
    case MLFeatureTypeMultiArray: {
      MLMultiArrayConstraint* c = f.multiArrayConstraint;
      s.kind = "multiArray";
      for (NSNumber* n in c.shape) s.shape.push_back(n.longLongValue);
      s.dtype = DtypeName(c.dataType);
      MLMultiArrayShapeConstraint* shape = c.shapeConstraint;
      switch (shape.type) {
        case MLMultiArrayShapeConstraintTypeRange:
          s.constraint = "range";
          for (NSValue* v in shape.sizeRangeForDimension) s.ranges.push_back(RangeOf(v.rangeValue));
          break;
        case MLMultiArrayShapeConstraintTypeEnumerated:
          s.constraint = "enumerated";
          for (NSArray<NSNumber*>* e in shape.enumeratedShapes) {
            std::vector<int64_t> dims;
            for (NSNumber* n in e) dims.push_back(n.longLongValue);
            s.enumerated.push_back(dims);
          }
          break;
        default: s.constraint = "unspecified"; break;
      }
      break;
    }
    case MLFeatureTypeInt64: s.kind = "int64"; break;
    case MLFeatureTypeDouble: s.kind = "double"; break;
    case MLFeatureTypeString: s.kind = "string"; break;
    case MLFeatureTypeDictionary: s.kind = "dictionary"; break;
    case MLFeatureTypeSequence: s.kind = "sequence"; break;
    default: s.kind = "other"; break;
  }
  return s;
}


}  // namespace coreml
}  // namespace coreseg
