"""check-gates: decide whether a candidate model may be promoted.

Absolute thresholds on the test metrics, improvement over the model behind `compare-to`
(production by default) with a paired significance test on the same rows, latency measured
interleaved with that model in the same process (CUDA events on a GPU), artifact size,
robustness probes and, optionally, a real `mlflow models serve` round trip. Every gate is
evaluated and reported, so one run lists all failures; the result is tagged on the model
version and its run (`mlcicd.gates.passed`), which promote reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlcicd import __version__, github, readonly, tracking
from mlcicd.config import Option, Stage, boolean, choice, number, text
from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.report import check_report_path, default_report_path, markdown_table, write_json

NAME = "check-gates"
SERVE_ROWS = 20
SERVE_START_SECONDS = 180


def optional_number(**bounds: Any):
    parse = number(**bounds)

    def optional(value: Any) -> float | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return parse(value)

    return optional


def size(value: Any) -> int | None:
    from mlcicd.metrics import parse_size

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_size(str(value))


def batch_sizes(value: Any) -> list[int]:
    items = value if isinstance(value, list) else text(value).split(",")
    result = []
    for item in items:
        raw = str(item).strip()
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{item!r} is not a batch size (a whole number >= 1)")
        result.append(int(raw))
    if not result:
        raise ValueError("give at least one batch size, e.g. `1,32`")
    return result


def custom_metrics(value: Any) -> list[str]:
    items = value if isinstance(value, list) else text(value).replace("\n", ",").split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    for item in items:
        if not re.fullmatch(r"[\w.]+:[\w.]+", item):
            raise ValueError(f"{item!r} is not `module:function`")
    return items


THRESHOLDS = (
    ("min-accuracy", "accuracy"),
    ("min-f1", "f1"),
    ("min-roc-auc", "roc_auc"),
    ("max-rmse", "rmse"),
    ("max-mae", "mae"),
    ("min-r2", "r2"),
)

LEVELS = ("fail", "warn", "off")
PROBE_OPTIONS = (
    # (option, probe, default level, help, example): what fails by default is what breaks in production
    (
        "probe-zeros",
        "zeros input",
        "fail",
        "level of the zeros-input probe (all-zero numeric features must give finite outputs): "
        "`fail` (a failed probe fails the gates), `warn` (shown as ⚠️, does not fail) or `off` (not run)",
        "warn",
    ),
    (
        "probe-extremes",
        "extreme values",
        "fail",
        "level of the extreme-values probe (±1e6 numeric features must give finite outputs): `fail`, `warn` or `off`",
        "warn",
    ),
    (
        "probe-determinism",
        "determinism",
        "fail",
        "level of the determinism probe (the same rows twice must give the same outputs): `fail`, `warn` or `off`",
        "warn",
    ),
    (
        "probe-class-collapse",
        "class collapse",
        "fail",
        "level of the class-collapse probe (a classifier must predict every class of the test data): `fail`, `warn` or `off`",
        "warn",
    ),
    (
        "probe-missing-values",
        "missing values",
        "warn",
        "level of the missing-values probe (a NaN cell must be handled or rejected as `missing-values` says): `fail`, `warn` "
        "or `off`. `warn` by default: many good models pass NaN through, and a gate every first run fails gets switched off",
        "fail",
    ),
)

OPTIONS = (
    Option(
        "model-uri",
        text,
        "",
        "the candidate: `models:/<name>/<version>`, `models:/<name>@<alias>`, `models:/m-<id>` (a logged "
        "model) or `runs:/<run>/<path>`. Other forms (including `models:/<name>/latest`) are rejected with "
        "exit 2. Only the first two forms name a registered version that gets the version tags",
        "models:/churn/7",
        shown_default="none (required)",
    ),
    Option(
        "model-name",
        tracking.registered_model_name,
        "",
        "registered model whose `compare-to` alias is the baseline. Used only with `models:/m-<id>` and "
        "`runs:/…` URIs, whose default is the name train-gpu trained the run for (run tag "
        "`mlcicd.model_name`); with `models:/<name>/…` the name in the URI is used and this input is "
        "ignored. Checked by MLflow's own rules (no `/`, `:` or control characters) before anything runs",
        "churn",
        shown_default="the name in `model-uri`, else the training run's",
    ),
    Option(
        "test-data",
        text,
        "",
        "labelled test data the model has not seen: CSV (`.csv`, `.tsv`), Parquet (`.parquet`, `.pq`) or "
        "JSON Lines (`.jsonl`, `.ndjson`), a file, a directory or a glob. Every column except `target` is a "
        "feature; a PyTorch model needs them all numeric (see Test data and predictions in the check-gates "
        "docs). CSV is read as UTF-8 with `,` (tab for `.tsv`)",
        "data/test.parquet",
        is_path=True,
        shown_default="none (required)",
    ),
    Option("target", text, "", "the label column of `test-data`", "churned", shown_default="none (required)"),
    Option(
        "task",
        choice("classification", "regression"),
        "classification",
        "`classification` or `regression`: which metrics are computed and how the model's output is read",
        "regression",
    ),
    *(
        Option(
            name,
            optional_number(),
            None,
            f"fail when the candidate's {metric} is {'below' if name.startswith('min') else 'above'} this",
            "0.9",
            shown_default="none: no gate",
        )
        for name, metric in THRESHOLDS
    ),
    Option(
        "custom-metrics",
        custom_metrics,
        [],
        "extra metrics, comma- or newline-separated `module:function` names; each is called as "
        "`function(y_true, y_pred)` and must return a number (higher is better). Reported beside the "
        "built-in metrics for candidate and baseline and logged on the run; never gated. The module is "
        "imported from the working directory",
        "mymetrics:revenue",
    ),
    Option(
        "primary-metric",
        text,
        "",
        "the metric the comparison gate compares: `accuracy`, `f1`, `roc_auc`, `rmse`, `mae` or `r2`",
        "roc_auc",
        shown_default="`f1` for classification, `rmse` for regression",
    ),
    Option(
        "compare-to",
        text,
        "production",
        "alias of the baseline version of the registered model. `none` turns comparison off (no baseline, "
        "no first-run gate, no latency regression gate)",
        "staging",
    ),
    Option(
        "min-improvement",
        optional_number(),
        None,
        "required relative improvement of the primary metric over the baseline, in the metric's better "
        "direction (`0.01` = 1 % better; `0` = not worse; `-0.01` = at most 1 % worse)",
        "0.01",
    ),
    Option(
        "min-absolute-change",
        optional_number(),
        None,
        "required absolute improvement of the primary metric over the baseline, in its units and better "
        "direction. With `min-improvement` both must hold",
        "0.005",
    ),
    Option(
        "require-significance",
        boolean,
        False,
        "the candidate must also be strictly better with a paired test p-value below `alpha` (McNemar for "
        "accuracy, a paired permutation test otherwise)",
        "true",
    ),
    Option(
        "alpha", number(positive=True, maximum=0.5), 0.05, "significance level of the paired test, greater than 0 and at most 0.5", "0.01"
    ),
    Option(
        "first-run",
        choice("pass", "fail"),
        "pass",
        "what the `compare to @<alias>` gate says when no baseline version is found (e.g. the alias does not exist yet): `pass` or `fail`",
        "fail",
    ),
    Option(
        "max-latency-p95-ms",
        optional_number(positive=True),
        None,
        "p95 latency limit in milliseconds at the first of `latency-batch-sizes`. CLI alias `--max-latency-p95`",
        "50",
        aliases=("max-latency-p95",),
    ),
    Option(
        "max-latency-p99-ms",
        optional_number(positive=True),
        None,
        "p99 latency limit in milliseconds at the first of `latency-batch-sizes`. CLI alias `--max-latency-p99`",
        "100",
        aliases=("max-latency-p99",),
    ),
    Option(
        "latency-batch-sizes",
        batch_sizes,
        [1, 32],
        "comma-separated batch sizes to time (whole numbers ≥ 1). The first one is the one the p95/p99 limits apply to",
        "1,32,256",
    ),
    Option(
        "latency-iterations",
        optional_number(positive=True),
        200.0,
        "timed calls per batch size and model, interleaved with the baseline, after 10 warm-up calls. "
        "Truncated to a whole number, which must be at least 1. Below 100 the p99 is not a tail estimate",
        "500",
    ),
    Option(
        "max-latency-regression",
        optional_number(positive=True),
        None,
        "limit on candidate p99 ÷ baseline p99, per batch size, measured interleaved. Needs a baseline",
        "1.2",
    ),
    Option(
        "max-model-size",
        size,
        None,
        "limit on the size of the logged model's artifacts: a number of bytes, or with a unit `B`, `KB`, "
        "`MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024), case-insensitive",
        "500MB",
    ),
    Option(
        "robustness", boolean, True, "run the robustness probes on the candidate, each at its `probe-*` level; `false` runs none", "false"
    ),
    *(Option(option, choice(*LEVELS), level, help, example) for option, _probe, level, help, example in PROBE_OPTIONS),
    Option(
        "missing-values",
        choice("reject", "handle"),
        "reject",
        "what the missing-values probe accepts: `reject` (the model may raise on NaN input, or return "
        "finite outputs) or `handle` (it must return finite outputs)",
        "handle",
    ),
    Option(
        "serve-check",
        boolean,
        False,
        "serve the candidate with `mlflow models serve` on loopback and compare its answers with in-process predictions",
        "true",
    ),
    Option(
        "serve-only",
        boolean,
        False,
        "only the serve check, for a deploy job (deploy.yml's `serve-check` job): no metric, comparison, "
        "latency, size or robustness gates, and the `mlcicd.gates.passed` verdict recorded at training time "
        "is left as it is. Still needs `test-data` and `target` (the rows it sends)",
        "true",
    ),
    Option("report", text, default_report_path(NAME), "where to write the JSON report", "reports/check-gates.json", is_path=True),
)


# --- candidate and baseline -------------------------------------------------------------------


def resolve_candidate(client: Any, uri: str, model_name: str) -> tuple[str, Any | None, str | None]:
    """(model name, registered version or None, run id or None) for the candidate URI."""
    from mlflow.exceptions import MlflowException

    match = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w-]+))", uri)
    try:
        if match and not match.group(1).startswith("m-"):
            name = match.group(1)
            version = (
                client.get_model_version(name, match.group(2))
                if match.group(2)
                else client.get_model_version_by_alias(name, match.group(3))
            )
            return name, version, version.run_id
        if uri.startswith("models:/m-"):
            logged = client.get_logged_model(uri.removeprefix("models:/").split("/")[0])
            return model_name or trained_for(client, logged.source_run_id), None, logged.source_run_id
        if uri.startswith("runs:/"):
            run_id = uri.removeprefix("runs:/").split("/")[0]
            return model_name or trained_for(client, run_id), None, run_id
    except MlflowException as exc:
        raise UsageError("candidate model not found", f"`{uri}` does not resolve: {str(exc).splitlines()[0]}. Check `model-uri`.") from None
    raise UsageError(
        "unsupported model-uri", f"`{uri}`: use models:/<name>/<version>, models:/<name>@<alias>, models:/m-<id> or runs:/<run_id>/<path>."
    )


def trained_for(client: Any, run_id: str | None) -> str:
    """The registered model name train-gpu recorded on the run it trained ('' for a run it did not start)."""
    if not run_id:
        return ""
    return client.get_run(run_id).data.tags.get(tracking.TAG_MODEL_NAME, "")


def find_baseline(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    if not name or alias.lower() in ("", "none"):
        return None
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None  # no such alias (or model) yet: a first run
        raise


# --- data and predictions ---------------------------------------------------------------------


def load_test_data(values: dict[str, Any]) -> tuple[Any, Any, list[str]]:
    import pandas as pd

    from mlcicd.data import iter_batches, resolve_files

    if not values["target"]:
        raise UsageError("missing target", "`target` (the label column of test-data) is required, e.g. `churned`.")
    files = resolve_files(values["test-data"], option="test-data")
    frame = pd.concat([batch.to_pandas() for _, batch in iter_batches(files)], ignore_index=True)
    if frame.empty:
        raise UsageError("no test rows", f"{values['test-data']} has no rows.", file=values["test-data"])
    if values["target"] not in frame.columns:
        raise UsageError(
            "target not in test-data",
            f"`{values['target']}` is not a column of {values['test-data']} (columns: {', '.join(map(str, frame.columns[:10]))}). "
            "Set `target` to the label column.",
        )
    y = frame.pop(values["target"]).to_numpy()
    # Named columns with their dtypes: a pyfunc model gets them as they are (by its signature), a PyTorch module
    # their numbers by position (mlcicd.model_input).
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
    if np.issubdtype(flat.dtype, np.floating) and np.all((flat >= 0) & (flat <= 1)) and not np.all(np.isin(flat, (0.0, 1.0))):
        return (flat >= 0.5).astype(int), flat
    return flat, None


def evaluate(model: Any, x: Any, y: Any, values: dict[str, Any]) -> dict[str, Any]:
    from mlcicd import metrics

    try:
        raw = model.predict(x)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own code failed on the test rows: the user's to fix, not a bug here
        lines = str(exc).strip().splitlines()
        raise UsageError(
            "model fails on the test data",
            f"{model.uri or 'model'} raised {type(exc).__name__}: {lines[0][:300] if lines else ''}. Give it test data with the "
            "columns and types it was trained on (its signature), or make the model accept them (e.g. a Pipeline step that encodes "
            "them), as serving will send the same.",
        ) from None
    predicted, proba = labels_from(raw, values["task"])
    try:
        if values["task"] == "classification":
            scores = metrics.classification_metrics(y, predicted, proba)
        else:
            scores = metrics.regression_metrics(y.astype(float), predicted)
    except ValueError as exc:
        raise UsageError("model output does not fit the test data", f"{model.uri or 'model'}: {exc}. Check `task` and `target`.") from None
    for spec in values["custom-metrics"]:
        try:
            scores[spec] = float(metrics.load_custom_metric(spec)(y, predicted))
        except ValueError as exc:
            raise UsageError("custom metric failed", f"`{spec}` (custom-metrics): {exc}") from None
    return {"scores": scores, "predicted": predicted, "proba": proba}


# --- gates ------------------------------------------------------------------------------------


def metric_gates(values: dict[str, Any], cand: dict[str, Any], base: dict[str, Any] | None, y: Any) -> tuple[list[Any], dict[str, Any]]:
    """Absolute thresholds, then the improvement (and significance) gate on the primary metric."""
    from mlcicd import metrics

    gates = []
    for option, metric in THRESHOLDS:
        if values[option] is not None:
            value = cand["scores"].get(metric)
            if value is None:
                raise UsageError(
                    f"metric {metric} not available",
                    f"`{option}` is set, but {metric} cannot be computed for this {values['task']} model (e.g. roc_auc needs class probabilities).",
                )
            gates.append(metrics.threshold_gate(metric, value, values[option]))
    primary = values["primary-metric"] or ("f1" if values["task"] == "classification" else "rmse")
    valid = [m for m, info in metrics.METRICS.items() if info.kind == values["task"]]
    if primary not in valid:
        raise UsageError("unknown primary-metric", f"`{primary}` is not a {values['task']} metric: use one of {', '.join(valid)}.")
    significance: dict[str, Any] = {}
    if base is None:
        return gates, {"primary": primary}
    higher, _kind, test = metrics.METRICS[primary]
    # with no min-improvement / min-absolute-change the candidate must at least not be worse
    if base is not None:
        if test == "mcnemar":
            stat, p, b, c = metrics.mcnemar(cand["predicted"] == y, base["predicted"] == y)
            significance = {"test": "mcnemar", "statistic": stat, "p_value": p, "candidate_only_right": b, "baseline_only_right": c}
        else:
            use_proba = primary == "roc_auc"
            if use_proba and (cand["proba"] is None or base["proba"] is None):
                raise UsageError(
                    "roc_auc needs probabilities",
                    "`primary-metric: roc_auc` needs models that output class probabilities; choose f1 or accuracy.",
                )
            boot = metrics.paired_bootstrap(
                primary,
                y if values["task"] == "classification" else y.astype(float),
                cand["proba"] if use_proba else cand["predicted"],
                base["proba"] if use_proba else base["predicted"],
                higher_is_better=higher,
                alpha=values["alpha"],
            )
            significance = {"test": "paired permutation (bootstrap interval)", **boot}
        gates.append(
            metrics.compare_to_baseline(
                primary,
                cand["scores"][primary],
                base["scores"][primary],
                min_improvement=values["min-improvement"],
                min_absolute_change=values["min-absolute-change"],
                p_value=significance.get("p_value"),
                require_significance=values["require-significance"],
                alpha=values["alpha"],
            )
        )
    return gates, {"primary": primary, **significance}


def gate(name: str, candidate: Any, baseline: Any, threshold: Any, passed: bool, detail: str) -> Any:
    from mlcicd.metrics import GateResult

    delta = candidate - baseline if isinstance(candidate, (int, float)) and isinstance(baseline, (int, float)) else None
    return GateResult(name, candidate, baseline, delta, threshold, passed, detail)


def latency_gates(values: dict[str, Any], results: dict[str, Any]) -> list[Any]:
    from mlcicd.latency import regression_ratio

    gates = []
    first = values["latency-batch-sizes"][0]
    cand = results["candidate"][first]
    base = results.get("baseline", {}).get(first)
    for stat, option in (("p95_ms", "max-latency-p95-ms"), ("p99_ms", "max-latency-p99-ms")):
        limit = values[option]
        if limit is not None:
            gates.append(
                gate(
                    f"latency {stat[:3]} @ batch {first}",
                    cand[stat],
                    base[stat] if base else None,
                    limit,
                    cand[stat] <= limit,
                    f"{cand[stat]:.2f} ms (limit {limit:g} ms, {cand['device']})",
                )
            )
    if values["max-latency-regression"] is not None and "baseline" in results:
        for batch in values["latency-batch-sizes"]:
            ratio = regression_ratio(results, "candidate", "baseline", batch, stat="p99_ms")
            limit = values["max-latency-regression"]
            gates.append(
                gate(
                    f"latency regression @ batch {batch}",
                    ratio,
                    1.0,
                    limit,
                    ratio <= limit,
                    f"p99 candidate/baseline = {ratio:.2f} (limit {limit:g})",
                )
            )
    return gates


def probe_levels(values: dict[str, Any]) -> dict[str, str]:
    """{probe: fail | warn} of the probes to run: none with `robustness: false`, and none whose level is `off`."""
    if not values["robustness"]:
        return {}
    return {probe: values[option] for option, probe, *_ in PROBE_OPTIONS if values[option] != "off"}


def probe_gate(check: Any, level: str) -> Any:
    """A probe's gate: a failed `warn` probe passes, marked as a warning with its detail."""
    from mlcicd.metrics import GateResult

    if check.passed or level == "fail":
        return gate(f"robustness: {check.name}", None, None, None, check.passed, check.detail)
    option = next(o for o, probe, *_ in PROBE_OPTIONS if probe == check.name)
    detail = f"warning only (`{option}: warn`): {check.detail}"
    return GateResult(f"robustness: {check.name}", None, None, None, None, True, detail, warning=True)


