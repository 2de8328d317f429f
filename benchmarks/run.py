#!/usr/bin/env python3
"""Run ml-cicd's benchmarks and write docs/benchmarks.md (`make bench`, `make bench QUICK=1`).

    python benchmarks/run.py [--quick] [--only name[,name]] [--merge benchmarks/results/<earlier>.json] [--out docs/benchmarks.md]

Each benchmark is a module in this folder with `run(quick: bool = False) -> dict` returning
{"title": str, "markdown": str, "results": dict}. Its results may list the targets it checked as
`"targets": [{"target": str, "measured": str, "met": bool | None}]` (None: no threshold, measured only);
the summary table at the top of the page is built from those. A missing module is noted and skipped;
a module that raises gets a "failed: <error>" section, the others still run, and the exit code is 1.
The raw results of every run go to benchmarks/results/<timestamp>.json. With --only, the page holds only the
sections that ran, unless --merge names an earlier run's raw results: its sections that did not run now are then
copied onto the page, each marked with the run it comes from, so that the page stays complete.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODULES = [
    "validate_speed",
    "validate_scale",
    "drift_quality",
    "canary_judge_quality",
    "significance_gate",
    "startup",
    "pipeline_overhead",
    "gpu_latency",
]
PACKAGES = ["mlcicd", "mlflow", "pandas", "pyarrow", "scipy", "numpy", "torch"]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the machine ------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def ram_gib() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return None


def os_name() -> str:
    pretty = next(
        (
            line.split("=", 1)[1].strip().strip('"')
            for line in _read("/etc/os-release").splitlines()
            if line.startswith("PRETTY_NAME=")
        ),
        "",
    )
    return f"{pretty or platform.system()} (kernel {platform.release()})"


def package_version(name: str) -> str:
    for dist in (name, f"{name}-skinny") if name == "mlflow" else (name,):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def gpu() -> str:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if out.returncode == 0 and out.stdout.strip():
                return "; ".join(line.strip() for line in out.stdout.strip().splitlines())
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    return "none"


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": ram_gib(),
        "os": os_name(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "versions": {name: package_version(name) for name in PACKAGES},
        "gpu": gpu(),
        "load_average_at_start": list(load) if load else None,
        "git": git_commit(),
    }


def git_commit() -> str | None:
    """The checkout's commit (with `+changes` when the tree differs from it), so a merged section says what it measured."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


# --- running ---------------------------------------------------------------------------------


def run_module(name: str, quick: bool) -> dict:
    """{"status": ok | failed | missing, "title", "markdown", "results", "error", "seconds"} of one module."""
    if not (HERE / f"{name}.py").is_file():
        log(f"{name}: no benchmarks/{name}.py, skipped")
        return {
            "status": "missing",
            "title": name,
            "markdown": f"not run: benchmarks/{name}.py does not exist.",
            "results": {},
        }
    started = time.monotonic()
    log(f"{name}: running{' (quick)' if quick else ''} …")
    try:
        module = importlib.import_module(name)
        out = module.run(quick=quick)
        for key in ("title", "markdown", "results"):
            if key not in out:
                raise KeyError(f"run() returned no {key!r}")
        seconds = time.monotonic() - started
        log(f"{name}: done in {seconds:.1f} s")
        return {
            "status": "ok",
            "title": str(out["title"]),
            "markdown": str(out["markdown"]),
            "results": out["results"],
            "seconds": seconds,
        }
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - one benchmark's failure is reported, the others still run
        seconds = time.monotonic() - started
        error = f"{type(exc).__name__}: {exc}"
        log(f"{name}: FAILED after {seconds:.1f} s: {error.splitlines()[0]}")
        title = getattr(sys.modules.get(name), "TITLE", name)
        return {
            "status": "failed",
            "title": str(title),
            "markdown": f"failed: {error.splitlines()[0]}"
            + ("\n\n```\n" + error + "\n```" if "\n" in error else ""),
            "results": {},
            "error": error,
            "traceback": traceback.format_exc(),
            "seconds": seconds,
        }


