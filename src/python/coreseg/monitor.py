"""coreseg.monitor lives in coreseg.evaluation.monitor; this path is kept for it."""

import sys

from .evaluation import monitor

sys.modules[__name__] = monitor
