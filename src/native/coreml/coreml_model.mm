// The Core ML backend: MLModel and CVPixelBuffer, used directly.
//
// Input: the caller's memory wrapped by CVPixelBufferCreateWithBytes when it
// already has the request's size, byte order and row alignment; otherwise
// one pass of the resize_image kernel (or a row copy, for grayscale) into a
// locked, IOSurface-backed buffer from a CVPixelBufferPool.
// Output: the caller's memory offered as MLPredictionOptions.outputBackings
// when it passes the output's isAllowedValue: test; whether Core ML used it
// is checked by object identity, as MLPredictionOptions.h says. If not, the
// result is kept (Result) and copied by the caller outside the model's lock,
// honouring its strides and converting its type (ConvertArray). A
// grayscale image output (class ids as OneComponent8 or OneComponent16Half
// pixels) is offered a pooled IOSurface-backed CVPixelBuffer of the
// caller's size and the output's pixel format (the header's "most
// efficient choice"), under the same isAllowedValue: test; its pixels are
// always kept and read into the caller's int32 map.
// Every NSError, Objective-C exception and C++ exception becomes a
// coreml::Failure after the call's autorelease pool has drained. ARC.
#import <CoreML/CoreML.h>
#import <CoreVideo/CoreVideo.h>
#import <Foundation/Foundation.h>
#import <IOSurface/IOSurfaceRef.h>  // the pool's buffers are IOSurface-backed

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <new>

#include "../kernels.h"
#include "coreml_model.h"
#include "coreml_support.h"

namespace coreseg {
namespace coreml {
namespace {

// A keepalive released exactly once, whichever of Core ML's callbacks or our
// own paths gets there first.
class Holder {
 public:
  explicit Holder(Keepalive k) : k_(k) {}
  ~Holder() { Release(); }
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;
  void Release() {
    if (k_.release != nullptr && !done_.exchange(true)) k_.release(k_.context);
  }

 private:
  Keepalive k_;
  std::atomic<bool> done_{false};
};

// Owns one reference to a pixel buffer (C++ exceptions and Objective-C
// @finally do not mix reliably; a destructor always runs).
struct PixelBuffer {
  CVPixelBufferRef ref = nullptr;
  explicit PixelBuffer(CVPixelBufferRef r) : ref(r) {}
  ~PixelBuffer() {
    if (ref != nullptr) CVPixelBufferRelease(ref);
  }
  PixelBuffer(const PixelBuffer&) = delete;
  PixelBuffer& operator=(const PixelBuffer&) = delete;
};

// A CVPixelBufferPool of IOSurface-backed buffers (Core ML can hand them to
// the GPU and Neural Engine without another copy) of one size and pixel
// format, made again when a call asks for another.
class BufferPool {
 public:
  BufferPool() = default;
  ~BufferPool() {
    if (pool_ != nullptr) CVPixelBufferPoolRelease(pool_);
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer from the pool (+1 reference).
  CVPixelBufferRef Create(int64_t width, int64_t height, uint32_t format) {
    if (pool_ == nullptr || width_ != width || height_ != height || format_ != format) {
      if (pool_ != nullptr) CVPixelBufferPoolRelease(pool_);
      pool_ = nullptr;
      NSDictionary* attributes = @{
        (__bridge NSString*)kCVPixelBufferPixelFormatTypeKey : @(format),
        (__bridge NSString*)kCVPixelBufferWidthKey : @(width),
        (__bridge NSString*)kCVPixelBufferHeightKey : @(height),
        (__bridge NSString*)kCVPixelBufferIOSurfacePropertiesKey : @{},
      };
      const CVReturn r =
          CVPixelBufferPoolCreate(kCFAllocatorDefault, nullptr, (__bridge CFDictionaryRef)attributes, &pool_);
      if (r != kCVReturnSuccess || pool_ == nullptr) {
        pool_ = nullptr;
        throw Failure("CVPixelBufferPoolCreate failed (CVReturn " + std::to_string(r) + ")");
      }
      width_ = width;
      height_ = height;
      format_ = format;
    }
    CVPixelBufferRef buffer = nullptr;
    const CVReturn r = CVPixelBufferPoolCreatePixelBuffer(kCFAllocatorDefault, pool_, &buffer);
    if (r != kCVReturnSuccess || buffer == nullptr)
      throw Failure("CVPixelBufferPoolCreatePixelBuffer failed (CVReturn " + std::to_string(r) + ")");
    return buffer;
  }

 private:
  CVPixelBufferPoolRef pool_ = nullptr;
  int64_t width_ = 0, height_ = 0;
  uint32_t format_ = 0;
};

// CoreVideo's release callback for wrapped caller memory: refCon is a heap
// shared_ptr<Holder>. It may run on any thread, at any later time.
void ReleaseWrappedBytes(void* refCon, const void* /*baseAddress*/) {
  auto* holder = static_cast<std::shared_ptr<Holder>*>(refCon);
  (*holder)->Release();
  delete holder;
}

}  // namespace

// ---- Model --------------------------------------------------------------------

struct Model::Impl {
  MLModel* model = nil;
  Description description;
  // Pixel buffers of the last input size used, and output backings of the
  // last image-output size used (flexible models may change size between
  // calls; a new pool is made when they do).
  BufferPool input_pool, output_pool;
  std::mutex mu;

