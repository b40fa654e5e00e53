// The Core ML backend: MLModel and CVPixelBuffer, used directly.
//
// Input: the caller's memory wrapped by CVPixelBufferCreateWithBytes when it
// already has the model's size, byte order and row alignment; otherwise one
// pass of the resize_image kernel into a locked, IOSurface-backed buffer
// from a CVPixelBufferPool. Output: an Int32 MLMultiArray over the caller's
// page-aligned memory, offered as MLPredictionOptions.outputBackings;
// whether Core ML used it is checked by pointer, and if not, its result is
// copied once, honouring its strides. Every NSError and Objective-C
// exception becomes a coreml::Failure; every call runs in its own
// autorelease pool. Built with ARC.
#import <CoreML/CoreML.h>
#import <CoreVideo/CoreVideo.h>
#import <Foundation/Foundation.h>
#import <IOSurface/IOSurfaceRef.h>  // the pool's buffers are IOSurface-backed

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>

#include "../kernels.h"
#include "../row.h"  // HalfToFloat
#include "coreml_model.h"

namespace coreseg {
namespace coreml {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string Describe(NSError* error, const char* what) {
  std::string message = what;
  if (error != nil) {
    message += ": ";
    message += error.localizedDescription.UTF8String ?: "(no description)";
    if (error.localizedFailureReason != nil) {
      message += " (";
      message += error.localizedFailureReason.UTF8String;
      message += ")";
    }
  }
  return message;
}

[[noreturn]] void Fail(NSError* error, const char* what) { throw Failure(Describe(error, what)); }

std::string FromNS(NSString* s) { return s == nil ? std::string() : std::string(s.UTF8String ?: ""); }

// Runs f() in its own autorelease pool. Failures (ours, and Objective-C
// exceptions, which must never reach Python) are caught inside the pool, so
// it always drains, and rethrown as coreml::Failure after it.
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
    }
  }
  if (!error.empty()) throw Failure(error);
  return result;
}

// A keepalive released exactly once, whichever of Core ML's callbacks or our
// own error paths gets there first.
class Holder {
 public:
  explicit Holder(Keepalive k) : k_(k) {}
  ~Holder() { Release(); }
  void Release() {
    if (k_.release != nullptr && !done_.exchange(true)) k_.release(k_.context);
  }

 private:
  Keepalive k_;
  std::atomic<bool> done_{false};
};

// Owns one reference to a pixel buffer (C++ exceptions and ObjC @finally
// do not mix reliably; a destructor always runs).
struct PixelBuffer {
  CVPixelBufferRef ref = nullptr;
  explicit PixelBuffer(CVPixelBufferRef r) : ref(r) {}
  ~PixelBuffer() {
    if (ref != nullptr) CVPixelBufferRelease(ref);
  }
  PixelBuffer(const PixelBuffer&) = delete;
  PixelBuffer& operator=(const PixelBuffer&) = delete;
};

// CoreVideo's release callback for wrapped caller memory: refCon is a heap
// shared_ptr<Holder>. It may run on any thread, at any later time.
void ReleaseWrappedBytes(void* refCon, const void* /*baseAddress*/) {
  auto* holder = static_cast<std::shared_ptr<Holder>*>(refCon);
  (*holder)->Release();
  delete holder;
}

const char* DtypeName(MLMultiArrayDataType t) {
  switch (t) {
    case MLMultiArrayDataTypeInt32: return "int32";
    case MLMultiArrayDataTypeFloat32: return "float32";
    case MLMultiArrayDataTypeFloat64: return "float64";
    case MLMultiArrayDataTypeFloat16: return "float16";
    default: return "unknown";
  }
}

