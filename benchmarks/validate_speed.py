#!/usr/bin/env python3
"""validate-data speed and memory: ml-cicd against Evidently's DataDriftPreset and a plain pyarrow read.

    python benchmarks/validate_speed.py [--quick] [--repeats N] [--sizes 100000,1000000] [--out DIR]
                                        [--peers floor,mlcicd,...] [--mlcicd PATH] [--timeout S] [--mem-limit-gib G]

Run it with the project's virtualenv (`.venv/bin/python`): it times that venv's `mlcicd` (or --mlcicd).
`benchmarks/run.py` imports it and calls run(quick=...). --peers runs a subset (e.g. `floor,mlcicd,drift`
while working on ml-cicd's speed, without the slow Evidently runs).

For each size (default 1e5, 1e6 and 5e6 rows; --quick: 1e5) it writes, deterministically and one
row group at a time (the whole table is never in memory), under --out/<rows>/:

reference.parquet   N rows x 20 columns: 10 float64 and 5 int64 columns of assorted distributions
                    (normal, lognormal, exponential, uniform, gamma, bimodal, Student t, beta;
                    uniform, Poisson, geometric, binomial integers), 5 string columns of 3-50 categories
current.parquet     N rows from the same generator with another seed and a planted shift
                    (`f00` mean +0.25 std, `c1` category mix moved by 10 points)
schema.yaml         pandera DataFrameSchema (dtype + in_range/isin checks) written by .to_yaml()

and times, each run a fresh child process (interpreter start and imports included), interleaved
repeat by repeat so that a change of machine load hits every peer alike:

  read floor   pyarrow ParquetFile(current.parquet, pre_buffer=False).iter_batches(262,144 rows),
               batches discarded: what any validator of that file must at least do
  profile      mlcicd profile --data reference.parquet --schema schema.yaml --out reference.json
               (one-time cost: the reference profile is built once per training set)
  ml-cicd      mlcicd validate-data --data current.parquet --schema schema.yaml --reference reference.json
               (schema + drift; exit 1 expected: the planted drift fails the step)
  Evidently    pandas.read_parquet of both files, Report([DataDriftPreset()]).run(current, reference)
               and snapshot.dict() + json.dumps, in its own venv (benchmarks/.venv-evidently,
               created on first use: Evidently 0.7 needs pandas < 3)
  info rows    read + batch.to_pandas(); validate-data without --schema (drift only); import of the
               modules validate-data loads (the fixed start-up cost)

Peak RSS comes from GNU time (`/usr/bin/time -f %M`) when installed, otherwise from a wrapper
process's getrusage(RUSAGE_CHILDREN).ru_maxrss. A run that passes the time limit (--timeout,
default 20 min) or the memory limit (--mem-limit-gib, polled every 0.25 s over the run's process
group) is killed and reported as "did not finish"; that peer is then not run at larger sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TITLE = "validate-data speed and memory"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = Path(tempfile.gettempdir()) / "mlcicd-validate-speed"
FULL_SIZES = (100_000, 1_000_000, 5_000_000)
QUICK_SIZES = (100_000,)
FULL_REPEATS = 3
QUICK_REPEATS = 2
RUN_TIMEOUT_S = 1200.0
LONG_RUN_S = (
    300.0  # after a run this long, that peer gets no further repeats at this size (stated in the table)
)
TARGETS = {"speed": 10.0, "memory": 1 / 3, "read": 3.0}

# --- data -----------------------------------------------------------------------------------

SEED = 20240521
GENERATOR = "validate_speed/v1"
ROW_GROUP = 1_000_000
try:  # the floor reads in validate-data's batches
    from mlcicd.data import BATCH_ROWS
except ImportError:
    BATCH_ROWS = 1 << 18

Sampler = Callable[[np.random.Generator, int], np.ndarray]


def _bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.3, rng.normal(-2.0, 0.5, n), rng.normal(3.0, 1.0, n))


# name, dtype, distribution (for the report), schema range (values are clipped to it), sampler
NUMERIC: list[tuple[str, str, str, float, float, Sampler]] = [
    ("f00", "float64", "normal(0, 1)", -12.0, 12.0, lambda r, n: r.normal(0.0, 1.0, n)),
    ("f01", "float64", "normal(50, 10)", -70.0, 170.0, lambda r, n: r.normal(50.0, 10.0, n)),
    ("f02", "float64", "lognormal(0, 0.75)", 0.0, 500.0, lambda r, n: r.lognormal(0.0, 0.75, n)),
    ("f03", "float64", "exponential(2)", 0.0, 200.0, lambda r, n: r.exponential(2.0, n)),
    ("f04", "float64", "uniform(-1, 1)", -1.0, 1.0, lambda r, n: r.uniform(-1.0, 1.0, n)),
    ("f05", "float64", "gamma(2, 3)", 0.0, 300.0, lambda r, n: r.gamma(2.0, 3.0, n)),
    ("f06", "float64", "0.3 normal(-2, 0.5) + 0.7 normal(3, 1)", -20.0, 20.0, _bimodal),
    ("f07", "float64", "Student t(3), clipped to +-50", -50.0, 50.0, lambda r, n: r.standard_t(3.0, n)),
    ("f08", "float64", "beta(2, 5)", 0.0, 1.0, lambda r, n: r.beta(2.0, 5.0, n)),
    (
        "f09",
        "float64",
        "normal(1000, 250), 1 % null",
        -2000.0,
        4000.0,
        lambda r, n: r.normal(1000.0, 250.0, n),
    ),
    ("i0", "int64", "uniform {0..9}", 0, 9, lambda r, n: r.integers(0, 10, n)),
    ("i1", "int64", "Poisson(4)", 0, 100, lambda r, n: r.poisson(4.0, n)),
    ("i2", "int64", "geometric(0.05)", 1, 10_000, lambda r, n: r.geometric(0.05, n)),
    ("i3", "int64", "binomial(100, 0.3)", 0, 100, lambda r, n: r.binomial(100, 0.3, n)),
    ("i4", "int64", "uniform {0..999,999}", 0, 999_999, lambda r, n: r.integers(0, 1_000_000, n)),
]
CATEGORIES = {"c0": 3, "c1": 7, "c2": 12, "c3": 25, "c4": 50}
NULL_RATE = {"f09": 0.01}
SHIFT_NUMERIC = ("f00", 0.25)  # column, mean shift in its std (1.0)
SHIFT_CAT = ("c1", 0.10)  # column, share moved from the last categories to the first
NUMERIC_NAMES = [c[0] for c in NUMERIC]
CATEGORICAL_NAMES = list(CATEGORIES)


def category_names(column: str, k: int) -> list[str]:
    return [f"{column}_cat_{j:02d}" for j in range(k)]


def category_probs(column: str, k: int, shifted: bool) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1) ** 0.8  # Zipf-like, so shares differ
    p = weights / weights.sum()
    if shifted and column == SHIFT_CAT[0]:
        move = min(SHIFT_CAT[1], p[-1] * 0.9 + p[-2] * 0.9)
        take_last = min(move, p[-1] * 0.9)
        p[-1] -= take_last
        p[-2] -= move - take_last
        p[0] += move
    return p


def chunk(rng: np.random.Generator, n: int, shifted: bool) -> pa.RecordBatch:
    arrays: dict[str, pa.Array] = {}
    for name, dtype, _, lo, hi, sampler in NUMERIC:
        values = sampler(rng, n)
        if shifted and name == SHIFT_NUMERIC[0]:
            values = values + SHIFT_NUMERIC[1]
        values = np.clip(values, lo, hi).astype(dtype)
        mask = rng.random(n) < NULL_RATE[name] if name in NULL_RATE else None
        arrays[name] = pa.array(values, mask=mask)
    for name, k in CATEGORIES.items():
        codes = rng.choice(k, size=n, p=category_probs(name, k, shifted)).astype(np.int32)
        arrays[name] = pc.take(pa.array(category_names(name, k), type=pa.string()), pa.array(codes))
    return pa.RecordBatch.from_pydict(arrays)


def arrow_schema(tag: str, rows: int) -> pa.Schema:
    fields = [
        pa.field(name, pa.float64() if dtype == "float64" else pa.int64(), nullable=name in NULL_RATE)
        for name, dtype, *_ in NUMERIC
    ]
    fields += [pa.field(name, pa.string(), nullable=False) for name in CATEGORIES]
    return pa.schema(fields, metadata={"bench-generator": f"{GENERATOR}:{SEED}:{ROW_GROUP}:{tag}:{rows}"})


def write_dataset(path: Path, rows: int, tag: str, shifted: bool) -> str:
    """Write `rows` rows one row group at a time; an existing file from the same generator is reused."""
    schema = arrow_schema(tag, rows)
    marker = schema.metadata[b"bench-generator"]
    if path.exists():
        try:
            if pq.read_schema(path).metadata.get(b"bench-generator") == marker:
                return "reused"
        except (pa.ArrowException, OSError, AttributeError):
            pass
    tmp = path.with_suffix(".parquet.tmp")
    file_id = 1 if shifted else 0
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for index, start in enumerate(range(0, rows, ROW_GROUP)):
            n = min(ROW_GROUP, rows - start)
            rng = np.random.default_rng(np.random.SeedSequence([SEED, file_id, index]))
            writer.write_table(
                pa.Table.from_batches([chunk(rng, n, shifted)]).cast(schema), row_group_size=ROW_GROUP
            )
    tmp.replace(path)
    return "written"


def write_schema(path: Path) -> None:
    import pandera.pandas as pdp

    columns = {}
    for name, dtype, _, lo, hi, _ in NUMERIC:
        columns[name] = pdp.Column(dtype, pdp.Check.in_range(lo, hi), nullable=name in NULL_RATE)
    for name, k in CATEGORIES.items():
        columns[name] = pdp.Column("str", pdp.Check.isin(category_names(name, k)))
    pdp.DataFrameSchema(columns, name="validate_speed").to_yaml(path)


def warm_cache(*paths: Path) -> None:
    """Read the files once, untimed, so that every peer finds them in the page cache."""
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


# --- child scripts --------------------------------------------------------------------------

WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": rc, "wall": wall, "maxrss_kib": ru.ru_maxrss, "user": ru.ru_utime, "sys": ru.ru_stime}, fh)
sys.exit(rc)
"""

