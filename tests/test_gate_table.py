"""The threshold gates come from one table (mlcicd.gate_table.THRESHOLDS): options, evaluation and gate names.
min-precision and min-recall were added as one row and one metric function each; pure, no MLflow or torch."""

from __future__ import annotations

import numpy as np
import pytest

from mlcicd.errors import UsageError
from mlcicd.gate_table import METRICS, THRESHOLDS
from mlcicd.metrics import classification_metrics
from mlcicd.significance import paired_bootstrap
from mlcicd.stages.check_gates import OPTIONS
from mlcicd.stages.check_gates.decide import metric_gates, threshold_gates
from mlcicd.stages.check_gates.settings import settings_from

# class 1: TP 3, FP 2, FN 0 (precision 3/5, recall 1); class 0: TP 1, FP 0, FN 2 (precision 1, recall 1/3)
Y_TRUE = np.array([1, 1, 1, 0, 0, 0])
Y_PRED = np.array([1, 1, 1, 1, 1, 0])
PRECISION = (3 / 5 + 1) / 2
RECALL = (1 + 1 / 3) / 2


def settings(**limits: float | None):
    values = {option.name: option.default for option in OPTIONS}
    values.update({name.replace("_", "-"): limit for name, limit in limits.items()})
    return settings_from(values)


def scores(y_true=Y_TRUE, y_pred=Y_PRED) -> dict:
    return classification_metrics(y_true, y_pred)


def test_precision_and_recall_are_macro_averaged_like_f1():
    result = scores()
    assert result["precision"] == pytest.approx(PRECISION)
    assert result["recall"] == pytest.approx(RECALL)
    # a class that is only predicted counts 0 for recall, one never predicted 0 for precision
    only_predicted = classification_metrics([0, 0, 1, 1], [0, 2, 1, 1])
    assert only_predicted["recall"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert only_predicted["precision"] == pytest.approx((1 + 1 + 0) / 3)


def test_precision_and_recall_agree_with_sklearn_binary_and_multiclass():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    for classes in (2, 4):
        y = rng.integers(0, classes, 400)
        pred = np.where(rng.random(400) < 0.7, y, rng.integers(0, classes, 400))
        ours = classification_metrics(y, pred)
        assert ours["precision"] == pytest.approx(
            skm.precision_score(y, pred, average="macro", zero_division=0)
        )
        assert ours["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))


@pytest.mark.parametrize(
    ("limits", "passed"),
    [
        ({"min_precision": 0.6, "min_recall": 0.6}, {"min-precision": True, "min-recall": True}),
        ({"min_precision": 0.85, "min_recall": 0.6}, {"min-precision": False, "min-recall": True}),
        ({"min_recall": 0.7}, {"min-recall": False}),
        ({"min_precision": PRECISION}, {"min-precision": True}),  # the limit itself passes
    ],
    ids=["both-pass", "precision-fails", "recall-fails", "equal-passes"],
)
def test_min_precision_and_min_recall_gates(limits, passed):
    gates = threshold_gates(settings(**limits), scores())
    assert {g.gate: g.passed for g in gates} == passed
    for gate in gates:
        metric = gate.gate.removeprefix("min-")
        assert gate.detail.startswith(f"{metric} ") and ("≥ minimum" in gate.detail) == gate.passed


def test_gate_names_come_from_the_table_as_released():
    assert {row.option: row.gate for row in THRESHOLDS} == {
        "min-accuracy": "min-accuracy",
        "min-f1": "min-f1",
        "min-roc-auc": "min-roc_auc",
        "min-precision": "min-precision",
        "min-recall": "min-recall",
        "max-rmse": "max-rmse",
        "max-mae": "max-mae",
        "min-r2": "min-r2",
    }
    option_names = [option.name for option in OPTIONS]
    for row in THRESHOLDS:
        assert row.option in option_names
        assert METRICS[row.metric].kind == row.task
        assert METRICS[row.metric].higher_is_better == (row.direction == "min")
    limits = {row.option.replace("-", "_"): 0.0 for row in THRESHOLDS if row.task == "classification"}
    proba = np.where(Y_PRED == 1, 0.8, 0.2)
    gates = threshold_gates(settings(**limits), classification_metrics(Y_TRUE, Y_PRED, proba))
    assert [g.gate for g in gates] == [row.gate for row in THRESHOLDS if row.task == "classification"]


def test_a_regression_model_has_no_precision():
    with pytest.raises(UsageError, match="min-precision"):
        threshold_gates(settings(min_precision=0.5, task="regression"), {"rmse": 1.0, "mae": 1.0, "r2": 0.5})


def test_precision_as_the_primary_metric_gets_the_paired_test():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    base_pred = np.where(rng.random(300) < 0.8, y, 1 - y)
    cand_pred = np.where(rng.random(300) < 0.9, y, 1 - y)
    cand = {"scores": classification_metrics(y, cand_pred), "predicted": cand_pred, "proba": None}
    base = {"scores": classification_metrics(y, base_pred), "predicted": base_pred, "proba": None}
    gates, info = metric_gates(settings(primary_metric="precision"), cand, base, y)
    assert gates[-1].gate == "precision vs baseline" and info["test"].startswith("paired permutation")
    boot = paired_bootstrap("precision", y, cand_pred, base_pred, higher_is_better=True, n_resamples=200)
    assert boot["delta"] == pytest.approx(cand["scores"]["precision"] - base["scores"]["precision"])
