"""Allow ``python -m csuhub``."""

import sys

from csuhub.cli import main

sys.exit(main())
