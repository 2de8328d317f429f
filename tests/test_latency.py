"""Model loading, interleaved latency, size and robustness probes for the gates, on real MLflow models
(embedded SQLite store, real torch modules; on CPU unless torch sees a GPU, which the CUDA-event timer needs)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcicd.errors import UsageError
from mlcicd.latency import measure_latency, regression_ratio
from mlcicd.model_loading import LoadedModel, _load_torch_module, load_model, model_size_bytes
from mlcicd.robustness import check_robustness as robustness
from mlcicd.robustness import predicted_labels

FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))  # gate_models must import by that name: pickled models refer to it

import gate_models  # noqa: E402

FEATURES = 4
STATS = (
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "mean_ms",
    "throughput_rows_per_s",
    "iterations",
    "device",
    "timer",
    "warnings",
)


def labelled_data(rows: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def trained_classifier():
    """A two-logit classifier that actually separates the two classes of labelled_data()."""
    import torch

    torch.manual_seed(0)
    x, y = labelled_data()
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """URIs of the fixture models, logged once into an embedded store for the whole module; MLflow's
    global URI and the environment it exports are restored afterwards."""
    import mlflow
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    tmp = tmp_path_factory.mktemp("latency")
    saved = dict(os.environ)
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    try:
        experiment = mlflow.create_experiment("gates", artifact_location=(tmp / "artifacts").as_uri())
        inner = trained_classifier()
        example = np.zeros((2, FEATURES), dtype=np.float32)
        uris: dict[str, str] = {}
        with mlflow.start_run(experiment_id=experiment) as run:
            # healthy and offset go through the default pt2 (torch.export) format; the others are pickled
            # because their Python-side branches and sleeps would be traced away
            for name, module in {
                "healthy": gate_models.Imputing(inner),
                "offset": gate_models.Offset(inner),
            }.items():
                uris[name] = mlflow.pytorch.log_model(
                    module, name=name, input_example=example, pip_requirements=["torch"]
                ).model_uri
            pickled = {
                "plain": inner,
                "rejecting": gate_models.RejectsMissing(inner),
                "nan_on_large": gate_models.NanOnLarge(gate_models.Imputing(inner)),
                "one_class": gate_models.OneClass(gate_models.Imputing(inner)),
                "noisy": gate_models.Noisy(gate_models.Imputing(inner)),
                "slow": gate_models.Slow(gate_models.Imputing(inner)),
            }
            for name, module in pickled.items():
                uris[name] = mlflow.pytorch.log_model(
                    module,
                    name=name,
                    input_example=example,
                    pip_requirements=["torch"],
                    serialization_format="pickle",
                ).model_uri
            with warnings.catch_warnings():
                # TorchScript is deprecated, and MLflow's check of the serving example loads it through torch.load,
                # which warns; as errors these would only make MLflow skip that check. train-gpu still logs TorchScript.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.filterwarnings(
                    "ignore", message="'torch.load' received a zip file that looks like a TorchScript archive"
                )
                uris["scripted"] = mlflow.pytorch.log_model(
                    torch.jit.script(inner),
                    name="scripted",
                    input_example=example,
                    pip_requirements=["torch"],
                    serialization_format="pickle",
                ).model_uri
            uris["pyfunc"] = mlflow.pyfunc.log_model(
                name="pyfunc",
                python_model=gate_models.Doubler(),
                input_example=example,
                pip_requirements=["numpy"],
            ).model_uri
            # The signature is spelled out: inferring it from an integer column warns (about missing values),
            # filterwarnings=error turns that into an exception, and MLflow then logs no signature at all.
            columns = Schema(
                [ColSpec("float", "a"), ColSpec("float", "b"), ColSpec("float", "c"), ColSpec("long", "n")]
            )
            uris["pyfunc_columns"] = mlflow.pyfunc.log_model(
                name="pyfunc_columns",
                python_model=gate_models.Doubler(),
                signature=ModelSignature(inputs=columns),
                input_example=pd.DataFrame({"a": [0.0], "b": [0.0], "c": [0.0], "n": [0]}).astype(
                    {"a": "float32", "b": "float32", "c": "float32"}
                ),
                pip_requirements=["numpy"],
            ).model_uri
        mlflow.register_model(uris["healthy"], "gate-healthy")
        uris["registered"] = "models:/gate-healthy/1"
        yield {"uris": uris, "tmp": tmp, "run_id": run.info.run_id}
    finally:
        mlflow.set_tracking_uri(None)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def loaded(models):
    """Each fixture model loaded once (loading is what the other tests are not about)."""
    return {name: load_model(uri) for name, uri in models["uris"].items()}


def failed(checks) -> set[str]:
    return {c.name for c in checks if not c.passed}


# --- loading --------------------------------------------------------------------------------


def test_pytorch_flavour_loads_as_the_native_module(models, loaded):
    import torch

    for name in ("healthy", "offset", "plain", "scripted", "registered"):
        model = loaded[name]
        assert model.flavor == "pytorch" and model.device == (
            "cuda:0" if torch.cuda.is_available() else "cpu"
        ), name
        assert isinstance(model.torch_module, torch.nn.Module)
    assert isinstance(
        loaded["plain"].torch_module, torch.nn.Sequential
    )  # pickle: the very class that was logged
    x, _ = labelled_data(8)
    out = loaded["healthy"].predict(x.astype(np.float64))  # cast to float32 on the way in
    assert out.shape == (8, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, loaded["plain"].predict(x), rtol=1e-5)  # pt2 and pickle: the same network
    np.testing.assert_allclose(loaded["registered"].predict(x), out)  # models:/<name>/<version> resolves too
    assert isinstance(
        loaded["scripted"].torch_module, torch.jit.ScriptModule
    )  # as train-gpu logs a TorchScript handover
    np.testing.assert_allclose(loaded["scripted"].predict(x), loaded["plain"].predict(x), rtol=1e-6)


def test_pyfunc_only_model_loads_through_pyfunc(loaded):
    from mlflow.exceptions import MlflowException

    model = loaded["pyfunc"]
    assert model.flavor == "pyfunc" and model.torch_module is None and model.device == "cpu"
    x = np.arange(8, dtype=np.float64).reshape(
        2, FEATURES
    )  # float64 into a float32 tensor signature: cast, not refused
    np.testing.assert_allclose(model.predict(x), x * 2)
    by_columns = loaded[
        "pyfunc_columns"
    ]  # a column signature: float32 a, b, c and int64 n, all strictly enforced
    assert by_columns.flavor == "pyfunc"
    np.testing.assert_allclose(by_columns.predict(x), x * 2)
    x[0, 3] = np.nan  # NaN in an integer column: refused by MLflow's schema enforcement, as serving would
    with pytest.raises(MlflowException, match="column n"):
        by_columns.predict(x)


@pytest.mark.parametrize(
    "uri",
    ["models:/m-0123456789abcdef0123456789abcdef", "models:/no-such-model/1", "models:/no-such-model@champion", "runs:/0123456789abcdef0123456789abcdef/model", "models:/", ""],
)  # fmt: skip
def test_unresolvable_uri_is_a_usage_error(models, uri):
    with pytest.raises(UsageError) as caught:
        load_model(uri)
    assert caught.value.title == "model not found"
    assert uri in caught.value.message
    with pytest.raises(UsageError, match="model not found"):
        model_size_bytes(uri)


def test_path_without_a_model_and_a_run_without_that_artifact_are_not_found(models):
    for uri in (str(models["tmp"] / "nothing-here"), f"runs:/{models['run_id']}/not-a-model"):
        with pytest.raises(UsageError, match="model not found"):
            load_model(uri)


def test_pt2_model_moves_with_the_tensors_its_graph_creates(models):
    """The device move of an exported model, on the `meta` device standing in for a GPU (there may be none)."""
    import mlflow
    import torch

    uri = models["uris"]["offset"]
    x = torch.zeros(3, FEATURES, device="meta")
    with pytest.raises(RuntimeError, match="device"):
        mlflow.pytorch.load_model(uri).to("meta")(
            x
        )  # why .to() is not enough: torch.ones(2) stays on the CPU
    module = _load_torch_module(uri, mlflow.models.get_model_info(uri).flavors["pytorch"], "meta")
    out = module(x)
    assert out.device.type == "meta" and tuple(out.shape) == (3, 2)


def test_model_whose_class_is_gone_does_not_load(models, monkeypatch):
    """A pickled module whose class cannot be imported where the gate runs: a usage error that says so."""
    import types

    import mlflow
    import torch

    source = types.ModuleType("gate_models_gone")  # a module that exists only while the model is logged
    source.Gone = type("Gone", (torch.nn.Linear,), {"__module__": "gate_models_gone"})
    monkeypatch.setitem(sys.modules, "gate_models_gone", source)
    with mlflow.start_run(run_id=models["run_id"]):
        uri = mlflow.pytorch.log_model(
            source.Gone(FEATURES, 2), name="gone", pip_requirements=["torch"], serialization_format="pickle"
        ).model_uri
    monkeypatch.delitem(sys.modules, "gate_models_gone")
    with pytest.raises(UsageError) as caught:
        load_model(uri)
    assert caught.value.title == "model does not load"
    assert (
        "ModuleNotFoundError: No module named 'gate_models_gone'" in caught.value.message
        and "code_paths" in caught.value.message
    )


def test_asking_for_a_gpu_that_is_not_there_is_a_usage_error(models):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UsageError, match="no GPU"):
        load_model(models["uris"]["healthy"], device="cuda")


# --- latency --------------------------------------------------------------------------------


def test_latency_results_are_complete_and_ordered(loaded):
    import torch

    gpu = torch.cuda.is_available()
    x, _ = labelled_data(10)  # fewer rows than the larger batch: tiled
    results = measure_latency(
        {"candidate": loaded["healthy"], "baseline": loaded["plain"]}, x, batch_sizes=(1, 32)
    )
    assert set(results) == {"candidate", "baseline"}
    for name, per_size in results.items():
        assert set(per_size) == {1, 32}
        for size, r in per_size.items():
            assert set(r) == set(STATS), (name, size)
            assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"], r
            assert r["throughput_rows_per_s"] > 0 and r["iterations"] == 100
            assert r["device"] == ("cuda:0" if gpu else "cpu") and r["timer"] == (
                "cuda-events" if gpu else "perf_counter"
            )
            assert r["warnings"] == []
    print(
        f"\nhealthy (pt2) vs plain (pickle), {'GPU' if gpu else 'CPU'}:",
        {n: {b: round(r["p50_ms"], 4) for b, r in s.items()} for n, s in results.items()},
    )


@pytest.fixture
def one_thread():
    """torch on one intra-op thread for a test: on a small shared runner (2 cores here) a batch op split
    across threads waits for whichever peer the OS descheduled, adding milliseconds of noise to either
    model at random, and the test is about the 2 ms the slow model adds, not about the runner."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_slower_model_shows_as_a_regression_when_interleaved(loaded, one_thread):
    x, _ = labelled_data(32)
    results = measure_latency(
        {"candidate": loaded["slow"], "baseline": loaded["healthy"]},
        x,
        batch_sizes=(1, 32),
        warmup=3,
        iterations=30,
    )
    for size in (1, 32):
        ratio = regression_ratio(results, "candidate", "baseline", size, stat="p50_ms")
        print(f"\nslow vs healthy, batch {size}: p50 {results['candidate'][size]['p50_ms']:.3f} ms vs "
              f"{results['baseline'][size]['p50_ms']:.3f} ms, ratio {ratio:.1f}")  # fmt: skip
        assert ratio > 1.5
        assert results["candidate"][size]["p50_ms"] >= 2.0  # the sleep is in every call
        assert regression_ratio(results, "baseline", "baseline", size) == 1.0
    assert "p99 needs at least 100" in results["candidate"][1]["warnings"][0]  # 30 iterations: said so
    with pytest.raises(UsageError, match="no such latency result"):
        regression_ratio(results, "candidate", "baseline", 64)


