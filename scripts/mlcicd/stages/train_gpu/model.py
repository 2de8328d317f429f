"""The trained model: the one the script logged in the run, else the one it handed over in
MLCICD_MODEL_DIR (`model.pt` or an MLflow model directory), logged by the stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcicd import github
from mlcicd.errors import UsageError

from .decide import NAME
from .settings import Settings


def logged_model_uri(run_id: str, experiment_id: str) -> str | None:
    """The model the user's script logged in this run: an MLflow 3 LoggedModel or an MLmodel directory."""
    import mlflow
    from mlflow import MlflowClient

    models = mlflow.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'", output_format="list"
    )
    if models:
        chosen = max(models, key=lambda m: m.creation_timestamp or 0)
        return f"models:/{chosen.model_id}"
    client = MlflowClient()
    for item in client.list_artifacts(run_id):
        if item.is_dir and any(
            child.path.endswith("/MLmodel") for child in client.list_artifacts(run_id, item.path)
        ):
            return f"runs:/{run_id}/{item.path}"
    return None


def signature_sample(settings: Settings) -> Any | None:
    if not settings.signature_data:
        return None
    import numpy as np

    from mlcicd.data import iter_batches, resolve_files

    for _, batch in iter_batches(resolve_files(settings.signature_data, option="signature-data")):
        frame = batch.slice(0, 64).to_pandas()
        if settings.target in frame.columns:
            frame = frame.drop(columns=[settings.target])
        numeric = frame.select_dtypes("number")
        if numeric.shape[1] != frame.shape[1]:
            github.warning(
                "signature-data has non-numeric columns "
                f"({', '.join(c for c in frame.columns if c not in numeric.columns)}); they are left out of "
                "the input example."
            )
        return numeric.to_numpy(dtype=np.float32)
    return None


def log_handed_over_model(model_dir: Path, run_id: str, settings: Settings) -> str | None:
    """Log `model.pt` (TorchScript or pickled nn.Module) or an MLflow model dir from MLCICD_MODEL_DIR."""
    import mlflow

    if (model_dir / "MLmodel").is_file():
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(str(model_dir), "model")
        return f"runs:/{run_id}/model"
    weights = model_dir / "model.pt"
    if not weights.is_file():
        return None
    try:
        import torch
    except ImportError:
        raise UsageError(
            "torch not available",
            "the command wrote model.pt, but torch is not importable by the toolkit's Python; set `extras: "
            "torch` on the setup action or use a runner Python with torch.",
        ) from None
    try:
        module = torch.jit.load(str(weights), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - not TorchScript: try a pickled module next
        try:
            module = torch.load(str(weights), map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise UsageError(
                "model.pt unreadable",
                f"{weights}: {type(exc).__name__}: {exc}. A model pickled with torch.save(model) only loads "
                "where its class can be "
                "imported (not a class defined in the training script itself): save TorchScript instead "
                "(torch.jit.save(torch.jit.script(model), path)), or log the model in the run with mlflow.",
            ) from None
    if not isinstance(module, torch.nn.Module):
        raise UsageError(
            "model.pt is not a module",
            f"{weights} holds a {type(module).__name__}; save the nn.Module itself (torch.save(model, "
            "path)), not its state_dict.",
        )
    module.eval()
    example = signature_sample(settings)
    kwargs: dict[str, Any] = {
        "name": "model",
        "pip_requirements": [f"torch=={torch.__version__.split('+')[0]}"],
    }
    if example is not None:
        kwargs["input_example"] = example
    if isinstance(module, torch.jit.ScriptModule):
        kwargs["serialization_format"] = "pickle"  # MLflow's pt2 export cannot take TorchScript
    elif example is None:
        kwargs["serialization_format"] = "pickle"  # pt2 (the default) needs an example to trace
        github.warning(
            "no `signature-data`: the model is logged without a signature or input example.",
            title=f"{NAME}: no signature",
        )
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(module, **kwargs)
    return str(info.model_uri)
