"""What the command line says about a model that its file does not: the same
settings as `coreseg.load`'s keywords, as flags shared by segment, eval,
info and check (coreseg.modelfiles.settings names them both ways)."""

from __future__ import annotations

import argparse

from ..modelfiles.contract import ACTIVATIONS, NORMALIZATIONS
from ..modelfiles.contract_inputs import parse_size
from ..modelfiles.presets import PRESETS


def add_model_options(parser: argparse.ArgumentParser, crop: bool = True, size: bool = True) -> None:
    """The flags that state what a model does not say (each also storable
    in a copy of the model with `annotate --set`)."""
    g = parser.add_argument_group("what the model does not say (each overrides its metadata)")
    g.add_argument("--labels", metavar="FILE|LIST|PRESET",
                   help="class names: a file (JSON list or one per line), 'a,b,c', or a preset with its colours: "
                        + ", ".join(PRESETS))
    g.add_argument("--normalization", metavar="PRESET", choices=list(NORMALIZATIONS),
                   help="how float inputs are scaled: " + ", ".join(NORMALIZATIONS)
                        + " (unit 0..1, symmetric -1..1, imagenet, raw 0..255)")
    g.add_argument("--mean", metavar="R,G,B", help="float inputs: (pixel/255 - mean) / std, 3 numbers on 0..1")
    g.add_argument("--std", metavar="R,G,B", help="float inputs: see --mean")
    g.add_argument("--layout", choices=["NHWC", "NCHW"], help="where the input's colour channels are")
    g.add_argument("--color-layout", choices=["RGB", "BGR"], help="the input's colour order")
    g.add_argument("--output", metavar="NAME", help="the output to read (default: the first class map or scores)")
    g.add_argument("--output-layout", choices=["NCHW", "NHWC"], help="where a float output's class axis is")
    g.add_argument("--activation", choices=list(ACTIVATIONS),
                   help="what a float output holds (sigmoid over several channels: independent classes)")
    g.add_argument("--threshold", type=float, help="binary and multi-label outputs: a class is present above it")
    if size:
        g.add_argument("--size", metavar="W,H|image", help="the input size, for models that take several")
    g.add_argument("--multiple", type=int, metavar="N",
                   help="models of any input size: sides rounded to multiples of N (default 32)")
    g.add_argument("--max-side", type=int, metavar="PX",
                   help="models of any input size: the long side at most PX (default 1024; 0: no cap)")
    if crop:
        g.add_argument("--crop", choices=["fill", "fit", "center"],
                       help="how an image is placed in the model's input (Vision's crop and scale modes; "
                            "default the model's metadata, else fill)")


def _numbers(text: str, flag: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise ValueError(f"{flag} must be numbers separated by commas, got {text!r}") from None


def load_options(args) -> dict:
    """`coreseg.load`'s keywords for the flags given (none for those not)."""
    from ..modelfiles.annotate import read_label_list
    from ..modelfiles.presets import is_preset

    options = {}
    labels = getattr(args, "labels", None)
    if labels is not None:
        options["labels"] = labels.strip().lower() if is_preset(labels) else read_label_list(labels)
    if getattr(args, "normalization", None):
        if getattr(args, "mean", None) or getattr(args, "std", None):
            raise ValueError("--normalization is a preset that sets the mean and std: give it or --mean/--std")
        options["mean"] = args.normalization
    for flag in ("mean", "std"):
        if getattr(args, flag, None):
            options[flag] = _numbers(getattr(args, flag), f"--{flag}")
    for name, key in (("layout", "layout"), ("color_layout", "color_layout"), ("output", "output"),
                      ("output_layout", "output_layout"), ("activation", "output_activation"),
                      ("threshold", "threshold"), ("multiple", "multiple"), ("max_side", "max_side"),
                      ("crop", "crop")):
        value = getattr(args, name, None)
        if value is not None:
            options[key] = value
    if getattr(args, "size", None):
        try:
            options["size"] = parse_size(args.size)
        except ValueError as e:
            raise ValueError(f"--size: {e}") from None
    return options
