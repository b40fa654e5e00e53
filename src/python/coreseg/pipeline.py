"""coreseg.pipeline lives in coreseg.frames.pipeline; this path is kept for it."""

import sys

from .frames import pipeline

sys.modules[__name__] = pipeline
