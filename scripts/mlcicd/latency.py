"""Loading a model for the quality gates, timing it against a baseline, and probing it with bad input.

A PyTorch model is loaded as its native module (on the GPU when there is one) so that latency is the
model's, not the pyfunc wrapper's DataFrame round trip; anything else goes through pyfunc. Latency of
the candidate and the baseline is measured interleaved in one process, so a regression ratio compares
the two models under the same load, clocks and thermal state rather than two moments of a shared CI
runner. torch and MLflow are imported only when needed: a pyfunc model must load on a runner without torch.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlcicd import model_input
from mlcicd.errors import UsageError

Flavor = Literal["pytorch", "pyfunc"]
Task = Literal["classification", "regression"]
Missing = Literal["reject", "handle"]

MIN_ITERATIONS_FOR_P99 = 100
"""Below this many timings p99 is (close to) the maximum of a handful of samples, not a tail estimate."""
PROBE_ROWS = 32
"""Rows in the all-zeros, extreme-value and missing-value probes: enough to cover row-dependent code paths, cheap on any model."""
EXTREME = model_input.EXTREME
PERCENTILE_METHOD = "linear"
REGISTERED_MODEL_META = "registered_model_meta"
"""Written by MLflow beside a model it downloads (mlflow.store.artifact.models_artifact_repo); not part of the model."""


# --- loading --------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0].rstrip('.') if lines else ''}".rstrip(": ")


def resolve_device(device: str | None) -> str:
    """`cuda:0` when torch sees a GPU and no device was asked for, else `cpu`; a requested CUDA device must exist."""
    import torch

    if device is None:
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise UsageError("bad device", f"`{device}` is not a torch device ({_first_line(exc)}). Use `cpu`, `cuda` or `cuda:N`.") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("no GPU", f"device `{device}` was asked for but torch {torch.__version__} sees no CUDA device. Use `cpu`.")
        index = 0 if parsed.index is None else parsed.index
        if index >= torch.cuda.device_count():
            raise UsageError("no such GPU", f"device `{device}`: only {torch.cuda.device_count()} CUDA device(s) are visible.")
        return f"cuda:{index}"
    return str(parsed)


class LoadedModel:
    """A model ready to predict on numpy rows, whatever its flavour.

    `torch_module` is the native module for the pytorch flavour (None for pyfunc): the latency
    harness times its forward pass directly with CUDA events when it sits on a GPU. `device` is where
    inputs are sent; a pyfunc model is reported as `cpu` because its inputs stay in host memory,
    whatever it does inside.
    """

    def __init__(
        self, flavor: Flavor, device: str, *, torch_module: Any | None = None, pyfunc_model: Any | None = None, uri: str = ""
    ) -> None:
        if (torch_module is None) == (pyfunc_model is None):
            raise ValueError("exactly one of torch_module and pyfunc_model is needed")
        self.flavor: Flavor = flavor
        self.device = device
        self.torch_module = torch_module
        self.pyfunc_model = pyfunc_model
        self.uri = uri

    def __repr__(self) -> str:
        return f"LoadedModel({self.uri or '<in memory>'}, flavor={self.flavor}, device={self.device})"

    def to_tensor(self, x: Any) -> Any:
        """float32 tensor of the rows (an array, or a DataFrame of numeric columns, by position) on the model's
        device (the pytorch flavour only)."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(model_input.numeric_array(x))).to(self.device)

    def forward(self, tensor: Any) -> Any:
        """The module's raw output for a tensor already on its device, without gradients."""
        import torch

        with torch.inference_mode():
            return self.torch_module(tensor)

    def predict(self, x: Any) -> np.ndarray:
        """Outputs for rows: a numpy array (positional) or a DataFrame (named columns, each with its dtype)."""
        return self.predict_ready(self.ready(x))

    def ready(self, x: Any) -> Any:
        """The rows in the form this model is called with: positional numbers for a torch module, a pyfunc's
        signature's columns and types. The latency timer converts once, then times only the model."""
        if self.torch_module is not None:
            return np.ascontiguousarray(model_input.numeric_array(x))
        schema = _input_schema(self.pyfunc_model)
        if model_input.is_frame(x):
            return model_input.frame_input(schema, x)
        return model_input.array_input(schema, x) if schema is not None else x

    def predict_ready(self, x: Any) -> np.ndarray:
        """Outputs for rows already made `ready`."""
        if self.torch_module is not None:
            return _torch_output_to_numpy(self.forward(self.to_tensor(x)))
        try:
            return np.asarray(self.pyfunc_model.predict(x))
        except Exception as first:  # no signature says what it wants: a DataFrame is pyfunc's other usual input
            if _input_schema(self.pyfunc_model) is not None or model_input.is_frame(x):
                raise
            import pandas as pd

            try:
                return np.asarray(self.pyfunc_model.predict(pd.DataFrame(x)))
            except Exception:  # noqa: BLE001 - the first error is the one that says what is wrong
                raise first from None