# --- the page --------------------------------------------------------------------------------


def command_line(argv: list[str]) -> str:
    """`make bench` / `make bench QUICK=1` when that is what ran, else the exact command."""
    if argv in ([], ["--quick"]):
        return f"`make bench{' QUICK=1' if argv else ''}` (`python benchmarks/run.py{' --quick' if argv else ''}`)"
    return f"`python benchmarks/run.py {shlex.join(argv)}`"


def normalized_targets(targets: object) -> list[dict]:
    """The convention is a list of {"target", "measured", "met"}; a dict of such entries (keyed by name), or entries
    that say `value`/`text` instead of `measured`, are read as well as can be, so that a summary is always written."""
    items = (
        list(targets.items())
        if isinstance(targets, dict)
        else [(None, t) for t in targets]
        if isinstance(targets, list)
        else []
    )
    rows = []
    for key, entry in items:
        if isinstance(entry, dict):
            target = entry.get("target") or entry.get("name") or key or "?"
            measured = next(
                (entry[k] for k in ("measured", "text", "value") if entry.get(k) not in (None, "")), ""
            )
            met = entry.get("met")
        else:
            target, measured, met = key or entry, entry if key else "", None
        rows.append({"target": target, "measured": measured, "met": met if isinstance(met, bool) else None})
    return rows