  CORESEG_COREML_API MLFeatureDescription* InputDescription(const std::string& name) {
    MLFeatureDescription* f = model.modelDescription.inputDescriptionsByName[ToNS(name)];
    if (f == nil || f.type != MLFeatureTypeImage) throw Failure("the model has no image input named " + name);
    return f;
  }

  // A multi-array output of a type coreseg reads, or a grayscale image
  // output of class ids; refused before Core ML runs otherwise.
  CORESEG_COREML_API MLFeatureDescription* OutputDescription(const std::string& name) {
    MLFeatureDescription* f = model.modelDescription.outputDescriptionsByName[ToNS(name)];
    const bool ids_image = f != nil && f.type == MLFeatureTypeImage && f.imageConstraint != nil &&
                           ClassIdPixelBytes(f.imageConstraint.pixelFormatType) != 0;
    if (f == nil || (f.type != MLFeatureTypeMultiArray && !ids_image))
      throw Failure("the model has no multi-array or grayscale image output named " + name);
    ElementType type;
    if (f.type == MLFeatureTypeMultiArray && !ToElementType(f.multiArrayConstraint.dataType, &type))
      throw Failure("output " + name + " is " + DtypeName(f.multiArrayConstraint.dataType) +
                    ", which coreseg does not read (it reads int32, float16, float32 and float64 multi-arrays)");
    return f;
  }

  // Whether `request`'s frame can be handed to Core ML as it is.
  static bool CanWrap(const Request& request, uint32_t format) {
    const Frame& f = request.frame;
    const bool gray = format == kCVPixelFormatType_OneComponent8;
    const bool identity = gray || (f.order[0] == 0 && f.order[1] == 1 && f.order[2] == 2 && f.order[3] == 3);
    return request.wrap && identity && f.channels == (gray ? 1 : 4) && f.width == request.width &&
           f.height == request.height && f.row_stride > 0 && f.row_stride % 16 == 0 &&
           reinterpret_cast<uintptr_t>(f.data) % 16 == 0;
  }

