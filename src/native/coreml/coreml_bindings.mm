// coreseg._coreml: pybind11 bindings of the Core ML backend (coreml_model.h).
// They check arrays, keep the arrays Core ML may still use alive (the
// caller's hold dropped with the GIL; Core ML's, from whichever thread it
// lets go on, handed to the interpreter without taking the GIL:
// coreml_release.h), release the GIL while Core ML works, allocate result
// arrays page-aligned, and turn coreml::Failure into coreseg.CoreMLError.
#include <Python.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include <CoreVideo/CoreVideo.h>  // pixel format constants

#include "../without_gil.h"
#include "coreml_model.h"
#include "coreml_release.h"

namespace py = pybind11;

namespace coreseg {
namespace coreml {
namespace {

// The arrays Core ML may still use when a call returns are shared with it
// (coreml_release.h): the caller drops its hold with the GIL, Core ML's
// threads hand theirs over without ever taking the GIL.
struct Shared {
  SharedRef* ref = nullptr;
  Keepalive keepalive;
};

Shared ShareWithCoreML(const py::handle& object) {
  SharedRef* ref = Share(object.ptr());
  return {ref, Keepalive{ref, DropFromAnyThread}};
}

// Same type and byte order, as coreseg._native compares (numpy's
// PyArray_EquivTypes): an array that went through pickle (multiprocessing,
// --jobs, Ray) has an equal dtype, not the very object dtype::of<T>() is.
bool HasDtype(const py::array& a, const py::dtype& d) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), d.ptr());
}

