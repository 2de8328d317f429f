#!/usr/bin/env python3
"""monitor: the same as `mlcicd monitor`, runnable without installing the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcicd.cli import main

sys.exit(main(["monitor", *sys.argv[1:]]))
