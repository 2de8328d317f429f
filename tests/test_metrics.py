"""Metrics, paired significance tests and promotion gates, on numbers worked out by hand."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlcicd.custom_metrics import load_custom_metric
from mlcicd.gate_table import METRICS, THRESHOLD_OPTIONS
from mlcicd.gates import GateResult, compare_to_baseline, threshold_gate
from mlcicd.metrics import classification_metrics, regression_metrics
from mlcicd.significance import mcnemar, paired_bootstrap
from mlcicd.sizes import parse_size

# --- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y_true", "y_pred", "accuracy", "f1"),
    [
        # class 1: TP 2, FP 1, FN 1 -> 4/6; class 0 the same -> macro 2/3
        ([1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0], 4 / 6, 2 / 3),
        # class 0: 2/3, class 1: 2/4, class 2: 4/5
        ([0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1], 4 / 6, (2 / 3 + 1 / 2 + 4 / 5) / 3),
        # class 2 is only predicted: its F1 of 0 counts in the macro average
        ([0, 0, 1, 1], [0, 2, 1, 1], 3 / 4, (2 / 3 + 1 + 0) / 3),
        (["cat", "dog", "dog", "cat"], ["cat", "dog", "cat", "cat"], 3 / 4, (4 / 5 + 2 / 3) / 2),
        ([1, 1, 1], [1, 1, 1], 1.0, 1.0),
    ],
    ids=["binary", "three-classes", "class-only-predicted", "string-labels", "perfect-one-class"],
)
def test_accuracy_and_macro_f1(y_true, y_pred, accuracy, f1):
    result = classification_metrics(np.array(y_true), np.array(y_pred))
    assert result["accuracy"] == pytest.approx(accuracy)
    assert result["f1"] == pytest.approx(f1)
    assert result["roc_auc"] is None


@pytest.mark.parametrize(
    ("y_true", "scores", "auc"),
    [
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
        # the tied positive/negative pair (0.5, 0.5) counts half: (0.5 + 1 + 2) / 4
        ([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9], 0.875),
        ([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3], 0.5),
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
        # ties among positives only do not matter
        ([0, 1, 1, 1], [0.1, 0.7, 0.7, 0.7], 1.0),
    ],
    ids=["classic", "tie-across-classes", "all-tied", "inverted", "ties-within-class"],
)
def test_binary_auc_by_hand(y_true, scores, auc):
    y_true, scores = np.array(y_true), np.array(scores)
    one_d = classification_metrics(y_true, (scores > 0.5).astype(int), proba=scores)
    two_col = classification_metrics(
        y_true, (scores > 0.5).astype(int), proba=np.column_stack([1 - scores, scores])
    )
    assert one_d["roc_auc"] == pytest.approx(auc)
    assert two_col["roc_auc"] == pytest.approx(auc)


def test_multiclass_auc_is_one_vs_rest_macro():
    y_true = np.array([0, 0, 1, 2])
    proba = np.array([[0.6, 0.2, 0.2], [0.3, 0.6, 0.4], [0.2, 0.5, 0.3], [0.1, 0.4, 0.5]])
    # class 0 and class 2 separate perfectly; class 1's positive (0.5) beats 0.2 and 0.4, loses to 0.6
    result = classification_metrics(y_true, proba.argmax(axis=1), proba=proba)
    assert result["roc_auc"] == pytest.approx((1 + 2 / 3 + 1) / 3)


def test_labels_give_the_column_order_of_proba():
    y_true = np.array(["dog", "cat", "cat", "dog", "cat"])
    p_dog = np.array([0.9, 0.2, 0.6, 0.4, 0.1])
    sorted_order = classification_metrics(y_true, y_true, proba=np.column_stack([1 - p_dog, p_dog]))
    reversed_order = classification_metrics(
        y_true, y_true, proba=np.column_stack([p_dog, 1 - p_dog]), labels=["dog", "cat"]
    )
    assert sorted_order["roc_auc"] == pytest.approx(5 / 6)
    # with labels reversed the positive class is "cat": AUC of the cat score for cat is the same ranking
    assert reversed_order["roc_auc"] == pytest.approx(5 / 6)


def test_auc_is_none_with_a_single_true_class():
    assert classification_metrics([1, 1, 1], [1, 0, 1], proba=[0.9, 0.2, 0.8])["roc_auc"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_true": [0, 1], "y_pred": [0, 1, 1]}, "y_pred has 3 rows but y_true has 2"),
        ({"y_true": [], "y_pred": []}, "empty"),
        ({"y_true": [0, 1, 2], "y_pred": [0, 1, 2], "proba": [0.1, 0.5, 0.9]}, "1-D proba"),
        ({"y_true": [0, 1, 2], "y_pred": [0, 1, 1], "proba": np.eye(3)[:, :2]}, "pass labels="),
        ({"y_true": [0, 1], "y_pred": [0, 1], "proba": [0.1, math.nan]}, "NaN"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "proba": [0.1]}, "one row per test row"),
        (
            {"y_true": [0, 1, 2], "y_pred": [0, 1, 2], "proba": np.eye(3)[:, :2], "labels": [0, 1]},
            "not among the classes",
        ),
    ],
    ids=[
        "length",
        "empty",
        "1d-proba-multiclass",
        "proba-columns",
        "nan-proba",
        "proba-rows",
        "label-outside-labels",
    ],
)
def test_classification_input_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(**kwargs)


# --- regression -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y_true", "y_pred", "rmse", "mae", "r2"),
    [
        # errors -0.5, 0.5, 0, 1: MSE 0.375; mean 2.875, SS_tot 29.1875, SS_res 1.5
        ([3, -0.5, 2, 7], [2.5, 0.0, 2, 8], math.sqrt(0.375), 0.5, 1 - 1.5 / 29.1875),
        ([1, 2, 3], [1, 2, 3], 0.0, 0.0, 1.0),
        ([1, 2, 3], [2, 2, 2], math.sqrt(2 / 3), 2 / 3, 0.0),  # predicting the mean
        ([5, 5, 5], [5, 5, 5], 0.0, 0.0, 1.0),  # constant target, exact
        ([5, 5, 5], [4, 5, 6], math.sqrt(2 / 3), 2 / 3, 0.0),  # constant target, not exact
    ],
    ids=["worked-example", "perfect", "mean-predictor", "constant-exact", "constant-off"],
)
def test_regression_metrics_by_hand(y_true, y_pred, rmse, mae, r2):
    result = regression_metrics(y_true, y_pred)
    assert result == pytest.approx({"rmse": rmse, "mae": mae, "r2": r2})


def test_regression_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        regression_metrics([1.0, 2.0], [1.0, math.nan])


# --- agreement with scikit-learn, where it is installed ------------------------------------------


def test_agrees_with_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    score = np.round(np.clip(y * 0.3 + rng.normal(0.35, 0.25, 500), 0, 1), 1)  # rounded: many ties
    pred = (score > 0.5).astype(int)
    ours = classification_metrics(y, pred, proba=score)
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))

    y3 = rng.integers(0, 3, 600)
    logits = np.round(np.eye(3)[y3] * 1.2 + rng.normal(0, 1, (600, 3)), 1)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred3 = proba.argmax(axis=1)
    ours3 = classification_metrics(y3, pred3, proba=proba)
    assert ours3["f1"] == pytest.approx(skm.f1_score(y3, pred3, average="macro"))
    assert ours3["roc_auc"] == pytest.approx(skm.roc_auc_score(y3, proba, multi_class="ovr", average="macro"))

    target = rng.normal(10, 3, 300)
    guess = target + rng.normal(0, 1, 300)
    assert regression_metrics(target, guess) == pytest.approx(
        {
            "rmse": math.sqrt(skm.mean_squared_error(target, guess)),
            "mae": skm.mean_absolute_error(target, guess),
            "r2": skm.r2_score(target, guess),
        }
    )


# --- metric table -------------------------------------------------------------------------------


def test_threshold_options_point_the_right_way():
    for option, metric in THRESHOLD_OPTIONS.items():
        assert metric in METRICS
        assert option.startswith("min-") == METRICS[metric].higher_is_better, option
    higher, kind, test = METRICS["accuracy"]
    assert (higher, kind, test) == (True, "classification", "mcnemar")
    assert METRICS["rmse"] == (False, "regression", "bootstrap")


# --- custom metrics -------------------------------------------------------------------------------


@pytest.fixture
def metric_dir(tmp_path, monkeypatch):
    """A working directory with a uniquely named metrics module (module caches are per process)."""
    monkeypatch.chdir(tmp_path)
    name = f"custom_metrics_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        "import numpy as np\n"
        "THRESHOLD = 0.5\n"
        "def hit_rate(y_true, y_pred):\n"
        "    return np.mean(np.asarray(y_true) == np.asarray(y_pred))\n"
        "def label(y_true, y_pred):\n"
        "    return 'good'\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "score.py").write_text(
        "def neg_mae(y_true, y_pred):\n    return -abs(y_true - y_pred).mean()\n"
    )
    (tmp_path / "broken.py").write_text("raise RuntimeError('no GPU here')\n")
    yield name
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_custom_metric_from_module_in_cwd(metric_dir):
    path_before = list(sys.path)
    metric = load_custom_metric(f"{metric_dir}:hit_rate")
    assert metric([1, 0, 1, 1], [1, 1, 1, 1]) == 0.75
    assert type(metric([1], [1])) is float
    assert metric.__name__ == "hit_rate"
    assert sys.path == path_before


def test_custom_metric_from_file_path(metric_dir):
    metric = load_custom_metric("sub/score.py:neg_mae")
    assert metric(np.array([1.0, 2.0]), np.array([2.0, 2.0])) == -0.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hit_rate", "expected 'module:function'"),
        ("{m}:", "expected 'module:function'"),
        (":hit_rate", "expected 'module:function'"),
        ("{m}:1st", "expected 'module:function'"),
        ("my-metrics:f", "is not a module name"),
        (
            "no_such_module_xyz:f",
            "cannot import custom metric module 'no_such_module_xyz'.*ModuleNotFoundError",
        ),
        ("broken:f", "cannot import.*RuntimeError: no GPU here"),
        ("sub/missing.py:f", "cannot import.*no such file"),
        ("{m}:nothing", "has no attribute 'nothing'"),
        ("{m}:THRESHOLD", "is a float, not a function"),
    ],
    ids=[
        "no-colon",
        "no-function",
        "no-module",
        "bad-function-name",
        "bad-module-name",
        "missing-module",
        "import-fails",
        "missing-file",
        "missing-function",
        "not-callable",
    ],
)
def test_custom_metric_errors(metric_dir, spec, message):
    with pytest.raises(ValueError, match=message):
        load_custom_metric(spec.format(m=metric_dir))


def test_custom_metric_must_return_a_number(metric_dir):
    metric = load_custom_metric(f"{metric_dir}:label")
    with pytest.raises(ValueError, match="returned 'good', not a number"):
        metric([1], [1])


# --- McNemar --------------------------------------------------------------------------------------


def correctness(b: int, c: int, both: int = 50, neither: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Per-row correctness with b rows only the candidate gets right and c only the baseline."""
    cand = np.array([True] * b + [False] * c + [True] * both + [False] * neither)
    base = np.array([False] * b + [True] * c + [True] * both + [False] * neither)
    return cand, base


