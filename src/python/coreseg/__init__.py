"""coreseg: semantic segmentation with Core ML models, and native kernels for
everything around the model.

The kernels (render_mask, colorize, resize_labels, composite, resize_image,
the background effects blend, blur, upsample_matte and refine_matte, and
the metrics' confusion_matrix and boundary_counts) are native, release the
GIL and are bit-identical to their numpy twins in ``coreseg.reference``.
"""

import os as _os

from . import _native
from .kernels import (
    BOUNDARY_COLUMNS,
    MAX_BLUR_RADIUS,
    MAX_DOWNSCALE,
    MAX_REFINE_RADIUS,
    MAX_SIDE,
    blend,
    blur,
    upsample_matte,
    refine_matte,
    boundary_counts,
    argmax,
    upsample_argmax,
    class_histogram,
    confusion_matrix,
    decode_colors,
    colorize,
    ema_update,
    hysteresis_state,
    hysteresis_update,
    composite,
    get_num_threads,
    render_mask,
    resize_image,
    resize_labels,
    set_num_threads,
    simd_backend,
)
from .modelfiles.info import AssumptionWarning, ModelError, ModelInfo
from .modelfiles.reading import inspect
from .modelfiles.annotate import annotate
from .results.segmentation import Segmentation
from .running.segmenter import BackendUnavailableError, CoreMLError, Segmenter
from .running.loader import load
from .kernels.palette import default_palette, parse_color, parse_colors
from .drawing.legend import draw_legend
from .files.images import read_image

from ._version import __version__

__all__ = [
    "MAX_SIDE",
    "MAX_DOWNSCALE",
    "MAX_BLUR_RADIUS",
    "MAX_REFINE_RADIUS",
    "load",
    "Segmenter",
    "Segmentation",
    "read_image",
    "BackendUnavailableError",
    "CoreMLError",
    "inspect",
    "annotate",
    "ModelInfo",
    "ModelError",
    "AssumptionWarning",
    "render_mask",
    "colorize",
    "resize_labels",
    "composite",
    "resize_image",
    "argmax",
    "upsample_argmax",
    "decode_colors",
    "confusion_matrix",
    "class_histogram",
    "ema_update",
    "hysteresis_update",
    "hysteresis_state",
    "blend",
    "blur",
    "upsample_matte",
    "refine_matte",
    "draw_legend",
    "boundary_counts",
    "BOUNDARY_COLUMNS",
    "default_palette",
    "parse_color",
    "parse_colors",
    "simd_backend",
    "set_num_threads",
    "get_num_threads",
]


def _apply_simd_override() -> None:
    # An explicit request that cannot be honoured is an error, not a silent
    # fallback: a benchmark or test forcing a path must get that path.
    forced = _os.environ.get("CORESEG_SIMD", "").strip().lower()
    if forced:
        try:
            _native.set_simd_backend(forced)
        except ValueError as e:
            raise ImportError(f"CORESEG_SIMD={forced}: {e}") from None


_apply_simd_override()
