"""Timing a candidate against its baseline for the latency gates.

Latency of the candidate and the baseline is measured interleaved in one process, so a regression
ratio compares the two models under the same load, clocks and thermal state rather than two moments
of a shared CI runner. torch is imported only when a model sits on a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from mlcicd import model_input
from mlcicd.errors import UsageError
from mlcicd.model_loading import LoadedModel, check_sample

MIN_ITERATIONS_FOR_P99 = 100
"""Below this many timings p99 is (close to) the maximum of a handful of samples, not a tail estimate."""
PERCENTILE_METHOD: Literal["linear"] = "linear"


def make_batch(sample: Any, batch_size: int) -> Any:
    """`batch_size` rows of `sample` (an array or a DataFrame), repeating its rows in order when it has
    fewer."""
    return model_input.take(sample, np.arange(batch_size) % len(sample))


def _uses_cuda(model: LoadedModel) -> bool:
    return model.torch_module is not None and model.device.startswith("cuda")


Timer = Callable[[], float]


def _cuda_event_timer(model: LoadedModel, batch: Any) -> Timer:
    """Milliseconds of one forward pass on the GPU's own clock: the input is staged on the device first, so
    host-to-device copies and Python's clock granularity are not in the number."""
    import torch

    tensor = model.to_tensor(batch)
    start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
    end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]

    def once() -> float:
        torch.cuda.synchronize(model.device)
        start.record()
        model.forward(tensor)
        end.record()
        torch.cuda.synchronize(model.device)
        return float(start.elapsed_time(end))

    return once


def _wall_clock_timer(model: LoadedModel, batch: Any) -> Timer:
    """Milliseconds of one `predict` call on rows already in the model's input form (numpy out), on
    perf_counter_ns. A CUDA module's output is copied to the host inside predict, which waits for its
    kernels, so asynchronous work is counted."""

    ready = model.ready(batch)

    def once() -> float:
        started = time.perf_counter_ns()
        model.predict_ready(ready)
        return (time.perf_counter_ns() - started) / 1e6

    return once


def _interleaved(order: Sequence[str], iteration: int) -> Iterator[str]:
    """Round-robin that rotates who goes first each iteration, so no model always runs on a cache (or clock
    boost) warmed by the other."""
    shift = iteration % len(order)
    yield from (*order[shift:], *order[:shift])


def summarize(timings_ms: Sequence[float], batch_size: int, device: str, timer: str) -> dict[str, Any]:
    values = np.asarray(timings_ms, dtype=float)
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99], method=PERCENTILE_METHOD))
    mean = float(values.mean())
    notes = []
    if len(values) < MIN_ITERATIONS_FOR_P99:
        notes.append(
            f"only {len(values)} iterations: p99 needs at least {MIN_ITERATIONS_FOR_P99} "
            "to be more than the slowest few calls"
        )
    return {
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": float(values.max()),
        "mean_ms": mean,
        "throughput_rows_per_s": batch_size / (mean / 1e3) if mean > 0 else float("inf"),
        "iterations": len(values),
        "device": device,
        "timer": timer,
        "warnings": notes,
    }


def measure_latency(
    models: Mapping[str, LoadedModel],
    sample: np.ndarray,
    batch_sizes: Sequence[int] = (1, 32),
    warmup: int = 10,
    iterations: int = 100,
) -> dict[str, dict[int, dict[str, Any]]]:
    """Per model and batch size: p50/p95/p99/max/mean latency in ms, rows per second, and how it was timed.

    The models run interleaved, one call each per iteration in rotating order, after `warmup` untimed
    interleaved calls (lazy initialisation, allocator growth, cuDNN autotuning). Every model gets the same
    batch. When every model is a torch module on a GPU the forward pass is timed with CUDA events
    (timer `cuda-events`); otherwise every model's whole `predict` is timed with perf_counter_ns
    (`perf_counter`): one timer for all, so the numbers stay comparable. p99 means little below
    100 iterations; each result then carries a warning.
    """
    if not models:
        raise UsageError("no models to time", "measure_latency needs at least one model.")
    sample = check_sample(sample)
    sizes = list(dict.fromkeys(int(b) for b in batch_sizes))
    if not sizes or any(b < 1 for b in sizes):
        raise UsageError(
            "bad batch sizes", f"batch sizes must be whole numbers >= 1, got {list(batch_sizes)}."
        )
    if iterations < 1 or warmup < 0:
        raise UsageError(
            "bad iteration count", f"iterations must be >= 1 and warmup >= 0, got {iterations} and {warmup}."
        )
    on_gpu = all(_uses_cuda(m) for m in models.values())
    timer_name = "cuda-events" if on_gpu else "perf_counter"
    make_timer = _cuda_event_timer if on_gpu else _wall_clock_timer
    order = list(models)
    results: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in order}
    for size in sizes:
        batch = make_batch(sample, size)
        timers = {name: make_timer(models[name], batch) for name in order}
        timings: dict[str, list[float]] = {name: [] for name in order}
        for i in range(warmup):
            for name in _interleaved(order, i):
                timers[name]()
        for i in range(iterations):
            for name in _interleaved(order, i):
                timings[name].append(timers[name]())
        for name in order:
            results[name][size] = summarize(timings[name], size, models[name].device, timer_name)
    return results


def regression_ratio(
    results: Mapping[str, Mapping[int, Mapping[str, Any]]],
    candidate: str,
    baseline: str,
    batch_size: int,
    stat: str = "p99_ms",
) -> float:
    """candidate / baseline for one statistic: 1.25 means the candidate is 25 % slower."""
    try:
        cand, base = results[candidate][batch_size], results[baseline][batch_size]
        cand_value, base_value = float(cand[stat]), float(base[stat])
    except KeyError as exc:
        raise UsageError(
            "no such latency result",
            f"{exc} is not in the results (models {sorted(results)}, batch size {batch_size}, stat {stat}).",
        ) from None
    if cand.get("timer") != base.get("timer"):
        raise UsageError(
            "incomparable latencies",
            f"{candidate} was timed with {cand.get('timer')}, {baseline} with {base.get('timer')}.",
        )
    if base_value <= 0:
        return 1.0 if cand_value <= 0 else float("inf")
    return cand_value / base_value