def _torch_output_to_numpy(out: Any) -> np.ndarray:
    import torch

    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        out = out[0]  # (logits, aux, …): the gates judge the primary output
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model returned {type(out).__name__}, not a tensor")
    if out.dtype in (torch.bfloat16, torch.float16):
        out = out.float()  # numpy has no bfloat16, and half precision is widened so statistics on it do not sum in 16 bits
    return out.detach().cpu().numpy()


def _input_schema(model: Any) -> Any | None:
    metadata = getattr(model, "metadata", None)
    return metadata.get_input_schema() if metadata is not None else None


def load_model(model_uri: str, device: str | None = None) -> LoadedModel:
    """Load `model_uri` natively when it has the pytorch flavour (onto `device`, default `cuda:0` when there
    is a GPU), through pyfunc otherwise.

    Raises UsageError "model not found" when the URI does not resolve to an MLflow model, and
    "model does not load" when it does but cannot be loaded here (a missing package or model class).
    """
    import mlflow

    info = _model_info(model_uri)
    if "pytorch" in info.flavors:
        try:
            import torch  # noqa: F401 - only to say clearly that it is missing
        except ImportError:
            raise UsageError(
                "torch not available",
                f"{model_uri} is a PyTorch model, but torch is not importable by the toolkit's Python; set `extras: torch` on "
                "the setup action or use a runner Python with torch.",
            ) from None
        target = resolve_device(device)
        try:
            module = _load_torch_module(model_uri, info.flavors["pytorch"], target)
        except Exception as exc:  # unpickling runs arbitrary code: any error means "cannot load here"
            raise _not_loadable(model_uri, exc) from exc
        try:
            module.eval()
        except NotImplementedError:
            # torch.export modules refuse eval(): dropout and batch-norm were frozen in the mode the model
            # was in when it was logged. A model logged in train mode fails the determinism check.
            pass
        return LoadedModel("pytorch", target, torch_module=module, uri=model_uri)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # same: a pyfunc's loader is user code
        raise _not_loadable(model_uri, exc) from exc
    return LoadedModel("pyfunc", "cpu", pyfunc_model=model, uri=model_uri)


def _load_torch_module(model_uri: str, flavor: dict[str, Any], device: str) -> Any:
    """The native module on `device`.

    A pickled module is loaded straight onto the device (map_location). A pt2 (torch.export) model,
    MLflow 3's default format, ignores map_location and loads on the CPU, and `.to()` is not enough for
    it: the graph has the device of every tensor it creates (torch.ones(…), arange, …) baked in. So the
    archive MLflow has just loaded (and checked) is loaded once more as an ExportedProgram and moved
    with torch.export's move_to_device_pass, which rewrites those devices too.
    """
    import mlflow
    import torch

    # Downloaded to a directory that is kept, as MLflow does itself: a pickled model's `code_paths`
    # stay on sys.path and may be imported lazily after loading.
    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    with warnings.catch_warnings():
        # A TorchScript model (train-gpu logs a handed-over one in pickle format) goes through torch.load,
        # which dispatches it to torch.jit.load correctly and warns that it did; and torch.jit.load warns
        # that TorchScript is deprecated. Both are for the model's author, not for a gate that loads it.
        warnings.filterwarnings("ignore", message="'torch.load' received a zip file that looks like a TorchScript archive")
        warnings.filterwarnings("ignore", message="`torch.jit.load` is deprecated", category=DeprecationWarning)
        module = mlflow.pytorch.load_model(local, map_location=device)
    exported = os.path.join(local, str(flavor.get("model_data", "data")), "model.pt2")  # mlflow.pytorch's pt2 file name
    if torch.device(device).type == "cpu" or not os.path.isfile(exported):
        return module.to(device)
    try:
        from torch.export.passes import move_to_device_pass
    except ImportError:  # older torch: parameters and buffers move, tensors the graph creates may not
        return module.to(device)
    return move_to_device_pass(torch.export.load(exported), device).module()