  // A pixel buffer holding the request's frame at its size, in `format`.
  // Returns a +1 reference; `holder` is released when Core ML is done.
  CORESEG_COREML_API CVPixelBufferRef MakeInput(const Request& request, uint32_t format,
                                                const std::shared_ptr<Holder>& holder, bool* wrapped) {
    const Frame& frame = request.frame;
    const bool gray = format == kCVPixelFormatType_OneComponent8;
    if (!gray && format != kCVPixelFormatType_32BGRA && format != kCVPixelFormatType_32ARGB)
      throw Failure("the model's image input takes a pixel format coreseg does not feed");
    if (gray != (frame.channels == 1))
      throw Failure(gray ? "a grayscale input needs a one-channel frame" : "a colour input needs 3 or 4 channels");
    if (gray && (frame.width != request.width || frame.height != request.height))
      throw Failure("a grayscale frame must already have the input's size");
    CVPixelBufferRef buffer = nullptr;
    *wrapped = false;
    if (CanWrap(request, format)) {
      auto* refcon = new std::shared_ptr<Holder>(holder);
      const CVReturn r = CVPixelBufferCreateWithBytes(
          kCFAllocatorDefault, static_cast<size_t>(request.width), static_cast<size_t>(request.height), format,
          const_cast<uint8_t*>(frame.data), static_cast<size_t>(frame.row_stride), ReleaseWrappedBytes, refcon,
          nullptr, &buffer);
      if (r != kCVReturnSuccess || buffer == nullptr) {
        if (buffer != nullptr) CVPixelBufferRelease(buffer);  // not a documented outcome; never kept
        // CVPixelBuffer.h says the callback is called when the buffer is
        // destroyed, and nothing of a failed creation: CoreVideo may still
        // call it. Deleting refcon here could then free it twice, so it is
        // left to CoreVideo: freed if it calls back, else leaked (one
        // shared_ptr and its Holder, a few dozen bytes, on a path valid
        // frames do not take). The frame itself is let go now: no buffer
        // refers to it, and Holder::Release runs once, whoever calls it.
        holder->Release();
        throw Failure("CVPixelBufferCreateWithBytes failed (CVReturn " + std::to_string(r) + ")");
      }
      *wrapped = true;
      return buffer;
    }
    holder->Release();  // the frame is copied below, within this call: not needed later
    buffer = input_pool.Create(request.width, request.height, format);
    PixelBuffer owned(buffer);
    if (CVPixelBufferLockBaseAddress(buffer, 0) != kCVReturnSuccess) throw Failure("CVPixelBufferLockBaseAddress failed");
    uint8_t* base = static_cast<uint8_t*>(CVPixelBufferGetBaseAddress(buffer));
    const ptrdiff_t stride = static_cast<ptrdiff_t>(CVPixelBufferGetBytesPerRow(buffer));
    if (gray) {
      for (int64_t y = 0; y < request.height; ++y)
        std::memcpy(base + y * stride, frame.data + y * frame.row_stride, static_cast<size_t>(request.width));
    } else {
      const ImageView view{frame.data, frame.width, frame.height, frame.channels, frame.row_stride};
      ResizeImage(view, base, request.width, request.height, stride, frame.order, 4);
    }
    CVPixelBufferUnlockBaseAddress(buffer, 0);
    owned.ref = nullptr;  // handed to the caller
    return buffer;
  }

  CORESEG_COREML_API id<MLFeatureProvider> Features(const std::string& input, CVPixelBufferRef buffer) {
    NSError* error = nil;
    MLFeatureValue* value = [MLFeatureValue featureValueWithPixelBuffer:buffer];
    MLDictionaryFeatureProvider* provider =
        [[MLDictionaryFeatureProvider alloc] initWithDictionary:@{ToNS(input) : value} error:&error];
    if (provider == nil) Fail(error, "could not make the model's input");
    return provider;
  }

  CORESEG_COREML_API static Result Keep(MLMultiArray* array, const std::string& name) {
    Result r;
    r.impl_ = std::make_unique<Result::Impl>();
    r.impl_->array = array;
    r.impl_->shape = Numbers(array.shape);
    r.impl_->name = name;
    return r;
  }

