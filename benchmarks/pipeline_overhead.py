#!/usr/bin/env python3
"""Pipeline overhead: the example pipeline run by act, its total wall time against the user's own work in it.

    python benchmarks/pipeline_overhead.py [--quick] [--rows N] [--keep DIR]

Runs what `make demo` runs (tests/demo.py: the example consumer with generated data and profile, the
stand-in serving layer on loopback, and `act push` of its `.github/workflows/ml.yml` with this checkout
as `org/ml-cicd@v1`), once, in a temporary directory, and times it:

- the whole `act push` (wall clock, from starting act to its exit), and each job (first to last line
  act printed for it, every line timestamped as it arrives);
- each step, from act's own `Success - <step> [duration]` lines;
- the user's training command, from train-gpu's `mlcicd.wall_time_s` metric in the MLflow run (the
  number its step summary shows as "wall time": the command's process from start to exit).

Overhead is the total minus the user's training command; the breakdown splits the rest by what it was
spent on, down to act itself (the total minus every step: act's start-up, job set-up and clean-up).
Quick: 4,000 rows of data; full: 20,000 (the demo's default). There is no target number: measure.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TITLE = "Pipeline overhead: the example pipeline through act"
CANARY_INTERVAL = "5s"
CANARY = {"steps": "20,50", "interval": CANARY_INTERVAL, "min-requests": 30}  # as tests/demo.py configures it
LOAD_RATE = 100
ACT_LIMIT_S = 1800
DEPLOY_STEP = (
    "Main Put the version on the canary server"  # deploy.yml's step that runs the user's deploy-command
)

STEP_START = re.compile(r"^\[(?P<job>[^\]]+)\] ⭐ Run (?P<step>.+?)\s*$")
STEP_END = re.compile(
    r"^\[(?P<job>[^\]]+)\]\s+(?:✅|❌)\s+(?P<status>Success|Failure) - (?P<step>.+?)(?: \[(?P<dur>[^\]]*)\])?\s*$"
)
JOB_END = re.compile(r"^\[(?P<job>[^\]]+)\] 🏁\s+Job (?P<result>\w+)")
LINE_JOB = re.compile(r"^\[(?P<job>[^\]]+)\]")
STAGE = re.compile(r"-m mlcicd ([\w-]+)")
RUN_ID = re.compile(r"::set-output:: run-id=([0-9a-f]{32})")
CANARY_CHECK = re.compile(r"\[canary-shift\] .+: [A-Z ()]+ — requests")
WALL_IN_SUMMARY = re.compile(r"^\| wall time \| ([\d.]+) s \|")
GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|μs|ns|h|m|s)")
UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}


def go_duration(text: str | None) -> float | None:
    """Seconds of a Go time.Duration string as act prints it ("4.1ms", "17.86s", "1m5.2s")."""
    if not text:
        return None
    parts = GO_DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text.strip():
        return None
    return sum(float(value) * UNIT_S[unit] for value, unit in parts)


@dataclass
class Step:
    job: str
    name: str
    status: str = ""
    seconds: float | None = None
    leaf: bool = True  # False for a composite action's wrapper, whose time its inner steps already count


@dataclass
class Job:
    key: str
    first_t: float
    last_t: float = 0.0
    result: str = ""
    steps: list[Step] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.key.split()[-1]  # "train/ml-cicd train/check-gates" → "train/check-gates"


def parse(lines: list[tuple[float, str]]) -> dict[str, Job]:
    """Jobs and their steps from act's log, each line with the second it arrived (relative to act's start)."""
    jobs: dict[str, Job] = {}
    open_steps: dict[str, list[Step]] = {}
    for t, line in lines:
        head = LINE_JOB.match(line)
        if not head:
            continue
        key = head["job"].strip()
        job = jobs.setdefault(key, Job(key, t))
        job.last_t = t
        stack = open_steps.setdefault(key, [])
        if m := STEP_START.match(line):
            for parent in stack:
                parent.leaf = False
            step = Step(key, m["step"])
            stack.append(step)
            job.steps.append(step)
        elif m := STEP_END.match(line):
            name = m["step"]
            match = next((s for s in reversed(stack) if s.name == name), None)
            if match is None:
                match = Step(key, name)
                job.steps.append(match)
            else:
                del stack[stack.index(match) :]
            match.status, match.seconds = m["status"], go_duration(m["dur"])
        elif m := JOB_END.match(line):
            job.result = m["result"]
    # the caller workflow's "[ml/train]" lines only resolve the reusable workflow: no steps, no end
    return {key: job for key, job in jobs.items() if job.steps or job.result}


def category(job: Job, step: Step) -> str:
    if "setup_toolkit.py" in step.name:
        return "toolkit setup"
    if m := STAGE.search(step.name):
        stage = m.group(1)
        if stage == "check-gates":
            return "serve check" if "serve" in job.short else "gate evaluation"
        return stage
    if step.name == DEPLOY_STEP:
        return "deploy command"
    return "other steps"


def training_seconds(
    jobs: dict[str, Job], lines: list[tuple[float, str]], home: Path
) -> tuple[float | None, str]:
    """train-gpu's `mlcicd.wall_time_s` from the MLflow run; the step summary's rounded figure if that fails."""
    train_keys = {k for k, j in jobs.items() if j.short.endswith("train-gpu")}
    run_ids = [
        m.group(1)
        for _, line in lines
        if (head := LINE_JOB.match(line)) and head["job"].strip() in train_keys
        for m in [RUN_ID.search(line)]
        if m
    ]
    if run_ids:
        try:
            from mlflow import MlflowClient

            metrics = (
                MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}").get_run(run_ids[0]).data.metrics
            )
            if "mlcicd.wall_time_s" in metrics:
                return float(
                    metrics["mlcicd.wall_time_s"]
                ), f"MLflow run {run_ids[0]}, metric mlcicd.wall_time_s"
        except Exception as exc:  # noqa: BLE001 - the summary below still has the figure
            print(
                f"  pipeline_overhead: reading the MLflow run failed ({exc}); using the step summary",
                file=sys.stderr,
            )
    for _, line in lines:
        if m := WALL_IN_SUMMARY.match(line.strip()):
            return float(m.group(1)), "train-gpu's step summary (rounded to 0.1 s)"
    return None, "not found"


def run_pipeline(root: Path, rows: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import demo

    home = root / "home"
    prep_started = time.monotonic()
    print(
        f"  pipeline_overhead: serving layer and consumer repository in {root} ({rows:,} rows)",
        file=sys.stderr,
        flush=True,
    )
    with demo.serving_layer(root, home, rate=LOAD_RATE) as (servers, lb, prom, _load):
        canary = {
            **CANARY,
            "router": {"type": "haproxy", "address": lb.admin_address, "backend": "model"},
            "metrics": {"type": "prometheus", "address": prom.url},
            "deploy-command": demo.deploy_command(servers),
        }
        repo = demo.prepare_consumer(root, rows, canary)
        act = demo.Act(root, repo, home, {})
        command = act.command("push")
        prep_s = time.monotonic() - prep_started
        print("  pipeline_overhead: act push …", file=sys.stderr, flush=True)
        lines: list[tuple[float, str]] = []
        log_path = root / "act.log"
        with open(log_path, "w") as log:
            started = time.monotonic()
            proc = subprocess.Popen(
                command,
                cwd=repo,
                env=act.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            watchdog = threading.Timer(ACT_LIMIT_S, proc.kill)
            watchdog.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    lines.append((time.monotonic() - started, line.rstrip("\n")))
                    log.write(line)
                rc = proc.wait()
            finally:
                watchdog.cancel()
            total_s = time.monotonic() - started
    aliases, versions = demo.registry(home)
    return {
        "rc": rc,
        "total_s": total_s,
        "prep_s": prep_s,
        "lines": lines,
        "home": home,
        "log_path": log_path,
        "aliases": aliases,
        "versions": versions,
        "command": command,
    }


def analyse(raw: dict, rows: int) -> dict:
    lines, total = raw["lines"], raw["total_s"]
    jobs = parse(lines)
    training, training_source = training_seconds(jobs, lines, raw["home"])
    leaves = [(job, s) for job in jobs.values() for s in job.steps if s.leaf and s.seconds is not None]
    by_category: dict[str, float] = {}
    counts: dict[str, int] = {}
    for job, step in leaves:
        cat = category(job, step)
        by_category[cat] = by_category.get(cat, 0.0) + step.seconds
        counts[cat] = counts.get(cat, 0) + 1
    steps_total = sum(s.seconds for _, s in leaves)
    checks = sum(1 for _, line in lines if CANARY_CHECK.search(line))
    interval = go_duration(CANARY_INTERVAL) or 0.0
    waiting = checks * interval
    first_job_t = min((j.first_t for j in jobs.values()), default=0.0)

    train_stage = by_category.get("train-gpu", 0.0)
    canary_stage = by_category.get("canary-shift", 0.0)
    breakdown = [
        ("user's training command (`python train.py …` inside train-gpu)", training or 0.0, "user"),
        (
            "train-gpu around the command (GPU probe, fingerprint lookup, MLflow run set-up and close)",
            train_stage - (training or 0.0),
            "toolkit",
        ),
        (
            "validate-data (schema, drift against the profile)",
            by_category.get("validate-data", 0.0),
            "toolkit",
        ),
        (
            "check-gates in train.yml: gate evaluation (metrics, significance, latency, size, robustness)",
            by_category.get("gate evaluation", 0.0),
            "toolkit",
        ),
        (
            "promote @staging, and @production when the canary made it (MLflow registry)",
            by_category.get("promote", 0.0),
            "toolkit",
        ),
        (
            "serve check in deploy.yml (`mlflow models serve`, 20 rows over HTTP)",
            by_category.get("serve check", 0.0),
            "toolkit",
        ),
        ("user's deploy command (`serving/deploy.py`)", by_category.get("deploy command", 0.0), "user"),
        (
            f"canary-shift: configured waiting ({checks} checks × {CANARY_INTERVAL} interval)",
            min(waiting, canary_stage),
            "waiting",
        ),
        (
            "canary-shift: the rest (router, Prometheus queries, start-up)",
            canary_stage - min(waiting, canary_stage),
            "toolkit",
        ),
        (
            f"toolkit setup (`setup_toolkit.py`, {counts.get('toolkit setup', 0)} steps, cached venv)",
            by_category.get("toolkit setup", 0.0),
            "toolkit",
        ),
        (
            "other steps (checkout, setup-python stand-in, pre/post, verdict jobs)",
            by_category.get("other steps", 0.0),
            "toolkit",
        ),
    ]
    known = {
        "train-gpu",
        "validate-data",
        "gate evaluation",
        "promote",
        "serve check",
        "deploy command",
        "canary-shift",
        "toolkit setup",
        "other steps",
    }
    breakdown += [(f"mlcicd {cat}", sec, "toolkit") for cat, sec in by_category.items() if cat not in known]
    breakdown.append(
        ("act itself (start-up, job set-up and clean-up; total − all steps)", total - steps_total, "act")
    )

    user = (training or 0.0) + by_category.get("deploy command", 0.0)
    headline = {
        "total_s": total,
        "training_s": training,
        "training_source": training_source,
        "overhead_s": total - (training or 0.0),
        "overhead_excl_waiting_s": total - (training or 0.0) - waiting,
        "user_commands_s": user,
        "overhead_beyond_user_commands_s": total - user,
        "configured_waiting_s": waiting,
        "act_startup_s": first_job_t,
        "prep_outside_run_s": raw["prep_s"],
    }
    job_rows = [
        {
            "job": j.short,
            "result": j.result or "(no end line)",
            "wall_s": j.last_t - j.first_t,
            "in_steps_s": sum(s.seconds for s in j.steps if s.leaf and s.seconds is not None),
            "stage_steps": {
                s.name: s.seconds
                for s in j.steps
                if s.leaf and s.seconds is not None and (STAGE.search(s.name) or s.name == DEPLOY_STEP)
            },
        }
        for j in sorted(jobs.values(), key=lambda j: j.first_t)
    ]
    return {
        "rows": rows,
        "act_exit_code": raw["rc"],
        "registry": {"aliases": raw["aliases"], "versions": raw["versions"]},
        "headline": headline,
        "breakdown": [{"part": p, "seconds": s, "kind": k} for p, s, k in breakdown],
        "jobs": job_rows,
        "canary": {
            "checks": checks,
            "interval": CANARY_INTERVAL,
            "steps": CANARY["steps"],
            "load_rate_per_s": LOAD_RATE,
        },
        "steps_total_s": steps_total,
    }


def run(quick: bool = False, rows: int | None = None, keep: Path | None = None) -> dict:
    rows = rows or (4_000 if quick else 20_000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        raw = run_pipeline(tmp, rows)
        results = analyse(raw, rows)
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy2(raw["log_path"], keep / "act.log")
            (keep / "act-lines.json").write_text(
                json.dumps(raw["lines"])
            )  # [seconds since act started, line]: for re-analysis
            results["act_log"] = str(keep / "act.log")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # What the run said when it failed: the annotations, the canary's checks, the jobs that failed.
    said = [
        line.split("] ", 1)[-1].strip()
        for _, line in raw["lines"]
        if "::error" in line or "[canary-shift]" in line or "Job failed" in line
    ]
    results["completed"] = raw["rc"] == 0
    results["failure"] = [] if results["completed"] else list(dict.fromkeys(said))
    h = results["headline"]
    results["targets"] = [
        {
            "target": "the example pipeline completes (act exit 0) — a precondition for the figures below",
            "measured": "completed"
            if results["completed"]
            else f"act exit {raw['rc']}: " + _failure_headline(results["failure"]),
            "met": results["completed"],
        },
        {
            "target": "pipeline overhead vs the user's training (measure; no threshold)",
            "measured": f"total {h['total_s']:.1f} s, training {h['training_s'] or 0:.1f} s, overhead {h['overhead_s']:.1f} s "
            f"({h['overhead_excl_waiting_s']:.1f} s without the configured canary waiting)",
            "met": None,
        },
    ]
    return {"title": TITLE, "markdown": render(results, quick), "results": results}


def _failure_headline(said: list[str]) -> str:
    errors = [line for line in said if "::error" in line]
    if not errors:
        return "see the section"
    title, _, message = errors[0].partition("::error ")[2].partition("::")
    return f"{title.removeprefix('title=').replace('%3A', ':')}: {message.replace('%25', '%')}"[:300]


def render(results: dict, quick: bool) -> str:
    h = results["headline"]
    total = h["total_s"]

    def pct(s: float) -> str:
        return f"{100 * s / total:.0f} %" if total > 0 else "–"

    lines = [
        f"`act push` of the example consumer (`examples/.github/workflows/ml.yml` → train.yml → deploy.yml), exactly as `make demo` "
        f"runs it (tests/demo.py's helpers: act in host mode, this checkout as `org/ml-cicd@v1`, the embedded MLflow store, "
        f"two model servers behind HAProxy with Prometheus and ~{results['canary']['load_rate_per_s']} requests/s on loopback), "
        f"on {results['rows']:,} generated rows, once. Canary: steps {results['canary']['steps']} (then 100 %), interval "
        f"{results['canary']['interval']}. Command: `python benchmarks/pipeline_overhead.py{' --quick' if quick else ''}`. "
        f"The run ended with act exit {results['act_exit_code']}; registry versions {', '.join(results['registry']['versions']) or 'none'}, "
        f"aliases {results['registry']['aliases'] or 'none'}.",
        "",
        *(
            []
            if results["completed"]
            else [
                f"**The pipeline did not complete (act exit {results['act_exit_code']}), so these are the timings of a failed run, "
                "not the published figure.** What it said:",
                "",
                "```",
                *results["failure"],
                "```",
                "",
            ]
        ),
        "Total and job times are wall clock, taken as act's lines arrived; step times are act's own `[duration]`; the training "
        f"command's time is {h['training_source']}. The example has no evaluation command of its own: check-gates evaluates "
        "the model for it, and is listed in the breakdown.",
        "",
        "| measure | seconds | share of total | target |",
        "|---|---:|---:|---|",
        f"| whole `act push` (wall) | {total:.1f} | 100 % | measure |",
        f"| user's training command | {h['training_s'] or 0:.1f} | {pct(h['training_s'] or 0)} | measure |",
        f"| **overhead** = total − training | {h['overhead_s']:.1f} | {pct(h['overhead_s'])} | measure |",
        f"| overhead without the configured canary waiting | {h['overhead_excl_waiting_s']:.1f} | {pct(h['overhead_excl_waiting_s'])} | measure |",
        f"| overhead beyond the user's commands (training and deploy) | {h['overhead_beyond_user_commands_s']:.1f} | "
        f"{pct(h['overhead_beyond_user_commands_s'])} | measure |",
        "",
        "Where the time went (the rows add up to the total):",
        "",
        "| part | seconds | share of total |",
        "|---|---:|---:|",
    ]
    lines += [f"| {b['part']} | {b['seconds']:.1f} | {pct(b['seconds'])} |" for b in results["breakdown"]]
    lines += [
        "",
        f"Outside the timed run: data generation, profile, serving layer start-up and copying the toolkit took {h['prep_outside_run_s']:.1f} s. "
        f"act printed its first job line {h['act_startup_s']:.1f} s after it started.",
        "",
        "Per job (wall: first to last line act printed for the job; steps: the sum of its steps' durations):",
        "",
        "| job | result | wall s | in steps s | stage steps |",
        "|---|---|---:|---:|---|",
    ]
    for j in results["jobs"]:
        stages = "; ".join(
            f"{STAGE.search(n).group(1) if STAGE.search(n) else 'deploy command'} {s:.1f} s"
            for n, s in j["stage_steps"].items()
        )
        lines.append(
            f"| {j['job']} | {j['result']} | {j['wall_s']:.1f} | {j['in_steps_s']:.1f} | {stages or '–'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4,000 rows instead of 20,000")
    parser.add_argument(
        "--rows", type=int, default=None, help="rows of generated data (overrides --quick's choice)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="copy act's log (and its lines with arrival times) into this directory",
    )
    args = parser.parse_args()
    out = run(quick=args.quick, rows=args.rows, keep=args.keep)
    print(out["markdown"])
    return 0 if out["results"]["completed"] else 1


if __name__ == "__main__":
    sys.exit(main())