def _model_info(model_uri: str) -> Any:
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    if not model_uri.strip():
        raise UsageError(
            "model not found", "the model URI is empty. Pass e.g. `models:/m-…`, `models:/<name>/<version>` or `runs:/<id>/model`."
        )
    try:
        return get_model_info(model_uri)
    except (MlflowException, OSError) as exc:
        # Unknown run, logged model, registered name, version or alias, a path without MLmodel, an
        # unsupported scheme: all mean the URI names no model in this tracking store.
        raise UsageError(
            "model not found",
            f"{model_uri}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}. "
            "Check the URI (e.g. `models:/m-…`, `models:/<name>/<version>`, `models:/<name>@<alias>`, `runs:/<id>/model`) "
            "and that MLFLOW_TRACKING_URI points at the store that holds it.",
        ) from None
    except Exception as exc:  # noqa: BLE001 - yaml, KeyError, TypeError: an MLmodel file that is not MLflow's
        raise UsageError(
            "model metadata unreadable",
            f"{model_uri}: its MLmodel file does not parse ({_first_line(exc)}). The artifact is damaged or was not written "
            "by MLflow: log the model again.",
        ) from None


def _not_loadable(model_uri: str, exc: BaseException) -> UsageError:
    return UsageError(
        "model does not load",
        f"{model_uri}: {_first_line(exc)}. Install the packages it was logged with (its requirements.txt), and for a "
        "pickled PyTorch model make the module's class importable (e.g. log it with `code_paths=[...]`).",
    )


# --- latency --------------------------------------------------------------------------------


def make_batch(sample: Any, batch_size: int) -> Any:
    """`batch_size` rows of `sample` (an array or a DataFrame), repeating its rows in order when it has fewer."""
    return model_input.take(sample, np.arange(batch_size) % len(sample))


def _check_sample(sample: Any, what: str = "sample") -> Any:
    if model_input.is_frame(sample):
        if sample.shape[0] == 0 or sample.shape[1] == 0:
            raise UsageError(f"bad {what}", f"the {what} must have at least one row and one column, got shape {sample.shape}.")
        return sample
    sample = np.asarray(sample)
    if sample.ndim != 2 or sample.shape[0] == 0 or sample.shape[1] == 0:
        raise UsageError(f"bad {what}", f"the {what} must be a 2-D array of at least one row and one feature, got shape {sample.shape}.")
    return sample


def _uses_cuda(model: LoadedModel) -> bool:
    return model.torch_module is not None and model.device.startswith("cuda")


Timer = Callable[[], float]


def _cuda_event_timer(model: LoadedModel, batch: Any) -> Timer:
    """Milliseconds of one forward pass on the GPU's own clock: the input is staged on the device first, so
    host-to-device copies and Python's clock granularity are not in the number."""
    import torch

    tensor = model.to_tensor(batch)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def once() -> float:
        torch.cuda.synchronize(model.device)
        start.record()
        model.forward(tensor)
        end.record()
        torch.cuda.synchronize(model.device)
        return float(start.elapsed_time(end))

    return once


def _wall_clock_timer(model: LoadedModel, batch: Any) -> Timer:
    """Milliseconds of one `predict` call on rows already in the model's input form (numpy out), on perf_counter_ns.
    A CUDA module's output is copied to the host inside predict, which waits for its kernels, so asynchronous work
    is counted."""

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
        notes.append(f"only {len(values)} iterations: p99 needs at least {MIN_ITERATIONS_FOR_P99} to be more than the slowest few calls")
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
    sample = _check_sample(sample)
    sizes = list(dict.fromkeys(int(b) for b in batch_sizes))
    if not sizes or any(b < 1 for b in sizes):
        raise UsageError("bad batch sizes", f"batch sizes must be whole numbers >= 1, got {list(batch_sizes)}.")
    if iterations < 1 or warmup < 0:
        raise UsageError("bad iteration count", f"iterations must be >= 1 and warmup >= 0, got {iterations} and {warmup}.")
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
    results: Mapping[str, Mapping[int, Mapping[str, Any]]], candidate: str, baseline: str, batch_size: int, stat: str = "p99_ms"
) -> float:
    """candidate / baseline for one statistic: 1.25 means the candidate is 25 % slower."""
    try:
        cand, base = results[candidate][batch_size], results[baseline][batch_size]
        cand_value, base_value = float(cand[stat]), float(base[stat])
    except KeyError as exc:
        raise UsageError(
            "no such latency result", f"{exc} is not in the results (models {sorted(results)}, batch size {batch_size}, stat {stat})."
        ) from None
    if cand.get("timer") != base.get("timer"):
        raise UsageError("incomparable latencies", f"{candidate} was timed with {cand.get('timer')}, {baseline} with {base.get('timer')}.")
    if base_value <= 0:
        return 1.0 if cand_value <= 0 else float("inf")
    return cand_value / base_value


