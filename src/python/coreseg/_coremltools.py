"""Lazy access to coremltools' protobuf classes.

coremltools is a dependency wherever it publishes wheels (macOS, Linux
x86-64). It is imported only when a model file is read, because importing
it takes most of a second and, off macOS, logs warnings about its native
runtime that coreseg never uses (coreseg only reads and writes specs)."""

from __future__ import annotations

import logging
import sys


def model_pb2():
    """coremltools.proto.Model_pb2, imported quietly."""
    logger = logging.getLogger("coremltools")
    level = logger.level
    if sys.platform != "darwin":
        logger.setLevel(logging.ERROR)  # "Failed to load _MLModelProxy" etc.
    try:
        from coremltools.proto import Model_pb2
    except ImportError as e:
        raise ImportError(
            "reading Core ML model files needs coremltools (pip install coremltools); "
            f"it could not be imported: {e}"
        ) from e
    finally:
        logger.setLevel(level)
    return Model_pb2