FLOOR = r"""
import sys
import pyarrow.parquet as pq
rows = 0
for batch in pq.ParquetFile(sys.argv[1], pre_buffer=False).iter_batches(batch_size=int(sys.argv[2])):
    rows += batch.num_rows
print(f"read {rows:,} rows")
"""

TO_PANDAS = r"""
import sys
import pyarrow.parquet as pq
rows = 0
for batch in pq.ParquetFile(sys.argv[1], pre_buffer=False).iter_batches(batch_size=int(sys.argv[2])):
    rows += len(batch.to_pandas())
print(f"read {rows:,} rows into pandas")
"""

# what validate-data imports when every batch passes its built-in schema checks (pandas and pandera
# load only for a batch that may fail; drift needs no scipy)
IMPORTS = r"""
import mlcicd.cli, mlcicd.stages.validate_data, mlcicd.profile, mlcicd.drift, mlcicd.data
import numpy, pyarrow.parquet, pyarrow.compute, yaml, threading
print("imported")
"""

# argv: reference.parquet current.parquet phases.json numeric,columns categorical,columns
EVIDENTLY = r"""
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
try:  # Evidently >= 0.7
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    api = "evidently.Report / evidently.presets.DataDriftPreset"
except ImportError:  # Evidently < 0.7
    from evidently import ColumnMapping
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report
    api = "evidently.report.Report / evidently.metric_preset.DataDriftPreset (legacy)"
t_import = time.perf_counter()
reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
t_read = time.perf_counter()
numeric, categorical = sys.argv[4].split(","), sys.argv[5].split(",")
if api.endswith("(legacy)"):
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=reference, current_data=current,
               column_mapping=ColumnMapping(numerical_features=numeric, categorical_features=categorical))
    t_run = time.perf_counter()
    result = report.as_dict()
else:
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report(metrics=[DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition), Dataset.from_pandas(reference, data_definition=definition)
    )
    t_run = time.perf_counter()
    result = snapshot.dict()
text = json.dumps(result, default=str)
t_dict = time.perf_counter()
drifted, count = [], None
for metric in result.get("metrics", []):
    name, value = str(metric.get("metric_name", "")), metric.get("value")
    config = metric.get("config") or {}
    if name.startswith("DriftedColumnsCount") and isinstance(value, dict):
        count = value.get("count")
    elif name.startswith("ValueDrift") and isinstance(value, (int, float)):
        method, threshold = str(config.get("method", "")), config.get("threshold")
        if threshold is not None and ((value < threshold) if "p_value" in method else (value >= threshold)):
            drifted.append(config.get("column"))
with open(sys.argv[3], "w") as fh:
    json.dump({"api": api, "import_s": t_import - t0, "read_s": t_read - t_import, "run_s": t_run - t_read,
               "dict_s": t_dict - t_run, "result_chars": len(text), "drifted_count": count, "drifted": drifted}, fh)
print(f"Evidently: {count} drifted column(s): {drifted}; result {len(text):,} chars")
"""

