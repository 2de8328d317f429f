#!/usr/bin/env python3
"""promote: the same as `mlcicd promote`, runnable without installing the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcicd.cli import main

sys.exit(main(["promote", *sys.argv[1:]]))
