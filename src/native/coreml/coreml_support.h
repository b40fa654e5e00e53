// Shared by the Core ML backend's Objective-C++ files (ARC): string and
// error conversions, the autorelease-pool wrapper every call runs in, shape
// helpers, data types, feature summaries and the Result's contents.
#pragma once

#import <CoreML/CoreML.h>
#import <CoreVideo/CoreVideo.h>
#import <Foundation/Foundation.h>

#include <chrono>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "coreml_model.h"

namespace coreseg {
namespace coreml {

// The Core ML backend needs macOS 13 (iOS 16): every function that calls
// Core ML is marked so, and the entry points (CompileModel, Model, Result)
// check @available(macOS 13, *) and refuse with NeedsNewerOS() otherwise,
// so a build for an older deployment target loads and says why it cannot
// run instead of failing on a missing selector.
#define CORESEG_COREML_API API_AVAILABLE(macos(13.0), ios(16.0), tvos(16.0)) API_UNAVAILABLE(watchos)

inline std::string NeedsNewerOS() {
  const NSOperatingSystemVersion v = NSProcessInfo.processInfo.operatingSystemVersion;
  return "coreseg's Core ML backend needs macOS 13 or later, and this is macOS " + std::to_string(v.majorVersion) +
         "." + std::to_string(v.minorVersion) + "." + std::to_string(v.patchVersion) +
         ": load the model's ONNX export with backend='onnx'";
}

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline std::string FromNS(NSString* s) { return s == nil ? std::string() : std::string(s.UTF8String ?: ""); }

inline NSString* ToNS(const std::string& s) { return [NSString stringWithUTF8String:s.c_str()] ?: @""; }

inline std::string Describe(NSError* error, const std::string& what) {
  std::string message = what;
  if (error != nil) {
    message += ": " + FromNS(error.localizedDescription);
    if (error.localizedFailureReason != nil) message += " (" + FromNS(error.localizedFailureReason) + ")";
  }
  return message;
}

[[noreturn]] inline void Fail(NSError* error, const std::string& what) { throw Failure(Describe(error, what)); }

// Runs f() in its own autorelease pool. Every failure inside (ours, any C++
// exception, Objective-C exceptions, which must never reach Python) is
// caught inside the pool, so the pool always drains, and is rethrown as a
// coreml::Failure after it.
template <typename F>
auto InPool(const char* what, F&& f) -> decltype(f()) {
  std::string error;
  decltype(f()) result{};
  @autoreleasepool {
    try {
      @try {
        result = f();
      } @catch (NSException* e) {
        error = std::string("Core ML raised ") + FromNS(e.name) + " while " + what + ": " + FromNS(e.reason);
      }
    } catch (const Failure& e) {
      error = e.what();
    } catch (const std::bad_alloc&) {
      error = std::string("out of memory while ") + what;
    } catch (const std::exception& e) {
      error = std::string("error while ") + what + ": " + e.what();
    } catch (...) {
      error = std::string("unknown error while ") + what;
    }
  }
  if (!error.empty()) throw Failure(error);
  return result;
}

// Shape with the unit axes dropped (Core ML may add or drop them).
inline std::vector<int64_t> Squeezed(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  for (int64_t d : shape)
    if (d != 1) out.push_back(d);
  return out;
}

inline std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

inline std::vector<int64_t> Numbers(NSArray<NSNumber*>* a) {
  std::vector<int64_t> out;
  for (NSNumber* n in a) out.push_back(n.longLongValue);
  return out;
}

inline NSArray<NSNumber*>* NSNumbers(const std::vector<int64_t>& v) {
  NSMutableArray<NSNumber*>* out = [NSMutableArray arrayWithCapacity:v.size()];
  for (int64_t d : v) [out addObject:@(d)];
  return out;
}

// Data types (coreml_describe.mm). DtypeName names every value, those
// this SDK does not declare too ("int8", or "unknown (0x...)").
CORESEG_COREML_API std::string DtypeName(MLMultiArrayDataType t);
CORESEG_COREML_API bool ToElementType(MLMultiArrayDataType t, ElementType* out);
CORESEG_COREML_API MLMultiArrayDataType ToDataType(ElementType t);

// What Core ML's description says of one feature (coreml_describe.mm).
CORESEG_COREML_API FeatureSummary Summarise(MLFeatureDescription* f);

// A Core ML output held by a Result (coreml_result.mm): a multi-array, or
// the pixel buffer of a grayscale image output.
struct Result::Impl {
  MLMultiArray* array = nil;         // strong (ARC)
  CVPixelBufferRef pixels = nullptr;  // +1 reference, released with the Impl
  std::vector<int64_t> shape;        // {height, width} for pixels
  std::string name;

  Impl() = default;
  ~Impl() {
    if (pixels != nullptr) CVPixelBufferRelease(pixels);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

// Whether a CoreVideo pixel format is one coreseg reads class ids from
// (a grayscale image output), and its bytes per pixel (0: not one).
inline size_t ClassIdPixelBytes(OSType format) {
  switch (format) {
    case kCVPixelFormatType_OneComponent8: return 1;
    case kCVPixelFormatType_OneComponent16Half: return 2;
    default: return 0;
  }
}

}  // namespace coreml
}  // namespace coreseg
