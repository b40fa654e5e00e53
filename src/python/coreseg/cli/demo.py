"""`coreseg demo`: the bundled model on a generated scene or a photo."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._common import OUTLINE, refuse_existing


def cmd_demo(args) -> int:
    from .. import kernels
    from ..evaluation import scenes
    from ..running.loader import load
    from ..files.images import read_image, write_png
    from ..drawing.legend import draw_legend
    from ..evaluation.metrics import confusion_matrix, iou_per_class

    out = Path(args.out)
    targets = [out / "overlay.png", out / "mask.png"]
    refuse_existing(targets, args.force)

    t0 = time.perf_counter()
    model = load("demo")
    t_load = time.perf_counter() - t0
    if args.image:
        image, truth = read_image(args.image), None
        source = args.image
    else:
        image, truth = scenes.scene(args.seed, (args.width, args.height))
        source = f"generated scene, seed {args.seed}, {args.width}x{args.height}"

    seg = model.predict(image)
    t0 = time.perf_counter()
    palette = seg.palette
    overlay = kernels.composite(image, seg.labels, palette, args.opacity, OUTLINE)
    draw_legend(overlay, seg.legend(), palette)  # in place
    full = seg.full_labels()
    mask = kernels.colorize(full, palette)
    t_render = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    write_png(targets[0], overlay)
    write_png(targets[1], mask)

    print(f"coreseg demo: {model.info.path.name} ({model.backend}) on {source}")
    if truth is not None:
        names = model.labels
        cm = confusion_matrix(truth, full, len(names))
        iou = iou_per_class(cm)
        # Shares of the image: in the scene's exact class map, and as predicted.
        print(f"{'class':10} {'IoU':>6}  {'true':>7}  {'predicted':>9}")
        for i, name in enumerate(names):
            truth_share, predicted_share = cm[i].sum() / cm.sum(), cm[:, i].sum() / cm.sum()
            print(f"{name:10} {'   -  ' if np.isnan(iou[i]) else f'{iou[i]:6.3f}'}  {truth_share * 100:6.1f}%"
                  f"  {predicted_share * 100:8.1f}%")
        print(f"{'mIoU':10} {np.nanmean(iou):6.3f}")
    t = seg.timings
    print(f"time: load {t_load * 1e3:.1f} ms, preprocess {t['preprocess'] * 1e3:.1f} ms, "
          f"inference {t['inference'] * 1e3:.1f} ms, argmax {t['postprocess'] * 1e3:.2f} ms, "
          f"render {t_render * 1e3:.1f} ms")
    print(f"wrote {targets[0]} and {targets[1]}")
    return 0
