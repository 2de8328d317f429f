"""The one table of the model-quality gates: which metrics exist, their direction, and the
check-gates option that sets each one's limit.

Kept free of numpy so that `mlcicd --help` and the option list read it without importing the
metric code (mlcicd.metrics holds the functions that compute each metric).

To add a metric with its gate: one row in THRESHOLDS here and one pure function in mlcicd.metrics
(for a classification metric, a per-resample function over label codes like `macro_precision`),
named in `classification_metrics` / `regression_metrics` and in `mlcicd.significance.batch_scorer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

Task = Literal["classification", "regression"]


class MetricInfo(NamedTuple):
    higher_is_better: bool
    kind: Task
    paired_test: Literal["mcnemar", "bootstrap"]


@dataclass(frozen=True)
class Threshold:
    """One absolute gate: the stage option that sets its limit, the metric it limits, whether the
    limit is a minimum or a maximum, the gate's name in `failed-gates`, the report and the summary,
    and the task whose models have the metric."""

    option: str
    metric: str
    direction: Literal["min", "max"]
    gate: str
    task: Task
    note: str = ""
    """What a user should know about the metric, for the option's help (how it is averaged, what it needs)."""
    example: str = "0.9"

    @property
    def help(self) -> str:
        word = "below" if self.direction == "min" else "above"
        return f"fail when the candidate's {self.metric} is {word} this" + (
            f" ({self.note})" if self.note else ""
        )


THRESHOLDS: tuple[Threshold, ...] = (
    # The single source of the threshold gates: check-gates' options, their evaluation and the gate
    # names all come from here. Gate names are as released (`min-roc_auc` is the metric's name).
    Threshold("min-accuracy", "accuracy", "min", "min-accuracy", "classification", example="0.92"),
    Threshold("min-f1", "f1", "min", "min-f1", "classification", "macro-averaged over the classes"),
    Threshold(
        "min-roc-auc",
        "roc_auc",
        "min",
        "min-roc_auc",
        "classification",
        "needs a model that outputs probabilities",
        "0.95",
    ),
    Threshold(
        "min-precision", "precision", "min", "min-precision", "classification", "macro-averaged, like f1"
    ),
    Threshold("min-recall", "recall", "min", "min-recall", "classification", "macro-averaged, like f1"),
    Threshold("max-rmse", "rmse", "max", "max-rmse", "regression", "regression", "12.5"),
    Threshold("max-mae", "mae", "max", "max-mae", "regression", "regression", "8"),
    Threshold("min-r2", "r2", "min", "min-r2", "regression", "regression", "0.8"),
)

MCNEMAR_METRICS = frozenset({"accuracy"})
"""Accuracy is a mean of per-row correctness, so McNemar on the discordant rows is exact and
cheap. F1, precision, recall, AUC and the regression scores are not per-row sums: they get the bootstrap."""

METRICS: dict[str, MetricInfo] = {
    row.metric: MetricInfo(
        row.direction == "min", row.task, "mcnemar" if row.metric in MCNEMAR_METRICS else "bootstrap"
    )
    for row in THRESHOLDS
}

THRESHOLD_OPTIONS: dict[str, str] = {row.option: row.metric for row in THRESHOLDS}
