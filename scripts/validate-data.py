#!/usr/bin/env python3
"""validate-data: the same as `mlcicd validate-data`, runnable without installing the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcicd.cli import main

sys.exit(main(["validate-data", *sys.argv[1:]]))
