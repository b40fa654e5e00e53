"""The kernels' front: the native kernels as Python functions, their numpy
twins (`reference`), the argument checks both share, buffers and palettes.
Imports only coreseg._native: nothing here knows models, files or frames.

One module per native source: label_maps (render_mask, colorize,
resize_labels, composite), resampling (resize_image), scores (argmax,
upsample_argmax), counting (decode_colors, confusion_matrix,
class_histogram), temporal (ema_update, hysteresis_update), effects (blend,
blur, upsample_matte: effects.cc, matte.cc), refine (refine_matte:
refine.cc), threads.

Each function normalises and checks its arguments (_args.py for scalars,
_arrays.py for arrays, shared with `reference`), then runs the C++ kernel
in coreseg._native with the GIL released, split over row bands on a small
thread pool (`set_num_threads`). Results are bit-identical to `reference`
and do not depend on the thread count or the SIMD backend.

Arrays whose rows are not packed (e.g. ``labels[:, ::2]``,
``image[..., ::-1]``), whose elements are not aligned, or whose byte order
is not the machine's are copied once before the kernel runs; row strides
(crops, ``[::-1]`` row flips) are used as they are. `out=` arrays are
written as they are, so they must be in native byte order and aligned.

Limits, refused with a ValueError that names them: every side of every
array at most MAX_SIDE (2**24) elements; resize_image shrinks an axis at
most MAX_DOWNSCALE (2048) times in one pass; confusion_matrix counts at
most 16384 classes; blur's and refine_matte's radii are at most
MAX_BLUR_RADIUS and MAX_REFINE_RADIUS (1024) pixels; upsample_argmax and
upsample_matte take at most 65536 planes; at most MAX_THREADS (256)
threads. A result larger than the machine's memory
is a MemoryError before anything is allocated.
"""

from __future__ import annotations

from ._args import MAX_DOWNSCALE
from ._arrays import MAX_SIDE
from .boundary import BOUNDARY_COLUMNS, boundary_counts
from .counting import class_histogram, confusion_matrix, decode_colors
from .effects import MAX_BLUR_RADIUS, blend, blur, upsample_matte
from .refine import MAX_REFINE_RADIUS, refine_matte
from .label_maps import colorize, composite, render_mask, resize_labels
from .resampling import resize_image
from .scores import argmax, upsample_argmax
from .temporal import ema_update, hysteresis_state, hysteresis_update
from .threads import MAX_THREADS, get_num_threads, set_num_threads, simd_backend

__all__ = [
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
    "boundary_counts",
    "BOUNDARY_COLUMNS",
    "ema_update",
    "hysteresis_update",
    "hysteresis_state",
    "blend",
    "blur",
    "upsample_matte",
    "refine_matte",
    "simd_backend",
    "set_num_threads",
    "get_num_threads",
    "MAX_SIDE",
    "MAX_DOWNSCALE",
    "MAX_BLUR_RADIUS",
    "MAX_REFINE_RADIUS",
    "MAX_THREADS",
]