EVIDENTLY_VENV = HERE / ".venv-evidently"
# Evidently 0.7.23 imports pandas internals that pandas 3 removed (pandas.core.dtypes.common.infer_dtype_from_object),
# so it gets pandas 2; pyarrow is pinned to the project venv's version so both sides read Parquet with the same code.
EVIDENTLY_REQUIREMENTS = ("evidently==0.7.23", "pandas==2.3.3")


# --- measuring ------------------------------------------------------------------------------


def _group_rss_kib(pgid: int) -> int:
    """Resident memory of every process in process group `pgid` (the run and its children)."""
    total = 0
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry.name}/statm") as fh:
                total += int(fh.read().split()[1]) * page_kib
        except (OSError, ValueError, IndexError):
            continue
    return total


def measure(
    label: str, cmd: list[str], cwd: Path, log: Path, timeout: float, mem_limit_kib: int, env: dict[str, str]
) -> dict[str, Any]:
    """Run `cmd` in its own process group; wall s, peak RSS KiB, exit code; killed past the time or memory limit."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.NamedTemporaryFile("r", dir=cwd, suffix=".rusage", delete=False) as tmp:
        stats_path = Path(tmp.name)
    if gnu_time:
        wrapped = [gnu_time, "-f", "%e %M %U %S %x", "-o", str(stats_path), *cmd]
    else:
        wrapped = [sys.executable, "-c", WRAPPER, str(stats_path), *cmd]
    killed, polled_peak = None, 0
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            wrapped, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while True:
                try:
                    proc.wait(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    pass
                rss = _group_rss_kib(proc.pid)
                polled_peak = max(polled_peak, rss)
                if time.perf_counter() - t0 > timeout:
                    killed = f"time limit {timeout:.0f} s"
                elif mem_limit_kib and rss > mem_limit_kib:
                    killed = f"memory limit {mem_limit_kib / 2**20:.1f} GiB"
                if killed:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
        except BaseException:  # Ctrl-C or anything else: never leave the run behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {
        "step": label,
        "rc": proc.returncode,
        "wall_s": wall,
        "rss_kib": polled_peak or None,
        "killed": killed,
    }
    text = stats_path.read_text().strip() if stats_path.exists() else ""
    stats_path.unlink(missing_ok=True)
    if killed is None and text:
        if gnu_time:
            last = text.splitlines()[
                -1
            ].split()  # GNU time prepends "Command exited with non-zero status" lines
            result.update(
                wall_s=float(last[0]),
                rss_kib=int(last[1]),
                user_s=float(last[2]),
                sys_s=float(last[3]),
                rc=int(last[4]),
            )
        else:
            data = json.loads(text)
            result.update(
                wall_s=data["wall"],
                rss_kib=data["maxrss_kib"],
                user_s=data["user"],
                sys_s=data["sys"],
                rc=data["rc"],
            )
        result["wall_outer_s"] = wall
    result["log"] = str(log)
    return result


def log_tail(path: str, lines: int = 12) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- environment ----------------------------------------------------------------------------


def mlcicd_entry() -> str:
    for candidate in (Path(sys.executable).with_name("mlcicd"), REPO / ".venv" / "bin" / "mlcicd"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("mlcicd")
    if not found:
        raise SystemExit("mlcicd is not installed: run `make install` and use .venv/bin/python")
    return found


def versions_of(python: str, names: tuple[str, ...]) -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))"
    )
    try:
        return json.loads(
            subprocess.run([python, "-c", code, *names], capture_output=True, text=True, check=True).stdout
        )
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError):
        return dict.fromkeys(names)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "gnu_time": bool(shutil.which("time", path="/usr/bin:/bin")),
    }


def code_state() -> str:
    """git HEAD (+dirty) and a digest of the mlcicd sources, so a result names the code it measured."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((REPO / "scripts" / "mlcicd").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        head = ""
    return f"git {head or '?'}, mlcicd sources sha256:{digest.hexdigest()[:12]}"