@pytest.mark.parametrize(
    ("b", "c", "statistic", "p_value"),
    [
        (0, 0, 0.0, 1.0),
        (2, 0, 0.0, 0.5),  # exact: 2 · (½)²
        (10, 2, 2.0, 2 * (1 + 12 + 66) / 4096),  # exact: 2 · P(X ≤ 2 | 12, ½)
        (12, 12, 12.0, 1.0),  # exact, capped at 1
        (30, 10, 19**2 / 40, math.erfc(math.sqrt(19**2 / 40 / 2))),  # chi-square, 1 df
        (13, 12, 0.0, 1.0),  # 25 discordant: chi-square, (|1| − 1)² = 0
    ],
    ids=["no-discordant", "exact-2-0", "exact-10-2", "exact-balanced", "chi2-30-10", "chi2-boundary"],
)
def test_mcnemar(b, c, statistic, p_value):
    result = mcnemar(*correctness(b, c))
    assert result == pytest.approx((statistic, p_value, b, c))


def test_mcnemar_switches_to_chi2_at_25_discordant_rows():
    _, p_exact, *_ = mcnemar(*correctness(19, 5))  # 24 discordant
    _, p_chi2, *_ = mcnemar(*correctness(20, 5))  # 25 discordant
    assert p_exact == pytest.approx(2 * sum(math.comb(24, k) for k in range(6)) / 2**24)
    assert p_chi2 == pytest.approx(math.erfc(math.sqrt(14**2 / 25 / 2)))


