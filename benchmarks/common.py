"""What the decision-quality benchmarks share: the toolkit on sys.path, a binomial interval, the
percent format, and the command line each one also runs standalone with."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main(run: Callable[..., dict[str, Any]], doc: str, quick_help: str, seed: int) -> int:
    """`python benchmarks/<name>.py [--quick] [--seed N] [--json FILE]`: the markdown on stdout."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--json", help="also write the results as JSON here")
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = run(quick=args.quick, seed=args.seed)
    print(out["markdown"])
    if args.json:
        Path(args.json).write_text(json.dumps(out["results"], indent=1), encoding="utf-8")
    print(f"\n({time.perf_counter() - t0:.1f} s wall, {os.cpu_count()} CPUs)", file=sys.stderr)
    return 0
