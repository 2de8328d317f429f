"""A team's own models on the first run, through the real CLI and a real embedded MLflow store: a scikit-learn
Pipeline with string columns (and XGBoost when it is installed) from train-gpu on a CPU runner through check-gates
(latency, size and probes) to promote; a plain PyTorch MLP with the seed's flags; probe levels; the model name taken
from the training run; model names MLflow would refuse, refused before anything runs."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, assert_one_clear_error, load_example_generator

SEED_FLAGS = ("--min-accuracy", "0.9", "--max-latency-p99", "100", "--max-model-size", "500MB")
CPU = ("--require-gpu", "false")
NUMERIC = ["age", "income", "tenure_months", "monthly_spend", "support_tickets"]


def customers(rows: int, seed: int) -> pd.DataFrame:
    """The example's customers, with a label that a good model predicts well (the example's own is too noisy for 0.9
    accuracy), and that depends on the string column `plan`."""
    frame = load_example_generator().customers(rows, seed=seed)
    logit = (
        2.0 * (frame["support_tickets"] - 1.5)
        - 0.08 * (frame["tenure_months"] - 60)
        + 3.0 * (frame["plan"] == "basic")
        - 1.5
    )
    noise = np.random.default_rng(seed + 100).logistic(size=rows)
    frame["churned"] = (3 * logit + noise > 0).astype(np.int64)
    return frame


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    """A consumer checkout with the example's customers: training rows and a labelled test set with every column."""
    project = tmp_path_factory.mktemp("tabular")
    customers(4000, seed=1).to_parquet(project / "train.parquet", index=False)
    customers(2000, seed=4).to_parquet(project / "test.parquet", index=False)
    shutil.copy(ROOT / "tests" / "fixtures" / "train_sklearn.py", project / "train_sklearn.py")
    return project


def gates(run_cli, project, model_uri, *args):
    return run_cli(
        "check-gates", "--model-uri", model_uri, "--test-data", str(project / "test.parquet"), "--target", "churned",
        "--latency-iterations", "100", *args, cwd=project,
    )  # fmt: skip


def train_sklearn(run_cli, project, name, kind="pipeline"):
    command = f"{sys.executable} train_sklearn.py train.parquet {kind}"
    return run_cli(
        "train-gpu", "--command", command, "--model-name", name, *CPU, "--fingerprint-paths", "train_sklearn.py",
        "--data", "train.parquet", cwd=project,
    )  # fmt: skip


def test_sklearn_pipeline_with_a_string_column_trains_gates_and_promotes(run_cli, churn, embedded_home):
    trained = train_sklearn(run_cli, churn, "churn-sklearn")
    assert trained.rc == 0, trained.log
    assert trained.outputs["device"] == "cpu" and trained.outputs["model-uri"].startswith("models:/m-")

    # No model-name: check-gates finds it on the training run, so @production of churn-sklearn is the baseline.
    checked = gates(
        run_cli,
        churn,
        trained.outputs["model-uri"],
        *SEED_FLAGS,
        "--serve-check",
        "true",
        "--report",
        "gates.json",
    )
    assert checked.rc == 0, checked.log
    report = json.loads((churn / "gates.json").read_text())
    assert report["candidate"]["model_name"] == "churn-sklearn"
    assert "plan" in report["features"] and report["metrics"]["candidate"]["accuracy"] >= 0.9
    names = {g["gate"]: g for g in report["gates"]}
    assert {"latency p99 @ batch 1", "model size", "serve check", "compare to @production"} <= set(names), (
        sorted(names)
    )
    assert {
        f"robustness: {p}"
        for p in ("zeros input", "extreme values", "determinism", "class collapse", "missing values")
    } <= set(names)
    assert "no @production version of `churn-sklearn` yet" in names["compare to @production"]["detail"]
    assert "rows over HTTP match" in names["serve check"]["detail"]  # dataframe_split with the string columns

    promoted = run_cli(
        "promote", "--model-name", "churn-sklearn", "--model-uri", trained.outputs["model-uri"], cwd=churn
    )
    assert promoted.rc == 0, promoted.log
    assert promoted.outputs["version"] == "1"

    # Test data without the string columns the signature requires: one clear error, not a crash in the model.
    pd.read_parquet(churn / "test.parquet").drop(columns=["plan"]).to_parquet(
        churn / "no-plan.parquet", index=False
    )
    lacking = run_cli(
        "check-gates",
        "--model-uri",
        trained.outputs["model-uri"],
        "--test-data",
        "no-plan.parquet",
        "--target",
        "churned",
        cwd=churn,
    )
    assert_one_clear_error(lacking, "test data lacks model inputs", "`plan`")


@pytest.mark.skipif(importlib.util.find_spec("xgboost") is None, reason="xgboost is not installed")
def test_xgboost_on_categorical_columns_passes_the_seed_gates(run_cli, churn, embedded_home):
    trained = train_sklearn(run_cli, churn, "churn-xgboost", kind="xgboost")
    assert trained.rc == 0, trained.log
    checked = gates(run_cli, churn, trained.outputs["model-uri"], *SEED_FLAGS)
    assert checked.rc == 0, checked.log
    assert "robustness: class collapse" in checked.summary


