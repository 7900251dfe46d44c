"""``python -m veche_chaos`` (with ``scripts/`` on the path) is ``scripts/chaos``."""

import sys

from veche_chaos.cli import main

sys.exit(main())