  // Keeps the output's value: its multi-array, or its pixel buffer (one
  // more reference, so it outlives the feature provider) for an image.
  CORESEG_COREML_API static Result KeepOutput(id<MLFeatureProvider> features, const std::string& name, bool image) {
    MLFeatureValue* value = [features featureValueForName:ToNS(name)];
    if (!image) {
      MLMultiArray* array = value.multiArrayValue;
      if (array == nil) throw Failure("Core ML returned no multi-array output named " + name);
      return Keep(array, name);
    }
    CVPixelBufferRef pixels = value.imageBufferValue;
    if (pixels == nullptr) throw Failure("Core ML returned no image output named " + name);
    Result r;
    r.impl_ = std::make_unique<Result::Impl>();
    r.impl_->pixels = CVPixelBufferRetain(pixels);
    r.impl_->shape = {static_cast<int64_t>(CVPixelBufferGetHeight(pixels)),
                      static_cast<int64_t>(CVPixelBufferGetWidth(pixels))};
    r.impl_->name = name;
    return r;
  }
};

std::string CompileModel(const std::string& path) {
  if (@available(macOS 13, *)) {
    return InPool("compiling", [&]() -> std::string {
      NSURL* url = [NSURL fileURLWithPath:ToNS(path)];
      NSError* error = nil;
      // Synchronously, as coremltools compiles: the call runs and returns
      // on this thread, inside InPool's @try, so an Objective-C exception
      // raised in it becomes a CoreMLError. compileModelAtURL:
      // completionHandler: calls back on a GCD thread, where nothing of
      // ours can catch an exception (an uncaught one ends the process).
      // MLModel+MLModelCompilation.h (macOS 13 SDK) declares this method
      // API_DEPRECATED("Use the asynchronous interface ...",
      // macos(10.13, API_TO_BE_DEPRECATED)): to be deprecated, at no
      // version yet, so clang warns at no deployment target and nothing is
      // silenced. (clang warns of a deprecation only when the deployment
      // target reaches its version: were a later SDK to name one, a
      // macOS 13 build would warn only if it were macOS 13 or older.)
      NSURL* compiled = [MLModel compileModelAtURL:url error:&error];
      if (compiled == nil) Fail(error, "Core ML could not compile the model");
      return FromNS(compiled.path);
    });
  }
  throw Failure(NeedsNewerOS());
}

Model::Model(const std::string& compiled_path, int compute_units) : impl_(new Impl) {
  if (@available(macOS 13, *)) {
    InPool("loading", [&]() -> int {
      MLModelConfiguration* config = [[MLModelConfiguration alloc] init];
      switch (compute_units) {
        case 0: config.computeUnits = MLComputeUnitsCPUOnly; break;
        case 1: config.computeUnits = MLComputeUnitsCPUAndGPU; break;
        case 3: config.computeUnits = MLComputeUnitsCPUAndNeuralEngine; break;
        default: config.computeUnits = MLComputeUnitsAll; break;
      }
      NSError* error = nil;
      NSURL* url = [NSURL fileURLWithPath:ToNS(compiled_path)];
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
      return 0;
    });
  } else {
    throw Failure(NeedsNewerOS());
  }
}

Model::~Model() {
  // MLModel's deallocation may autorelease; give it a pool to drain into.
  @autoreleasepool {
    impl_.reset();
  }
}

const Description& Model::description() const { return impl_->description; }

Result Model::Predict(const Request& request, Keepalive frame_keepalive, const Array* out, Keepalive out_keepalive,
                      Timing* timing, Transfer* transfer) {
  // Made first: whatever happens below, each keepalive is released once.
  auto frame_holder = std::make_shared<Holder>(frame_keepalive);
  auto out_holder = std::make_shared<Holder>(out_keepalive);
  if (@available(macOS 13, *)) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return InPool("predicting", [&]() -> Result {
      const auto t0 = Clock::now();
      MLFeatureDescription* input_desc = impl_->InputDescription(request.input);
      MLFeatureDescription* output_desc = impl_->OutputDescription(request.output);
      id<MLFeatureProvider> input;
      {
        // The feature value holds its own reference to the buffer.
        const PixelBuffer buffer(impl_->MakeInput(request, input_desc.imageConstraint.pixelFormatType, frame_holder,
                                                  &transfer->wrapped_input));
        input = impl_->Features(request.input, buffer.ref);
      }
      NSError* error = nil;
      MLPredictionOptions* options = [[MLPredictionOptions alloc] init];
      MLMultiArray* backing = nil;
      const bool image = output_desc.type == MLFeatureTypeImage;
      PixelBuffer image_backing(nullptr);  // our reference; the options hold their own
      if (image) {
        // `out` is written from Core ML's pixel buffer after the call; Core ML
        // never sees it.
        out_holder->Release();
        if (out != nullptr) {
          if (out->type != ElementType::kInt32 || out->shape.size() != 2 || out->shape[0] < 1 || out->shape[1] < 1)
            throw Failure("image output " + request.output + " is read into an int32 (height, width) array");
          image_backing.ref =
              impl_->output_pool.Create(out->shape[1], out->shape[0], output_desc.imageConstraint.pixelFormatType);
          // Offer only what Core ML would accept (MLPredictionOptions.h).
          if ([output_desc isAllowedValue:[MLFeatureValue featureValueWithPixelBuffer:image_backing.ref]]) {
            options.outputBackings = @{ToNS(request.output) : (__bridge id)image_backing.ref};
            transfer->offered_output_backing = true;
          }
        }
      } else if (out != nullptr) {
        std::vector<int64_t> strides(out->shape.size());
        int64_t step = 1;
        for (size_t d = out->shape.size(); d-- > 0;) {
          strides[d] = step;
          step *= out->shape[d];
        }
        std::shared_ptr<Holder> keep = out_holder;
        backing = [[MLMultiArray alloc] initWithDataPointer:out->data
                                                      shape:NSNumbers(out->shape)
                                                   dataType:ToDataType(out->type)
                                                    strides:NSNumbers(strides)
                                                deallocator:^(void* /*bytes*/) {
                                                  keep->Release();
                                                }
                                                      error:&error];
        if (backing == nil) Fail(error, "could not wrap the output array");
        // Offer only what Core ML would accept: a rejected backing is an
        // error at prediction time (MLPredictionOptions.h).
        if ([output_desc isAllowedValue:[MLFeatureValue featureValueWithMultiArray:backing]]) {
          options.outputBackings = @{ToNS(request.output) : backing};
          transfer->offered_output_backing = true;
        }
      } else {
        out_holder->Release();
      }
      const auto t1 = Clock::now();
      id<MLFeatureProvider> result = [impl_->model predictionFromFeatures:input options:options error:&error];
      const auto t2 = Clock::now();
      if (result == nil) Fail(error, "Core ML prediction failed");
      timing->preprocess_s = Seconds(t0, t1);
      timing->inference_s = Seconds(t1, t2);
      if (image) {
        Result kept = Impl::KeepOutput(result, request.output, true);
        // Identity, as MLPredictionOptions.h says to check.
        transfer->used_output_backing = transfer->offered_output_backing && kept.impl_->pixels == image_backing.ref;
        return kept;
      }
      MLMultiArray* array = [result featureValueForName:ToNS(request.output)].multiArrayValue;
      if (array == nil) throw Failure("Core ML returned no multi-array output named " + request.output);
      // Identity, as MLPredictionOptions.h says to check.
      transfer->used_output_backing = backing != nil && array == backing;
      if (transfer->used_output_backing) return Result();
      return Impl::Keep(array, request.output);
    });
  }
  throw Failure(NeedsNewerOS());
}

std::vector<Result> Model::PredictBatch(const std::vector<Request>& requests, Timing* timing) {
  if (@available(macOS 13, *)) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return InPool("predicting a batch", [&]() -> std::vector<Result> {
      const auto t0 = Clock::now();
      NSMutableArray<id<MLFeatureProvider>>* inputs = [NSMutableArray arrayWithCapacity:requests.size()];
      for (const Request& r : requests) {
        impl_->OutputDescription(r.output);  // refused before Core ML runs, as for one prediction
        Request copy = r;
        copy.wrap = false;  // the caller's memory is not kept alive for a batch
        bool wrapped = false;
        const uint32_t format = impl_->InputDescription(r.input).imageConstraint.pixelFormatType;
        const PixelBuffer buffer(impl_->MakeInput(copy, format, std::make_shared<Holder>(Keepalive{}), &wrapped));
        [inputs addObject:impl_->Features(r.input, buffer.ref)];
      }
      MLArrayBatchProvider* batch = [[MLArrayBatchProvider alloc] initWithFeatureProviderArray:inputs];
      NSError* error = nil;
      MLPredictionOptions* options = [[MLPredictionOptions alloc] init];
      const auto t1 = Clock::now();
      id<MLBatchProvider> results = [impl_->model predictionsFromBatch:batch options:options error:&error];
      const auto t2 = Clock::now();
      if (results == nil) Fail(error, "Core ML batch prediction failed");
      if (static_cast<size_t>(results.count) != requests.size())
        throw Failure("Core ML returned the wrong number of results");
      std::vector<Result> out;
      for (NSInteger i = 0; i < results.count; ++i) {
        const std::string& name = requests[static_cast<size_t>(i)].output;
        const bool image = impl_->OutputDescription(name).type == MLFeatureTypeImage;
        out.push_back(Impl::KeepOutput([results featuresAtIndex:i], name, image));
      }
      timing->preprocess_s = Seconds(t0, t1);
      timing->inference_s = Seconds(t1, t2);
      return out;
    });
  }
  throw Failure(NeedsNewerOS());
}

}  // namespace coreml
}  // namespace coreseg
