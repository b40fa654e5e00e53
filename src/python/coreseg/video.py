"""coreseg.video lives in coreseg.frames.video; this path is kept for it."""

import sys

from .frames import video

sys.modules[__name__] = video
