#!/usr/bin/env python3
"""Start-up cost of the CLI: wall time and peak RSS of `mlcicd --help` and of every stage's `--help`.

    python benchmarks/startup.py [--quick]

Every command runs as a child process of this one, N times after one untimed warm-up run (quick: N=3,
full: N=10); the table shows the median and p90 wall time and the largest peak RSS of the N runs.
`python -c "import mlflow"` is the reference: the import every stage that touches the registry pays
anyway. The stages import their heavy libraries (pandas, pyarrow, pandera, mlflow, torch) inside their
run functions, so `--help` must not pay for them; the "heavy path" rows show what a stage's run adds.
Target (issue item 5): `mlcicd --help` and each stage's `--help` in at most 1.5 s.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 1.5
TITLE = "Start-up time and memory of the CLI"

# Fallback when GNU time is missing: a fresh wrapper process whose only child is the command, so
# getrusage(RUSAGE_CHILDREN).ru_maxrss is that command's peak RSS (KiB on Linux).
WRAPPER = """\
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": rc, "wall": wall, "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, fh)
"""


def mlcicd_argv() -> list[str]:
    """The console script installed next to this Python (what users type), else `python -m mlcicd`."""
    script = Path(sys.executable).parent / "mlcicd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlcicd"]


def child_env() -> dict[str, str]:
    """This environment, minus PYTHONDONTWRITEBYTECODE: an installed toolkit has its bytecode cached (pip
    compiles it; an editable install writes it on first import), and the warm-up run writes it here."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith(("MLFLOW_", "INPUT_"))
    }
    env.pop("PYTHONPATH", None)
    return env


def heavy_imports(module_name: str) -> list[str]:
    """Modules a stage imports on its run path: inside the functions of its `__init__` and anywhere in its
    other modules (one level deep: what those modules import lazily in turn, e.g. torch inside
    mlcicd.latency, is not counted)."""
    import importlib.util

    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin:
        return []
    # A stage is a package: its run path is spread over its modules, all of which count.
    files = (
        sorted(Path(spec.origin).parent.glob("*.py"))
        if spec.submodule_search_locations
        else [Path(spec.origin)]
    )
    found: set[str] = set()
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body} if file.name == "__init__.py" else set()
        for node in ast.walk(tree):
            if id(node) in top:
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return sorted(name for name in found if name != "mlcicd" and not name.startswith("mlcicd.stages"))


def commands() -> list[dict]:
    """(label, argv, kind) of every command to time: the reference, the CLI and each stage, the heavy paths."""
    from mlcicd.stages import all_stages

    py, cli = sys.executable, mlcicd_argv()
    shown = "mlcicd" if len(cli) == 1 else "python -m mlcicd"
    stages = all_stages()
    rows = [
        {"label": 'python -c "import mlflow"', "argv": [py, "-c", "import mlflow"], "kind": "reference"},
        {"label": 'python -c "import mlcicd.cli"', "argv": [py, "-c", "import mlcicd.cli"], "kind": "import"},
        {"label": f"{shown} --help", "argv": [*cli, "--help"], "kind": "help"},
    ]
    rows += [
        {"label": f"{shown} {name} --help", "argv": [*cli, name, "--help"], "kind": "help"} for name in stages
    ]
    by_module: dict[str, list[str]] = {}
    for name, stage in stages.items():
        by_module.setdefault(stage.run.__module__, []).append(name)
    for module, names in by_module.items():
        heavy = heavy_imports(module)
        code = "import " + ", ".join([module, *heavy])
        rows.append(
            {
                "label": f"heavy path of {', '.join(names)}",
                "code": code,
                "argv": [py, "-c", code],
                "kind": "heavy",
                "modules": heavy,
            }
        )
    return rows