FeatureSummary Summarise(MLFeatureDescription* f) {
  FeatureSummary s;
  s.name = FromNS(f.name);
  switch (f.type) {
    case MLFeatureTypeImage: {
      MLImageConstraint* c = f.imageConstraint;
      s.kind = "image";
      s.shape = {static_cast<int64_t>(c.pixelsHigh), static_cast<int64_t>(c.pixelsWide)};
      s.pixel_format = c.pixelFormatType;
      break;
    }
    case MLFeatureTypeMultiArray: {
      MLMultiArrayConstraint* c = f.multiArrayConstraint;
      s.kind = "multiArray";
      for (NSNumber* n in c.shape) s.shape.push_back(n.longLongValue);
      s.dtype = DtypeName(c.dataType);
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

// One element of a result array as int32, whatever its data type.
int32_t ReadAsInt32(const uint8_t* base, MLMultiArrayDataType type, int64_t offset) {
  switch (type) {
    case MLMultiArrayDataTypeInt32: {
      int32_t v;
      std::memcpy(&v, base + offset * 4, 4);
      return v;
    }
    case MLMultiArrayDataTypeFloat32: {
      float v;
      std::memcpy(&v, base + offset * 4, 4);
      return static_cast<int32_t>(v);
    }
    case MLMultiArrayDataTypeFloat64: {
      double v;
      std::memcpy(&v, base + offset * 8, 8);
      return static_cast<int32_t>(v);
    }
    case MLMultiArrayDataTypeFloat16: {
      uint16_t v;
      std::memcpy(&v, base + offset * 2, 2);
      return static_cast<int32_t>(HalfToFloat(v));
    }
    default:
      throw Failure("Core ML returned a class map of an unsupported data type");
  }
}

}  // namespace

struct Model::Impl {
  MLModel* model = nil;
  NSString* input_name = nil;
  NSString* output_name = nil;
  NSArray<NSNumber*>* output_shape_ns = nil;
  NSArray<NSNumber*>* output_strides_ns = nil;
  CVPixelBufferPoolRef pool = nullptr;
  int64_t width = 0, height = 0;
  uint32_t pixel_format = 0;
  std::vector<int64_t> output_shape;
  int64_t output_count = 1;
  // Only an Int32 output can write into our int32 backing; others (float
  // class maps of older neural networks) are converted in the one copy.
  bool output_is_int32 = false;
  Description description;
  std::mutex mu;

  ~Impl() {
    if (pool != nullptr) CVPixelBufferPoolRelease(pool);
  }

  // A pixel buffer holding `frame` at the model's size and byte order.
  // Returns a +1 reference; `holder` is released when Core ML is done.
  CVPixelBufferRef MakeInput(const Frame& frame, const std::shared_ptr<Holder>& holder, bool* wrapped) {
    CVPixelBufferRef buffer = nullptr;
    *wrapped = false;
    if (frame.wrap) {
      auto* refcon = new std::shared_ptr<Holder>(holder);
      const CVReturn r = CVPixelBufferCreateWithBytes(
          kCFAllocatorDefault, static_cast<size_t>(width), static_cast<size_t>(height), pixel_format,
          const_cast<uint8_t*>(frame.data), static_cast<size_t>(frame.row_stride), ReleaseWrappedBytes,
          refcon, nullptr, &buffer);
      if (r != kCVReturnSuccess) {
        delete refcon;  // CoreVideo will not call back: release here
        holder->Release();
        throw Failure("CVPixelBufferCreateWithBytes failed (CVReturn " + std::to_string(r) + ")");
      }
      *wrapped = true;
      return buffer;
    }
    const CVReturn r = CVPixelBufferPoolCreatePixelBuffer(kCFAllocatorDefault, pool, &buffer);
    if (r != kCVReturnSuccess) {
      holder->Release();
      throw Failure("CVPixelBufferPoolCreatePixelBuffer failed (CVReturn " + std::to_string(r) + ")");
    }
    if (CVPixelBufferLockBaseAddress(buffer, 0) != kCVReturnSuccess) {
      CVPixelBufferRelease(buffer);
      holder->Release();
      throw Failure("CVPixelBufferLockBaseAddress failed");
    }
    // Core ML's pool buffers are 32-bit pixels: order[] picks the bytes.
    const ImageView view{frame.data, frame.width, frame.height, frame.channels, frame.row_stride};
    ResizeImage(view, static_cast<uint8_t*>(CVPixelBufferGetBaseAddress(buffer)), width, height,
                static_cast<ptrdiff_t>(CVPixelBufferGetBytesPerRow(buffer)), frame.order, 4);
    CVPixelBufferUnlockBaseAddress(buffer, 0);
    holder->Release();  // the caller's pixels are no longer needed
    return buffer;
  }

  id<MLFeatureProvider> Features(CVPixelBufferRef buffer) {
    NSError* error = nil;
    MLFeatureValue* value = [MLFeatureValue featureValueWithPixelBuffer:buffer];
    MLDictionaryFeatureProvider* provider =
        [[MLDictionaryFeatureProvider alloc] initWithDictionary:@{input_name : value} error:&error];
    if (provider == nil) Fail(error, "could not make the model's input");
    return provider;
  }

  // Copy a result array into `out` (packed, output_count values), honouring
  // the strides Core ML reports.
  void CopyResult(MLMultiArray* array, int32_t* out) {
    NSArray<NSNumber*>* strides = array.strides;
    NSArray<NSNumber*>* shape = array.shape;
    if (static_cast<size_t>(shape.count) != output_shape.size())
      throw Failure("Core ML returned a class map of an unexpected rank");
    for (size_t d = 0; d < output_shape.size(); ++d)
      if (shape[d].longLongValue != output_shape[d])
        throw Failure("Core ML returned a class map of an unexpected shape");
    const MLMultiArrayDataType type = array.dataType;
    const size_t rank = output_shape.size();
    std::vector<int64_t> stride(rank);
    for (size_t d = 0; d < rank; ++d) stride[d] = strides[d].longLongValue;
    __block bool failed = false;
    [array getBytesWithHandler:^(const void* bytes, NSInteger /*size*/) {
      const uint8_t* base = static_cast<const uint8_t*>(bytes);
      std::vector<int64_t> index(rank, 0);
      for (int64_t i = 0; i < output_count; ++i) {
        int64_t offset = 0;
        for (size_t d = 0; d < rank; ++d) offset += index[d] * stride[d];
        try {
          out[i] = ReadAsInt32(base, type, offset);
        } catch (const Failure&) {
          failed = true;
          return;
        }
        for (size_t d = rank; d-- > 0;) {
          if (++index[d] < output_shape[d]) break;
          index[d] = 0;
        }
      }
    }];
    if (failed) throw Failure("Core ML returned a class map of an unsupported data type");
  }
};

std::string CompileModel(const std::string& path) {
  return InPool("compiling", [&]() -> std::string {
    NSURL* url = [NSURL fileURLWithPath:[NSString stringWithUTF8String:path.c_str()]];
    __block NSURL* compiled = nil;
    __block NSError* failure = nil;
    dispatch_semaphore_t done = dispatch_semaphore_create(0);
    // The asynchronous API (macOS 13); the synchronous one is deprecated.
    [MLModel compileModelAtURL:url
             completionHandler:^(NSURL* _Nullable result, NSError* _Nullable error) {
               compiled = result;
               failure = error;
               dispatch_semaphore_signal(done);
             }];
    dispatch_semaphore_wait(done, DISPATCH_TIME_FOREVER);
    if (compiled == nil) Fail(failure, "Core ML could not compile the model");
    return FromNS(compiled.path);
  });
}

Model::Model(const std::string& compiled_path, int compute_units) : impl_(new Impl) {
  InPool("loading", [&]() -> int {
      MLModelConfiguration* config = [[MLModelConfiguration alloc] init];
      switch (compute_units) {
        case 0: config.computeUnits = MLComputeUnitsCPUOnly; break;
        case 1: config.computeUnits = MLComputeUnitsCPUAndGPU; break;
        case 3: config.computeUnits = MLComputeUnitsCPUAndNeuralEngine; break;
        default: config.computeUnits = MLComputeUnitsAll; break;
      }
      NSError* error = nil;
      NSURL* url = [NSURL fileURLWithPath:[NSString stringWithUTF8String:compiled_path.c_str()]];
      impl_->model = [MLModel modelWithContentsOfURL:url configuration:config error:&error];
      if (impl_->model == nil) Fail(error, "Core ML could not load the model");

      MLModelDescription* desc = impl_->model.modelDescription;
      Description& d = impl_->description;
      for (NSString* key in desc.inputDescriptionsByName)
        d.inputs.push_back(Summarise(desc.inputDescriptionsByName[key]));
      for (NSString* key in desc.outputDescriptionsByName)
        d.outputs.push_back(Summarise(desc.outputDescriptionsByName[key]));
      NSDictionary<MLModelMetadataKey, id>* meta = desc.metadata;
      const std::pair<MLModelMetadataKey, const char*> keys[] = {
          {MLModelAuthorKey, "author"}, {MLModelLicenseKey, "license"},
          {MLModelVersionStringKey, "version"}, {MLModelDescriptionKey, "description"}};
      for (const auto& [key, name] : keys)
        if ([meta[key] isKindOfClass:[NSString class]]) d.metadata[name] = FromNS(meta[key]);
      NSDictionary* creator = meta[MLModelCreatorDefinedKey];
      if ([creator isKindOfClass:[NSDictionary class]])
        for (id key in creator)
          if ([key isKindOfClass:[NSString class]] && [creator[key] isKindOfClass:[NSString class]])
            d.creator_defined[FromNS(key)] = FromNS(creator[key]);

      // The image input and the integer class-map output.
      for (NSString* key in desc.inputDescriptionsByName) {
        MLFeatureDescription* f = desc.inputDescriptionsByName[key];
        if (f.type == MLFeatureTypeImage && impl_->input_name == nil) {
          impl_->input_name = f.name;
          impl_->width = static_cast<int64_t>(f.imageConstraint.pixelsWide);
          impl_->height = static_cast<int64_t>(f.imageConstraint.pixelsHigh);
          impl_->pixel_format = f.imageConstraint.pixelFormatType;
        }
      }
      if (impl_->input_name == nil) throw Failure("the model has no image input");
      if (impl_->pixel_format != kCVPixelFormatType_32BGRA && impl_->pixel_format != kCVPixelFormatType_32ARGB)
        throw Failure("the model's image input is not 32BGRA or 32ARGB (grayscale inputs are not supported)");
      for (NSString* key in desc.outputDescriptionsByName) {
        MLFeatureDescription* f = desc.outputDescriptionsByName[key];
        if (f.type == MLFeatureTypeMultiArray && impl_->output_name == nil &&
            f.multiArrayConstraint.shape.count > 0) {
          impl_->output_name = f.name;
          impl_->output_shape_ns = f.multiArrayConstraint.shape;
          impl_->output_is_int32 = f.multiArrayConstraint.dataType == MLMultiArrayDataTypeInt32;
        }
      }
      if (impl_->output_name == nil) throw Failure("the model has no multi-array output with a fixed shape");
      NSMutableArray<NSNumber*>* strides = [NSMutableArray array];
      int64_t count = 1;
      for (NSNumber* n in impl_->output_shape_ns.reverseObjectEnumerator) {
        [strides insertObject:@(count) atIndex:0];
        count *= n.longLongValue;
      }
      for (NSNumber* n in impl_->output_shape_ns) impl_->output_shape.push_back(n.longLongValue);
      impl_->output_strides_ns = strides;
      impl_->output_count = count;

      // A pool of IOSurface-backed input buffers: Core ML can hand them to
      // the GPU and Neural Engine without another copy.
      NSDictionary* attributes = @{
        (__bridge NSString*)kCVPixelBufferPixelFormatTypeKey : @(impl_->pixel_format),
        (__bridge NSString*)kCVPixelBufferWidthKey : @(impl_->width),
        (__bridge NSString*)kCVPixelBufferHeightKey : @(impl_->height),
        (__bridge NSString*)kCVPixelBufferIOSurfacePropertiesKey : @{},
      };
      const CVReturn r = CVPixelBufferPoolCreate(kCFAllocatorDefault, nullptr,
                                                 (__bridge CFDictionaryRef)attributes, &impl_->pool);
      if (r != kCVReturnSuccess) throw Failure("CVPixelBufferPoolCreate failed (CVReturn " + std::to_string(r) + ")");
      return 0;
  });
}

Model::~Model() = default;

const Description& Model::description() const { return impl_->description; }
int64_t Model::input_width() const { return impl_->width; }
int64_t Model::input_height() const { return impl_->height; }
uint32_t Model::pixel_format() const { return impl_->pixel_format; }
const std::vector<int64_t>& Model::output_shape() const { return impl_->output_shape; }

Timing Model::Predict(const Frame& frame, Keepalive frame_keepalive, int32_t* out, size_t out_bytes,
                      Keepalive out_keepalive) {
  auto frame_holder = std::make_shared<Holder>(frame_keepalive);
  auto out_holder = std::make_shared<Holder>(out_keepalive);
  if (out_bytes < static_cast<size_t>(impl_->output_count) * sizeof(int32_t))
    throw Failure("the output buffer is smaller than the model's class map");
  std::lock_guard<std::mutex> lock(impl_->mu);
  return InPool("predicting", [&]() -> Timing {
      Timing timing;
      const auto t0 = Clock::now();
      id<MLFeatureProvider> input;
      {
        // The feature value holds its own reference to the buffer.
        const PixelBuffer buffer(impl_->MakeInput(frame, frame_holder, &timing.wrapped_input));
        input = impl_->Features(buffer.ref);
      }
      NSError* error = nil;
      MLPredictionOptions* options = [[MLPredictionOptions alloc] init];
      if (impl_->output_is_int32) {
        std::shared_ptr<Holder> keep = out_holder;
        MLMultiArray* backing = [[MLMultiArray alloc] initWithDataPointer:out
                                                                   shape:impl_->output_shape_ns
                                                                dataType:MLMultiArrayDataTypeInt32
                                                                 strides:impl_->output_strides_ns
                                                             deallocator:^(void* /*bytes*/) {
                                                               keep->Release();
                                                             }
                                                                   error:&error];
        if (backing == nil) Fail(error, "could not wrap the output buffer");
        options.outputBackings = @{impl_->output_name : backing};
      }
      const auto t1 = Clock::now();
      id<MLFeatureProvider> result = [impl_->model predictionFromFeatures:input options:options error:&error];
      const auto t2 = Clock::now();
      if (result == nil) Fail(error, "Core ML prediction failed");
      MLMultiArray* labels = [result featureValueForName:impl_->output_name].multiArrayValue;
      if (labels == nil) throw Failure("Core ML returned no class map");
      __block bool same = false;
      [labels getBytesWithHandler:^(const void* bytes, NSInteger /*size*/) {
        same = bytes == static_cast<const void*>(out);
      }];
      timing.used_output_backing = same && labels.dataType == MLMultiArrayDataTypeInt32;
      if (!timing.used_output_backing) impl_->CopyResult(labels, out);
      const auto t3 = Clock::now();
      timing.preprocess_s = Seconds(t0, t1);
      timing.inference_s = Seconds(t1, t2);
      timing.postprocess_s = Seconds(t2, t3);
      return timing;
  });
}

Timing Model::PredictBatch(const std::vector<Frame>& frames, const std::vector<int32_t*>& outs) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return InPool("predicting a batch", [&]() -> Timing {
      Timing timing;
      const auto t0 = Clock::now();
      NSMutableArray<id<MLFeatureProvider>>* inputs = [NSMutableArray arrayWithCapacity:frames.size()];
      for (const Frame& f : frames) {
        Frame copy = f;
        copy.wrap = false;  // the caller's memory is not kept alive for a batch
        const PixelBuffer buffer(impl_->MakeInput(copy, std::make_shared<Holder>(Keepalive{}), &timing.wrapped_input));
        [inputs addObject:impl_->Features(buffer.ref)];
      }
      MLArrayBatchProvider* batch = [[MLArrayBatchProvider alloc] initWithFeatureProviderArray:inputs];
      NSError* error = nil;
      MLPredictionOptions* options = [[MLPredictionOptions alloc] init];
      const auto t1 = Clock::now();
      id<MLBatchProvider> results = [impl_->model predictionsFromBatch:batch options:options error:&error];
      const auto t2 = Clock::now();
      if (results == nil) Fail(error, "Core ML batch prediction failed");
      if (static_cast<size_t>(results.count) != frames.size()) throw Failure("Core ML returned the wrong number of results");
      for (NSInteger i = 0; i < results.count; ++i) {
        MLMultiArray* labels = [[results featuresAtIndex:i] featureValueForName:impl_->output_name].multiArrayValue;
        if (labels == nil) throw Failure("Core ML returned no class map");
        impl_->CopyResult(labels, outs[static_cast<size_t>(i)]);
      }
      const auto t3 = Clock::now();
      timing.preprocess_s = Seconds(t0, t1);
      timing.inference_s = Seconds(t1, t2);
      timing.postprocess_s = Seconds(t2, t3);
      return timing;
  });
}

}  // namespace coreml
}  // namespace coreseg
