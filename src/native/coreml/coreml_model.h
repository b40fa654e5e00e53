// The Core ML backend's C++ face: compile, load and run an MLModel with a
// CVPixelBuffer in and an Int32 MLMultiArray out. Objective-C stays inside
// coreml_model.mm; coreml_bindings.mm turns this into coreseg._coreml.
// Apple platforms only (CMake builds it under if(APPLE)), macOS 13+.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace coreseg {
namespace coreml {

// A Core ML failure (an NSError or an Objective-C exception), with Core
// ML's own description. Surfaces in Python as coreseg.CoreMLError.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Something the caller keeps alive while Core ML may still read or write
// it (a numpy array). `release` may run on any thread, after the call that
// handed it over has returned; it runs exactly once.
struct Keepalive {
  void* context = nullptr;
  void (*release)(void* context) = nullptr;
};

struct FeatureSummary {
  std::string name, kind;         // kind: "image", "multiArray", ...
  std::vector<int64_t> shape;     // multiArray shape, or {height, width}
  std::string dtype;              // "int32", "float32", ... for multiArrays
  uint32_t pixel_format = 0;      // FourCC of an image input
};

struct Description {
  std::vector<FeatureSummary> inputs, outputs;
  std::map<std::string, std::string> metadata;         // author, license, version, description
  std::map<std::string, std::string> creator_defined;  // incl. the preview keys
};

// The image handed to Predict: uint8 rows of `channels` bytes per pixel in
// `order`, with the source channel of each of the model's 4 pixel bytes
// (e.g. {2, 1, 0, 3} turns RGBA into BGRA; 3 on a 3-channel source gives
// alpha 255). `wrap` asks to hand the caller's memory to Core ML as it is:
// only when the size, byte order and row alignment already match.
struct Frame {
  const uint8_t* data;
  int64_t width, height;
  int channels;
  ptrdiff_t row_stride;
  int order[4];
  bool wrap;
};

struct Timing {
  double preprocess_s = 0, inference_s = 0, postprocess_s = 0;
  bool used_output_backing = false;  // Core ML wrote straight into `out`
  bool wrapped_input = false;        // no copy of the input either
};

// Compile a .mlpackage or .mlmodel; returns the temporary .mlmodelc path
// Core ML made (the caller moves it to its cache).
std::string CompileModel(const std::string& path);

class Model {
 public:
  // compute_units: 0 CPU, 1 CPU+GPU, 2 all, 3 CPU+Neural Engine.
  Model(const std::string& compiled_path, int compute_units);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Description& description() const;
  int64_t input_width() const;
  int64_t input_height() const;
  uint32_t pixel_format() const;  // kCVPixelFormatType_32BGRA or _32ARGB
  const std::vector<int64_t>& output_shape() const;

  // One prediction. `out` is the class map, packed rows of output_width
  // int32 values, `out_bytes` long; Core ML is offered it as the output
  // backing. Ownership of both keepalives passes to Predict, which
  // releases them when Core ML no longer needs the memory. Call without the
  // Python GIL held. Serialised per model.
  Timing Predict(const Frame& frame, Keepalive frame_keepalive, int32_t* out,
                 size_t out_bytes, Keepalive out_keepalive);

  // Several frames through predictionsFromBatch:. Core ML takes no output
  // backings for batches, so each result is copied once into outs[i].
  Timing PredictBatch(const std::vector<Frame>& frames, const std::vector<int32_t*>& outs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coreml
}  // namespace coreseg