def measure_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int | None, int]:
    """(wall seconds, peak RSS KiB, exit code) of one run."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.NamedTemporaryFile("r", dir=cwd, suffix=".rusage", delete=False) as tmp:
        stats = Path(tmp.name)
    try:
        if gnu_time:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [gnu_time, "-f", "%M", "-o", str(stats), *argv],
                cwd=cwd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - t0
            lines = stats.read_text().split()
            rss = (
                int(lines[-1]) if lines and lines[-1].isdigit() else None
            )  # a failed command adds a "Command exited" line first
            return wall, rss, proc.returncode
        subprocess.run([sys.executable, "-c", WRAPPER, str(stats), *argv], cwd=cwd, env=env, check=True)
        data = json.loads(stats.read_text())
        return float(data["wall"]), int(data["maxrss_kib"]), int(data["rc"])
    finally:
        stats.unlink(missing_ok=True)


def rss_method() -> str:
    if shutil.which("time", path="/usr/bin:/bin"):
        return "GNU time (`/usr/bin/time -f %M`)"
    return "getrusage(RUSAGE_CHILDREN).ru_maxrss in a wrapper process whose only child is the command"


def run(quick: bool = False) -> dict:
    repeats = 3 if quick else 10
    env = child_env()
    rows = commands()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        cwd = Path(tmp)  # no mlcicd.yaml, nothing of the checkout on the path but the installed package
        for row in rows:
            print(f"  startup: {row['label']} ×{repeats}", file=sys.stderr, flush=True)
            measure_once(row["argv"], cwd, env)  # warm-up: page cache, bytecode cache
            walls, rss, codes = [], [], []
            for _ in range(repeats):
                wall, kib, rc = measure_once(row["argv"], cwd, env)
                walls.append(wall)
                codes.append(rc)
                if kib is not None:
                    rss.append(kib)
            row.update(
                walls_s=walls,
                median_s=float(np.median(walls)),
                p90_s=float(np.percentile(walls, 90)),
                min_s=float(min(walls)),
                peak_rss_mib=max(rss) / 1024 if rss else None,
                exit_codes=sorted(set(codes)),
            )
    reference = next(r for r in rows if r["kind"] == "reference")["median_s"]
    for row in rows:
        row["ratio_to_import_mlflow"] = row["median_s"] / reference if reference > 0 else None
        row["met"] = row["median_s"] <= TARGET_S if row["kind"] == "help" else None

    helps = [r for r in rows if r["kind"] == "help"]
    top, stage_helps = helps[0], helps[1:]
    slowest = max(stage_helps, key=lambda r: r["median_s"])
    targets = [
        {
            "target": f"`{top['label']}` ≤ {TARGET_S} s (median)",
            "measured": f"{top['median_s']:.2f} s",
            "met": bool(top["met"]),
        },
        {
            "target": f"every stage's `--help` ≤ {TARGET_S} s (median)",
            "measured": f"slowest `{slowest['label']}` {slowest['median_s']:.2f} s",
            "met": all(bool(r["met"]) for r in stage_helps),
        },
    ]
    results = {
        "repeats": repeats,
        "warmup_runs": 1,
        "rss_method": rss_method(),
        "python": sys.executable,
        "target_s": TARGET_S,
        "commands": rows,
        "targets": targets,
    }
    return {"title": TITLE, "markdown": render(results), "results": results}


def render(results: dict) -> str:
    rows = results["commands"]
    failed = [r for r in rows if r["exit_codes"] != [0]]
    lines = [
        f"Wall time and peak resident memory of each command below, each started as a child process in an empty temporary "
        f"directory: one untimed warm-up run, then {results['repeats']} timed runs (median and p90 of the wall time; "
        f"the largest peak RSS of those runs, measured with {results['rss_method']}). "
        f'`python -c "import mlflow"` is the reference cost: every stage that reads or writes the registry pays it when it runs. '
        f"The **heavy path** rows import a stage module together with every module its functions import lazily "
        f"(one level deep), i.e. roughly what the stage adds once it runs. Bytecode caching is left on "
        f"(PYTHONDONTWRITEBYTECODE is removed for the children), as in an installed toolkit.",
        "",
        f"Python: `{results['python']}`. Reproduce one row with e.g. "
        f"`/usr/bin/time -f %M {shlex.join(rows[2]['argv'])} >/dev/null`, or the whole section with "
        f"`python benchmarks/startup.py{' --quick' if results['repeats'] < 10 else ''}`.",
        "",
        "| command | median s | p90 s | peak RSS MiB | × import mlflow | target ≤ 1.5 s |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["met"] is None:
            target = "reference" if r["kind"] == "reference" else "–"
        else:
            target = f"met ({r['median_s']:.2f} s)" if r["met"] else f"**MISSED** ({r['median_s']:.2f} s)"
        rss = f"{r['peak_rss_mib']:.0f}" if r["peak_rss_mib"] is not None else "–"
        ratio = f"{r['ratio_to_import_mlflow']:.2f}" if r["ratio_to_import_mlflow"] is not None else "–"
        label = r["label"].replace("|", "\\|")
        lines.append(f"| {label} | {r['median_s']:.3f} | {r['p90_s']:.3f} | {rss} | {ratio} | {target} |")
    lines += [
        "",
        "Heavy path imports (the stage's lazy imports, one level deep; a branch that never runs on a given input is counted too):",
    ]
    lines += [f"- {r['label'][len('heavy path of ') :]}: `{r['code']}`" for r in rows if r["kind"] == "heavy"]
    if failed:
        lines += [
            "",
            "Commands that did not exit 0: "
            + "; ".join(f"`{r['label']}` exited {r['exit_codes']}" for r in failed)
            + ".",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per command instead of 10")
    args = parser.parse_args()
    print(run(quick=args.quick)["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
