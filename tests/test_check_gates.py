"""check-gates end to end: real torch models registered in a real MLflow store, the real CLI."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, assert_one_clear_error

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import gate_candidates
import gate_models

RARE = 2.75  # feature 3 above this: the rare rows the healthy model gets wrong


def make_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1] > 0) ^ (x[:, 3] > RARE)).astype(np.int64)
    return x, y


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An embedded MLflow store (MLCICD_HOME) with a trained healthy classifier; registers variants."""
    import mlflow

    home = tmp_path_factory.mktemp("gates-home")
    os.environ["MLCICD_HOME"] = str(home)  # conftest puts it and the tracking URI back after the module
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("gates", artifact_location=(home / "artifacts" / "gates").as_uri())

    torch.manual_seed(0)
    x, y = make_data(4000, seed=1)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2), torch.nn.Softmax(dim=1)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.nll_loss(
            torch.log(net(torch.from_numpy(x)) + 1e-9), torch.from_numpy(y)
        ).backward()
        optimizer.step()
    net.eval()

    test_x, test_y = make_data(1000, seed=2)
    frame = pd.DataFrame(test_x, columns=["f0", "f1", "f2", "f3"])
    frame["label"] = test_y
    data = home / "test.parquet"
    frame.to_parquet(data, index=False)

    def register(module: torch.nn.Module, name: str, alias: str | None = None, pickle: bool = True) -> str:
        with mlflow.start_run(experiment_id=experiment) as run:
            kwargs = {"serialization_format": "pickle"} if pickle else {}
            info = mlflow.pytorch.log_model(
                module, name="model", input_example=test_x[:2], pip_requirements=["torch"], **kwargs
            )
        if not client.search_registered_models(f"name='{name}'"):
            client.create_registered_model(name)
        version = str(client.create_model_version(name, info.model_uri, run_id=run.info.run_id).version)
        if alias:
            client.set_registered_model_alias(name, alias, version)
        return version

    healthy = gate_models.Imputing(net)  # NaN cells become 0: passes the missing-values probe
    yield {
        "home": home,
        "data": data,
        "net": healthy,
        "register": register,
        "client": client,
        "rows": (test_x, test_y),
    }


def gates(run_cli, store, model: str, version: str, *args: str):
    return run_cli(
        "check-gates", "--model-uri", f"models:/{model}/{version}", "--test-data", str(store["data"]), "--target", "label",
        "--latency-iterations", "30", *args, env=stage_env(store),
    )  # fmt: skip


def stage_env(store) -> dict[str, str]:
    # the wrapped test models are pickled by reference: the stage must be able to import their module
    return {"MLCICD_HOME": str(store["home"]), "PYTHONPATH": str(ROOT / "tests" / "fixtures")}


def tag(store, model: str, version: str) -> str | None:
    return store["client"].get_model_version(model, version).tags.get("mlcicd.gates.passed")


def test_first_run_passes_or_fails_as_configured(run_cli, store):
    version = store["register"](store["net"], "first", pickle=False)
    ok = gates(run_cli, store, "first", version, "--min-accuracy", "0.9")
    assert ok.rc == 0, ok.log
    assert ok.outputs["passed"] == "true" and json.loads(ok.outputs["failed-gates"]) == []
    assert json.loads(ok.outputs["metrics"])["accuracy"] > 0.95
    assert "first run, passed by `first-run: pass`" in ok.summary
    assert tag(store, "first", version) == "true"
    strict = gates(run_cli, store, "first", version, "--first-run", "fail")
    assert strict.rc == 1 and json.loads(strict.outputs["failed-gates"]) == ["compare to @production"]
    assert tag(store, "first", version) == "false"


def test_better_candidate_passes_and_promote_accepts_it(run_cli, store):
    store["register"](gate_candidates.Blind(store["net"]), "better", alias="production")
    candidate = store["register"](store["net"], "better")
    result = gates(
        run_cli, store, "better", candidate, "--min-improvement", "0.05", "--require-significance", "true"
    )
    assert result.rc == 0, result.log
    assert "| f1 vs baseline |" in result.summary
    promoted = run_cli(
        "promote",
        "--model-name",
        "better",
        "--version",
        candidate,
        "--alias",
        "production",
        env={"MLCICD_HOME": str(store["home"])},
    )
    assert promoted.rc == 0, promoted.log  # promote's require-gates reads the tag check-gates wrote


