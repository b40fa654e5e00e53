"""`python -m coreseg ...` is the `coreseg` command."""

import sys

from .cli import main

sys.exit(main())
