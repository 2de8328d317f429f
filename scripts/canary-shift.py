#!/usr/bin/env python3
"""canary-shift: the same as `mlcicd canary-shift`, runnable without installing the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlcicd.cli import main

sys.exit(main(["canary-shift", *sys.argv[1:]]))
