#!/usr/bin/env python3
"""Benchmark `mlcicd profile` / `mlcicd validate-data` on a large Parquet dataset: wall time and peak RSS.

    python benchmarks/large_validate.py [--rows 5000000] [--out /tmp/bench] [--quick]

Writes (deterministically, in row groups, never holding the whole table) under --out:

reference.parquet   N rows x 20 columns: 10 float64, 5 int64, 5 string columns with 3-50 categories
current.parquet     N rows from the same generator with a planted shift in 2 columns
                    (`f00` mean +0.25 std, `c1` category mix moved by ~10 points)
schema.yaml         pandera DataFrameSchema (dtype + in_range/isin checks) written by .to_yaml()

then times, each as its own child process:

  profile          mlcicd profile --data reference.parquet --schema schema.yaml --out reference.json
  validate+schema  mlcicd validate-data --data current.parquet --schema ... --reference ...
  validate drift   the same without --schema (drift only)
  read floor       pyarrow ParquetFile.iter_batches over current.parquet, batches discarded

Peak RSS comes from GNU time (`/usr/bin/time -f %M`) when installed, otherwise from a fresh
wrapper process's getrusage(RUSAGE_CHILDREN).ru_maxrss (a max over that wrapper's children,
of which there is exactly one). Exit codes are recorded; validate-data is expected to exit 1
(the planted drift fails the step under the default `fail-on: both`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SEED = 20240501
GENERATOR = "large_validate/v1"
ROW_GROUP = 1_000_000
FLOATS = [f"f{i:02d}" for i in range(10)]
INTS = [f"i{i}" for i in range(5)]
CATEGORIES = {"c0": 3, "c1": 7, "c2": 12, "c3": 25, "c4": 50}
# float column i ~ Normal(mean, std) (clipped to the schema range); int column i ~ Uniform[0, high)
FLOAT_PARAMS = [(10.0 * i, 1.0 + i) for i in range(10)]
FLOAT_LIMIT = 12.0  # schema range: mean +/- FLOAT_LIMIT std (values are clipped to it)
INT_HIGH = [10, 100, 1_000, 10_000, 1_000_000]
NULL_RATE = {"f09": 0.01}  # one nullable column, to exercise the null-rate path
SHIFT_FLOAT = ("f00", 0.25)  # column, shift in std
SHIFT_CAT = ("c1", 0.10)  # column, share moved from the last to the first category

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
for batch in pq.ParquetFile(sys.argv[1]).iter_batches(batch_size=int(sys.argv[2])):
    rows += batch.num_rows
print(f"read {rows:,} rows")
"""

TO_PANDAS = r"""
import sys
import pyarrow.parquet as pq
rows = 0
for batch in pq.ParquetFile(sys.argv[1]).iter_batches(batch_size=int(sys.argv[2])):
    rows += len(batch.to_pandas())
print(f"read {rows:,} rows into pandas")
"""


IMPORTS = r"""
import sys
import mlcicd.cli, mlcicd.stages.validate_data, mlcicd.profile, mlcicd.drift, mlcicd.data
import pandas, pyarrow.parquet, pyarrow.compute, pandera.pandas, scipy.stats
print("imported")
"""


