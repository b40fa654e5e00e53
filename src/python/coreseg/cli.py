"""The `coreseg` command line.

Every failure exits non-zero with one line on stderr; `--debug` shows the
traceback instead."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args) -> int:
    from .model_info import inspect

    info = inspect(args.model)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(info.summary())
    return 0


def _cmd_annotate(args) -> int:
    from .annotate import annotate, read_label_list

    labels = read_label_list(args.labels)
    colors = read_label_list(args.colors) if args.colors else None
    info = annotate(args.model, labels, args.output, colors=colors, force=args.force)
    print(f"wrote {info.path}: {len(info.legend())} labels"
          f"{' with colours' if info.colors is not None else ''}")
    return 0


def _cmd_selfcheck(args) -> int:
    from .selfcheck import main as selfcheck

    return selfcheck()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coreseg", description="Semantic segmentation with Core ML models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="describe a Core ML segmentation model (any OS)")
    p.add_argument("model", help=".mlpackage or .mlmodel")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("annotate", help="copy a model with labels/colours in its preview metadata")
    p.add_argument("model", help=".mlpackage or .mlmodel (never modified)")
    p.add_argument("--labels", required=True,
                   help="a file (JSON list, or one label per line) or a comma-separated list")
    p.add_argument("--colors", help="hex colours, one per label: a file or a comma-separated list")
    p.add_argument("-o", "--output", required=True, help="where to write the annotated copy")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(run=_cmd_annotate)

    p = sub.add_parser("selfcheck", help="check every native kernel against the reference here, with timings")
    p.set_defaults(run=_cmd_selfcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, OSError, ImportError) as e:
        if args.debug:
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"coreseg {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
