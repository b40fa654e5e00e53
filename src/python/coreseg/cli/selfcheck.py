"""`coreseg selfcheck`: show what coreseg runs on here and check every
native kernel against the numpy reference on a model-sized label map and a
full-HD photo, with the time each takes."""

from __future__ import annotations

import platform
import sys
import time

import numpy as np

from .. import _native, kernels
from .._version import __version__
from ..kernels import reference
from ..kernels.palette import default_palette


def _scene(rng):
    # A blocky 448x448 class map (as a segmentation model returns) and a
    # 1920x1080 photo-like gradient to draw it on.
    labels = np.repeat(np.repeat(rng.integers(0, 100, (28, 28)), 16, 0), 16, 1).astype(np.int32)
    y, x = np.mgrid[0:1080, 0:1920]
    photo = np.stack([x * 255 // 1919, y * 255 // 1079, (x ^ y) & 255, np.full_like(x, 255)], -1)
    return labels, photo.astype(np.uint8)


def _time(fn, repeat=5):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    print(f"coreseg {__version__} on {platform.system()} {platform.machine()}, Python {platform.python_version()}")
    print(f"SIMD backend: {_native.simd_backend()} (available: {', '.join(_native.available_backends())})")
    print(f"threads: {kernels.get_num_threads()}")
    labels, photo = _scene(np.random.default_rng(0))
    palette = default_palette(100, alpha=150)
    cases = [
        ("render_mask 448x448", lambda m: m.render_mask(labels, [3, 7, 42])),
        ("colorize 448x448", lambda m: m.colorize(labels, palette)),
        ("resize_labels 448->1920x1080", lambda m: m.resize_labels(labels, (1920, 1080))),
        ("composite 448 onto 1920x1080", lambda m: m.composite(photo, labels, palette, 0.6, outline=(255, 255, 255))),
        ("resize_image 1920x1080->448 BGRA", lambda m: m.resize_image(photo, (448, 448), "BGRA")),
    ]
    failures = 0
    print(f"{'kernel':34} {'native':>10} {'reference':>10} {'speed-up':>9}  same bytes")
    for name, call in cases:
        same = np.array_equal(call(kernels), call(reference))
        failures += not same
        t_native = _time(lambda: call(kernels))
        t_ref = _time(lambda: call(reference), repeat=1)
        print(f"{name:34} {t_native * 1e3:8.2f}ms {t_ref * 1e3:8.1f}ms {t_ref / t_native:8.0f}x  {'yes' if same else 'NO'}")
    if failures:
        print(f"{failures} kernel(s) differ from the reference", file=sys.stderr)
        return 1
    print("all kernels match the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