def evidently_python(venv: Path, pyarrow_version: str, say: Callable[[str], None]) -> tuple[str | None, str]:
    """The venv's python, creating or updating the venv when its requirements changed; (None, why) when pip fails."""
    python = venv / "bin" / "python"
    requirements = [*EVIDENTLY_REQUIREMENTS, f"pyarrow=={pyarrow_version}"]
    marker = venv / ".mlcicd-bench-requirements"
    wanted = "\n".join(requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return str(python), "reused"
    say(f"setting up {venv} with {' '.join(requirements)} (first use: a minute or two)")
    steps = [] if python.exists() else [[sys.executable, "-m", "venv", str(venv)]]
    steps.append([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements])
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`{shlex.join(step)}` failed: {exc}"
        if done.returncode != 0:
            lines = [
                line
                for line in (done.stderr + done.stdout).splitlines()
                if line.strip() and "is ignored" not in line
            ]
            return None, f"`{shlex.join(step)}` exited {done.returncode}: {' / '.join(lines[-3:])}"
    marker.write_text(wanted)
    return str(python), "installed"


# --- the benchmark --------------------------------------------------------------------------

PEERS = ("floor", "pandas", "profile", "mlcicd", "drift", "evidently", "imports")
LABELS = {
    "floor": "read floor: pyarrow iter_batches of current.parquet",
    "pandas": "read + batch.to_pandas() (info)",
    "profile": "ml-cicd `mlcicd profile` of reference.parquet (one-time)",
    "mlcicd": "**ml-cicd `mlcicd validate-data` (schema + drift)**",
    "drift": "ml-cicd `mlcicd validate-data` without `--schema` (info: drift only)",
    "evidently": "Evidently `DataDriftPreset` (read both files + report)",
    "imports": "ml-cicd imports only (info: start-up cost)",
}
EXPECTED_RC = {"mlcicd": {1}, "drift": {1}}  # the planted drift fails the step; everything else exits 0


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    rss = [r["rss_kib"] / 1024 for r in runs if r.get("rss_kib")]
    cpu = [r["user_s"] + r["sys_s"] for r in runs if "user_s" in r]
    return {
        "n": len(runs),
        "wall_s": {"median": statistics.median(walls), "min": min(walls), "max": max(walls)},
        "rss_mib": {"median": statistics.median(rss), "max": max(rss)} if rss else None,
        "cpu_s_median": statistics.median(cpu) if cpu else None,
    }


def bench_size(
    rows: int,
    repeats: int,
    out: Path,
    mlcicd: str,
    evidently: str | None,
    skip: dict[str, str],
    args: Any,
    say: Callable[[str], None],
) -> dict[str, Any]:
    d = out / str(rows)
    d.mkdir(parents=True, exist_ok=True)
    ref, cur, schema, profile = (
        d / "reference.parquet",
        d / "current.parquet",
        d / "schema.yaml",
        d / "reference.json",
    )
    t0 = time.perf_counter()
    states = [write_dataset(ref, rows, "reference", False), write_dataset(cur, rows, "current", True)]
    write_schema(schema)
    data = {
        "rows": rows,
        "columns": len(NUMERIC) + len(CATEGORIES),
        "files": states,
        "generate_s": round(time.perf_counter() - t0, 2),
        "reference_mib": round(ref.stat().st_size / 2**20, 1),
        "current_mib": round(cur.stat().st_size / 2**20, 1),
        "dir": str(d),
    }
    say(
        f"{rows:,} rows: data {'/'.join(states)} in {data['generate_s']:.1f}s ({data['reference_mib']} + {data['current_mib']} MiB)"
    )
    for stale in (profile, d / "mlcicd-reports" / "validate-data.json", d / "evidently-phases.json"):
        stale.unlink(missing_ok=True)  # left by an earlier run: never read as this run's
    warm_cache(ref, cur)
    # Bytecode caching on, as in an installed toolkit (and as benchmarks/startup.py runs its children): with
    # PYTHONDONTWRITEBYTECODE set, every run would recompile each module edited since its .pyc was written.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_", "MLCICD_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(DO_NOT_TRACK="1", EVIDENTLY_DISABLE_TELEMETRY="1")
    # relative paths: every run has the size's directory as its working directory
    cmds = {
        "floor": [sys.executable, "-c", FLOOR, cur.name, str(BATCH_ROWS)],
        "pandas": [sys.executable, "-c", TO_PANDAS, cur.name, str(BATCH_ROWS)],
        "profile": [mlcicd, "profile", "--data", ref.name, "--schema", schema.name, "--out", profile.name],
        "mlcicd": [
            mlcicd,
            "validate-data",
            "--data",
            cur.name,
            "--schema",
            schema.name,
            "--reference",
            profile.name,
        ],
        "drift": [
            mlcicd,
            "validate-data",
            "--data",
            cur.name,
            "--reference",
            profile.name,
            "--report",
            "mlcicd-reports/drift-only.json",
        ],
        "evidently": [
            evidently or "evidently-venv-missing",
            "-c",
            EVIDENTLY,
            ref.name,
            cur.name,
            "evidently-phases.json",
            ",".join(NUMERIC_NAMES),
            ",".join(CATEGORICAL_NAMES),
        ],
        "imports": [sys.executable, "-c", IMPORTS],
    }
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PEERS}
    status: dict[str, str] = {p: "ok" for p in PEERS}
    notes: dict[str, str] = {}
    phases: list[dict[str, Any]] = []
    for p in PEERS:
        if p in skip:
            status[p] = skip[p]
    mem_limit_kib = int(args.mem_limit_gib * 2**20)
    for rep in range(repeats):
        for p in PEERS:
            if status[p] != "ok" or p in notes:
                continue
            if p in ("mlcicd", "drift") and not profile.exists():
                status[p] = "not run: no reference profile (mlcicd profile failed)"
                continue
            r = measure(p, cmds[p], d, d / f"{p}-{rep}.log", args.timeout, mem_limit_kib, env)
            shown = f"rc={r['rc']} wall={r['wall_s']:.2f}s peak RSS={(r['rss_kib'] or 0) / 1024:.0f} MiB"
            say(
                f"  {rows:,} rows, repeat {rep + 1}/{repeats}: {p:<9} {shown}"
                + (f" KILLED ({r['killed']})" if r["killed"] else "")
            )
            if r["killed"]:
                status[p] = (
                    f"did not finish: {r['killed']} (peak RSS seen {(r['rss_kib'] or 0) / 2**20:.1f} GiB)"
                )
                runs[p].append(r)
                continue
            if r["rc"] not in EXPECTED_RC.get(p, {0}):
                status[p] = f"failed: exit {r['rc']}: {log_tail(r['log'], 3).replace(chr(10), ' / ')[-300:]}"
                say(f"  log tail:\n{log_tail(r['log'])}")
                runs[p].append(r)
                continue
            runs[p].append(r)
            if p == "evidently":
                try:
                    phases.append(json.loads((d / "evidently-phases.json").read_text()))
                except (OSError, json.JSONDecodeError):
                    pass
            if r["wall_s"] > LONG_RUN_S and rep + 1 < repeats:
                notes[p] = f"a run took {r['wall_s']:.0f} s, over {LONG_RUN_S:.0f} s: no further repeats"
    peers: dict[str, Any] = {}
    for p in PEERS:
        good = [r for r in runs[p] if not r["killed"] and r["rc"] in EXPECTED_RC.get(p, {0})]
        peers[p] = {
            "label": LABELS[p],
            "cmd": shlex.join(cmds[p])
            if p in ("profile", "mlcicd", "drift")
            else f"{cmds[p][0]} -c <{p.upper()} script> {shlex.join(cmds[p][3:])}",
            "status": status[p],
            "note": notes.get(p),
            "runs": [
                {k: r.get(k) for k in ("rc", "wall_s", "rss_kib", "user_s", "sys_s", "killed", "log")}
                for r in runs[p]
            ],
            **(summarize(good) if good and status[p] == "ok" else {}),
        }
    result: dict[str, Any] = {"data": data, "repeats": repeats, "peers": peers}
    if phases:
        result["evidently_phases_median_s"] = {
            k: statistics.median(ph[k] for ph in phases) for k in ("import_s", "read_s", "run_s", "dict_s")
        }
        result["evidently_api"] = phases[0].get("api")
        result["evidently_drifted"] = phases[-1].get("drifted")
        result["evidently_drifted_count"] = phases[-1].get("drifted_count")
    try:
        report = json.loads((d / "mlcicd-reports" / "validate-data.json").read_text())
        result["mlcicd_drifted"] = report["drift"]["drifted"] if report.get("drift") else None
        result["mlcicd_schema_failed"] = report["schema"]["failed"] if report.get("schema") else None
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        pass
    result["ratios"], result["targets"] = ratios_and_targets(peers, args.timeout, args.mem_limit_gib * 1024)
    return result


