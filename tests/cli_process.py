"""The command line of `python -m coreseg ARGS` run as from a terminal, for
tests that signal it.

The child starts with SIGINT raising KeyboardInterrupt and SIGTERM and
SIGHUP at their defaults, whatever the test process inherited: under
nohup SIGHUP is ignored, and a non-interactive shell's background job
ignores SIGINT, and a child inherits that (coreseg rightly leaves an
ignored signal alone), so the test would depend on how it was launched.
"""

import sys

_AS_FROM_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "runpy.run_module('coreseg', run_name='__main__', alter_sys=True)")


def coreseg_argv(*args) -> list:
    """[python, ..., *args]: `python -m coreseg *args` with default signal handling."""
    return [sys.executable, "-c", _AS_FROM_A_TERMINAL, *map(str, args)]