def test_mcnemar_noise_is_not_significant_and_a_real_gain_is():
    rng = np.random.default_rng(3)
    baseline = rng.random(1000) < 0.9
    lucky = baseline.copy()
    lucky[np.flatnonzero(~baseline)[:2]] = True  # 2 of 1,000 rows differ, both in the candidate's favour
    assert mcnemar(lucky, baseline)[1] >= 0.05

    better = baseline.copy()
    better[np.flatnonzero(~baseline)[:60]] = True  # 60 fixed rows
    better[np.flatnonzero(baseline)[:10]] = False  # 10 new mistakes
    assert mcnemar(better, baseline)[1] < 0.001


def test_mcnemar_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one length"):
        mcnemar([True, False], [True])


# --- paired bootstrap ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_pair():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 1000)
    baseline = np.where(rng.random(1000) < 0.85, y, 1 - y)
    return y, baseline


def test_bootstrap_is_deterministic_for_a_seed(classifier_pair):
    y, baseline = classifier_pair
    candidate = np.where(np.random.default_rng(1).random(1000) < 0.9, y, 1 - y)
    first = paired_bootstrap("f1", y, candidate, baseline, higher_is_better=True, n_resamples=300, seed=5)
    again = paired_bootstrap("f1", y, candidate, baseline, higher_is_better=True, n_resamples=300, seed=5)
    other = paired_bootstrap("f1", y, candidate, baseline, higher_is_better=True, n_resamples=300, seed=6)
    assert first == again
    assert first["ci_low"] != other["ci_low"]
    assert (
        first["delta"]
        == other["delta"]
        == pytest.approx(
            classification_metrics(y, candidate)["f1"] - classification_metrics(y, baseline)["f1"]
        )
    )
    assert first["n_resamples"] == 300


