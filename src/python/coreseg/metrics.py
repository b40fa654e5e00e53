"""coreseg.metrics lives in coreseg.evaluation.metrics; this path is kept for it."""

import sys

from .evaluation import metrics

sys.modules[__name__] = metrics