def summary_rows(name: str, section: dict) -> list[str]:
    title = _cell(section["title"]) + (" (earlier run)" if "earlier" in section else "")
    if section["status"] == "missing":
        return [f"| {title} | – | not run (no module) | – |"]
    if section["status"] == "failed":
        return [f"| {title} | – | failed: {_cell(section['error'].splitlines()[0][:200])} | – |"]
    results = section["results"]
    targets = normalized_targets(results.get("targets")) if isinstance(results, dict) else []
    if not targets:
        return [f"| {title} | – | (no target recorded) | – |"]
    rows = []
    for t in targets:
        met = t["met"]
        verdict = "met" if met is True else "**MISSED**" if met is False else "– (measured)"
        rows.append(f"| {title} | {_cell(t['target'])} | {_cell(t['measured'])} | {verdict} |")
    return rows


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def earlier_sections(path: Path, names: list[str]) -> dict[str, dict]:
    """The sections of an earlier run (its raw results file) that are not in `names`, each marked with where it is from."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        sections = payload["sections"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"--merge {path}: not a results file of benchmarks/run.py ({exc})") from None
    origin = {
        "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "started": payload.get("started", "?"),
        "command": " ".join(payload.get("command", [])),
        "quick": bool(payload.get("quick")),
        "load_average_at_start": (payload.get("machine") or {}).get("load_average_at_start"),
        "git": (payload.get("machine") or {}).get("git"),
    }
    return {
        name: {**section, "earlier": origin}
        for name, section in sections.items()
        if name in MODULES and name not in names
    }


def _earlier_note(origin: dict) -> str:
    load = origin["load_average_at_start"]
    when = origin["started"][:16].replace("T", " ") + " UTC"
    return (
        f"_Not re-run for this page: copied from the earlier run of {when} (`{origin['command']}`, raw results "
        f"`{origin['file']}`{', quick mode' if origin['quick'] else ''}"
        + (f", git {origin['git']}" if origin["git"] else "")
        + (f", load average {load[0]:.2f} at its start" if load else "")
        + ")._"
    )


def render(
    info: dict, sections: dict[str, dict], quick: bool, argv: list[str], started: datetime, seconds: float
) -> str:
    m = info
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    load = m["load_average_at_start"]
    earlier = [s["title"] for s in sections.values() if "earlier" in s]
    lines = [
        "# Benchmarks",
        "",
        f"Run on {started.strftime('%Y-%m-%d %H:%M UTC')}, {seconds / 60:.1f} min in all. Command: {command_line(argv)}.",
        "",
    ]
    if earlier:
        lines += [
            f"Sections not re-run (copied from an earlier run, marked as such): {', '.join(earlier)}. The machine lines below "
            "describe this run.",
            "",
        ]
    if quick:
        lines += [
            "> **Quick mode**: fewer repetitions and smaller data, to check that the benchmarks run. These numbers are **not** the "
            "published ones; those come from `make bench` on a quiet machine.",
            "",
        ]
    lines += [
        "Machine:",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gib']:.1f} GiB"
        if m["ram_gib"]
        else f"- CPU: {m['cpu']}, {m['cores']} cores",
        f"- GPU: {m['gpu']}",
        f"- OS: {m['os']}",
        f"- Python {m['python']}",
        f"- {versions}",
    ]
    if m.get("git"):
        lines.append(f"- code: git {m['git']}")
    if load:
        lines.append(
            f"- load average when the run started: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)"
        )
    lines += [
        "",
        "## Summary",
        "",
        'Each benchmark\'s targets as it checked them (met / MISSED against the measured figure; "measured" where the issue asks only to measure).',
        "",
        "| section | target | measured | met |",
        "|---|---|---|---|",
    ]
    for name, section in sections.items():
        lines += summary_rows(name, section)
    for section in sections.values():
        lines += ["", f"## {section['title']}", ""]
        if "earlier" in section:
            lines += [_earlier_note(section["earlier"]), ""]
        lines.append(section["markdown"].strip())
    missed = [
        f"- {_cell(s['title'])}: {_cell(t['target'])}: {_cell(t['measured'])}"
        for s in sections.values()
        if s["status"] == "ok" and isinstance(s["results"], dict)
        for t in normalized_targets(s["results"].get("targets"))
        if t["met"] is False
    ]
    failed = [
        f"- {_cell(s['title'])}: did not run to the end ({_cell(s['status'])})"
        for s in sections.values()
        if s["status"] != "ok"
    ]
    lines += ["", "## Targets missed", ""]
    lines += missed + failed if missed or failed else ["None: every target checked by this run is met."]
    return "\n".join(lines) + "\n"


def _json_default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions and smaller data: a check that the benchmarks run",
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(MODULES)}")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="the Markdown page to write"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        help="an earlier run's benchmarks/results/<timestamp>.json: its sections that do not run now go on the page too, marked",
    )
    args = parser.parse_args()
    argv = sys.argv[1:]

    names = MODULES
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in MODULES]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
        names = [n for n in MODULES if n in wanted]

    sys.path.insert(0, str(HERE))
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    log(f"benchmarks: {', '.join(names)}{' (quick)' if args.quick else ''}")
    info = machine()
    earlier = earlier_sections(args.merge, names) if args.merge else {}
    sections = {name: run_module(name, args.quick) for name in names}
    seconds = time.monotonic() - t0

    # The raw results first: a page that fails to render must not lose a long run.
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    raw = results_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "started": started.isoformat(),
        "seconds": seconds,
        "quick": args.quick,
        "command": ["python", "benchmarks/run.py", *argv],
        "machine": info,
        "sections": sections,
        "merged_from": str(args.merge) if args.merge else None,
    }
    raw.write_text(
        json.dumps(payload, indent=2, default=_json_default, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    log(f"wrote {raw}")

    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    page_sections = {
        name: sections.get(name) or earlier[name] for name in MODULES if name in sections or name in earlier
    }
    out.write_text(render(info, page_sections, args.quick, argv, started, seconds), encoding="utf-8")
    log(f"wrote {out}")

    failed = [n for n, s in sections.items() if s["status"] == "failed"]
    missing = [n for n, s in sections.items() if s["status"] == "missing"]
    if missing:
        log(f"not run (no module): {', '.join(missing)}")
    if failed:
        log(f"FAILED: {', '.join(failed)}")
    print(out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