# --- serving ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_check(model_uri: str, x: Any, expected: Any) -> Any:
    """`mlflow models serve --env-manager local` on loopback: answers must match in-process predictions. Named
    rows (a DataFrame) go as `dataframe_split`, an array as `inputs`."""
    import numpy as np
    import requests

    from mlcicd.model_input import head, to_json_rows

    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_bin) if mlflow_bin.exists() else "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with tempfile.TemporaryFile() as log:
        # `mlflow models serve` execs uvicorn by name: it must find the toolkit's own, whose
        # directory is not on PATH (setup puts only a shim there).
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            deadline = time.monotonic() + SERVE_START_SECONDS
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                    return gate(
                        "serve check", None, None, None, False, f"`mlflow models serve` exited {server.returncode}: {' | '.join(tail)}"
                    )
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    return gate("serve check", None, None, None, False, f"the server did not answer /ping within {SERVE_START_SECONDS}s")
                time.sleep(0.5)
            rows = head(x, SERVE_ROWS)
            response = requests.post(f"http://127.0.0.1:{port}/invocations", json=to_json_rows(rows), timeout=60)
            if response.status_code != 200:
                return gate(
                    "serve check", None, None, None, False, f"POST /invocations answered HTTP {response.status_code}: {response.text[:200]}"
                )
            try:
                served = np.asarray(response.json()["predictions"])
                local = np.asarray(expected[: len(rows)]).reshape(served.shape)
            except (ValueError, KeyError, TypeError) as exc:
                return gate(
                    "serve check", None, None, None, False, f"unexpected /invocations answer ({type(exc).__name__}): {response.text[:200]}"
                )
            if served.dtype.kind in "biuf" and local.dtype.kind in "biuf":
                same = bool(np.allclose(served.astype(float), local.astype(float), rtol=1e-4, atol=1e-5))
            else:  # labels as strings
                same = bool(np.array_equal(served.astype(str), local.astype(str)))
            return gate(
                "serve check",
                None,
                None,
                None,
                same,
                f"{len(rows)} rows over HTTP {'match' if same else 'DIFFER from'} in-process predictions",
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, 15)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, 9)
                server.wait()