# --- size -----------------------------------------------------------------------------------


def model_size_bytes(model_uri: str) -> int:
    """Total bytes of the model's artifacts (weights, MLmodel, environment files, examples).

    Uses the artifact repository's listing, which carries file sizes, so a multi-gigabyte model is not
    downloaded just to be measured; when a store's listing leaves a size out, the model is downloaded
    to a temporary directory and its files are summed instead. MLflow's `registered_model_meta` (the
    name and version it writes next to a model it downloads, into a local store too) is not counted:
    it is bookkeeping, and counting it would make the size depend on how the URI was spelled.
    """
    _model_info(model_uri)  # the same "model not found" as load_model, before any listing
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        total = _listed_size(get_artifact_repository(model_uri), "")
    except Exception:  # noqa: BLE001 - a store that cannot list (or lists oddly) can still download
        total = None
    if total:
        return total
    return _downloaded_size(model_uri)


def _listed_size(repo: Any, path: str) -> int | None:
    total = 0
    for entry in repo.list_artifacts(path):
        if not path and entry.path == REGISTERED_MODEL_META:
            continue
        if entry.is_dir:
            sub = _listed_size(repo, entry.path)
            if sub is None:
                return None
            total += sub
        elif entry.file_size is None:
            return None
        else:
            total += int(entry.file_size)
    return total


def _downloaded_size(model_uri: str) -> int:
    import mlflow

    with tempfile.TemporaryDirectory(prefix="mlcicd-size-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp)
        files = (os.path.join(root, f) for root, _, names in os.walk(local) for f in names)
        return sum(os.path.getsize(f) for f in files if f != os.path.join(local, REGISTERED_MODEL_META))


# --- robustness -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _non_finite(out: np.ndarray) -> int:
    """How many output values are NaN or ±inf (missing, for non-numeric outputs such as string labels)."""
    out = np.asarray(out)
    if out.dtype.kind in "biu":
        return 0
    if out.dtype.kind in "fc":
        return int(np.count_nonzero(~np.isfinite(out)))
    import pandas as pd

    return int(np.count_nonzero(pd.isna(out)))


def predicted_labels(out: np.ndarray) -> np.ndarray:
    """Class labels from a classifier's output: argmax of a 2-D score matrix, the values themselves when
    they are integer-like, else a single probability column thresholded at 0.5."""
    out = np.asarray(out)
    if out.ndim == 2 and out.shape[1] > 1:
        return np.argmax(out, axis=1)
    flat = out.reshape(len(out), -1)[:, 0] if out.ndim > 1 else out
    if flat.dtype.kind not in "fc":
        return flat  # integer or string labels already
    if np.all(np.isfinite(flat)) and np.allclose(flat, np.round(flat)):
        return np.round(flat).astype(np.int64)
    return (flat >= 0.5).astype(np.int64)


def _finite_check(name: str, model: LoadedModel, x: Any, what: str) -> Check:
    try:
        out = model.predict(x)
    except Exception as exc:  # noqa: BLE001 - a model that crashes on this input fails the check, the gate goes on
        return Check(name, False, f"{what}: the model raised {_first_line(exc)}")
    bad = _non_finite(out)
    if bad:
        return Check(name, False, f"{what}: {bad} of {np.asarray(out).size} outputs are NaN or infinite")
    return Check(name, True, f"{what}: all {np.asarray(out).size} outputs finite")


def check_zeros(model: LoadedModel, sample: Any) -> Check:
    width = max(model_input.numeric_width(sample), 1)
    x = model_input.with_numbers(sample, np.zeros((min(len(sample), PROBE_ROWS), width)))
    return _finite_check("zeros input", model, x, f"{len(x)} rows of all-zero numeric features")


def check_extremes(model: LoadedModel, sample: Any) -> Check:
    width = max(model_input.numeric_width(sample), 1)
    alternating = np.where(np.arange(width) % 2 == 0, EXTREME, -EXTREME)
    x = model_input.with_numbers(sample, np.stack([np.full(width, EXTREME), np.full(width, -EXTREME), alternating, -alternating]))
    return _finite_check("extreme values", model, x, f"rows of ±{EXTREME:g}")


def check_determinism(model: LoadedModel, sample: Any) -> Check:
    name = "determinism"
    try:
        first, second = np.asarray(model.predict(sample)), np.asarray(model.predict(sample))
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"the model raised {_first_line(exc)}")
    if first.shape != second.shape:
        return Check(name, False, f"output shapes differ between two calls: {first.shape} vs {second.shape}")
    how = ""
    if first.dtype.kind in "biuf" and second.dtype.kind in "biuf":
        same = bool(np.allclose(first, second, equal_nan=True))
        if not same:
            diffs = np.abs(first.astype(float) - second.astype(float))
            finite = diffs[np.isfinite(diffs)]
            how = f" (largest difference {finite.max():.3g})" if finite.size and finite.max() > 0 else " (NaN or inf in one call only)"
    else:
        same = bool(np.array_equal(first, second))
    if same:
        return Check(name, True, f"the same {len(sample)} rows twice gave the same outputs")
    return Check(name, False, f"the same {len(sample)} rows twice gave different outputs{how}")


