"""coreseg.export lives in coreseg.files.export; this path is kept for it."""

import sys

from .files import export

sys.modules[__name__] = export
