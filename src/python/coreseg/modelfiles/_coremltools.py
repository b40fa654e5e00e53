"""Lazy access to coremltools' protobuf classes, without importing coremltools.

coremltools is a dependency on macOS and the extra `coreml` elsewhere.
coreseg only reads and writes specs, with the protobuf classes generated
into ``coremltools/proto``. Importing the ``coremltools`` package itself
takes about 4 s (it imports its converters, scikit-learn among them) and
logs warnings that are not the user's concern, so the generated modules
are loaded on their own, as the private package ``coreseg._coreml_proto``,
from the installed coremltools' files. Once coremltools itself is imported
(by the user, or for writing an ML program), its own classes are used: the
serialized descriptors are the same, so protobuf's default pool accepts
both."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import types
import warnings

_PRIVATE = "coreseg._coreml_proto"


def _proto_folder() -> str | None:
    spec = importlib.util.find_spec("coremltools")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(os.path.join(list(spec.submodule_search_locations)[0], "proto"))


def _standalone_model_pb2():
    """Model_pb2 loaded from coremltools' proto folder as a private package."""
    package = sys.modules.get(_PRIVATE)
    if package is None:
        folder = _proto_folder()
        if folder is None or not os.path.isfile(os.path.join(folder, "Model_pb2.py")):
            return None
        package = types.ModuleType(_PRIVATE, "coremltools' generated protobuf modules, loaded on their own")
        package.__path__ = [folder]
        package.__package__ = _PRIVATE
        sys.modules[_PRIVATE] = package
    return importlib.import_module(f"{_PRIVATE}.Model_pb2")


def model_pb2():
    """The Model_pb2 module of the installed coremltools."""
    if "coremltools.proto.Model_pb2" in sys.modules:
        return sys.modules["coremltools.proto.Model_pb2"]
    try:
        module = _standalone_model_pb2()
    except Exception:  # an unusual layout: fall back to the package import below
        sys.modules.pop(_PRIVATE, None)
        module = None
    if module is not None:
        return module
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "Failed to load _MLModelProxy", "scikit-learn version ... is not supported"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from coremltools.proto import Model_pb2
    except ImportError as e:
        raise ImportError(
            "reading Core ML model files needs coremltools: pip install 'coreseg[coreml]' "
            f"(it could not be imported: {e})"
        ) from e
    finally:
        logger.setLevel(level)
    return Model_pb2