class Recorder:
    """A stand-in pyfunc that records which model ran when."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.log.append(self.name)
        return x[:, :1]


def test_models_run_interleaved_in_rotating_order():
    log: list[str] = []
    models = {n: LoadedModel("pyfunc", "cpu", pyfunc_model=Recorder(n, log)) for n in ("a", "b")}
    measure_latency(models, np.ones((1, 3)), batch_sizes=(2,), warmup=2, iterations=4)
    assert (
        "".join(log) == "ab" + "ba" + "ab" + "ba" + "ab" + "ba"
    )  # warmup, then the timed calls, first one alternating


def test_latency_rejects_bad_arguments(loaded):
    x, _ = labelled_data(4)
    for kwargs in ({"batch_sizes": (0,)}, {"iterations": 0}, {"batch_sizes": ()}):
        with pytest.raises(UsageError):
            measure_latency({"m": loaded["plain"]}, x, **kwargs)
    with pytest.raises(UsageError, match="bad sample"):
        measure_latency({"m": loaded["plain"]}, np.ones(4))


# --- size -----------------------------------------------------------------------------------


def test_model_size_is_the_sum_of_its_artifacts(models, loaded):
    import mlflow

    uri = models["uris"]["healthy"]
    size = model_size_bytes(uri)
    downloaded = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(models["tmp"] / "download"))
    )
    files = [
        p for p in downloaded.rglob("*") if p.is_file() and p.name != "registered_model_meta"
    ]  # MLflow's, written on download
    assert size == sum(p.stat().st_size for p in files)  # the listing agrees with a download
    assert model_size_bytes(models["uris"]["registered"]) == size  # however the URI names it
    weights = sum(p.numel() * p.element_size() for p in loaded["plain"].torch_module.parameters())
    assert weights < size < 1_000_000, (weights, size)
    print(f"\nsize of the healthy model (pt2): {size} bytes, {weights} bytes of weights")


# --- robustness -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["reject", "handle"])
def test_healthy_model_passes_every_check(loaded, missing):
    x, y = labelled_data(64)
    checks = robustness(loaded["healthy"], x, y, "classification", missing)
    assert [c.name for c in checks] == [
        "zeros input",
        "extreme values",
        "determinism",
        "class collapse",
        "missing values",
    ]
    assert failed(checks) == set(), checks


def test_regression_and_no_labels_leave_out_class_collapse(loaded):
    x, y = labelled_data(64)
    assert "class collapse" not in {
        c.name for c in robustness(loaded["healthy"], x, None, "classification", "reject")
    }
    assert "class collapse" not in {
        c.name for c in robustness(loaded["healthy"], x, y, "regression", "reject")
    }


def test_nan_for_large_inputs_fails_extreme_values(loaded):
    x, y = labelled_data(64)
    checks = robustness(loaded["nan_on_large"], x, y, "classification", "handle")
    assert failed(checks) == {"extreme values"}, checks
    detail = next(c.detail for c in checks if c.name == "extreme values")
    assert "NaN or infinite" in detail


def test_one_class_model_fails_class_collapse(loaded):
    x, y = labelled_data(64)
    checks = robustness(loaded["one_class"], x, y, "classification", "handle")
    assert failed(checks) == {"class collapse"}, checks
    assert "never [1]" in next(c.detail for c in checks if c.name == "class collapse")


def test_noisy_model_fails_determinism(loaded):
    x, y = labelled_data(64)
    checks = robustness(loaded["noisy"], x, y, "classification", "handle")
    assert failed(checks) == {"determinism"}, checks
    assert "largest difference" in next(c.detail for c in checks if c.name == "determinism")


def test_missing_values_reject_mode(loaded):
    x, y = labelled_data(64)
    rejecting = {c.name: c for c in robustness(loaded["rejecting"], x, y, "classification", "reject")}
    assert rejecting["missing values"].passed
    assert "ValueError: input has missing values: impute them" in rejecting["missing values"].detail
    assert "second line" not in rejecting["missing values"].detail
    imputing = {c.name: c for c in robustness(loaded["healthy"], x, y, "classification", "reject")}
    assert imputing["missing values"].passed  # finite outputs are fine too
    propagating = {c.name: c for c in robustness(loaded["plain"], x, y, "classification", "reject")}
    assert not propagating["missing values"].passed  # NaN scores without an error: the worst case
    assert "neither rejected nor handled" in propagating["missing values"].detail


def test_missing_values_handle_mode(loaded):
    x, y = labelled_data(64)
    assert failed(robustness(loaded["rejecting"], x, y, "classification", "handle")) == {"missing values"}
    assert failed(robustness(loaded["plain"], x, y, "classification", "handle")) == {"missing values"}
    assert failed(robustness(loaded["healthy"], x, y, "classification", "handle")) == set()


class Broken:
    """A pyfunc whose predict always fails."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("CUDA error: device-side assert triggered\nmore")


