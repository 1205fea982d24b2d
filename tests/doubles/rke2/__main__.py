"""python -m tests.doubles.rke2 DIRECTORY VERSION: build the RKE2 double's release VERSION and write
DIRECTORY/local.py, the local profile with it pinned (the molecule `cluster` scenario uses this)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.doubles.rke2 import release_inventory

if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    print(release_inventory(target, sys.argv[2]))
