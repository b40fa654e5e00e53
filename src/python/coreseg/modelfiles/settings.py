"""The settings a user can state about a model, and how messages name them.

Every setting `load` takes has a command-line flag and a metadata key that
`coreseg annotate --set` stores in a copy of the model. A message that
tells the user what to pass names the keyword in Python
(``output_layout='NCHW'``) and the flag under the command line
(``--output-layout NCHW``): the CLI runs its commands inside
`command_line()`.

Where each setting came from is recorded as one of SOURCES: "model" (its
file says so: metadata, graph, shapes or Core ML's own preprocessing),
"load" (the user said so: `load`'s keywords or the CLI's flags) or
"assumed" (coreseg's default, shown as assumed by ``coreseg info``).
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["SOURCES", "FLAGS", "KEYS", "arg", "command_line", "in_command_line"]

SOURCES = ("model", "load", "assumed")

#: `load`'s keyword -> the command line's flag.
FLAGS = {
    "labels": "--labels",
    "mean": "--mean",
    "std": "--std",
    "normalization": "--normalization",
    "layout": "--layout",
    "color_layout": "--color-layout",
    "output": "--output",
    "output_layout": "--output-layout",
    "output_activation": "--activation",
    "threshold": "--threshold",
    "size": "--size",
    "multiple": "--multiple",
    "max_side": "--max-side",
    "crop": "--crop",
}

#: `load`'s keyword -> the metadata key that states it in the model file
#: (labels go in the preview params; see annotate).
KEYS = {
    "normalization": "coreseg.input.normalization",
    "mean": "coreseg.input.mean",
    "std": "coreseg.input.std",
    "layout": "coreseg.input.layout",
    "color_layout": "coreseg.input.color_layout",
    "size": "coreseg.input.size",
    "multiple": "coreseg.input.multiple",
    "max_side": "coreseg.input.max_side",
    "crop": "coreseg.input.crop",
    "output": "coreseg.output.name",
    "output_layout": "coreseg.output.layout",
    "output_activation": "coreseg.output.activation",
    "threshold": "coreseg.output.threshold",
}

#: Set (to "cli") while the command line runs: an environment variable, not
#: a context variable, so the command's threads and its --jobs worker
#: processes see it too.
STYLE_VARIABLE = "CORESEG_ARGUMENT_STYLE"


@contextlib.contextmanager
def command_line():
    """Inside this, messages name the CLI's flags instead of `load`'s keywords."""
    before = os.environ.get(STYLE_VARIABLE)
    os.environ[STYLE_VARIABLE] = "cli"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STYLE_VARIABLE, None)
        else:
            os.environ[STYLE_VARIABLE] = before


def in_command_line() -> bool:
    return os.environ.get(STYLE_VARIABLE) == "cli"


def arg(name: str, value=None) -> str:
    """How the user states setting `name` (= `value`): ``name='value'`` in
    Python, ``--flag value`` under the command line. `value` None names the
    setting alone (``name`` or ``--flag``)."""
    if in_command_line():
        flag = FLAGS.get(name, "--" + name.replace("_", "-"))
        if value is None:
            return flag
        text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
        return f"{flag} {text}"
    name = "mean" if name == "normalization" else name  # `load(mean="imagenet")` names a preset
    if value is None:
        return name
    return f"{name}={value!r}"