std::string DtypeText(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

Frame AsFrame(const py::array& image, const std::vector<int>& order) {
  if (!HasDtype(image, py::dtype::of<uint8_t>()))
    throw py::type_error("image must have dtype uint8, got " + DtypeText(image));
  if (image.ndim() != 3 || (image.shape(2) != 1 && image.shape(2) != 3 && image.shape(2) != 4))
    throw py::value_error("image must have shape (h, w, 1), (h, w, 3) or (h, w, 4)");
  const int channels = static_cast<int>(image.shape(2));
  if (image.shape(0) < 1 || image.shape(1) < 1) throw py::value_error("image is empty");
  if (image.strides(2) != 1 || (image.shape(1) > 1 && image.strides(1) != channels))
    throw py::value_error("image must have packed pixels");
  if (order.size() != 4) throw py::value_error("order must have 4 entries");
  for (int c : order)
    if (c < 0 || c > 3) throw py::value_error("order entries must be in 0..3");
  return Frame{static_cast<const uint8_t*>(image.data()), image.shape(1), image.shape(0), channels,
               image.strides(0), {order[0], order[1], order[2], order[3]}};
}

ElementType TypeNamed(const std::string& name) {
  if (name == "int32") return ElementType::kInt32;
  if (name == "float16") return ElementType::kFloat16;
  if (name == "float32") return ElementType::kFloat32;
  throw py::value_error("dtype must be 'int32', 'float16' or 'float32', got '" + name + "'");
}

py::dtype DtypeOf(ElementType t) {
  switch (t) {
    case ElementType::kInt32: return py::dtype::of<int32_t>();
    case ElementType::kFloat16: return py::dtype("float16");
    case ElementType::kFloat32: return py::dtype::of<float>();
    case ElementType::kFloat64: return py::dtype::of<double>();
  }
  return py::dtype::of<float>();
}

Array AsArray(py::array& out) {
  Array a;
  if (HasDtype(out, py::dtype::of<int32_t>()))
    a.type = ElementType::kInt32;
  else if (HasDtype(out, py::dtype("float16")))
    a.type = ElementType::kFloat16;
  else if (HasDtype(out, py::dtype::of<float>()))
    a.type = ElementType::kFloat32;
  else
    throw py::type_error("out must have dtype int32, float16 or float32 (in the machine's byte order), got " +
                         DtypeText(out));
  if (!(out.flags() & py::array::c_style) || !out.writeable())
    throw py::value_error("out must be a writable C-contiguous array");
  // Core ML and ConvertArray write whole elements: an offset view of a byte
  // buffer is not an output backing.
  if (!py::detail::check_flags(out.ptr(), py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error("out is not aligned to its element size");
  if (out.size() == 0) throw py::value_error("out is empty");
  a.data = static_cast<uint8_t*>(out.mutable_data());
  for (py::ssize_t d = 0; d < out.ndim(); ++d) a.shape.push_back(out.shape(d));
  a.bytes = static_cast<size_t>(out.nbytes());
  return a;
}

// An uninitialised array of `shape` on whole pages (round_up(nbytes, page)
// at a page boundary, as Apple's outputBackings example allocates), freed
// with its last numpy reference.
py::array PageAlignedArray(const std::vector<int64_t>& shape, ElementType type) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t bytes = ElementSize(type);
  for (int64_t d : shape) bytes *= static_cast<size_t>(d);
  const size_t rounded = (bytes + page - 1) / page * page;
  void* data = nullptr;
  if (posix_memalign(&data, page, rounded ? rounded : page) != 0) throw std::bad_alloc();
  py::capsule owner(data, [](void* p) { std::free(p); });
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array(DtypeOf(type), dims, data, owner);
}

py::dict TimingDict(const Timing& t, double postprocess_s) {
  py::dict d;
  d["preprocess"] = t.preprocess_s;
  d["inference"] = t.inference_s;
  d["postprocess"] = postprocess_s;
  return d;
}

py::dict TransferDict(const Transfer& t) {
  py::dict d;
  d["wrapped_input"] = t.wrapped_input;
  d["offered_output_backing"] = t.offered_output_backing;
  d["used_output_backing"] = t.used_output_backing;
  return d;
}

std::string PixelFormatName(uint32_t f) {
  switch (f) {
    case 0: return "";
    case kCVPixelFormatType_32BGRA: return "BGRA";
    case kCVPixelFormatType_32ARGB: return "ARGB";
    case kCVPixelFormatType_OneComponent8: return "L008";
    case kCVPixelFormatType_OneComponent16Half: return "L00h";
    default: {
      char hex[16];
      std::snprintf(hex, sizeof hex, "0x%08X", f);
      return hex;
    }
  }
}

py::dict FeatureDict(const FeatureSummary& f) {
  py::dict d;
  d["name"] = f.name;
  d["kind"] = f.kind;
  d["shape"] = f.shape;
  d["dtype"] = f.dtype;
  d["optional"] = f.optional;
  d["pixel_format"] = PixelFormatName(f.pixel_format);
  py::dict c;
  c["type"] = f.constraint;
  if (f.kind == "image") {
    if (f.ranges.size() == 2) {
      c["width_range"] = f.ranges[0];
      c["height_range"] = f.ranges[1];
    }
    c["sizes"] = f.enumerated;
    d["size_constraint"] = c;
  } else if (f.kind == "multiArray") {
    c["ranges"] = f.ranges;
    c["shapes"] = f.enumerated;
    d["shape_constraint"] = c;
  }
  return d;
}

Request MakeRequest(const py::array& image, const std::vector<int>& order, bool wrap, const std::string& input,
                    std::pair<int64_t, int64_t> size, const std::string& output) {
  if (size.first < 1 || size.second < 1) throw py::value_error("size must be positive");
  return Request{AsFrame(image, order), wrap, input, output, size.first, size.second};
}

using Clock = std::chrono::steady_clock;

// Copy a kept result into a new page-aligned array (GIL held on entry).
py::array CopyOut(const Result& result, ElementType type) {
  py::array array = PageAlignedArray(result.shape(), type);
  Array dst{static_cast<uint8_t*>(array.mutable_data()), type, result.shape(), static_cast<size_t>(array.nbytes())};
  WithoutGil([&] { result.CopyTo(dst); });
  return array;
}

// Frees a Model with the GIL released (MLModel's teardown can take a
// while), except while Python is finalising, when the GIL must stay put.
// WithoutGil, not pybind11's gil_scoped_release, everywhere here: see
// without_gil.h (a thread ended at exit must not unwind a noexcept frame).
struct ModelDeleter {
  void operator()(Model* model) const {
    if (Py_IsInitialized() && !PythonFinalizing() && PyGILState_Check()) {
      WithoutGil([&] { delete model; });
    } else {
      delete model;
    }
  }
};

}  // namespace
}  // namespace coreml
}  // namespace coreseg

