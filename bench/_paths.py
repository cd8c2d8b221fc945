"""Makes the repository (``tests.*``) and the collection (``ansible_collections.federation.platform``)
importable, so that every benchmark runs as ``.venv/bin/python bench/<name>.py`` with nothing set by hand.
Imported first by each benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO / '.collections'), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
