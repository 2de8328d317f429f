#!/usr/bin/env python3
"""train-gpu: the same as `mlcicd train-gpu`, runnable without installing the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcicd.cli import main

sys.exit(main(["train-gpu", *sys.argv[1:]]))
