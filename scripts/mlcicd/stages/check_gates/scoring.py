"""check-gates' test data and the models' scores on it."""

from __future__ import annotations

from typing import Any

from mlcicd.errors import UsageError

from .settings import Settings


def load_test_data(settings: Settings) -> tuple[Any, Any, list[str]]:
    import pandas as pd

    from mlcicd.data import iter_batches, resolve_files

    if not settings.target:
        raise UsageError(
            "missing target", "`target` (the label column of test-data) is required, e.g. `churned`."
        )
    files = resolve_files(settings.test_data, option="test-data")
    frame = pd.concat([batch.to_pandas() for _, batch in iter_batches(files)], ignore_index=True)
    if frame.empty:
        raise UsageError("no test rows", f"{settings.test_data} has no rows.", file=settings.test_data)
    if settings.target not in frame.columns:
        raise UsageError(
            "target not in test-data",
            f"`{settings.target}` is not a column of {settings.test_data} "
            f"(columns: {', '.join(map(str, frame.columns[:10]))}). "
            "Set `target` to the label column.",
        )
    y = frame.pop(settings.target).to_numpy()
    # Named columns with their dtypes: a pyfunc model gets them as they are (by its signature), a
    # PyTorch module their numbers by position (mlcicd.model_input).
    return frame, y, [str(c) for c in frame.columns]


def labels_from(output: Any, task: str) -> tuple[Any, Any | None]:
    """(predicted labels or values, class probabilities or None) from a model's raw output."""
    import numpy as np

    out = np.asarray(output)
    if task == "regression":
        return out.reshape(len(out), -1)[:, 0].astype(float), None
    if out.ndim == 2 and out.shape[1] > 1:
        return out.argmax(axis=1), out
    flat = out.reshape(len(out), -1)[:, 0] if out.ndim > 1 else out
    if (
        np.issubdtype(flat.dtype, np.floating)
        and np.all((flat >= 0) & (flat <= 1))
        and not np.all(np.isin(flat, (0.0, 1.0)))
    ):
        return (flat >= 0.5).astype(int), flat
    return flat, None


def evaluate(model: Any, x: Any, y: Any, settings: Settings) -> dict[str, Any]:
    from mlcicd import metrics
    from mlcicd.custom_metrics import load_custom_metric

    try:
        raw = model.predict(x)
    except UsageError:
        raise
    # the model's own code failed on the test rows: the user's to fix, not a bug here
    except Exception as exc:  # noqa: BLE001
        lines = str(exc).strip().splitlines()
        raise UsageError(
            "model fails on the test data",
            f"{model.uri or 'model'} raised {type(exc).__name__}: {lines[0][:300] if lines else ''}. "
            "Give it test data with the columns and types it was trained on (its signature), or make the "
            "model accept them (e.g. a Pipeline step that encodes them), as serving will send the same.",
        ) from None
    predicted, proba = labels_from(raw, settings.task)
    try:
        scores: dict[str, float | None]
        if settings.task == "classification":
            scores = metrics.classification_metrics(y, predicted, proba)
        else:
            scores = {**metrics.regression_metrics(y.astype(float), predicted)}
    except ValueError as exc:
        raise UsageError(
            "model output does not fit the test data",
            f"{model.uri or 'model'}: {exc}. Check `task` and `target`.",
        ) from None
    for spec in settings.custom_metrics:
        try:
            scores[spec] = float(load_custom_metric(spec)(y, predicted))
        except ValueError as exc:
            raise UsageError("custom metric failed", f"`{spec}` (custom-metrics): {exc}") from None
    return {"scores": scores, "predicted": predicted, "proba": proba}