# --- the stage ----------------------------------------------------------------------------


def run(values: dict[str, Any]) -> int:
    from mlflow import MlflowClient

    from mlcicd.latency import check_robustness, load_model, measure_latency, model_size_bytes
    from mlcicd.model_input import head

    if not values["model-uri"]:
        raise UsageError(
            "missing model-uri", "`model-uri` (the candidate) is required, e.g. `models:/churn/7` or the `model-uri` output of train-gpu."
        )
    if not values["test-data"]:
        raise UsageError("missing test-data", "`test-data` (labelled rows the model has not seen) is required.")
    check_report_path(values["report"])  # before the verdict is tagged on the version
    x, y, columns = load_test_data(values)
    tracking.connect()
    client = MlflowClient()
    name, version, run_id = resolve_candidate(client, values["model-uri"], values["model-name"])
    if values["serve-only"]:
        return serve_only(values, x, y, columns, name, version, run_id)
    baseline_version = find_baseline(client, name, values["compare-to"])
    compare = values["compare-to"].lower() not in ("", "none")
    if compare and not name:
        raise UsageError(
            "missing model-name",
            f"`{values['model-uri']}` names no registered model: set `model-name` so `@{values['compare-to']}` can be found, or `compare-to: none`.",
        )
    is_baseline = baseline_version is not None and version is not None and str(baseline_version.version) == str(version.version)
    if is_baseline:
        baseline_version = None  # nothing to compare with itself

    candidate = load_model(values["model-uri"])
    baseline = load_model(f"models:/{name}/{baseline_version.version}") if baseline_version is not None else None
    cand = evaluate(candidate, x, y, values)
    base = evaluate(baseline, x, y, values) if baseline is not None else None

    gates, significance = metric_gates(values, cand, base, y)
    first_run = None
    alias = values["compare-to"]
    if is_baseline:
        gates.append(gate(f"compare to @{alias}", None, None, None, True, f"the candidate already is @{alias}: nothing to compare"))
    elif compare and base is None:
        first_run = values["first-run"]
        verdict = "passed" if first_run == "pass" else "failed"
        detail = f"no @{alias} version of `{name or '?'}` yet: first run, {verdict} by `first-run: {first_run}`"
        gates.append(gate(f"compare to @{alias}", None, None, None, first_run == "pass", detail))

    models = {"candidate": candidate, **({"baseline": baseline} if baseline is not None else {})}
    latency = measure_latency(models, x, batch_sizes=values["latency-batch-sizes"], iterations=int(values["latency-iterations"]))
    gates += latency_gates(values, latency)

    size_bytes = model_size_bytes(values["model-uri"])
    if values["max-model-size"] is not None:
        limit = values["max-model-size"]
        gates.append(
            gate(
                "model size", size_bytes, None, limit, size_bytes <= limit, f"{size_bytes / 2**20:.2f} MiB (limit {limit / 2**20:.2f} MiB)"
            )
        )

    levels = probe_levels(values)
    if levels:
        robustness = check_robustness(
            candidate, x, y if values["task"] == "classification" else None, values["task"], values["missing-values"], probes=list(levels)
        )
        gates += [probe_gate(c, levels[c.name]) for c in robustness]
    if values["serve-check"]:
        gates.append(serve_check(values["model-uri"], x, candidate.predict(head(x, SERVE_ROWS))))

    failed = [g.gate for g in gates if not g.passed]
    report = {
        "stage": NAME,
        "version": __version__,
        "passed": not failed,
        "failed_gates": failed,
        "warnings": [g.gate for g in gates if g.warning],
        "candidate": {
            "model_uri": values["model-uri"],
            "model_name": name,
            "model_version": version.version if version else None,
            "run_id": run_id,
        },
        "baseline": {
            "alias": values["compare-to"],
            "model_version": baseline_version.version if baseline_version else None,
            "first_run": first_run,
        },
        "task": values["task"],
        "test_rows": int(len(y)),
        "features": columns,
        "metrics": {"candidate": cand["scores"], "baseline": base["scores"] if base else None},
        "significance": significance,
        "latency": latency,
        "model_size_bytes": size_bytes,
        "gates": [g.__dict__ for g in gates],
    }
    record(client, report, version, run_id, values)
    return conclude(values, report, gates, version)