def test_bootstrap_noise_is_not_significant(classifier_pair):
    y, baseline = classifier_pair
    lucky = baseline.copy()
    wrong = np.flatnonzero(baseline != y)[:2]
    lucky[wrong] = y[wrong]  # 2 of 1,000 rows differ
    result = paired_bootstrap("f1", y, lucky, baseline, higher_is_better=True, n_resamples=1000)
    assert result["delta"] > 0
    assert result["p_value"] >= 0.05
    assert result["ci_low"] <= 0 <= result["ci_high"]


def test_an_equal_candidate_is_rarely_significantly_better():
    """The p-value is valid: two exchangeable models pass p < 0.05 with a gain ≤ ~2.5 % of the time
    (the bootstrap's share of resamples not better passed 7-10 % for f1)."""
    rng = np.random.default_rng(21)
    passed = []
    for _ in range(200):
        y = (rng.random(1000) < 0.3).astype(int)
        right = rng.random((2, 1000)) < 0.9
        a, b = np.where(right[0], y, 1 - y), np.where(right[1], y, 1 - y)
        result = paired_bootstrap(
            "f1", y, a, b, higher_is_better=True, n_resamples=200, seed=int(rng.integers(1 << 30))
        )
        passed.append(result["p_value"] < 0.05 and result["delta"] > 0)
    assert np.mean(passed) <= 0.05


def test_bootstrap_clear_gain_is_significant_for_an_error_metric():
    rng = np.random.default_rng(2)
    y = rng.normal(0, 5, 1000)
    good, poor = y + rng.normal(0, 1.0, 1000), y + rng.normal(0, 1.5, 1000)
    result = paired_bootstrap("rmse", y, good, poor, higher_is_better=False)
    assert result["delta"] < -0.3
    assert result["p_value"] < 0.001
    assert result["ci_high"] < 0


