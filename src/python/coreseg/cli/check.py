"""`coreseg check MODEL [IMAGE]`: run a model once and say what was read,
what was assumed, and what looks wrong (coreseg.running.diagnosis)."""

from __future__ import annotations

import json
import warnings

from .model_options import load_options


def cmd_check(args) -> int:
    """Exit 0 when nothing looks wrong, 1 with warnings (so a script can
    stop on them)."""
    from ..evaluation import scenes
    from ..files.images import read_image
    from ..modelfiles.info import AssumptionWarning
    from ..running.diagnosis import check
    from ..running.loader import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)  # the report says it, with the fix
        model = load(args.model, **load_options(args))
    image = read_image(args.image) if args.image else scenes.scene(2_000_001, (640, 480))[0]
    report = check(model, image)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.text())
    return 1 if report.warnings else 0
