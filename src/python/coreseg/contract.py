"""coreseg.contract lives in coreseg.modelfiles.contract; this path is kept for it."""

import sys

from .modelfiles import contract

sys.modules[__name__] = contract
