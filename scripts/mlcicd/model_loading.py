"""Loading a model for the quality gates, and measuring the size of its artifacts.

A PyTorch model is loaded as its native module (on the GPU when there is one) so that latency is the
model's, not the pyfunc wrapper's DataFrame round trip; anything else goes through pyfunc. torch and
MLflow are imported only when needed: a pyfunc model must load on a runner without torch.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any, Literal

import numpy as np

from mlcicd import model_input
from mlcicd.errors import UsageError

Flavor = Literal["pytorch", "pyfunc"]

REGISTERED_MODEL_META = "registered_model_meta"
"""Written by MLflow beside a model it downloads (mlflow.store.artifact.models_artifact_repo); not part
of the model."""


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0].rstrip('.') if lines else ''}".rstrip(": ")


def resolve_device(device: str | None) -> str:
    """`cuda:0` when torch sees a GPU and no device was asked for, else `cpu`; a requested CUDA device
    must exist."""
    import torch

    if device is None:
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(
            "bad device",
            f"`{device}` is not a torch device ({first_line(exc)}). Use `cpu`, `cuda` or `cuda:N`.",
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                "no GPU",
                f"device `{device}` was asked for but torch {torch.__version__} sees no CUDA device. "
                "Use `cpu`.",
            )
        index = 0 if parsed.index is None else parsed.index
        if index >= torch.cuda.device_count():
            raise UsageError(
                "no such GPU",
                f"device `{device}`: only {torch.cuda.device_count()} CUDA device(s) are visible.",
            )
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
        self,
        flavor: Flavor,
        device: str,
        *,
        torch_module: Any | None = None,
        pyfunc_model: Any | None = None,
        uri: str = "",
    ) -> None:
        if (torch_module is None) == (pyfunc_model is None):
            raise ValueError("exactly one of torch_module and pyfunc_model is needed")
        self.flavor: Flavor = flavor
        self.device = device
        self.torch_module: Any = torch_module
        self.pyfunc_model: Any = pyfunc_model
        self.uri = uri

    def __repr__(self) -> str:
        return f"LoadedModel({self.uri or '<in memory>'}, flavor={self.flavor}, device={self.device})"

    def to_tensor(self, x: Any) -> Any:
        """float32 tensor of the rows (an array, or a DataFrame of numeric columns, by position) on the
        model's device (the pytorch flavour only)."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(model_input.numeric_array(x))).to(self.device)

    def forward(self, tensor: Any) -> Any:
        """The module's raw output for a tensor already on its device, without gradients."""
        import torch

        with torch.inference_mode():
            return self.torch_module(tensor)

    def predict(self, x: Any) -> np.ndarray:
        """Outputs for rows: a numpy array (positional) or a DataFrame (named columns, each with its
        dtype)."""
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
        except (
            Exception
        ) as first:  # no signature says what it wants: a DataFrame is pyfunc's other usual input
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
        out = (
            out.float()
        )  # numpy has no bfloat16, and half precision is widened so statistics on it do not sum in 16 bits
    array: np.ndarray = out.detach().cpu().numpy()
    return array


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
                f"{model_uri} is a PyTorch model, but torch is not importable by the toolkit's Python; "
                "set `extras: torch` on the setup action or use a runner Python with torch.",
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
        warnings.filterwarnings(
            "ignore", message="'torch.load' received a zip file that looks like a TorchScript archive"
        )
        warnings.filterwarnings(
            "ignore", message="`torch.jit.load` is deprecated", category=DeprecationWarning
        )
        module = mlflow.pytorch.load_model(local, map_location=device)
    exported = os.path.join(
        local, str(flavor.get("model_data", "data")), "model.pt2"
    )  # mlflow.pytorch's pt2 file name
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
            "model not found",
            "the model URI is empty. Pass e.g. `models:/m-…`, `models:/<name>/<version>` "
            "or `runs:/<id>/model`.",
        )
    try:
        return get_model_info(model_uri)
    except (MlflowException, OSError) as exc:
        # Unknown run, logged model, registered name, version or alias, a path without MLmodel, an
        # unsupported scheme: all mean the URI names no model in this tracking store.
        raise UsageError(
            "model not found",
            f"{model_uri}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}. "
            "Check the URI (e.g. `models:/m-…`, `models:/<name>/<version>`, `models:/<name>@<alias>`, "
            "`runs:/<id>/model`) "
            "and that MLFLOW_TRACKING_URI points at the store that holds it.",
        ) from None
    except Exception as exc:  # noqa: BLE001 - yaml, KeyError, TypeError: an MLmodel file that is not MLflow's
        raise UsageError(
            "model metadata unreadable",
            f"{model_uri}: its MLmodel file does not parse ({first_line(exc)}). The artifact is damaged "
            "or was not written by MLflow: log the model again.",
        ) from None


def _not_loadable(model_uri: str, exc: BaseException) -> UsageError:
    return UsageError(
        "model does not load",
        f"{model_uri}: {first_line(exc)}. Install the packages it was logged with (its requirements.txt), "
        "and for a pickled PyTorch model make the module's class importable (e.g. log it with "
        "`code_paths=[...]`).",
    )


def check_sample(sample: Any, what: str = "sample") -> Any:
    if model_input.is_frame(sample):
        if sample.shape[0] == 0 or sample.shape[1] == 0:
            raise UsageError(
                f"bad {what}",
                f"the {what} must have at least one row and one column, got shape {sample.shape}.",
            )
        return sample
    sample = np.asarray(sample)
    if sample.ndim != 2 or sample.shape[0] == 0 or sample.shape[1] == 0:
        raise UsageError(
            f"bad {what}",
            f"the {what} must be a 2-D array of at least one row and one feature, got shape {sample.shape}.",
        )
    return sample


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