def code_state() -> str:
    """git HEAD (+dirty) and a digest of the mlcicd sources, so a result names the code it measured."""
    import hashlib

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted((root / "scripts" / "mlcicd").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    except OSError:
        head = "?"
    return f"git {head or '?'}, mlcicd sources sha256:{digest.hexdigest()[:12]}"


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
    for name, (mean, std) in zip(FLOATS, FLOAT_PARAMS, strict=True):
        loc = mean + (SHIFT_FLOAT[1] * std if shifted and name == SHIFT_FLOAT[0] else 0.0)
        values = np.clip(rng.normal(loc, std, n), mean - FLOAT_LIMIT * std, mean + FLOAT_LIMIT * std)
        mask = rng.random(n) < NULL_RATE[name] if name in NULL_RATE else None
        arrays[name] = pa.array(values, type=pa.float64(), mask=mask)
    for name, high in zip(INTS, INT_HIGH, strict=True):
        arrays[name] = pa.array(rng.integers(0, high, n, dtype=np.int64))
    for name, k in CATEGORIES.items():
        codes = rng.choice(k, size=n, p=category_probs(name, k, shifted)).astype(np.int32)
        arrays[name] = pc.take(pa.array(category_names(name, k), type=pa.string()), pa.array(codes))
    return pa.RecordBatch.from_pydict(arrays)


def arrow_schema(tag: str, rows: int) -> pa.Schema:
    fields = [pa.field(n, pa.float64(), nullable=n in NULL_RATE) for n in FLOATS]
    fields += [pa.field(n, pa.int64(), nullable=False) for n in INTS]
    fields += [pa.field(n, pa.string(), nullable=False) for n in CATEGORIES]
    return pa.schema(fields, metadata={"bench-generator": f"{GENERATOR}:{SEED}:{tag}:{rows}"})


def write_dataset(path: Path, rows: int, tag: str, shifted: bool) -> str:
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
            writer.write_table(pa.Table.from_batches([chunk(rng, n, shifted)]).cast(schema), row_group_size=ROW_GROUP)
    tmp.replace(path)
    return "written"


def write_schema(path: Path) -> None:
    import pandera.pandas as pdp

    columns = {}
    for name, (mean, std) in zip(FLOATS, FLOAT_PARAMS, strict=True):
        limit = FLOAT_LIMIT * std
        columns[name] = pdp.Column("float64", pdp.Check.in_range(mean - limit - 1.0, mean + limit + 1.0), nullable=name in NULL_RATE)
    for name, high in zip(INTS, INT_HIGH, strict=True):
        columns[name] = pdp.Column("int64", pdp.Check.in_range(0, high - 1))
    for name, k in CATEGORIES.items():
        columns[name] = pdp.Column("string[pyarrow]", pdp.Check.isin(category_names(name, k)))
    pdp.DataFrameSchema(columns, name="large_validate").to_yaml(path)


def measure(label: str, cmd: list[str], out: Path, timeout: float | None) -> dict:
    """Run `cmd` in its own measuring wrapper; return wall s, peak RSS KiB, exit code."""
    log = out / f"{label.replace(' ', '_').replace('+', '_')}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_"))}
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.NamedTemporaryFile("r", dir=out, suffix=".rusage", delete=False) as tmp:
        stats_path = Path(tmp.name)
    if gnu_time:
        wrapped = [gnu_time, "-f", "%e %M %U %S %x", "-o", str(stats_path), *cmd]
    else:
        wrapped = [sys.executable, "-c", WRAPPER, str(stats_path), *cmd]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        try:
            rc = subprocess.run(wrapped, cwd=out, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = None
    wall = time.perf_counter() - t0
    result = {"step": label, "cmd": shlex.join(cmd), "rc": rc, "wall_s": wall, "rss_kib": None, "log": str(log)}
    text = stats_path.read_text().strip() if stats_path.exists() else ""
    stats_path.unlink(missing_ok=True)
    if text and gnu_time:
        last = text.splitlines()[-1].split()  # GNU time prepends "Command exited with non-zero status" lines
        result.update(wall_s=float(last[0]), rss_kib=int(last[1]), user_s=float(last[2]), sys_s=float(last[3]), rc=int(last[4]))
    elif text:
        data = json.loads(text)
        result.update(wall_s=data["wall"], rss_kib=data["maxrss_kib"], user_s=data["user"], sys_s=data["sys"], rc=data["rc"])
    result["wall_outer_s"] = wall
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--out", default="/tmp/bench")  # noqa: S108 - scratch data, deliberately outside the repo
    parser.add_argument("--quick", action="store_true", help="100,000 rows (overrides --rows)")
    parser.add_argument("--mlcicd", default=str(Path(sys.executable).with_name("mlcicd")), help="the mlcicd entry point")
    parser.add_argument("--batch-rows", type=int, default=1 << 18, help="batch size of the read floor (mlcicd's BATCH_ROWS)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per step before it is killed")
    parser.add_argument("--skip", nargs="*", default=[], help="steps to skip: profile schema drift floor pandas imports")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step: the table shows the median wall time and max RSS")
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    out = Path(args.out).resolve()
    repo = Path(__file__).resolve().parent.parent
    if out == repo or repo in out.parents:
        parser.error("--out must be outside the repository (the data is large)")
    out.mkdir(parents=True, exist_ok=True)

    ref, cur, schema, profile = out / "reference.parquet", out / "current.parquet", out / "schema.yaml", out / "reference.json"
    t0 = time.perf_counter()
    states = [write_dataset(ref, rows, "reference", False), write_dataset(cur, rows, "current", True)]
    write_schema(schema)
    print(
        f"data ({', '.join(states)}) in {time.perf_counter() - t0:.1f}s: {rows:,} rows x 20 columns; "
        f"reference.parquet {ref.stat().st_size / 2**20:.1f} MiB, current.parquet {cur.stat().st_size / 2**20:.1f} MiB",
        flush=True,
    )

    mlcicd = args.mlcicd
    steps = [
        ("profile", "profile", [mlcicd, "profile", "--data", str(ref), "--schema", str(schema), "--out", str(profile)]),
        (
            "schema",
            "validate-data (schema+drift)",
            [
                mlcicd,
                "validate-data",
                "--data",
                str(cur),
                "--schema",
                str(schema),
                "--reference",
                str(profile),
                "--report",
                str(out / "report-schema.json"),
            ],
        ),
        (
            "drift",
            "validate-data (drift only)",
            [mlcicd, "validate-data", "--data", str(cur), "--reference", str(profile), "--report", str(out / "report-drift.json")],
        ),
        ("floor", "read floor (iter_batches)", [sys.executable, "-c", FLOOR, str(cur), str(args.batch_rows)]),
        ("pandas", "read + to_pandas (info)", [sys.executable, "-c", TO_PANDAS, str(cur), str(args.batch_rows)]),
        ("imports", "imports only (info)", [sys.executable, "-c", IMPORTS]),
    ]
    code = code_state()
    load = os.getloadavg()
    print(f"code: {code}; load average {load[0]:.2f}", flush=True)
    if load[0] > 0.5:
        print("WARNING: the machine is busy; wall times will be inflated", flush=True)
    results = []
    for key, label, cmd in steps:
        if key in args.skip:
            continue
        shown = shlex.join(cmd) if cmd[0] == mlcicd else f"{cmd[0]} -c <{key} script> {shlex.join(cmd[3:])}"
        print(f"running {label}: {shown}", flush=True)
        runs = []
        for _ in range(max(1, args.repeat)):
            r = measure(label, cmd, out, args.timeout)
            print(f"  -> rc={r['rc']} wall={r['wall_s']:.2f}s peak RSS={(r['rss_kib'] or 0) / 1024:.0f} MiB", flush=True)
            if r["rc"] not in (0, 1):
                print("  log tail:\n" + "\n".join(Path(r["log"]).read_text().splitlines()[-15:]), flush=True)
            runs.append(r)
        walls = sorted(x["wall_s"] for x in runs)
        rsss = [x["rss_kib"] for x in runs if x["rss_kib"]]
        results.append(
            {
                **runs[0],
                "rc": max((x["rc"] for x in runs if x["rc"] is not None), default=None),
                "wall_s": walls[len(walls) // 2],
                "rss_kib": max(rsss) if rsss else None,
                "runs": [{k: x.get(k) for k in ("rc", "wall_s", "rss_kib", "user_s", "sys_s")} for x in runs],
            }
        )

    if code_state() != code:
        print(f"WARNING: the mlcicd sources changed during the run (now {code_state()}); rerun for clean numbers")
    floor = next((r for r in results if r["step"].startswith("read floor")), None)
    print(
        f"\n{rows:,} rows x 20 columns, Parquet; {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM, Python {platform.python_version()}\n"
    )
    if args.repeat > 1:
        print(f"median wall of {args.repeat} runs, max peak RSS\n")
    load_end = os.getloadavg()
    print(f"code: {code}; load average {load[0]:.2f} at start, {load_end[0]:.2f} at end\n")
    print("| step | exit | wall s | CPU s (user+sys) | peak RSS MiB | wall / floor | RSS / floor |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        rss = r["rss_kib"] / 1024 if r["rss_kib"] else float("nan")
        wf = r["wall_s"] / floor["wall_s"] if floor else float("nan")
        mf = rss / (floor["rss_kib"] / 1024) if floor and floor["rss_kib"] else float("nan")
        cpu = sorted(x.get("user_s", 0) + x.get("sys_s", 0) for x in r.get("runs", [r]))
        print(f"| {r['step']} | {r['rc']} | {r['wall_s']:.2f} | {cpu[len(cpu) // 2]:.2f} | {rss:.0f} | {wf:.1f}x | {mf:.1f}x |")
    if profile.exists():
        print(f"\nprofile size: {profile.stat().st_size:,} bytes ({profile.stat().st_size / 1024:.0f} KiB)")
    (out / "results.json").write_text(json.dumps({"rows": rows, "code": code, "loadavg": [load, load_end], "results": results}, indent=1))
    print(f"results: {out / 'results.json'}; logs: {out}/*.log")
    expected = {"profile": {0}, "validate-data (schema+drift)": {1}, "validate-data (drift only)": {1}}
    bad = [r for r in results if r["rc"] not in expected.get(r["step"], {0})]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