def check_class_collapse(model: LoadedModel, sample: Any, y_true: np.ndarray) -> Check:
    name = "class collapse"
    try:
        labels = predicted_labels(model.predict(sample))
    except Exception as exc:  # noqa: BLE001
        return Check(name, False, f"the model raised {_first_line(exc)}")
    classes = np.unique(np.asarray(y_true))
    seen = np.unique(labels)
    numeric_classes, numeric_seen = classes.dtype.kind in "biuf", seen.dtype.kind in "biuf"
    if numeric_classes and numeric_seen:
        never = [c.item() for c in classes if not np.any(np.isclose(seen.astype(float), float(c)))]
    elif not numeric_classes and not numeric_seen:
        never = sorted(set(map(str, classes)) - set(map(str, seen)))
    else:
        # string labels in y_true against class indices from the model: only the count can be compared
        never = [] if len(seen) >= len(classes) else [f"{len(classes) - len(seen)} of {classes.tolist()}"]
    shown = seen.tolist()[:10]
    if never:
        return Check(
            name, False, f"on {len(sample)} rows the model predicts only {shown}; never {never} (y_true has {classes.tolist()[:10]})"
        )
    return Check(name, True, f"the predictions cover all {len(classes)} classes of y_true")


def check_missing(model: LoadedModel, sample: Any, missing: Missing) -> Check:
    """`handle`: NaN cells must give finite outputs. `reject`: raising is a clear rejection and passes, and so
    do finite outputs; NaN outputs fail, because a caller would get NaN scores without any error."""
    name = "missing values"
    x, cells = model_input.with_missing(sample, PROBE_ROWS)
    what = f"{cells} rows with a NaN cell"
    try:
        out = model.predict(x)
    except Exception as exc:  # noqa: BLE001
        if missing == "reject":
            return Check(name, True, f"{what}: rejected with {_first_line(exc)}")
        return Check(name, False, f"{what}: the model raised {_first_line(exc)} (missing=handle: it must impute)")
    bad = _non_finite(out)
    if bad:
        hint = "neither rejected nor handled" if missing == "reject" else "not handled"
        return Check(name, False, f"{what}: {bad} of {np.asarray(out).size} outputs are NaN or infinite ({hint})")
    return Check(name, True, f"{what}: all outputs finite")


PROBES = ("zeros input", "extreme values", "determinism", "class collapse", "missing values")
"""The robustness probes, by the name their checks carry."""


def check_robustness(
    model: LoadedModel,
    sample: Any,
    y_true: np.ndarray | None,
    task: Task,
    missing: Missing = "reject",
    probes: Sequence[str] = PROBES,
) -> list[Check]:
    """Zeros input, ±1e6 inputs, determinism, missing values and (for a classifier with labels) class
    collapse, each when named in `probes`. A model error fails its check and never escapes; only bad
    arguments raise UsageError. `sample` is an array or a DataFrame: the probes change its numeric
    features and keep its other columns.

    The class-collapse check needs `y_true` (the classes the sample contains) and is left out without it.
    """
    if task not in ("classification", "regression"):
        raise UsageError("bad task", f"task must be `classification` or `regression`, got `{task}`.")
    if missing not in ("reject", "handle"):
        raise UsageError("bad missing-value policy", f"missing must be `reject` or `handle`, got `{missing}`.")
    sample = _check_sample(sample)
    checks = []
    if "zeros input" in probes:
        checks.append(check_zeros(model, sample))
    if "extreme values" in probes:
        checks.append(check_extremes(model, sample))
    if "determinism" in probes:
        checks.append(check_determinism(model, sample))
    if task == "classification" and y_true is not None and "class collapse" in probes:
        if len(np.asarray(y_true)) == 0:
            raise UsageError("bad labels", "y_true is empty: pass the labels of the sample rows, or None to skip the class-collapse check.")
        checks.append(check_class_collapse(model, sample, y_true))
    if "missing values" in probes:
        checks.append(check_missing(model, sample, missing))
    return checks
