"""coreseg.smoothing lives in coreseg.frames.smoothing; this path is kept for it."""

import sys

from .frames import smoothing

sys.modules[__name__] = smoothing
