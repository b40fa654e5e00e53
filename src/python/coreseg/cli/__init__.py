"""The `coreseg` command line.

    coreseg demo [--out DIR] [--image PHOTO]
    coreseg segment MODEL IMAGE|FOLDER|GLOB... [--label NAME ...] [--format png|jpg|webp] [--out DIR] [--keep-going] [--jobs N]
    coreseg eval MODEL DATASET_DIR [--out DIR] [--jobs N | --ray ADDRESS]   |   coreseg eval --pred DIR --gt DIR [--jobs N]
    coreseg info MODEL [--json]
    coreseg annotate MODEL --labels FILE_OR_LIST [--colors ...] [--set KEY=VALUE ...] -o OUT [--force]
    coreseg selfcheck

The top of the package: it may import every subpackage, and nothing
imports it. One module per command (demo, segment, segment_video,
evaluate, model_files, selfcheck); this one holds the parser and the error
handling. MODEL may be the word `demo` for
the bundled model. Every failure exits
non-zero with one line on stderr; `--debug` shows the traceback instead.
Outputs are written under a temporary name and renamed when complete, so a
failure never leaves a partial file, and a symlink at an output path is
replaced, not written through.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .demo import cmd_demo
from .check import cmd_check
from .model_files import cmd_annotate, cmd_info
from .model_options import add_model_options
from ._common import say, terminate_cleanly
from . import evaluate, segment
from .._version import __version__
from ..modelfiles.metadata_keys import SETTING_KEYS
from ..modelfiles.settings import command_line

__all__ = ["main", "build_parser"]


def cmd_selfcheck(args) -> int:
    from .selfcheck import main as selfcheck

    return selfcheck()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coreseg", description="Semantic segmentation with Core ML models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"coreseg {__version__}")
    # --debug after the command too (SUPPRESS: not given there, it does not
    # undo one given before the command).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common], help="segment a generated scene (or your photo) with the bundled model")
    p.add_argument("--out", default="coreseg-demo", help="folder for overlay.png and mask.png")
    p.add_argument("--image", help="a photo to segment instead of a generated scene")
    p.add_argument("--seed", type=int, default=2_000_000, help="scene seed (training used seeds < 1000000)")
    p.add_argument("--width", type=int, default=800, help="width of the generated scene in pixels (default 800)")
    p.add_argument("--height", type=int, default=600, help="height of the generated scene in pixels (default 600)")
    p.add_argument("--opacity", type=float, default=0.55, help="overlay opacity, 0..1 (default 0.55)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(run=cmd_demo)

    segment.add_parser(sub, common)

    evaluate.add_parser(sub, common)

    p = sub.add_parser("info", parents=[common], help="describe a segmentation model (any OS)")
    p.add_argument("model", help=".mlpackage, .mlmodel, .onnx, or 'demo'")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_model_options(p, crop=False, size=False)  # the file's facts: no per-run input size
    p.set_defaults(run=cmd_info)

    p = sub.add_parser("check", parents=[common],
                       help="run a model once and say what was read, what was assumed, and what looks wrong")
    p.add_argument("model", help=".onnx, Core ML model, or 'demo'")
    p.add_argument("image", nargs="?", help="a photo to run it on (default: a generated scene)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_model_options(p)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("annotate", parents=[common],
                       help="copy a model with labels/colours and settings in its metadata, so the next load needs no flag")
    p.add_argument("model", help=".mlpackage, .mlmodel or .onnx (never modified)")
    p.add_argument("--labels",
                   help="a file (JSON list, or one label per line), an inline JSON list, a comma-separated list, "
                        "or a preset (voc, cityscapes, cityscapes-bg, ade20k); default: keep the model's")
    p.add_argument("--colors", help="hex colours, one per label, given the same ways")
    p.add_argument("-o", "--output", required=True, help="where to write the annotated copy")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a setting stored in the copy, e.g. coreseg.output.activation=sigmoid or "
                        "coreseg.input.normalization=imagenet (repeatable; keys: "
                        + ", ".join(SETTING_KEYS) + ")")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(run=cmd_annotate)

    p = sub.add_parser("selfcheck", parents=[common], help="check every native kernel against the reference here, with timings")
    p.set_defaults(run=cmd_selfcheck)
    return parser


def _one_line_warning(command: str):
    """coreseg's own warnings as one line on stderr, like its errors."""
    from ..modelfiles.info import AssumptionWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, AssumptionWarning):
            say(f"coreseg {command}: warning: {message}")  # above a progress bar, if one is drawn
        else:
            shown(message, category, filename, lineno, file, line)

    return show


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # Messages name flags, not load()'s keywords; SIGTERM/SIGHUP unwind as Ctrl-C does.
        with command_line(), warnings.catch_warnings(), terminate_cleanly():
            warnings.showwarning = _one_line_warning(args.command)
            return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line, never a traceback, unless --debug
        if args.debug:
            raise
        expected = (ValueError, KeyError, OSError, ImportError, RuntimeError)
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        if isinstance(e, RecursionError) or not isinstance(e, expected):
            message = f"{type(e).__name__}: {message} (--debug shows where)"
        print(f"coreseg {args.command}: error: {message}", file=sys.stderr)
        return 1