def _median(peers: dict[str, Any], p: str, what: str) -> float | None:
    s = peers[p]
    if what == "wall":
        return s["wall_s"]["median"] if "wall_s" in s else None
    return s["rss_mib"]["median"] if s.get("rss_mib") else None


def ratios_and_targets(
    peers: dict[str, Any], timeout: float, mem_limit_mib: float
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Ratios of the medians, and each target met / missed. Where Evidently was killed at this size, its
    limit gives a bound (it took longer than the time limit, or needed more than the memory limit)."""
    ml_t, ml_m = _median(peers, "mlcicd", "wall"), _median(peers, "mlcicd", "rss")
    ev_t, ev_m = _median(peers, "evidently", "wall"), _median(peers, "evidently", "rss")
    fl_t = _median(peers, "floor", "wall")
    ratios = {
        "evidently_time_over_mlcicd_time": ev_t / ml_t if ev_t and ml_t else None,
        "mlcicd_rss_over_evidently_rss": ml_m / ev_m if ml_m and ev_m else None,
        "mlcicd_time_over_read_time": ml_t / fl_t if ml_t and fl_t else None,
    }
    ev_status = peers["evidently"]["status"]
    bounds: dict[str, tuple[str, float] | None] = {"speed": None, "memory": None, "read": None}
    if ev_status.startswith("did not finish: time limit") and ml_t:
        bounds["speed"] = (">", timeout / ml_t)
    if ev_status.startswith("did not finish: memory limit") and ml_m:
        bounds["memory"] = ("<", ml_m / mem_limit_mib)
    needs = {"speed": ("evidently", "mlcicd"), "memory": ("evidently", "mlcicd"), "read": ("mlcicd", "floor")}
    targets = {}
    for key, ratio_key, ok in (
        ("speed", "evidently_time_over_mlcicd_time", lambda v: v >= TARGETS["speed"]),
        ("memory", "mlcicd_rss_over_evidently_rss", lambda v: v <= TARGETS["memory"]),
        ("read", "mlcicd_time_over_read_time", lambda v: v <= TARGETS["read"]),
    ):
        value = ratios[ratio_key]
        if value is not None:
            targets[key] = {"value": value, "met": bool(ok(value))}
            continue
        missing = [p for p in needs[key] if "wall_s" not in peers[p]]
        why = "; ".join(f"{p}: {peers[p]['status']}" for p in missing) or "not measured"
        short = "; ".join(f"{p}: {peers[p]['status'].split(':')[0]}" for p in missing) or "not measured"
        bound = bounds[key]
        if bound is not None:
            ratios[ratio_key + "_bound"] = f"{bound[0]} {bound[1]:.4g}"
            targets[key] = {
                "value": None,
                "bound": bound,
                "met": True if ok(bound[1]) else None,
                "why": why,
                "short": short,
            }
        else:
            targets[key] = {"value": None, "met": None, "why": why, "short": short}
    return ratios, targets


def target_list(per_size: dict[str, Any]) -> list[dict[str, Any]]:
    """[{"target", "measured", "met"}] per size and target (met None: not measured or undecided)."""
    out = []
    for rows, res in per_size.items():
        for key, (name, target, fmt) in TARGET_TEXT.items():
            t = res["targets"][key]
            if t["value"] is not None:
                measured = fmt(t["value"])
            elif t.get("bound"):
                measured = f"{t['bound'][0]} {fmt(t['bound'][1])} (Evidently did not finish)"
            else:
                measured = f"not measured ({t['short']})"
            out.append(
                {"target": f"{int(rows):,} rows: {name} {target}", "measured": measured, "met": t["met"]}
            )
    return out


# --- markdown -------------------------------------------------------------------------------

TARGET_TEXT = {
    "speed": ("Evidently time / ml-cicd time", "≥ 10×", lambda v: f"{v:.1f}×"),
    "memory": ("ml-cicd peak RSS / Evidently peak RSS", "≤ ⅓ (0.33)", lambda v: f"{v:.2f}"),
    "read": ("ml-cicd time / read time", "≤ 3×", lambda v: f"{v:.1f}×"),
}


def verdict(target: dict[str, Any], fmt: Callable[[float], str], short: bool = False) -> str:
    if target["value"] is None and target.get("bound"):
        sign, value = target["bound"]
        figure = f"{sign} {fmt(value)}, Evidently did not finish"
        return f"met ({figure})" if target["met"] else f"undecided ({figure})"
    if target["value"] is None:
        return f"not measured ({target['short' if short else 'why']})"
    return f"met ({fmt(target['value'])})" if target["met"] else f"**MISSED** ({fmt(target['value'])})"


def render(results: dict[str, Any], command: str) -> str:
    m, v = results["machine"], results["versions"]
    ev = results["versions_evidently"]
    sizes = results["sizes"]
    lines = [
        "Wall time and peak memory (RSS) of `mlcicd validate-data` (pandera schema + drift against a reference profile) "
        "on Parquet data of 20 columns, against Evidently's `DataDriftPreset` on the same reference/current pair, and "
        "against just reading the file with pyarrow (the floor). Each run is a fresh child process timed from start to "
        "exit, interpreter start and imports included (bytecode caching on: PYTHONDONTWRITEBYTECODE is removed for the "
        "children, as in an installed toolkit); the peers run interleaved, repeat by repeat, on the same files "
        "(read once beforehand, so every peer finds them in the page cache). Tables give the median wall time (min–max) "
        "and the median peak RSS over the repeats; ratios are of the medians.",
        "",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Python {m['python']}, {m['os']}. "
        f"Load average {results['loadavg']['start'][0]:.2f} at the start, {results['loadavg']['end'][0]:.2f} at the end"
        + (
            " (**the machine was busy: wall times are inflated**)"
            if max(results["loadavg"]["start"][0], results["loadavg"]["end"][0]) > 0.5
            else ""
        )
        + "."
        + (
            " **The mlcicd sources changed during the run: rerun for clean numbers.**"
            if results["sources_changed_during_run"]
            else ""
        ),
        f"- **Versions**: ml-cicd {v.get('mlcicd')} ({results['code']}), pandas {v.get('pandas')}, pyarrow {v.get('pyarrow')}, "
        f"pandera {v.get('pandera')}, scipy {v.get('scipy')}, numpy {v.get('numpy')}; "
        + (
            f"Evidently {ev.get('evidently')} with pandas {ev.get('pandas')}, pyarrow {ev.get('pyarrow')}, scipy {ev.get('scipy')}, "
            f"numpy {ev.get('numpy')}, scikit-learn {ev.get('scikit-learn')} in `benchmarks/.venv-evidently` "
            "(Evidently 0.7.23 does not import with pandas 3: it imports `pandas.core.dtypes.common.infer_dtype_from_object`)."
            if ev.get("evidently")
            else f"Evidently not run ({results['evidently_state']})."
        ),
        "- **Data**: reference and current Parquet files (snappy, row groups of 1,000,000 rows), 10 float64 columns "
        f"({', '.join(c[2] for c in NUMERIC if c[1] == 'float64')}), 5 int64 columns ({', '.join(c[2] for c in NUMERIC if c[1] == 'int64')}) "
        f"and 5 string columns of {', '.join(map(str, CATEGORIES.values()))} Zipf-distributed categories. current.parquet comes from the same "
        f"generator with another seed and a planted shift: `{SHIFT_NUMERIC[0]}` mean +{SHIFT_NUMERIC[1]} std and `{SHIFT_CAT[0]}` "
        f"{SHIFT_CAT[1] * 100:.0f} points of share moved between categories. The schema checks every column's dtype and range "
        "(`in_range` / `isin`); these are built-in checks, which validate-data runs on the Arrow batches and hands to pandera "
        "only for a batch that may fail (none here: the data passes the schema).",
        "- **Evidently** gets the column types declared (`DataDefinition` with the 15 numeric and 5 categorical columns) and its "
        "defaults otherwise (for more than 1,000 rows: normed Wasserstein distance for numeric columns with more than 5 values, "
        "Jensen–Shannon distance otherwise, threshold 0.1); the timed script reads both files with `pandas.read_parquet`, runs "
        "the report and serializes its result (`snapshot.dict()` + `json.dumps`), so the work is done.",
        f"- **Limits**: a run is killed after {results['config']['timeout_s']:.0f} s or above {results['config']['mem_limit_gib']:.1f} GiB "
        "RSS (did not finish); a peer that did not finish is not run at larger sizes. After a run longer than "
        f"{LONG_RUN_S:.0f} s that peer gets no further repeats at that size (its n says so).",
        "",
        "### Commands",
        "",
        "```sh",
        command,
        "# per size, in <out>/<rows>/, each under /usr/bin/time -f '%e %M %U %S %x':",
        f'python -c "$FLOOR" current.parquet {BATCH_ROWS}   # pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size)',
        "mlcicd profile --data reference.parquet --schema schema.yaml --out reference.json",
        "mlcicd validate-data --data current.parquet --schema schema.yaml --reference reference.json   # exit 1: drift found",
        'benchmarks/.venv-evidently/bin/python -c "$EVIDENTLY" reference.parquet current.parquet phases.json <numeric> <categorical>',
        "mlcicd validate-data --data current.parquet --reference reference.json --report mlcicd-reports/drift-only.json   # info",
        f'python -c "$TO_PANDAS" current.parquet {BATCH_ROWS}   # info: the floor plus batch.to_pandas()',
        'python -c "$IMPORTS"   # info: import the modules validate-data loads on data that passes the schema',
        "```",
        "",
        "The `$FLOOR`, `$TO_PANDAS`, `$EVIDENTLY` and `$IMPORTS` scripts are the constants of those names in "
        "`benchmarks/validate_speed.py`; `python` is the project's `.venv/bin/python`. "
        "The heart of `$EVIDENTLY`:",
        "",
        "```python",
        "reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)",
        "definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)",
        "snapshot = Report(metrics=[DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),",
        "                                                   Dataset.from_pandas(reference, data_definition=definition))",
        "json.dumps(snapshot.dict(), default=str)",
        "```",
        "",
        "### Summary",
        "",
        "| rows × 20 columns | ml-cicd validate-data s | Evidently s | read floor s | ml-cicd profile s (one-time) | "
        + " | ".join(f"{TARGET_TEXT[k][0]}, target {TARGET_TEXT[k][1]}" for k in TARGET_TEXT)
        + " |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def wall_cell(s: dict[str, Any]) -> str:
        return f"{s['wall_s']['median']:.2f}" if "wall_s" in s else s["status"].split(":")[0]

    for rows, res in sizes.items():
        p = res["peers"]
        cells = [
            f"{int(rows):,}",
            wall_cell(p["mlcicd"]),
            wall_cell(p["evidently"]),
            wall_cell(p["floor"]),
            wall_cell(p["profile"]),
        ]
        cells += [verdict(res["targets"][k], TARGET_TEXT[k][2], short=True) for k in TARGET_TEXT]
        lines.append("| " + " | ".join(cells) + " |")
    for rows, res in sizes.items():
        data = res["data"]
        lines += [
            "",
            f"### {int(rows):,} rows × 20 columns",
            "",
            f"reference.parquet {data['reference_mib']} MiB, current.parquet {data['current_mib']} MiB; {res['repeats']} repeat(s).",
            "",
            "| run | exit | n | wall s, median | wall s, min–max | peak RSS MiB, median (max) | CPU s, median |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in PEERS:
            s = res["peers"][p]
            rcs = sorted({r["rc"] for r in s["runs"] if r["rc"] is not None})
            rc = "/".join(map(str, rcs)) or "–"
            if "wall_s" in s:
                w = s["wall_s"]
                mem = f"{s['rss_mib']['median']:.0f} ({s['rss_mib']['max']:.0f})" if s.get("rss_mib") else "?"
                cpu = f"{s['cpu_s_median']:.2f}" if s.get("cpu_s_median") is not None else "?"
                n = f"{s['n']}" + (f" ({s['note']})" if s.get("note") else "")
                lines.append(
                    f"| {s['label']} | {rc} | {n} | {w['median']:.2f} | {w['min']:.2f}–{w['max']:.2f} | {mem} | {cpu} |"
                )
            else:
                lines.append(f"| {s['label']} | {rc} | {len(s['runs'])} | {s['status']} | – | – | – |")
        lines += ["", "| comparison | measured | target | result |", "|---|---|---|---|"]
        for k, (name, target, fmt) in TARGET_TEXT.items():
            t = res["targets"][k]
            if t["value"] is not None:
                measured = fmt(t["value"])
            else:
                measured = f"{t['bound'][0]} {fmt(t['bound'][1])} (bound)" if t.get("bound") else "–"
            lines.append(f"| {name} | {measured} | {target} | {verdict(t, fmt)} |")
        found = []
        if res.get("mlcicd_drifted") is not None:
            found.append(
                f"ml-cicd flagged {', '.join(f'`{c}`' for c in res['mlcicd_drifted']) or 'nothing'} (exit 1 = drift found)"
            )
        if res.get("evidently_drifted") is not None:
            found.append(
                f"Evidently flagged {len(res['evidently_drifted'])} of 20 column(s) (its DriftedColumnsCount: {res.get('evidently_drifted_count')}): "
                + (", ".join(f"`{c}`" for c in res["evidently_drifted"]) or "none")
            )
        if found:
            lines += ["", "Drift found: " + "; ".join(found) + "."]
        if "evidently_phases_median_s" in res:
            ph = res["evidently_phases_median_s"]
            lines += [
                "",
                f"Inside the Evidently run (medians): imports {ph['import_s']:.2f} s, reading both files into pandas "
                f"{ph['read_s']:.2f} s, the report {ph['run_s']:.2f} s, serializing its result {ph['dict_s']:.2f} s.",
            ]
    return "\n".join(lines) + "\n"


# --- entry points ---------------------------------------------------------------------------


def run(
    quick: bool = False,
    repeats: int | None = None,
    sizes: list[int] | None = None,
    out: str | Path | None = None,
    timeout: float = RUN_TIMEOUT_S,
    mem_limit_gib: float | None = None,
    peers: list[str] | None = None,
    mlcicd: str | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the benchmark; {"title", "markdown", "results"}. quick: 100,000 rows, 2 repeats (about 1-2 minutes).

    peers: a subset of PEERS to run (the profile always runs: validate-data needs it); mlcicd: the
    entry point to time (default: the `mlcicd` beside this Python, e.g. .venv/bin/mlcicd)."""

    def say(msg: str) -> None:
        if verbose:
            print(msg, file=sys.stderr, flush=True)

    sizes = list(sizes or (QUICK_SIZES if quick else FULL_SIZES))
    repeats = repeats or (QUICK_REPEATS if quick else FULL_REPEATS)
    out_dir = Path(out or DEFAULT_OUT).resolve()
    if out_dir == REPO or REPO in out_dir.parents:
        raise SystemExit("--out must be outside the repository (the data is large)")
    out_dir.mkdir(parents=True, exist_ok=True)
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    args = argparse.Namespace(
        timeout=timeout, mem_limit_gib=mem_limit_gib or round(min(16.0, 0.7 * ram_gib), 1)
    )
    mlcicd = mlcicd or mlcicd_entry()
    chosen = set(peers or PEERS)
    if chosen & {"mlcicd", "drift"}:
        chosen.add("profile")
    main_versions = versions_of(sys.executable, ("mlcicd", "pandas", "pyarrow", "pandera", "scipy", "numpy"))
    if "evidently" in chosen:
        evidently, ev_state = evidently_python(
            EVIDENTLY_VENV, main_versions.get("pyarrow") or pa.__version__, say
        )
    else:
        evidently, ev_state = None, "not used"
    ev_versions = (
        versions_of(evidently, ("evidently", "pandas", "pyarrow", "scipy", "numpy", "scikit-learn"))
        if evidently
        else dict.fromkeys(("evidently", "pandas", "pyarrow", "scipy", "numpy", "scikit-learn"))
    )
    code = code_state()
    load_start = os.getloadavg()
    say(f"code: {code}; load average {load_start[0]:.2f}; Evidently venv {ev_state}")
    if load_start[0] > 0.5:
        say("WARNING: the machine is busy; wall times will be inflated")
    skip: dict[str, str] = {p: "not run: not among --peers" for p in PEERS if p not in chosen}
    if "evidently" in chosen and not evidently:
        skip["evidently"] = f"not run: {ev_state}"
    per_size: dict[str, Any] = {}
    for rows in sizes:
        res = bench_size(rows, repeats, out_dir, mlcicd, evidently, skip, args, say)
        per_size[str(rows)] = res
        for p, s in res["peers"].items():
            if s["status"].startswith("did not finish") and p not in skip:
                skip[p] = f"not run: {s['status']} at {rows:,} rows"
    load_end = os.getloadavg()
    code_end = code_state()
    sources_changed = code_end.rsplit(" ", 1)[-1] != code.rsplit(" ", 1)[-1]
    if sources_changed:
        say(f"WARNING: the mlcicd sources changed during the run (now {code_end}); rerun for clean numbers")
    results = {
        "benchmark": "validate_speed",
        "generator": f"{GENERATOR}:{SEED}",
        "machine": machine(),
        "versions": main_versions,
        "versions_evidently": ev_versions,
        "evidently_requirements": [*EVIDENTLY_REQUIREMENTS, f"pyarrow=={main_versions.get('pyarrow')}"],
        "evidently_state": ev_state,
        "code": code,
        "code_at_end": code_end,
        "sources_changed_during_run": sources_changed,
        "loadavg": {"start": list(load_start), "end": list(load_end)},
        "config": {
            "quick": quick,
            "sizes": sizes,
            "repeats": repeats,
            "peers": [p for p in PEERS if p in chosen],
            "mlcicd": mlcicd,
            "timeout_s": timeout,
            "mem_limit_gib": args.mem_limit_gib,
            "long_run_s": LONG_RUN_S,
            "batch_rows": BATCH_ROWS,
            "out": str(out_dir),
        },
        "thresholds": {
            "evidently_time_over_mlcicd_time_min": TARGETS["speed"],
            "mlcicd_rss_over_evidently_rss_max": TARGETS["memory"],
            "mlcicd_time_over_read_time_max": TARGETS["read"],
        },
        "targets": target_list(per_size),  # the list benchmarks/run.py summarizes
        "sizes": per_size,
    }
    parts = ["python benchmarks/validate_speed.py"]
    if quick:
        parts.append("--quick")
    if sizes != list(QUICK_SIZES if quick else FULL_SIZES):
        parts.append("--sizes " + ",".join(map(str, sizes)))
    if repeats != (QUICK_REPEATS if quick else FULL_REPEATS):
        parts.append(f"--repeats {repeats}")
    if peers:
        parts.append("--peers " + ",".join(p for p in PEERS if p in chosen))
    markdown = render(results, " ".join(parts) + "   # this report (.venv/bin/python)")
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out_dir / "report.md").write_text(markdown)
    return {"title": TITLE, "markdown": markdown, "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{', '.join(f'{s:,}' for s in QUICK_SIZES)} rows, {QUICK_REPEATS} repeats",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"runs per peer and size (default {FULL_REPEATS}, --quick {QUICK_REPEATS})",
    )
    parser.add_argument(
        "--sizes", help=f"comma-separated row counts (default {','.join(map(str, FULL_SIZES))})"
    )
    parser.add_argument(
        "--out", help=f"scratch directory for data, logs, results.json and report.md (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=RUN_TIMEOUT_S,
        help="seconds per run before it is killed (default %(default)s)",
    )
    parser.add_argument(
        "--mem-limit-gib",
        type=float,
        help="peak RSS per run before it is killed (default 70 %% of RAM, at most 16)",
    )
    parser.add_argument(
        "--peers", help=f"comma-separated subset of {','.join(PEERS)} (default all; profile always runs)"
    )
    parser.add_argument(
        "--mlcicd", help="the mlcicd entry point to time (default: the one beside this Python)"
    )
    args = parser.parse_args()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()] if args.peers else None
    unknown = sorted(set(peers or ()) - set(PEERS))
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    try:
        sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else None
    except ValueError:
        parser.error(f"--sizes: expected comma-separated row counts, got {args.sizes!r}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    result = run(
        quick=args.quick,
        repeats=args.repeats,
        sizes=sizes,
        out=args.out,
        timeout=args.timeout,
        mem_limit_gib=args.mem_limit_gib,
        peers=peers,
        mlcicd=args.mlcicd,
    )
    print(result["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