def conclude(values: dict[str, Any], report: dict[str, Any], gates: list[Any], version: Any) -> int:
    """The report file, the step outputs and summary, and one annotation when a gate failed."""
    failed = report["failed_gates"]
    path = write_json(values["report"], report)
    github.set_outputs(
        {
            "passed": "true" if not failed else "false",
            "report": path,
            "metrics": json.dumps(report["metrics"]["candidate"]),
            "failed-gates": json.dumps(failed),
            "version": str(version.version) if version is not None else "",
        }
    )
    github.write_summary(render_summary(report))
    if failed:
        github.error(
            f"{len(failed)} gate(s) failed: " + "; ".join(f"{g.gate}: {g.detail}" for g in gates if not g.passed),
            title=f"{NAME}: {'serve check failed' if report.get('serve_only') else 'model not promotable'}",
        )
        return CHECK_FAILED
    return PASSED


def serve_only(values: dict[str, Any], x: Any, y: Any, columns: list[str], name: str | None, version: Any, run_id: str | None) -> int:
    """deploy.yml's check of the exact version before it gets traffic: `mlflow models serve` answers as the
    model does in-process. Quality was judged at training time, on the runner meant for it: its
    verdict tag stays as it is, and nothing is re-measured on a deploy runner that may not be alike."""
    from mlcicd.latency import load_model
    from mlcicd.model_input import head

    candidate = load_model(values["model-uri"])
    gates = [serve_check(values["model-uri"], x, candidate.predict(head(x, SERVE_ROWS)))]
    report = {
        "stage": NAME,
        "version": __version__,
        "serve_only": True,
        "passed": all(g.passed for g in gates),
        "failed_gates": [g.gate for g in gates if not g.passed],
        "candidate": {
            "model_uri": values["model-uri"],
            "model_name": name,
            "model_version": version.version if version else None,
            "run_id": run_id,
        },
        "baseline": {"alias": "none", "model_version": None, "first_run": None},
        "task": values["task"],
        "test_rows": int(len(y)),
        "features": columns,
        "metrics": {"candidate": {}, "baseline": None},
        "significance": {},
        "latency": {},
        "model_size_bytes": None,
        "gates": [g.__dict__ for g in gates],
    }
    return conclude(values, report, gates, version)