def test_worse_candidate_fails_the_relative_gate(run_cli, store):
    store["register"](store["net"], "worse", alias="production")
    candidate = store["register"](gate_candidates.Blind(store["net"]), "worse")
    result = gates(run_cli, store, "worse", candidate, "--min-improvement", "0")
    assert result.rc == 1
    assert json.loads(result.outputs["failed-gates"]) == ["f1 vs baseline"]
    assert len(result.errors) == 1 and "f1" in result.errors[0]
    assert tag(store, "worse", candidate) == "false"


def test_improvement_within_noise_fails_only_with_require_significance(run_cli, store):
    store["register"](store["net"], "noise", alias="production")
    candidate = store["register"](gate_candidates.FlipRare(store["net"], RARE), "noise")
    plain = gates(
        run_cli, store, "noise", candidate, "--min-improvement", "0", "--primary-metric", "accuracy"
    )
    assert plain.rc == 0, plain.log  # it is better, by a few rows
    strict = gates(
        run_cli,
        store,
        "noise",
        candidate,
        "--min-improvement",
        "0",
        "--primary-metric",
        "accuracy",
        "--require-significance",
        "true",
    )
    assert strict.rc == 1 and json.loads(strict.outputs["failed-gates"]) == ["accuracy vs baseline"]
    assert "not significant" in strict.errors[0]


@pytest.mark.parametrize(
    ("module", "failed"),
    [
        (gate_models.NanOnLarge, "robustness: extreme values"),
        (gate_models.OneClass, "robustness: class collapse"),
    ],
    ids=["nan-on-extreme-input", "single-class"],
)
def test_robustness_failures(run_cli, store, module, failed):
    version = store["register"](module(store["net"]), f"robust-{module.__name__.lower()}")
    result = gates(run_cli, store, f"robust-{module.__name__.lower()}", version, "--compare-to", "none")
    assert result.rc == 1, result.log
    assert failed in json.loads(result.outputs["failed-gates"])


def test_slow_candidate_fails_the_latency_gates_and_seed_flags_work(run_cli, store):
    store["register"](store["net"], "slow", alias="production")
    candidate = store["register"](gate_models.Slow(store["net"]), "slow")
    result = gates(
        run_cli, store, "slow", candidate, "--max-latency-regression", "1.5", "--max-latency-p99", "1"
    )
    assert result.rc == 1, result.log
    failed = json.loads(result.outputs["failed-gates"])
    assert "latency p99 @ batch 1" in failed and "latency regression @ batch 1" in failed
    assert "### Latency (ms)" in result.summary
    fast = store["register"](store["net"], "slow")
    seed = gates(
        run_cli,
        store,
        "slow",
        fast,
        "--min-accuracy",
        "0.92",
        "--max-latency-p99",
        "100",
        "--max-model-size",
        "500MB",
    )
    assert seed.rc == 0, seed.log


def test_serve_check_round_trip(run_cli, store):
    version = store["register"](store["net"], "served", pickle=False)
    result = gates(
        run_cli,
        store,
        "served",
        version,
        "--serve-check",
        "true",
        "--robustness",
        "false",
        "--compare-to",
        "none",
    )
    assert result.rc == 0, result.log
    assert "rows over HTTP match in-process predictions" in result.summary


