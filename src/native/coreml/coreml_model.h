// The Core ML backend's C++ face: compile, load and run an MLModel with a
// CVPixelBuffer in and a multi-array (or a grayscale image of class ids)
// out. Objective-C stays inside
// coreml_model.mm; coreml_bindings.mm turns this into coreseg._coreml.
// Which input size and which output to use is decided in Python
// (coreseg.backends.coreml) and passed in with every request.
// Apple platforms only (CMake builds it under if(APPLE)), macOS 13+
// (checked at run time too: @available in coreml_model.mm).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../kernels.h"  // ElementType

namespace coreseg {
namespace coreml {

// A Core ML failure (an NSError, an Objective-C exception, or a C++
// exception inside a Core ML call), with Core ML's own description.
// Surfaces in Python as coreseg.CoreMLError.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Something the caller keeps alive while Core ML may still read or write
// it (a numpy array). `release` may run on any thread, after the call that
// handed it over has returned; Predict calls it exactly once.
struct Keepalive {
  void* context = nullptr;
  void (*release)(void* context) = nullptr;
};

struct FeatureSummary {
  std::string name, kind;      // kind: "image", "multiArray", "string", ...
  std::vector<int64_t> shape;  // multiArray shape (may be empty), or {height, width}
  std::string dtype;           // "int32", "float32", ... for multiArrays
  uint32_t pixel_format = 0;   // CoreVideo pixel format of an image
  bool optional = false;
  // Image size constraint / multi-array shape constraint: "unspecified",
  // "enumerated" or "range". ranges: {width, height} for images, one per
  // axis for arrays, as [min, max] (max from NSRange: location + length - 1).
  std::string constraint;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  std::vector<std::vector<int64_t>> enumerated;  // {width, height} or shapes
};

struct Description {
  std::vector<FeatureSummary> inputs, outputs;
  std::map<std::string, std::string> metadata;         // author, license, version, description
  std::map<std::string, std::string> creator_defined;  // incl. the preview keys
};

// Pixels handed to Predict: uint8 rows of `channels` (1, 3 or 4) bytes per
// pixel. For 32-bit pixel buffers, order[i] is the source channel of the
// buffer's byte i (e.g. {2, 1, 0, 3} turns RGBA into BGRA; 3 on a
// 3-channel source gives alpha 255); they are resampled to the request's
// size. One-channel frames feed 8-bit grayscale inputs and must already
// have the request's size.
struct Frame {
  const uint8_t* data;
  int64_t width, height;
  int channels;
  ptrdiff_t row_stride;
  int order[4];
};

struct Request {
  Frame frame;
  bool wrap;  // hand the frame's memory to Core ML as it is, if it can be
  std::string input, output;
  int64_t width, height;  // the model input size for this call
};

// Caller memory for an output: packed, C order. For a grayscale image
// output, the int32 (height, width) class map its pixels are read into.
struct Array {
  uint8_t* data = nullptr;
  ElementType type = ElementType::kInt32;
  std::vector<int64_t> shape;
  size_t bytes = 0;
};

struct Timing {
  double preprocess_s = 0, inference_s = 0;
};

// What happened to the memory: recorded, never promised.
struct Transfer {
  bool wrapped_input = false;  // the frame's memory went to Core ML as it was
  // The backing passed the output's isAllowedValue: test and was offered:
  // `out` itself for a multi-array output; for an image output, a pooled
  // IOSurface-backed CVPixelBuffer of `out`'s size and the output's pixel
  // format.
  bool offered_output_backing = false;
  bool used_output_backing = false;  // Core ML returned that backing itself as the output
};

// One output Core ML returned (a multi-array, or the CVPixelBuffer of a
// grayscale image output), held until copied out.
class Result {
 public:
  Result();
  ~Result();
  Result(Result&&) noexcept;
  Result& operator=(Result&&) noexcept;
  bool empty() const;
  const std::vector<int64_t>& shape() const;  // {height, width} for an image
  // Copy into `dst`, converting the element type (ConvertArray) and
  // honouring Core ML's strides (an image's bytes per row). Shapes must
  // match once unit axes are dropped from both. An image's pixels are
  // class ids: read (locked read-only) into int32; 16-bit float pixels
  // must be whole numbers. Safe without the model's lock or the GIL.
  void CopyTo(const Array& dst) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend class Model;
};

// Compile a .mlpackage or .mlmodel, synchronously on the calling thread;
// returns the temporary .mlmodelc path Core ML made (the caller moves it to
// its cache). Like Model and Result::CopyTo, it refuses to run on a system
// older than macOS 13 (a Failure that says so), whatever the deployment
// target the extension was built for.
std::string CompileModel(const std::string& path);

class Model {
 public:
  // compute_units: 0 CPU, 1 CPU+GPU, 2 all, 3 CPU+Neural Engine.
  Model(const std::string& compiled_path, int compute_units);
  ~Model();  // in an autorelease pool; call without the GIL
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Description& description() const;

  // One prediction. For a multi-array output, `out`, if given, is offered
  // to Core ML as the output's backing; if Core ML used it, the returned
  // Result is empty, else the caller copies the Result (into `out` or an
  // array of its shape). For a grayscale image output (OneComponent8 or
  // OneComponent16Half), `out` (int32, (height, width)) only sizes the
  // pooled pixel buffer offered as the backing; the Result is never empty
  // and the caller copies it, converting the pixels to int32 ids.
  // Ownership of both keepalives passes to Predict, which has them
  // released when Core ML no longer needs the memory (possibly later, on
  // another thread). Call without the GIL. Serialised per model.
  Result Predict(const Request& request, Keepalive frame_keepalive, const Array* out, Keepalive out_keepalive,
                 Timing* timing, Transfer* transfer);

  // Several frames through predictionsFromBatch: (pixels always copied;
  // Core ML takes no output backings for batches).
  std::vector<Result> PredictBatch(const std::vector<Request>& requests, Timing* timing);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coreml
}  // namespace coreseg