def test_bootstrap_identical_predictions():
    y = np.array([0, 1, 1, 0, 1])
    result = paired_bootstrap("accuracy", y, y, y, higher_is_better=True, n_resamples=50)
    assert result == {"delta": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0, "n_resamples": 50}


def test_bootstrap_interval_covers_the_true_delta():
    # Each model is right on a row with a fixed probability: true accuracy delta 0.90 - 0.86 = 0.04.
    covered = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        y = rng.integers(0, 3, 1000)
        cand = np.where(rng.random(1000) < 0.90, y, (y + 1) % 3)
        base = np.where(rng.random(1000) < 0.86, y, (y + 1) % 3)
        result = paired_bootstrap(
            "accuracy", y, cand, base, higher_is_better=True, n_resamples=500, seed=seed
        )
        covered += result["ci_low"] <= 0.04 <= result["ci_high"]
    assert covered >= 17  # a 95 % interval: 19 expected of 20


@pytest.mark.parametrize("metric", ["f1", "roc_auc", "r2", "mae", "accuracy"])
def test_vectorised_bootstrap_equals_calling_the_metric_per_resample(metric):
    """The batched implementations must compute on each resample exactly what the metric does."""
    rng = np.random.default_rng(4)
    if metric in ("r2", "mae"):
        y = rng.normal(0, 1, 80)
        cand, base = y + rng.normal(0, 0.5, 80), y + rng.normal(0, 0.6, 80)

        def reference(t, p):
            return regression_metrics(t, p)[metric]
    else:
        y = rng.integers(0, 3, 80)
        cand = np.round(rng.dirichlet([1, 1, 1], 80) + np.eye(3)[y] * 0.3, 1)  # rounded: ties
        base = np.round(rng.dirichlet([1, 1, 1], 80), 1)
        if metric != "roc_auc":
            cand, base = cand.argmax(axis=1), base.argmax(axis=1)

        def reference(t, p):
            if metric == "roc_auc":
                return classification_metrics(t, p.argmax(axis=1), proba=p, labels=[0, 1, 2])[metric]
            return classification_metrics(t, p)[metric]

    higher = METRICS[metric].higher_is_better
    vectorised = paired_bootstrap(
        metric, y, cand, base, higher_is_better=higher, n_resamples=60, seed=9, labels=[0, 1, 2]
    )
    looped = paired_bootstrap(reference, y, cand, base, higher_is_better=higher, n_resamples=60, seed=9)
    assert vectorised == pytest.approx(looped)


def test_bootstrap_chunks_bound_memory(monkeypatch, classifier_pair):
    import mlcicd.significance as metrics

    y, baseline = classifier_pair
    monkeypatch.setattr(metrics, "BOOTSTRAP_MAX_CELLS", 7_000)  # 7 resamples of 1,000 rows per chunk
    result = paired_bootstrap("accuracy", y, y, baseline, higher_is_better=True, n_resamples=100)
    assert result["n_resamples"] == 100
    assert result["p_value"] == 1 / 101  # no swap of the rows reaches the observed gain


