#!/usr/bin/env python3
"""GPU latency harness: check-gates' p99 against a bare CUDA-event loop on the same model.

    python benchmarks/gpu_latency.py [--quick]

Two small PyTorch MLPs are logged to a temporary embedded MLflow store (SQLite, artifacts in the same
temporary directory) and loaded back with ml-cicd's own `mlcicd.model_loading.load_model`, as check-gates
loads a candidate. Each model is then timed at batch sizes 1 and 32 twice, with the same warm-up and
iteration counts that check-gates uses by default:

- **check-gates**: `mlcicd.latency.measure_latency`, the function the latency gate calls (CUDA events
  around the forward pass on a GPU; perf_counter around the whole numpy-in/numpy-out `predict` on CPU);
- **bare loop**: the loaded module called directly on a tensor already on the device, under
  `torch.inference_mode()`, one `torch.cuda.Event(enable_timing=True)` pair around each call and a
  `torch.cuda.synchronize()` after it (on CPU: perf_counter_ns around the call).

The two alternate which goes first in each round (quick: 1 round, full: 5); the table shows the median
over rounds. Without a GPU the section says "not measured" and shows the CPU comparison only as a
sanity check of the harness, clearly labelled: CPU wall-clock numbers are not the GPU measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

TITLE = "GPU latency: check-gates' harness vs a bare CUDA-event loop"
BATCH_SIZES = (1, 32)
MODELS = {
    "small MLP 5→64→64→1 (the example's shape)": (5, 64, 64, 1),
    "wider MLP 256→1024→1024→1024→10": (256, 1024, 1024, 1024, 10),
}
SEED = 7


def check_gates_counts() -> tuple[int, int]:
    """(warm-up, iterations) as check-gates runs them by default, read from the toolkit itself."""
    from mlcicd.latency import measure_latency
    from mlcicd.stages.check_gates import STAGE

    iterations = next(o.default for o in STAGE.options if o.name == "latency-iterations")
    warmup = inspect.signature(measure_latency).parameters["warmup"].default
    return int(warmup), int(iterations)


def build_mlp(dims: tuple[int, ...]):
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims, dims[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


@contextlib.contextmanager
def temporary_store(root: Path):
    """An embedded MLflow store under `root`, for this process only; the previous tracking URI after."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        yield mlflow.create_experiment("gpu-latency-bench", artifact_location=str(root / "artifacts"))
    finally:
        mlflow.set_tracking_uri(previous)


def log_model(experiment_id: str, dims: tuple[int, ...], sample: np.ndarray) -> str:
    import mlflow
    import torch

    model = build_mlp(dims)
    with mlflow.start_run(experiment_id=experiment_id):
        # pip_requirements given: MLflow's requirement inference (a subprocess) would take most of the run.
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            input_example=sample[:5],
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
    return info.model_uri