class Standardised(torch.nn.Module):
    """A plain MLP: standardises its inputs and nothing else, so NaN in gives NaN out."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.net = torch.nn.Sequential(
            torch.nn.Linear(len(mean), 16), torch.nn.ReLU(), torch.nn.Linear(16, 1), torch.nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


@pytest.fixture(scope="module")
def plain_mlp(churn):
    """The model uri of a plain PyTorch MLP on the numeric features, logged (pt2, no pickled class) in its own store."""
    import mlflow

    home = churn / "mlp-home"
    frame = pd.read_parquet(churn / "train.parquet")
    x = frame[NUMERIC].to_numpy(dtype=np.float32)
    y = torch.tensor(frame["churned"].to_numpy(dtype=np.float32))
    torch.manual_seed(0)
    model = Standardised(x.mean(axis=0), x.std(axis=0) + 1e-6)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy(model(torch.from_numpy(x)).squeeze(1), y).backward()
        optimizer.step()
    model.eval()
    pd.read_parquet(churn / "test.parquet", columns=[*NUMERIC, "churned"]).to_parquet(
        churn / "test-numeric.parquet", index=False
    )
    home.mkdir()
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    experiment = mlflow.MlflowClient().create_experiment(
        "mlp", artifact_location=(home / "artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pytorch.log_model(model, name="model", input_example=x[:5], pip_requirements=["torch"])
    return {"home": home, "uri": info.model_uri, "data": churn / "test-numeric.parquet"}


def mlp_gates(run_cli, plain_mlp, *args):
    return run_cli(
        "check-gates", "--model-uri", plain_mlp["uri"], "--test-data", str(plain_mlp["data"]), "--target", "churned",
        "--compare-to", "none", "--latency-iterations", "100", *args, env={"MLCICD_HOME": str(plain_mlp["home"])},
    )  # fmt: skip


def test_plain_pytorch_mlp_passes_the_seed_gates_with_a_missing_values_warning(run_cli, plain_mlp):
    result = mlp_gates(run_cli, plain_mlp, *SEED_FLAGS, "--report", str(plain_mlp["home"] / "mlp.json"))
    assert result.rc == 0, result.log
    report = json.loads((plain_mlp["home"] / "mlp.json").read_text())
    assert report["metrics"]["candidate"]["accuracy"] >= 0.9
    assert report["warnings"] == ["robustness: missing values"] and report["passed"]
    assert "⚠️ 1 warning(s)" in result.summary and "| ⚠️ |" in result.summary
    assert "warning only (`probe-missing-values: warn`)" in result.summary

    # and in the pull-request comment (pr-report renders the same report; outside a pull request, into the summary)
    comment = run_cli(
        "pr-report", "--reports", str(plain_mlp["home"] / "mlp.json"), "--model-name", "mlp",
        env={"MLCICD_GITHUB_TOKEN": "x", "MLCICD_HOME": str(plain_mlp["home"])},
    )  # fmt: skip
    assert comment.rc == 0, comment.log
    assert (
        "⚠️ warnings: robustness: missing values" in comment.summary
        and "| robustness: missing values |" in comment.summary
    )


@pytest.mark.parametrize(
    ("args", "rc", "missing_gate"),
    [
        (("--probe-missing-values", "fail"), 1, "failed"),
        (("--probe-missing-values", "off"), 0, "absent"),
        (("--robustness", "false", "--probe-missing-values", "fail"), 0, "absent"),
    ],
    ids=["fail", "off", "robustness-false"],
)
def test_probe_levels(run_cli, plain_mlp, args, rc, missing_gate):
    result = mlp_gates(run_cli, plain_mlp, *args)
    assert result.rc == rc, result.log
    failed = json.loads(result.outputs["failed-gates"])
    if missing_gate == "failed":
        assert failed == ["robustness: missing values"] and len(result.errors) == 1
    else:
        assert "robustness: missing values" not in result.summary


def test_bad_probe_level_is_one_clear_error(run_cli, plain_mlp):
    assert_one_clear_error(
        mlp_gates(run_cli, plain_mlp, "--probe-zeros", "maybe"), "probe-zeros", "fail, warn, off"
    )


@pytest.mark.parametrize(
    "name", ["team/churn", "churn:v2", "churn\nclassifier"], ids=["slash", "colon", "newline"]
)
def test_model_names_mlflow_refuses_are_refused_before_training(run_cli, churn, embedded_home, name):
    marker = churn / "trained.marker"
    command = f"{sys.executable} -c \"open('{marker}', 'w')\""
    result = run_cli("train-gpu", "--command", command, "--model-name", name, *CPU, cwd=churn)
    assert_one_clear_error(result, "model-name")
    assert (
        not marker.exists() and not (embedded_home / "mlflow.db").exists()
    )  # nothing ran, nothing was created
    assert_one_clear_error(gates(run_cli, churn, "models:/m-x", "--model-name", name), "model-name")