@pytest.mark.parametrize(
    ("metric", "higher", "message"),
    [("rmse", True, "rmse is lower-is-better"), ("auc", True, "unknown metric 'auc'")],
    ids=["wrong-direction", "unknown-metric"],
)
def test_bootstrap_rejects_bad_metric(metric, higher, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(metric, [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], higher_is_better=higher)


# --- gates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "candidate", "baseline", "kwargs", "passed", "detail"),
    [
        ("f1", 0.912, 0.905, {"min_improvement": 0.01}, False, "f1 0.912 vs 0.905 (+0.773 %, needs ≥ +1 %)"),
        ("f1", 0.92, 0.905, {"min_improvement": 0.01}, True, "f1 0.92 vs 0.905 (+1.66 %, needs ≥ +1 %)"),
        (
            "f1",
            0.909,
            0.9,
            {"min_improvement": 0.01},
            True,
            "(+1 %, needs ≥ +1 %)",
        ),  # exactly 1 %, despite float error
        ("rmse", 0.95, 1.0, {"min_improvement": 0.01}, True, "rmse 0.95 vs 1 (-5 %, needs ≤ -1 %)"),
        ("rmse", 1.05, 1.0, {"min_improvement": 0.01}, False, "rmse 1.05 vs 1 (+5 %, needs ≤ -1 %)"),
        ("rmse", 0.98, 1.0, {"min_absolute_change": 0.05}, False, "rmse 0.98 vs 1 (-0.02, needs ≤ -0.05)"),
        ("rmse", 0.9, 1.0, {"min_absolute_change": 0.05}, True, "(-0.1, needs ≤ -0.05)"),
        ("accuracy", 0.92, 0.9, {"min_absolute_change": 0.01}, True, "(+0.02, needs ≥ +0.01)"),
        (
            "accuracy",
            0.92,
            0.9,
            {"min_improvement": 0.01, "min_absolute_change": 0.05},
            False,
            "+2.22 %, needs ≥ +1 %; +0.02, needs ≥ +0.05",
        ),
        ("accuracy", 0.96, 0.9, {"min_improvement": 0.01, "min_absolute_change": 0.05}, True, "+6.67 %"),
        ("accuracy", 0.9, 0.9, {}, True, "must not be worse"),
        ("mae", 2.1, 2.0, {}, False, "mae 2.1 vs 2 (+5 %, must not be worse)"),
        ("f1", 0.895, 0.9, {"min_improvement": -0.01}, True, "(-0.556 %, needs ≥ -1 %)"),  # tolerance
        ("r2", 0.1, 0.0, {"min_improvement": 0.5}, True, "+inf %"),
        ("mae", 0.0, 0.0, {}, True, "mae 0 vs 0"),
        ("accuracy", 0.9, 0.89995, {}, True, "accuracy 0.9 vs 0.89995"),  # digits enough to tell them apart
    ],
    ids=[
        "rel-short",
        "rel-enough",
        "rel-exact-boundary",
        "error-decrease",
        "error-increase",
        "abs-short",
        "abs-enough",
        "abs-higher",
        "both-one-fails",
        "both-hold",
        "no-threshold-equal",
        "no-threshold-worse",
        "tolerance",
        "zero-baseline",
        "zero-both",
        "close-values",
    ],
)
def test_compare_to_baseline(metric, candidate, baseline, kwargs, passed, detail):
    result = compare_to_baseline(metric, candidate, baseline, **kwargs)
    assert result.passed is passed
    assert detail in result.detail
    assert result.delta == pytest.approx(candidate - baseline)
    assert result.gate == f"{metric} vs baseline"


@pytest.mark.parametrize(
    ("metric", "candidate", "p_value", "passed", "detail"),
    [
        ("accuracy", 0.93, 0.41, False, "improvement not significant (McNemar p=0.41 ≥ 0.05)"),
        ("accuracy", 0.93, 0.0003, True, "improvement significant (McNemar p=0.0003 < 0.05)"),
        ("accuracy", 0.89, 0.0003, False, "no improvement to test (McNemar p=0.0003)"),
        ("f1", 0.93, 0.2, False, "improvement not significant (paired permutation p=0.2 ≥ 0.05)"),
    ],
    ids=["not-significant", "significant", "worse", "bootstrap-metric"],
)
def test_compare_requires_significance(metric, candidate, p_value, passed, detail):
    result = compare_to_baseline(
        metric, candidate, 0.9, min_improvement=0.01, p_value=p_value, require_significance=True
    )
    assert result.passed is passed
    assert detail in result.detail
    assert result.p_value == p_value


def test_significance_is_informational_unless_required():
    result = compare_to_baseline("accuracy", 0.93, 0.9, p_value=0.41)
    assert result.passed
    assert result.detail.endswith("; McNemar p=0.41")


def test_significance_needs_a_p_value():
    with pytest.raises(ValueError, match="needs the p-value of the McNemar test"):
        compare_to_baseline("accuracy", 0.93, 0.9, require_significance=True)


def test_compare_fails_on_a_missing_value():
    result = compare_to_baseline("roc_auc", None, 0.8)
    assert not result.passed and "cannot compare roc_auc" in result.detail
    assert not compare_to_baseline("f1", math.nan, 0.8).passed


