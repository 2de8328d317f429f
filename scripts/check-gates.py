#!/usr/bin/env python3
"""check-gates: the same as `mlcicd check-gates`, runnable without installing the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcicd.cli import main

sys.exit(main(["check-gates", *sys.argv[1:]]))
