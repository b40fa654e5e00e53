"""`coreseg info` and `coreseg annotate`: model files."""

from __future__ import annotations

import json

from ._common import model_path


def cmd_info(args) -> int:
    from ..modelfiles.reading import inspect

    from .model_options import load_options

    info = inspect(model_path(args.model), **load_options(args))
    print(json.dumps(info.to_dict(), indent=2) if args.json else info.summary())
    return 0


def cmd_annotate(args) -> int:
    from ..modelfiles.annotate import annotate, read_label_list

    from ..modelfiles.presets import is_preset

    labels = None if args.labels is None else args.labels if is_preset(args.labels) else read_label_list(args.labels)
    colors = read_label_list(args.colors) if args.colors else None
    metadata = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key or key != key.strip():
            raise ValueError(f"--set takes KEY=VALUE (no spaces around the key), got {item!r}")
        metadata[key] = value
    info = annotate(args.model, labels, args.output, colors=colors, force=args.force, metadata=metadata)
    stored = [k for k in metadata]
    print(f"wrote {info.path}: {len(info.legend())} labels{' with colours' if info.colors is not None else ''}"
          + (f"; {', '.join(stored)}" if stored else ""))
    return 0
