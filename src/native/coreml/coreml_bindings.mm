// coreseg._coreml: pybind11 bindings of the Core ML backend (coreml_model.h).
// They check arrays, hand Core ML references to them that are dropped with
// the GIL taken (CoreVideo and Core ML may release on their own queues,
// after the call returns), release the GIL while Core ML works, and turn
// coreml::Failure into coreseg.CoreMLError.
#include <Python.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include <CoreVideo/CoreVideo.h>  // kCVPixelFormatType_32ARGB

#include "coreml_model.h"

namespace py = pybind11;

namespace coreseg {
namespace coreml {
namespace {

// Drop a reference from whatever thread Core ML calls back on.
void DecrefWithGil(void* object) {
  if (!Py_IsInitialized()) return;  // interpreter gone: nothing left to free
  const PyGILState_STATE state = PyGILState_Ensure();
  Py_DECREF(static_cast<PyObject*>(object));
  PyGILState_Release(state);
}

Keepalive Keep(const py::handle& object) {
  Py_INCREF(object.ptr());
  return Keepalive{object.ptr(), DecrefWithGil};
}

Frame AsFrame(const py::array& image, const std::vector<int>& order, bool wrap) {
  if (!image.dtype().is(py::dtype::of<uint8_t>()))
    throw py::type_error("image must have dtype uint8");
  if (image.ndim() != 3 || (image.shape(2) != 3 && image.shape(2) != 4))
    throw py::value_error("image must have shape (h, w, 3) or (h, w, 4)");
  const int channels = static_cast<int>(image.shape(2));
  if (image.shape(0) < 1 || image.shape(1) < 1) throw py::value_error("image is empty");
  if (image.strides(2) != 1 || (image.shape(1) > 1 && image.strides(1) != channels))
    throw py::value_error("image must have packed pixels");
  if (order.size() != 4) throw py::value_error("order must have 4 entries");
  Frame f{static_cast<const uint8_t*>(image.data()), image.shape(1), image.shape(0), channels,
          image.strides(0), {order[0], order[1], order[2], order[3]}, wrap};
  for (int c : order)
    if (c < 0 || c > 3) throw py::value_error("order entries must be in 0..3");
  return f;
}

int32_t* AsOutput(py::array& out, int64_t count) {
  if (!out.dtype().is(py::dtype::of<int32_t>())) throw py::type_error("out must have dtype int32");
  if (!(out.flags() & py::array::c_style) || !out.writeable())
    throw py::value_error("out must be a writable C-contiguous array");
  if (out.size() != count) throw py::value_error("out must have as many elements as the model's class map");
  return static_cast<int32_t*>(out.mutable_data());
}

py::dict TimingDict(const Timing& t) {
  py::dict d;
  d["preprocess"] = t.preprocess_s;
  d["inference"] = t.inference_s;
  d["postprocess"] = t.postprocess_s;
  d["used_output_backing"] = t.used_output_backing;
  d["wrapped_input"] = t.wrapped_input;
  return d;
}

py::dict FeatureDict(const FeatureSummary& f) {
  py::dict d;
  d["name"] = f.name;
  d["kind"] = f.kind;
  d["shape"] = f.shape;
  d["dtype"] = f.dtype;
  const char fourcc[5] = {static_cast<char>(f.pixel_format >> 24), static_cast<char>(f.pixel_format >> 16),
                          static_cast<char>(f.pixel_format >> 8), static_cast<char>(f.pixel_format), 0};
  d["pixel_format"] = f.pixel_format ? std::string(fourcc) : std::string();
  return d;
}

int64_t OutputCount(const Model& m) {
  int64_t n = 1;
  for (int64_t d : m.output_shape()) n *= d;
  return n;
}

}  // namespace
}  // namespace coreml
}  // namespace coreseg

PYBIND11_MODULE(_coreml, m) {
  using namespace coreseg::coreml;
  m.doc() = "coreseg's Core ML backend (macOS 13+). Use coreseg.load, not this module.";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Failure& e) {
      py::object cls = py::module_::import("coreseg.segmenter").attr("CoreMLError");
      PyErr_SetString(cls.ptr(), e.what());
    }
  });

  m.def("compile_model", [](const std::string& path) {
    py::gil_scoped_release release;
    return CompileModel(path);
  }, py::arg("path"), "Compile a .mlpackage/.mlmodel; returns the temporary .mlmodelc path.");

  py::class_<Model>(m, "Model")
      .def(py::init([](const std::string& path, int compute_units) {
             py::gil_scoped_release release;
             return std::make_unique<Model>(path, compute_units);
           }),
           py::arg("compiled_path"), py::arg("compute_units"))
      .def("describe", [](const Model& self) {
        const Description& d = self.description();
        py::list inputs, outputs;
        for (const auto& f : d.inputs) inputs.append(FeatureDict(f));
        for (const auto& f : d.outputs) outputs.append(FeatureDict(f));
        py::dict out;
        out["inputs"] = inputs;
        out["outputs"] = outputs;
        out["metadata"] = d.metadata;
        out["creator_defined"] = d.creator_defined;
        return out;
      })
      .def_property_readonly("input_size", [](const Model& self) {
        return py::make_tuple(self.input_width(), self.input_height());
      })
      .def_property_readonly("pixel_format", [](const Model& self) {
        return self.pixel_format() == kCVPixelFormatType_32ARGB ? "ARGB" : "BGRA";
      })
      .def_property_readonly("output_shape", [](const Model& self) { return self.output_shape(); })
      .def("predict", [](Model& self, const py::array& image, const std::vector<int>& order, bool wrap,
                         py::array& out) {
        Frame frame = AsFrame(image, order, wrap);
        // Wrapping needs the model's size, 4 bytes a pixel and 16-byte rows
        // going forward (bytesPerRow is a size_t: no flipped views).
        frame.wrap = wrap && frame.channels == 4 && frame.width == self.input_width() &&
                     frame.height == self.input_height() && frame.row_stride > 0 && frame.row_stride % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(frame.data) % 16 == 0;
        int32_t* o = AsOutput(out, OutputCount(self));
        const size_t bytes = static_cast<size_t>(out.nbytes());
        Keepalive keep_image = Keep(image), keep_out = Keep(out);
        Timing t;
        {
          py::gil_scoped_release release;
          t = self.Predict(frame, keep_image, o, bytes, keep_out);
        }
        return TimingDict(t);
      }, py::arg("image"), py::arg("order"), py::arg("wrap"), py::arg("out"))
      .def("predict_batch", [](Model& self, const std::vector<py::array>& images,
                               const std::vector<std::vector<int>>& orders, std::vector<py::array>& outs) {
        if (images.size() != orders.size() || images.size() != outs.size())
          throw py::value_error("images, orders and outs must have the same length");
        std::vector<Frame> frames;
        std::vector<int32_t*> dst;
        for (size_t i = 0; i < images.size(); ++i) {
          frames.push_back(AsFrame(images[i], orders[i], false));
          dst.push_back(AsOutput(outs[i], OutputCount(self)));
        }
        Timing t;
        {
          // The vectors hold references to every array until this returns,
          // and the batch path copies the pixels before Core ML runs.
          py::gil_scoped_release release;
          t = self.PredictBatch(frames, dst);
        }
        return TimingDict(t);
      }, py::arg("images"), py::arg("orders"), py::arg("outs"));
}