def record(client: Any, report: dict[str, Any], version: Any, run_id: str | None, values: dict[str, Any]) -> None:
    """The verdict where promote and people look: version tag, run tag, run metrics and the report artifact."""
    verdict = "true" if report["passed"] else "false"
    if version is not None and readonly.active():
        return  # a pull request gated a registered version (training skipped): its records stay as they are
    if version is not None:
        client.set_model_version_tag(version.name, version.version, tracking.TAG_GATES_PASSED, verdict)
        client.set_model_version_tag(version.name, version.version, "mlcicd.gates.failed", ",".join(report["failed_gates"])[:5000])
    if run_id:
        client.set_tag(run_id, tracking.TAG_GATES_PASSED, verdict)
        for metric, value in report["metrics"]["candidate"].items():
            if isinstance(value, (int, float)) and value == value:
                key = re.sub(r"[^\w.-]", "_", metric)
                client.log_metric(run_id, f"gates.{key}", float(value))
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "check-gates.json"
            target.write_text(json.dumps(json.loads(json.dumps(report, default=str)), indent=2))
            client.log_artifact(run_id, str(target), "mlcicd")


def result_icon(gate: dict[str, Any]) -> str:
    """✅ passed, ❌ failed, ⚠️ a `warn` probe that found a problem (shown, not failing)."""
    return "⚠️" if gate.get("warning") else "✅" if gate.get("passed") else "❌"


