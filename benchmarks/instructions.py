"""Instructions per call of each kernel at 1920x1080, counted by callgrind
(valgrind). Unlike times, they do not drift with the machine's load, so a
change that costs instructions shows even when timings are noisy.

    python benchmarks/instructions.py    # writes benchmarks/instructions.json (a few minutes)
    python benchmarks/report.py          # puts the table in BENCHMARKS.md

Each kernel runs on one thread (valgrind serialises threads anyway) with
the best SIMD backend of the CPU. A run's total includes Python's start-up,
so each kernel is run twice, with 1 and with 1 + CALLS calls, and the
difference divided by CALLS is its count per call.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CALLS = 6
# Address-space randomisation changes what Python's start-up does by a few
# million instructions from run to run; `setarch -R` turns it off.
SETARCH = ["setarch", platform.machine(), "-R"] if shutil.which("setarch") else []

SETUP = """
import gc; gc.disable()  # no collection landing in one run and not the other
import numpy as np, coreseg
coreseg.set_num_threads(1)
rng = np.random.default_rng(0)
W, H = 1920, 1080
photo = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
small = np.repeat(np.repeat(rng.integers(0, 100, (28, 28)), 16, 0), 16, 1).astype(np.int32)
labels = coreseg.resize_labels(small, (W, H))
palette = coreseg.default_palette(100, alpha=153)
out_rgba = np.empty((H, W, 4), np.uint8)
"""

#: kernel -> (extra setup, the call)
CASES = {
    "render_mask": ("", "coreseg.render_mask(labels, [1, 5, 9], (255, 0, 0, 255), out=out_rgba)"),
    "colorize": ("", "coreseg.colorize(labels, palette, out=out_rgba)"),
    "resize_labels 448 -> 1080p": ("o = np.empty((H, W), np.int32)", "coreseg.resize_labels(small, (W, H), out=o)"),
    "composite 448 -> 1080p": ("", "coreseg.composite(photo, small, palette, 1.0, None, out=out_rgba)"),
    "composite 448 -> 1080p, outline": ("", "coreseg.composite(photo, small, palette, 1.0, (255, 255, 255, 255), "
                                            "out=out_rgba)"),
    "composite 1080p labels": ("", "coreseg.composite(photo, labels, palette, 1.0, None, out=out_rgba)"),
    "resize_image 1080p -> 512x512": ("o = np.empty((512, 512, 4), np.uint8)",
                                      "coreseg.resize_image(photo, (512, 512), 'BGRA', out=o)"),
    "argmax 8 x 1080p": ("logits = rng.standard_normal((8, H, W), dtype=np.float32); o = np.empty((H, W), np.int32)",
                         "coreseg.argmax(logits, out=o)"),
    "upsample_argmax 8 x 128x128 -> 1080p": ("s = rng.random((8, 128, 128), dtype=np.float32); "
                                             "o = np.empty((H, W), np.int32)",
                                             "coreseg.upsample_argmax(s, (W, H), out=o)"),
    "decode_colors 1080p, 40 colours": ("table = rng.integers(0, 256, (40, 3)).astype(np.uint8); "
                                        "rgb = np.ascontiguousarray(table[labels % 40]); o = np.empty((H, W), np.int32)",
                                        "coreseg.decode_colors(rgb, table, out=o)"),
    "confusion_matrix 1080p, 100 classes": ("pred = np.roll(labels, 3, axis=1); o = np.empty((100, 100), np.int64)",
                                            "coreseg.confusion_matrix(labels, pred, 100, out=o)"),
    "class_histogram 1080p": ("o = np.empty(100, np.int64)", "coreseg.class_histogram(labels, 100, out=o)"),
    "ema_update 8 x 1080p": ("state = rng.random((8, H, W), dtype=np.float32); x = rng.random((8, H, W), "
                             "dtype=np.float32)", "coreseg.ema_update(state, x, 0.25)"),
    "hysteresis_update 1080p, two frames": ("state = coreseg.hysteresis_state(labels); new = np.roll(labels, 1, axis=0)",
                                "coreseg.hysteresis_update(state, new, 3); coreseg.hysteresis_update(state, labels, 3)"),
    "blend 1080p RGBA, image background": ("bg = rng.integers(0, 256, (H, W, 4), dtype=np.uint8); "
                                           "a = rng.integers(0, 256, (H, W), dtype=np.uint8)",
                                           "coreseg.blend(photo, bg, a, out=out_rgba)"),
    "blur 1080p RGBA, radius 20": ("", "coreseg.blur(photo, 20, out=out_rgba)"),
    "upsample_matte 256x144 -> 1080p": ("p = rng.random((1, 144, 256), dtype=np.float32); "
                                        "o = np.empty((H, W), np.uint8)", "coreseg.upsample_matte(p, (W, H), out=o)"),
    "refine_matte 1080p, radius 15": ("m = coreseg.upsample_matte(rng.random((1, 144, 256), dtype=np.float32), (W, H)); "
                                      "o = np.empty((H, W), np.uint8)",
                                      "coreseg.refine_matte(m, photo, radius=15, out=o)"),
    "boundary_counts 1080p, 100 classes": ("pred = np.roll(labels, 3, axis=1); o = np.empty((100, 7), np.int64)",
                                           "coreseg.boundary_counts(labels, pred, 100, 44, 18, out=o)"),
}


def count(extra: str, call: str, calls: int) -> int:
    code = SETUP + extra + "\n" + "\n".join([call] * calls) + "\n"
    # numpy's OpenBLAS starts threads that spin while idle, as many
    # instructions as the scheduler lets them: one thread, none spinning.
    env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    r = subprocess.run([*SETARCH, "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", code],
                       capture_output=True, text=True, env=env, check=True)
    return int(re.search(r"Collected : (\d+)", r.stderr).group(1))


def main() -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    import coreseg

    results = {}
    for name, (extra, call) in CASES.items():
        per_call = (count(extra, call, 1 + CALLS) - count(extra, call, 1)) / CALLS
        results[name] = round(per_call)
        print(f"{name:40} {per_call / 1e6:10.2f} M instructions")
    doc = {"machine": f"{platform.machine()}, SIMD backend {coreseg.simd_backend()}, one thread",
           "instructions": results}
    (HERE / "instructions.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {HERE / 'instructions.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