def test_serve_only_checks_serving_and_leaves_the_verdict_alone(run_cli, store, tmp_path):
    """deploy.yml's serve check: only the round trip, with limits that would fail if they were judged again."""
    version = store["register"](store["net"], "deployed", pickle=False)
    store["client"].set_model_version_tag("deployed", version, "mlcicd.gates.passed", "true")
    limits = [
        "--min-accuracy",
        "0.9999",
        "--max-latency-p99",
        "0.001",
        "--report",
        str(tmp_path / "serve.json"),
    ]
    result = gates(run_cli, store, "deployed", version, "--serve-only", "true", *limits)
    assert result.rc == 0, result.log
    report = json.loads((tmp_path / "serve.json").read_text())
    assert [g["gate"] for g in report["gates"]] == ["serve check"] and report["serve_only"]
    assert result.outputs["version"] == version and json.loads(result.outputs["failed-gates"]) == []
    assert tag(store, "deployed", version) == "true"  # untouched


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--max-model-size", "5XB"], ["max-model-size", "5XB"]),
        (["--primary-metric", "bleu"], ["bleu"]),
        (["--target", "nope"], ["nope"]),
        (["--latency-batch-sizes", "0"], ["latency-batch-sizes"]),
        (["--primary-metric", "rmse"], ["not a classification metric"]),
        (["--custom-metrics", "nosuchmodule:fn"], ["nosuchmodule"]),
        (["--alpha", "1"], ["alpha"]),
    ],
    ids=[
        "size-5XB",
        "unknown-metric",
        "target-missing",
        "bad-batch-size",
        "metric-of-other-task",
        "custom-metric-import",
        "alpha-1",
    ],
)
def test_bad_input_is_one_clear_error(run_cli, store, args, needles):
    version = store["register"](store["net"], "badinput", pickle=False) if not hasattr(store, "bad") else "1"
    assert_one_clear_error(gates(run_cli, store, "badinput", version, *args), *needles)


def test_unresolvable_model_and_unreadable_data(run_cli, store):
    env = stage_env(store)
    missing = run_cli(
        "check-gates",
        "--model-uri",
        "models:/nope/9",
        "--test-data",
        str(store["data"]),
        "--target",
        "label",
        env=env,
    )
    assert_one_clear_error(missing, "models:/nope/9")
    garbage = store["home"] / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    unreadable = run_cli(
        "check-gates",
        "--model-uri",
        "models:/first/1",
        "--test-data",
        str(garbage),
        "--target",
        "label",
        env=env,
    )
    assert_one_clear_error(unreadable, "garbage.parquet")


@pytest.mark.act
def test_check_gates_action_with_act(store):
    from test_actions import act_self_test

    version = store["register"](store["net"], "act-gates", pickle=False)
    act_self_test(
        "tests/workflows/check-gates.yml",
        MLCICD_TEST_MODEL=f"models:/act-gates/{version}",
        MLCICD_TEST_DATA=str(store["data"]),
        MLCICD_HOME=str(store["home"]),
    )


def test_candidate_that_already_is_production(run_cli, store):
    version = store["register"](store["net"], "itself", alias="production", pickle=False)
    result = gates(run_cli, store, "itself", version, "--first-run", "fail")
    assert result.rc == 0, result.log
    assert "already is @production" in result.summary


def test_a_pull_request_gates_against_production_and_writes_nothing(run_cli, store):
    """A pull request whose training was skipped gates the registered version, read-only: the verdict is
    in the outputs and the report, and neither the version, its run nor the run's artifacts change."""
    store["register"](gate_candidates.Blind(store["net"]), "pr", alias="production")
    candidate = store["register"](store["net"], "pr")
    run_id = store["client"].get_model_version("pr", candidate).run_id
    before = store["client"].get_run(run_id).data
    env = {**stage_env(store), "GITHUB_EVENT_NAME": "pull_request", "GITHUB_RUN_ID": "pr-gates"}
    result = run_cli(
        "check-gates", "--model-uri", f"models:/pr/{candidate}", "--test-data", str(store["data"]), "--target", "label",
        "--latency-iterations", "30", "--min-improvement", "0.05", env=env,
    )  # fmt: skip
    assert result.rc == 0 and result.outputs["passed"] == "true", result.log
    assert "| f1 vs baseline |" in result.summary  # compared with @production, read from the throwaway copy
    assert tag(store, "pr", candidate) is None
    after = store["client"].get_run(run_id).data
    assert after.tags == before.tags and after.metrics == before.metrics
    assert not list((store["home"] / "artifacts").rglob(f"{run_id}/artifacts/mlcicd/check-gates.json"))
