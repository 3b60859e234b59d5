"""``python -m niseg.cli``."""

import sys

from niseg.cli import main

sys.exit(main())
