"""Where tests find the shared pabulib data: ``../shared/data`` beside the checkout (as in CI).

``VECHE_SHARED_DATA`` overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("VECHE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