def bare_timer(module, device: str, batch: np.ndarray) -> Callable[[int, int], list[float]]:
    """(warm-up, iterations) → milliseconds per call of `module(x)` with x already on `device`."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
    on_gpu = device.startswith("cuda")

    def run(warmup: int, iterations: int) -> list[float]:
        with torch.inference_mode():
            for _ in range(warmup):
                module(x)
            if on_gpu:
                torch.cuda.synchronize(device)
                pairs = [
                    (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                    for _ in range(iterations)
                ]
                for start, end in pairs:
                    start.record()
                    module(x)
                    end.record()
                    torch.cuda.synchronize(device)
                return [float(start.elapsed_time(end)) for start, end in pairs]
            timings = []
            for _ in range(iterations):
                t0 = time.perf_counter_ns()
                module(x)
                timings.append((time.perf_counter_ns() - t0) / 1e6)
            return timings

    return run


def percentiles(timings: list[float]) -> dict[str, float]:
    from mlcicd.latency import PERCENTILE_METHOD

    p50, p99 = np.percentile(np.asarray(timings, dtype=float), [50, 99], method=PERCENTILE_METHOD)
    return {"p50_ms": float(p50), "p99_ms": float(p99)}


def environment() -> dict:
    import torch

    gpu = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda_available": gpu,
        "cuda_version": torch.version.cuda,
        "gpu_name": torch.cuda.get_device_name(0) if gpu else None,
        "cpu_threads": torch.get_num_threads(),
    }


def run(quick: bool = False) -> dict:
    from mlcicd.latency import make_batch, measure_latency
    from mlcicd.model_loading import load_model

    env = environment()
    device = "cuda:0" if env["cuda_available"] else "cpu"
    rounds = 1 if quick else 5
    warmup, iterations = check_gates_counts()
    rng = np.random.default_rng(SEED)
    rows: list[dict] = []
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="bench-gpu-latency-") as tmp,
        temporary_store(Path(tmp)) as experiment,
    ):
        for label, dims in MODELS.items():
            sample = rng.normal(size=(64, dims[0])).astype(np.float32)
            uri = log_model(experiment, dims, sample)
            loaded = load_model(uri, device)
            per_batch = {b: {"harness": [], "bare": []} for b in BATCH_SIZES}
            for r in range(rounds):
                print(
                    f"  gpu_latency: {label} on {loaded.device}, round {r + 1}/{rounds}",
                    file=sys.stderr,
                    flush=True,
                )
                order = ("harness", "bare") if r % 2 == 0 else ("bare", "harness")
                for who in order:
                    if who == "harness":
                        measured = measure_latency(
                            {"m": loaded}, sample, BATCH_SIZES, warmup=warmup, iterations=iterations
                        )["m"]
                        for b in BATCH_SIZES:
                            per_batch[b]["harness"].append(
                                {
                                    "p50_ms": measured[b]["p50_ms"],
                                    "p99_ms": measured[b]["p99_ms"],
                                    "timer": measured[b]["timer"],
                                }
                            )
                    else:
                        for b in BATCH_SIZES:
                            timings = bare_timer(loaded.torch_module, loaded.device, make_batch(sample, b))(
                                warmup, iterations
                            )
                            per_batch[b]["bare"].append(percentiles(timings))
            for b in BATCH_SIZES:
                h, bare = per_batch[b]["harness"], per_batch[b]["bare"]
                row = {
                    "model": label,
                    "model_uri": uri,
                    "flavor": loaded.flavor,
                    "module_type": type(loaded.torch_module).__name__,
                    "device": loaded.device,
                    "batch": b,
                    "harness_timer": h[0]["timer"],
                    "bare_timer": "cuda-events" if device.startswith("cuda") else "perf_counter_ns",
                    "harness_p50_ms": float(np.median([x["p50_ms"] for x in h])),
                    "harness_p99_ms": float(np.median([x["p99_ms"] for x in h])),
                    "bare_p50_ms": float(np.median([x["p50_ms"] for x in bare])),
                    "bare_p99_ms": float(np.median([x["p99_ms"] for x in bare])),
                    "rounds": {"harness": h, "bare": bare},
                }
                row["p50_ratio"] = (
                    row["harness_p50_ms"] / row["bare_p50_ms"] if row["bare_p50_ms"] > 0 else None
                )
                row["p99_ratio"] = (
                    row["harness_p99_ms"] / row["bare_p99_ms"] if row["bare_p99_ms"] > 0 else None
                )
                rows.append(row)
    gpu = env["cuda_available"]
    ratios = [r["p99_ratio"] for r in rows if r["p99_ratio"] is not None]
    spread = f"p99 check-gates / bare {min(ratios):.2f}–{max(ratios):.2f}" if ratios else "no ratio"
    results = {
        "measured_on_gpu": gpu,
        "environment": env,
        "warmup": warmup,
        "iterations": iterations,
        "rounds": rounds,
        "batch_sizes": list(BATCH_SIZES),
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "targets": [
            {
                "target": "GPU p99: check-gates' harness vs a bare CUDA-event loop (measure; no threshold)",
                "measured": f"{spread} on {env['gpu_name']}"
                if gpu
                else f"not measured: no GPU (CPU sanity check: {spread})",
                "met": None,
            }
        ],
    }
    return {"title": TITLE, "markdown": render(results), "results": results}


def render(results: dict) -> str:
    env, gpu = results["environment"], results["measured_on_gpu"]
    lines: list[str] = []
    if gpu:
        lines.append(
            f"Measured on **{env['gpu_name']}** (torch {env['torch']}, CUDA {env['cuda_version']}). Both columns are CUDA-event timings "
            "of the forward pass with the input already on the GPU."
        )
    else:
        lines += [
            f"**GPU: not measured: no GPU on this machine (torch {env['torch']}, CUDA unavailable).**",
            "",
            "As a sanity check of the harness only, the same comparison ran on the **CPU with wall-clock timing** "
            f"({env['cpu_threads']} torch threads). check-gates times the whole `predict` there (numpy → tensor → forward → numpy), "
            "the bare loop only the forward pass on a ready tensor, so a ratio above 1 is the conversion cost, not a GPU finding.",
        ]
    lines += [
        "",
        f"Each model is logged to a temporary embedded MLflow store and loaded with `mlcicd.model_loading.load_model` (as check-gates does); "
        f"`check-gates` is `mlcicd.latency.measure_latency`, `bare` is a plain loop over the same loaded module. Both: "
        f"{results['warmup']} warm-up calls, {results['iterations']} timed calls per batch size (check-gates' defaults), "
        f"{results['rounds']} round(s) alternating which goes first, median over rounds. "
        f"Command: `python benchmarks/gpu_latency.py{'' if results['rounds'] > 1 else ' --quick'}`.",
        "",
        "| model | device | batch | check-gates p50 ms | bare p50 ms | check-gates p99 ms | bare p99 ms | p99 ratio | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    where = "" if gpu else " (CPU, wall clock)"
    for r in results["rows"]:
        ratio = f"{r['p99_ratio']:.2f}" if r["p99_ratio"] is not None else "–"
        lines.append(
            f"| {r['model']}{where} | {r['device']} | {r['batch']} | {r['harness_p50_ms']:.4f} | {r['bare_p50_ms']:.4f} | "
            f"{r['harness_p99_ms']:.4f} | {r['bare_p99_ms']:.4f} | {ratio} | no threshold (measure) |"
        )
    lines += [
        "",
        f"Timers: check-gates `{results['rows'][0]['harness_timer']}`, bare `{results['rows'][0]['bare_timer']}`. "
        f"The loaded module is `{results['rows'][0]['module_type']}` (what MLflow's pytorch flavour gives back), the same object in both columns.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round instead of 5")
    args = parser.parse_args()
    print(run(quick=args.quick)["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
