"""ONNX's protobuf classes, without importing the onnx package.

Reading what an ONNX file declares needs only the ``ModelProto`` class that
onnx generates into ``onnx/onnx_ml_pb2.py``. Importing ``onnx`` itself runs
its helpers, and with them ml_dtypes: about a second (ml_dtypes 0.7), paid
by every process that loads a model, every worker of `--jobs N` among them.
So the generated module is loaded on its own, as the private module
``coreseg._onnx_proto``, from the installed onnx's file (it imports
google.protobuf only). Once onnx itself is imported, its own module is
used: the serialized descriptors are the same, so protobuf's default pool
accepts both (as for coremltools' classes in _coremltools.py)."""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["onnx_ml_pb2", "DTYPE_NAMES"]

_PRIVATE = "coreseg._onnx_proto"

#: numpy's name of each TensorProto.DataType (onnx.helper.tensor_dtype_to_np_dtype(v).name;
#: tests/test_model_info.py checks the table against it).
DTYPE_NAMES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "object",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
    16: "bfloat16", 17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4_e2m1fn", 24: "float8_e8m0fnu", 25: "uint2", 26: "int2",
    27: "float6_e2m3fn", 28: "float6_e3m2fn",
}


def _standalone():
    """onnx_ml_pb2 loaded from the installed onnx's folder, or None."""
    module = sys.modules.get(_PRIVATE)
    if module is not None:
        return module
    spec = importlib.util.find_spec("onnx")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "onnx_ml_pb2.py")
    if not os.path.isfile(path):
        return None
    module_spec = importlib.util.spec_from_file_location(_PRIVATE, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[_PRIVATE] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(_PRIVATE, None)
        raise
    return module


def onnx_ml_pb2():
    """The onnx_ml_pb2 module of the installed onnx (ModelProto, TensorProto)."""
    if "onnx.onnx_ml_pb2" in sys.modules:
        return sys.modules["onnx.onnx_ml_pb2"]
    try:
        module = _standalone()
    except Exception:  # an unusual layout or protobuf: the package import below
        module = None
    if module is not None:
        return module
    try:
        from onnx import onnx_ml_pb2 as module
    except ImportError:
        raise ImportError("reading ONNX models needs onnx: pip install 'coreseg[onnx]'") from None
    return module
