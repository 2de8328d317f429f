#!/usr/bin/env python3
"""validate-data at scale: wide tables against Evidently and the read floor, and Spark local against the default engine.

    python benchmarks/validate_scale.py [--quick] [--wide 100000x500,1000000x1000] [--spark 1000000,10000000]
                                        [--peers floor,mlcicd,evidently,spark] [--out DIR] [--timeout S] [--mem-limit-gib G]

Extends benchmarks/validate_speed.py (its measure(), read floor, Evidently script and venv): each run is a
fresh child process under GNU time, interleaved peer by peer on the same files, read once beforehand.

Wide tables (issue 20's layout): N rows x C columns, 80 % float64 normal(0, 1) and 20 % strings of 10
equally likely categories, Parquet (snappy) in row groups of 65,536 rows; current.parquet comes from
another seed with 5 float columns shifted by 0.2 sd and 2 string columns with 10 points of share moved.
Timed: the read floor (validate_speed's FLOOR: pyarrow iter_batches, batches discarded), `mlcicd
validate-data` (dtype schema of every column + drift against a reference profile built beforehand, not
timed here: it is benchmarks/validate_speed.py's `profile` row) and Evidently's DataDriftPreset.

Spark: validate_speed's 20-column data at 1e6 and 1e7 rows, `mlcicd validate-data` with the default
engine against `--engine spark` (local[*], the JVM start included), same schema and reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import validate_speed as vs  # noqa: E402 - the harness this extends

TITLE = "validate-data at scale: wide tables and Spark"
WIDE_ROW_GROUP = 65_536
CATEGORY_VALUES = [f"v{i}" for i in range(10)]
SHIFTED_FLOATS, FLOAT_SHIFT = 5, 0.2
SHIFTED_STRINGS, SHARE_MOVED = 2, 0.10
FULL_WIDE = ((100_000, 500), (1_000_000, 1_000))
QUICK_WIDE = ((100_000, 500),)
FULL_SPARK = (1_000_000, 10_000_000)
QUICK_SPARK = (1_000_000,)


def wide_names(columns: int) -> tuple[list[str], list[str]]:
    floats = columns * 4 // 5
    return [f"f{i:04d}" for i in range(floats)], [f"s{i:04d}" for i in range(columns - floats)]


def write_wide(path: Path, rows: int, columns: int, shifted: bool) -> str:
    floats, strings = wide_names(columns)
    schema = pa.schema(
        [pa.field(n, pa.float64(), nullable=False) for n in floats]
        + [pa.field(n, pa.string(), nullable=False) for n in strings]
    )
    marker = f"validate_scale/wide/v1:{rows}:{columns}:{shifted}".encode()
    schema = schema.with_metadata({b"bench-generator": marker})
    if path.exists() and (pq.read_schema(path).metadata or {}).get(b"bench-generator") == marker:
        return "reused"
    dictionary = pa.array(CATEGORY_VALUES)
    shares = np.full(10, 0.1)
    moved = shares.copy()
    moved[0] += SHARE_MOVED
    moved[-1] -= SHARE_MOVED
    tmp = path.with_suffix(".parquet.tmp")
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for index, start in enumerate(range(0, rows, WIDE_ROW_GROUP)):
            n = min(WIDE_ROW_GROUP, rows - start)
            rng = np.random.default_rng([vs.SEED, int(shifted), index])
            arrays = []
            for i in range(len(floats)):
                values = rng.standard_normal(n)
                arrays.append(pa.array(values + FLOAT_SHIFT if shifted and i < SHIFTED_FLOATS else values))
            for i in range(len(strings)):
                codes = rng.choice(10, n, p=moved if shifted and i < SHIFTED_STRINGS else shares).astype(
                    np.int32
                )
                arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).dictionary_decode())
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=WIDE_ROW_GROUP)
    tmp.replace(path)
    return "written"


def write_wide_schema(path: Path, columns: int) -> None:
    floats, strings = wide_names(columns)
    lines = ["columns:"] + [f"  {n}:\n    dtype: float64\n    nullable: false" for n in floats]
    lines += [f"  {n}:\n    dtype: string[pyarrow]\n    nullable: false" for n in strings]
    path.write_text("\n".join(lines) + "\n")


def run_peers(
    d: Path, cmds: dict[str, list[str]], peers: list[str], repeats: int, args: Any, say: Any
) -> dict[str, Any]:
    env = {
        k: v
        for k, v in vs.os.environ.items()
        if not k.startswith(("GITHUB_", "INPUT_", "RUNNER_", "MLCICD_"))
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(DO_NOT_TRACK="1", EVIDENTLY_DISABLE_TELEMETRY="1")
    out: dict[str, Any] = {p: {"runs": [], "status": "ok"} for p in peers}
    for rep in range(repeats):
        for p in peers:
            if out[p]["status"] != "ok" or (
                p == "evidently" and rep > 0
            ):  # Evidently: one run (minutes each)
                continue
            r = vs.measure(
                p, cmds[p], d, d / f"{p}-{rep}.log", args.timeout, int(args.mem_limit_gib * 2**20), env
            )
            say(
                f"  {d.name} {p:<9} rc={r['rc']} wall={r['wall_s']:.2f}s RSS={(r['rss_kib'] or 0) / 1024:.0f} MiB cpu={r.get('user_s', 0) + r.get('sys_s', 0):.1f}s"
            )
            out[p]["runs"].append(
                {k: r.get(k) for k in ("rc", "wall_s", "rss_kib", "user_s", "sys_s", "killed")}
            )
            if r["killed"]:
                out[p]["status"] = f"did not finish: {r['killed']}"
            elif r["rc"] not in vs.EXPECTED_RC.get("mlcicd" if p in ("mlcicd", "spark") else p, {0}):
                out[p]["status"] = f"failed: exit {r['rc']}: {vs.log_tail(r['log'], 3)}"
    for p in peers:
        good = [r for r in out[p]["runs"] if not r["killed"]]
        if good and out[p]["status"] == "ok":
            out[p]["wall_s"] = statistics.median(r["wall_s"] for r in good)
            out[p]["cpu_s"] = statistics.median(r["user_s"] + r["sys_s"] for r in good)
            out[p]["rss_mib"] = statistics.median(r["rss_kib"] for r in good) / 1024
    return out


def run(quick: bool = False, argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=quick)
    parser.add_argument("--wide", default="")
    parser.add_argument("--spark", default="")
    parser.add_argument("--peers", default="floor,mlcicd,evidently,spark")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=vs.DEFAULT_OUT.with_name("mlcicd-validate-scale"))
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--mem-limit-gib", type=float, default=16.0)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args(argv if argv is not None else [])
    wide = [tuple(int(x) for x in s.split("x")) for s in args.wide.split(",") if s and s != "none"] or (
        [] if args.wide == "none" else QUICK_WIDE if args.quick else FULL_WIDE
    )
    spark_sizes = [int(s) for s in args.spark.split(",") if s] or (QUICK_SPARK if args.quick else FULL_SPARK)
    peers = args.peers.split(",")

    def say(message: str) -> None:
        print(f"[validate_scale] {message}", file=sys.stderr, flush=True)

    mlcicd = vs.mlcicd_entry()
    evidently = None
    if "evidently" in peers:
        evidently, state = vs.evidently_python(vs.EVIDENTLY_VENV, pa.__version__, say)
        say(f"Evidently venv: {state}")
    results: dict[str, Any] = {
        "machine": vs.machine(),
        "load_start": vs.os.getloadavg(),
        "wide": {},
        "spark": {},
    }
    skip_evidently = False
    for rows, columns in wide:
        d = args.out / f"wide-{rows}x{columns}"
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        states = [
            write_wide(d / "reference.parquet", rows, columns, False),
            write_wide(d / "current.parquet", rows, columns, True),
        ]
        write_wide_schema(d / "schema.yaml", columns)
        say(f"{rows:,} x {columns}: data {'/'.join(states)} in {time.perf_counter() - t0:.0f}s")
        profile = vs.measure(
            "profile",
            [mlcicd, "profile", "--data", "reference.parquet", "--out", "reference.json"],
            d,
            d / "profile.log",
            args.timeout,
            0,
            dict(vs.os.environ),
        )
        say(f"  profile wall={profile['wall_s']:.1f}s RSS={(profile['rss_kib'] or 0) / 1024:.0f} MiB")
        vs.warm_cache(d / "current.parquet")
        floats, strings = wide_names(columns)
        cmds = {
            "floor": [sys.executable, "-c", vs.FLOOR, "current.parquet", str(vs.BATCH_ROWS)],
            "mlcicd": [
                mlcicd,
                "validate-data",
                "--data",
                "current.parquet",
                "--schema",
                "schema.yaml",
                "--reference",
                "reference.json",
            ],
            "evidently": [
                evidently or "evidently-venv-missing",
                "-c",
                vs.EVIDENTLY,
                "reference.parquet",
                "current.parquet",
                "evidently-phases.json",
                ",".join(floats),
                ",".join(strings),
            ],
        }
        wanted = [
            p
            for p in ("floor", "mlcicd", "evidently")
            if p in peers and not (p == "evidently" and (skip_evidently or not evidently))
        ]
        res = run_peers(d, cmds, wanted, args.repeats, args, say)
        if "evidently" in res and res["evidently"]["status"] != "ok":
            skip_evidently = True  # as validate_speed: not run at larger sizes
        try:
            report = json.loads((d / "mlcicd-reports" / "validate-data.json").read_text())
            res["mlcicd_drifted"] = report["drift"]["drifted"]
        except (OSError, KeyError, json.JSONDecodeError, TypeError):
            pass
        res["profile"] = {"wall_s": profile["wall_s"], "rss_mib": (profile["rss_kib"] or 0) / 1024}
        res["file_mib"] = (d / "current.parquet").stat().st_size / 2**20
        results["wide"][f"{rows}x{columns}"] = res
    if "spark" in peers:
        for rows in spark_sizes:
            d = args.out / f"spark-{rows}"
            d.mkdir(parents=True, exist_ok=True)
            states = [
                vs.write_dataset(d / "reference.parquet", rows, "reference", False),
                vs.write_dataset(d / "current.parquet", rows, "current", True),
            ]
            vs.write_schema(d / "schema.yaml")
            say(f"{rows:,} x 20: data {'/'.join(states)}")
            vs.measure(
                "profile",
                [
                    mlcicd,
                    "profile",
                    "--data",
                    "reference.parquet",
                    "--schema",
                    "schema.yaml",
                    "--out",
                    "reference.json",
                ],
                d,
                d / "profile.log",
                args.timeout,
                0,
                dict(vs.os.environ),
            )
            vs.warm_cache(d / "current.parquet")
            base = [
                mlcicd,
                "validate-data",
                "--data",
                "current.parquet",
                "--schema",
                "schema.yaml",
                "--reference",
                "reference.json",
            ]
            cmds = {
                "mlcicd": base,
                "spark": [*base, "--engine", "spark", "--report", "mlcicd-reports/spark.json"],
            }
            res = run_peers(d, cmds, ["mlcicd", "spark"], max(1, args.repeats - 1), args, say)
            try:
                res["spark_drifted"] = json.loads((d / "mlcicd-reports" / "spark.json").read_text())["drift"][
                    "drifted"
                ]
                res["mlcicd_drifted"] = json.loads((d / "mlcicd-reports" / "validate-data.json").read_text())[
                    "drift"
                ]["drifted"]
            except (OSError, KeyError, json.JSONDecodeError, TypeError):
                pass
            results["spark"][str(rows)] = res
    results["load_end"] = vs.os.getloadavg()
    outcome = {"title": TITLE, "markdown": render(results), "results": results}
    if args.json:
        args.json.write_text(json.dumps(outcome, indent=1, default=str))
    return outcome


def _cell(peer: dict[str, Any]) -> str:
    if peer.get("status") != "ok":
        return peer.get("status", "not run")
    return f"{peer['wall_s']:.2f} s (CPU {peer['cpu_s']:.1f} s), {peer['rss_mib']:,.0f} MiB"


def render(results: dict[str, Any]) -> str:
    load = results["load_start"]
    lines = [
        "Wall time (CPU time = user + sys) and peak RSS of fresh child processes, medians over the repeats (Evidently: one run). "
        f"Load average at the start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, at the end {results['load_end'][0]:.1f} "
        "(2 cores: above 2, wall times are inflated; CPU times less so).",
        "",
        "### Wide tables",
        "",
        "| rows × columns | read floor | ml-cicd validate-data | Evidently DataDriftPreset | ml-cicd / floor (wall) | ml-cicd / floor (CPU) | ml-cicd RSS / Evidently RSS | drift found |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = []
    for size, res in results["wide"].items():
        floor, ours, ev = (
            res.get("floor", {}),
            res.get("mlcicd", {}),
            res.get("evidently", {"status": "not run"}),
        )
        ratio = ours["wall_s"] / floor["wall_s"] if "wall_s" in ours and "wall_s" in floor else None
        cpu_ratio = ours["cpu_s"] / floor["cpu_s"] if "cpu_s" in ours and "cpu_s" in floor else None
        mem = ours["rss_mib"] / ev["rss_mib"] if "rss_mib" in ours and "rss_mib" in ev else None
        drifted = ", ".join(res.get("mlcicd_drifted") or [])
        lines.append(
            f"| {size} | {_cell(floor)} | {_cell(ours)} | {_cell(ev)} | {f'{ratio:.2f}×' if ratio else '–'} | "
            f"{f'{cpu_ratio:.2f}×' if cpu_ratio else '–'} | {f'{mem:.2f}' if mem else '–'} | {drifted} |"
        )
        if ratio:
            targets.append(
                {
                    "target": f"{size}: ml-cicd time / read floor ≤ 2×",
                    "measured": f"{ratio:.2f}× wall, {cpu_ratio:.2f}× CPU",
                    "met": ratio <= 2,
                }
            )
        if mem:
            targets.append(
                {
                    "target": f"{size}: ml-cicd peak RSS / Evidently's ≤ ⅓",
                    "measured": f"{mem:.2f}",
                    "met": mem <= 1 / 3,
                }
            )
        if "rss_mib" in ours and size.endswith("x1000"):
            targets.append(
                {
                    "target": f"{size}: ml-cicd peak RSS ≤ 2 GB",
                    "measured": f"{ours['rss_mib'] / 1024:.2f} GiB",
                    "met": ours["rss_mib"] <= 2 * 1000**3 / 2**20,
                }
            )
    if results["spark"]:
        lines += [
            "",
            "### Spark local against the default engine (20 columns)",
            "",
            "| rows × 20 columns | default engine (arrow) | `--engine spark` (local[*], JVM start included) | spark / arrow (wall) | drift found (arrow / spark) |",
            "|---|---|---|---|---|",
        ]
        for rows, res in results["spark"].items():
            a, s = res.get("mlcicd", {}), res.get("spark", {})
            ratio = s["wall_s"] / a["wall_s"] if "wall_s" in s and "wall_s" in a else None
            lines.append(
                f"| {int(rows):,} | {_cell(a)} | {_cell(s)} | {f'{ratio:.1f}×' if ratio else '–'} | "
                f"{', '.join(res.get('mlcicd_drifted') or [])} / {', '.join(res.get('spark_drifted') or [])} |"
            )
            if ratio:
                targets.append(
                    {
                        "target": f"Spark local vs default engine at {int(rows):,} × 20 (measure)",
                        "measured": f"{ratio:.1f}× slower",
                        "met": None,
                    }
                )
    results["targets"] = targets
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    outcome = run(argv=sys.argv[1:])
    print(outcome["markdown"])
    print(json.dumps(outcome["results"], indent=1, default=str), file=sys.stderr)
