#!/usr/bin/env python3
"""pr-report: the same as `mlcicd pr-report`, runnable without installing the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcicd.cli import main

sys.exit(main(["pr-report", *sys.argv[1:]]))
