"""coreseg.reference lives in coreseg.kernels.reference; this path is kept for it."""

import sys

from .kernels import reference

sys.modules[__name__] = reference