PYBIND11_MODULE(_coreml, m) {
  using namespace coreseg;
  using namespace coreseg::coreml;
  m.doc() = "coreseg's Core ML backend (macOS 13+). Use coreseg.load, not this module.";

  // Local: only exceptions from this module's functions are translated
  // (a global translator would see every pybind11 module's exceptions).
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Failure& e) {
      // coreseg.CoreMLError (a RuntimeError), looked up when needed: this
      // module is imported by coreseg, never the other way round.
      PyObject* type = PyExc_RuntimeError;
      py::object cls;
      try {
        cls = py::module_::import("coreseg.running.segmenter").attr("CoreMLError");
        type = cls.ptr();
      } catch (const py::error_already_set&) {
        // coreseg half-imported or gone (interpreter exit): its base class
      }
      PyErr_SetString(type, e.what());
    }
  });

  // Releases from Core ML's threads are handed to the interpreter, and
  // stop at exit (coreml_release.h).
  if (DeferredDecrefs::InstallWithGil() != 0) throw py::error_already_set();

  m.def("compile_model", [](const std::string& path) {
    return WithoutGil([&] { return CompileModel(path); });
  }, py::arg("path"), "Compile a .mlpackage/.mlmodel; returns the temporary .mlmodelc path.");

  py::class_<Model, std::unique_ptr<Model, ModelDeleter>>(m, "Model")
      .def(py::init([](const std::string& path, int compute_units) {
             return WithoutGil([&] { return std::unique_ptr<Model, ModelDeleter>(new Model(path, compute_units)); });
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
      .def("predict", [](Model& self, const py::array& image, const std::vector<int>& order, bool wrap,
                         const std::string& input, std::pair<int64_t, int64_t> size, const std::string& output,
                         const std::string& dtype, std::optional<py::array> out) {
        const Request request = MakeRequest(image, order, wrap, input, size, output);
        const ElementType type = TypeNamed(dtype);
        Array dst;
        Shared keep_image, keep_out;
        if (out) {
          dst = AsArray(*out);
          keep_out = ShareWithCoreML(*out);
        }
        // Only wrapped memory can outlive the call inside Core ML; a copied
        // frame is read before Predict returns, while the caller holds it.
        if (wrap) keep_image = ShareWithCoreML(image);
        Timing timing;
        Transfer transfer;
        Result result;
        try {
          result = WithoutGil([&] {
            return self.Predict(request, keep_image.keepalive, out ? &dst : nullptr, keep_out.keepalive, &timing,
                                &transfer);
          });
        } catch (...) {
          DropWithGil(keep_image.ref);
          DropWithGil(keep_out.ref);
          throw;
        }
        DropWithGil(keep_image.ref);
        DropWithGil(keep_out.ref);
        const auto t0 = Clock::now();
        py::array array;
        if (!out) {
          array = CopyOut(result, type);
        } else {
          // Empty when Core ML wrote into `out` itself; an image output's
          // pixels are always read into it. Outside the model's lock.
          if (!result.empty()) WithoutGil([&] { result.CopyTo(dst); });
          array = *out;
        }
        const double post = std::chrono::duration<double>(Clock::now() - t0).count();
        return py::make_tuple(array, TimingDict(timing, post), TransferDict(transfer));
      }, py::arg("image"), py::arg("order"), py::arg("wrap"), py::arg("input"), py::arg("size"), py::arg("output"),
         py::arg("dtype"), py::arg("out") = py::none(),
         "One prediction: (array, timings, io). `out` is offered to Core ML as the output's backing (for a "
         "grayscale image output, an int32 (h, w) map its pixels are read into, whose size a pooled pixel "
         "buffer offered as the backing has).")
      .def("predict_batch", [](Model& self, const std::vector<py::array>& images,
                               const std::vector<std::vector<int>>& orders, const std::string& input,
                               const std::vector<std::pair<int64_t, int64_t>>& sizes, const std::string& output,
                               const std::string& dtype) {
        if (images.size() != orders.size() || images.size() != sizes.size())
          throw py::value_error("images, orders and sizes must have the same length");
        const ElementType type = TypeNamed(dtype);
        std::vector<Request> requests;
        for (size_t i = 0; i < images.size(); ++i)
          requests.push_back(MakeRequest(images[i], orders[i], false, input, sizes[i], output));
        Timing timing;
        std::vector<Result> results;
        // `images` holds a reference to every array until this returns,
        // and the batch path copies the pixels before Core ML runs.
        results = WithoutGil([&] { return self.PredictBatch(requests, &timing); });
        const auto t0 = Clock::now();
        py::list arrays;
        for (const Result& r : results) arrays.append(CopyOut(r, type));
        const double post = std::chrono::duration<double>(Clock::now() - t0).count();
        return py::make_tuple(arrays, TimingDict(timing, post));
      }, py::arg("images"), py::arg("orders"), py::arg("input"), py::arg("sizes"), py::arg("output"),
         py::arg("dtype"), "Several predictions in one predictionsFromBatch: call: (arrays, timings).");
}
