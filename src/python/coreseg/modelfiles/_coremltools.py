"""Lazy access to coremltools' protobuf classes.

coremltools is a dependency on macOS and the extra `coreml` elsewhere. It
is imported only when a model file is read, because importing it takes most
of a second and logs warnings that are not the user's concern (its native
runtime off macOS, untested scikit-learn and torch versions): coreseg only
reads and writes specs, so they are silenced during the import."""

from __future__ import annotations

import logging
import warnings


def model_pb2():
    """coremltools.proto.Model_pb2, imported quietly."""
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