def test_custom_metric_needs_a_direction():
    with pytest.raises(ValueError, match="pass higher_is_better"):
        compare_to_baseline("profit", 10.0, 9.0)
    result = compare_to_baseline("cost", 9.0, 10.0, min_improvement=0.05, higher_is_better=False)
    assert result.passed and "cost 9 vs 10 (-10 %, needs ≤ -5 %)" in result.detail


@pytest.mark.parametrize(
    ("metric", "value", "threshold", "passed", "gate", "detail"),
    [
        ("min-accuracy", 0.93, 0.9, True, "min-accuracy", "accuracy 0.93 ≥ minimum 0.9"),
        ("min-accuracy", 0.9, 0.9, True, "min-accuracy", "accuracy 0.9 ≥ minimum 0.9"),
        ("min-accuracy", 0.89999, 0.9, False, "min-accuracy", "accuracy 0.89999 < minimum 0.9"),
        ("min-roc-auc", 0.7, 0.75, False, "min-roc-auc", "roc_auc 0.7 < minimum 0.75"),
        ("max-rmse", 1.2, 1.0, False, "max-rmse", "rmse 1.2 > maximum 1"),
        ("max-rmse", 0.8, 1.0, True, "max-rmse", "rmse 0.8 ≤ maximum 1"),
        ("mae", 3.0, 2.5, False, "max-mae", "mae 3 > maximum 2.5"),
        ("r2", 0.8, 0.5, True, "min-r2", "r2 0.8 ≥ minimum 0.5"),
        (
            "min-roc-auc",
            None,
            0.75,
            False,
            "min-roc-auc",
            "roc_auc could not be computed (got None), so it cannot meet the limit",
        ),
    ],
    ids=[
        "min-above",
        "min-equal",
        "min-just-below",
        "min-below",
        "max-above",
        "max-below",
        "metric-name-error",
        "metric-name-score",
        "missing",
    ],
)
def test_threshold_gate(metric, value, threshold, passed, gate, detail):
    result = threshold_gate(metric, value, threshold)
    assert isinstance(result, GateResult)
    assert (result.gate, result.passed, result.detail) == (gate, passed, detail)
    assert result.threshold == threshold


def test_threshold_gate_for_a_custom_metric():
    assert threshold_gate("latency_ms", 120.0, 100.0, higher_is_better=False).gate == "max-latency_ms"
    with pytest.raises(ValueError, match="pass higher_is_better"):
        threshold_gate("latency_ms", 120.0, 100.0)


# --- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("500MB", 500_000_000),
        ("1.5GB", 1_500_000_000),
        ("800KiB", 819_200),
        ("1024", 1024),
        ("2 GiB", 2 * 1024**3),
        ("10kb", 10_000),
        ("1TB", 10**12),
        ("1tib", 1024**4),
        ("3mib", 3 * 1024**2),
        (" 7 b ", 7),
        ("0", 0),
        ("0.5KB", 500),
        (".5KiB", 512),
        ("1.KB", 1000),
        ("0.1GB", 100_000_000),  # exact, not 100000000.00000001
        ("1.0001KB", 1000),  # a tenth of a byte rounds away
        (2048, 2048),
    ],
    ids=lambda v: repr(v),
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text",
    [
        "5XB",
        "-5MB",
        "-1",
        "",
        "   ",
        "NaN",
        "nan",
        "inf",
        "1e3",
        "MB",
        "1.2.3",
        "1,000",
        "5 M B",
        "1_000",
        "١٢MB",
        "10 kbit",
        True,
        -1,
        None,
        1.5,
    ],
    ids=lambda v: repr(v),
)
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="KB, MB, GB, TB .* KiB, MiB, GiB, TiB") as excinfo:
        parse_size(text)
    assert repr(text) in str(excinfo.value)


@given(st.integers(min_value=0, max_value=10**40))
def test_parse_size_bytes_roundtrip(n):
    assert parse_size(f"{n}B") == n
    assert parse_size(f"{n} KiB") == n * 1024


@given(st.text())
def test_parse_size_raises_only_value_error(text):
    try:
        size = parse_size(text)
    except ValueError:
        return
    assert isinstance(size, int) and size >= 0
