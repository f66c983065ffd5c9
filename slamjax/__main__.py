"""``python -m slamjax ...``: the command line (``slamjax.cli``), for hosts without the console script."""

import sys

from .cli import main

sys.exit(main())