def test_a_crashing_model_fails_every_check_without_raising():
    x, y = labelled_data(16)
    checks = robustness(LoadedModel("pyfunc", "cpu", pyfunc_model=Broken()), x, y, "classification", "handle")
    assert len(checks) == 5 and not any(c.passed for c in checks)
    assert all("RuntimeError: CUDA error: device-side assert triggered" in c.detail for c in checks)


class Labels:
    """A pyfunc that returns string labels, and only "no"."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.array(["no"] * len(x), dtype=object)


def test_class_collapse_with_string_labels():
    x, y = labelled_data(16)
    checks = robustness(
        LoadedModel("pyfunc", "cpu", pyfunc_model=Labels()),
        x,
        np.where(y == 1, "yes", "no"),
        "classification",
        "reject",
    )
    assert failed(checks) == {"class collapse"}
    assert "never ['yes']" in next(c.detail for c in checks if c.name == "class collapse")


def test_robustness_rejects_bad_arguments(loaded):
    x, y = labelled_data(8)
    with pytest.raises(UsageError, match="bad task"):
        robustness(loaded["healthy"], x, y, "ranking", "reject")
    with pytest.raises(UsageError, match="bad missing-value policy"):
        robustness(loaded["healthy"], x, y, "classification", "ignore")


@pytest.mark.parametrize(
    ("out", "labels"),
    [
        (np.array([[0.1, 0.9], [0.8, 0.2]]), [1, 0]),  # scores: argmax
        (np.array([[0.7], [0.2]]), [1, 0]),  # one probability column: threshold 0.5
        (np.array([2.0, 0.0, 1.0]), [2, 0, 1]),  # integer-like values are the labels
        (np.array(["yes", "no"]), ["yes", "no"]),
    ],
)
def test_predicted_labels(out, labels):
    assert predicted_labels(out).tolist() == labels