def render_summary(report: dict[str, Any]) -> str:
    title = "## check-gates: ✅ passed" if report["passed"] else f"## check-gates: ❌ {len(report['failed_gates'])} gate(s) failed"
    if report.get("warnings"):
        title += f", ⚠️ {len(report['warnings'])} warning(s)"
    base = report["baseline"]
    against = (
        f"vs `@{base['alias']}` (version {base['model_version']})"
        if base["model_version"]
        else f"no `@{base['alias']}` baseline ({'first run: ' + base['first_run'] if base['first_run'] else 'comparison off'})"
    )
    lines = [title, "", f"Candidate `{report['candidate']['model_uri']}` {against}, {report['test_rows']:,} test rows.", ""]
    rows = [(g["gate"], g["candidate"], g["baseline"], g["delta"], g["threshold"], result_icon(g), g["detail"]) for g in report["gates"]]
    baseline_head = f"@{base['alias']}" if base["alias"].lower() not in ("", "none") else "baseline"
    lines += [markdown_table(["gate", "candidate", baseline_head, "delta", "threshold", "result", "detail"], rows), ""]
    cand, prod = report["metrics"]["candidate"], report["metrics"]["baseline"] or {}
    lines += [
        "### Metrics",
        "",
        markdown_table(
            ["metric", "candidate", "baseline", "delta"],
            [(m, v, prod.get(m), (v - prod[m]) if prod.get(m) is not None and v is not None else None) for m, v in cand.items()],
        ),
        "",
    ]
    lat_rows = []
    for model, by_batch in report["latency"].items():
        for batch, stats in by_batch.items():
            lat_rows.append(
                (
                    model,
                    batch,
                    stats["p50_ms"],
                    stats["p95_ms"],
                    stats["p99_ms"],
                    stats["max_ms"],
                    stats["throughput_rows_per_s"],
                    f"{stats['device']} ({stats['timer']})",
                )
            )
    lines += ["### Latency (ms)", "", markdown_table(["model", "batch", "p50", "p95", "p99", "max", "rows/s", "device"], lat_rows), ""]
    return "\n".join(lines)


STAGE = Stage(
    NAME,
    "decide whether a candidate model may be promoted: metrics, improvement and significance vs production, latency, size, robustness, serving",
    OPTIONS,
    run,
    outputs=(
        ("passed", "`true` when every gate passed"),
        ("report", "path of the JSON report"),
        ("metrics", 'the candidate\'s test metrics as JSON, e.g. `{"accuracy": 0.93, "f1": 0.91}`'),
        ("failed-gates", "JSON list of the gates that failed"),
        ("version", "the registered version that was checked, e.g. `7` (empty for a run or logged model that is not registered)"),
    ),
)
