"""check-gates: decide whether a candidate model may be promoted.

Absolute thresholds on the test metrics, improvement over the model behind `compare-to`
(production by default) with a paired significance test on the same rows, latency measured
interleaved with that model in the same process (CUDA events on a GPU), artifact size,
robustness probes and, optionally, a real `mlflow models serve` round trip. Every gate is
evaluated and reported, so one run lists all failures; the result is tagged on the model
version and its run (`mlcicd.gates.passed`), which promote reads.
"""

from __future__ import annotations

from typing import Any

from mlcicd import tracking
from mlcicd.config import Option, Stage, boolean, choice, number, text
from mlcicd.metrics import THRESHOLDS
from mlcicd.report import default_report_path

from .settings import (
    LEVELS,
    NAME,
    PROBE_OPTIONS,
    Settings,
    batch_sizes,
    custom_metrics,
    optional_number,
    settings_from,
    size,
)

__all__ = ["NAME", "OPTIONS", "STAGE", "Settings", "batch_sizes", "optional_number", "run", "size"]

OPTIONS = (
    Option(
        "model-uri",
        text,
        "",
        "the candidate: models:/<name>/<version>, models:/<name>@<alias>, models:/m-<id> or runs:/<run>/<path>",
        "models:/churn/7",
    ),
    Option(
        "model-name",
        tracking.registered_model_name,
        "",
        "registered model whose `compare-to` alias is the baseline (default: from model-uri, or the name train-gpu trained its run for)",
        "churn",
    ),
    Option(
        "test-data",
        text,
        "",
        "labelled test data (CSV, Parquet, JSON Lines; a file, directory or glob)",
        "data/test.parquet",
        is_path=True,
    ),
    Option("target", text, "", "label column of test-data", "churned"),
    Option(
        "task",
        choice("classification", "regression"),
        "classification",
        "classification or regression",
        "regression",
    ),
    *(
        Option(
            name,
            optional_number(),
            None,
            f"{'minimum' if name.startswith('min') else 'maximum'} {metric} of the candidate",
            "0.9",
        )
        for name, metric in ((row.option, row.metric) for row in THRESHOLDS)
    ),
    Option(
        "custom-metrics",
        custom_metrics,
        [],
        "extra metrics as module:function(y_true, y_pred) -> float, reported for candidate and baseline",
        "mymetrics:revenue",
    ),
    Option(
        "primary-metric",
        text,
        "",
        "metric the improvement gate compares (default: f1 for classification, rmse for regression)",
        "roc_auc",
    ),
    Option(
        "compare-to", text, "production", "alias of the baseline model; `none` = no comparison", "staging"
    ),
    Option(
        "min-improvement",
        optional_number(),
        None,
        "relative improvement of the primary metric over the baseline (0.01 = 1 %)",
        "0.01",
    ),
    Option(
        "min-absolute-change",
        optional_number(),
        None,
        "absolute improvement of the primary metric over the baseline",
        "0.005",
    ),
    Option(
        "require-significance",
        boolean,
        False,
        "the improvement must also be statistically significant (McNemar / paired permutation test)",
        "true",
    ),
    Option(
        "alpha", number(positive=True, maximum=0.5), 0.05, "significance level of the paired test", "0.01"
    ),
    Option(
        "first-run",
        choice("pass", "fail"),
        "pass",
        "when the baseline alias does not exist yet: pass or fail the comparison gates",
        "fail",
    ),
    Option(
        "max-latency-p95-ms",
        optional_number(positive=True),
        None,
        "p95 latency limit (ms) at the first batch size",
        "50",
        aliases=("max-latency-p95",),
    ),
    Option(
        "max-latency-p99-ms",
        optional_number(positive=True),
        None,
        "p99 latency limit (ms) at the first batch size",
        "100",
        aliases=("max-latency-p99",),
    ),
    Option("latency-batch-sizes", batch_sizes, [1, 32], "batch sizes to time", "1,32,256"),
    Option(
        "latency-iterations",
        optional_number(positive=True),
        200.0,
        "timed iterations per batch size and model (after warm-up)",
        "500",
    ),
    Option(
        "max-latency-regression",
        optional_number(positive=True),
        None,
        "p99 candidate / baseline ratio limit, measured interleaved",
        "1.2",
    ),
    Option(
        "max-model-size",
        size,
        None,
        "size limit of the logged model artifacts (500MB, 1.5GB, 800KiB)",
        "500MB",
    ),
    Option(
        "robustness",
        boolean,
        True,
        "run the robustness probes (each at its `probe-*` level); false = none",
        "false",
    ),
    *(
        Option(option, choice(*LEVELS), level, help, example)
        for option, _probe, level, help, example in PROBE_OPTIONS
    ),
    Option(
        "missing-values",
        choice("reject", "handle"),
        "reject",
        "inputs with NaN: the model must `handle` them (finite output) or may `reject` them with an error",
        "handle",
    ),
    Option(
        "serve-check",
        boolean,
        False,
        "start `mlflow models serve` on loopback and compare its answers with in-process predictions",
        "true",
    ),
    Option(
        "serve-only",
        boolean,
        False,
        "only the serve check, for a deploy job: no metrics, latency, size or robustness, and the gates verdict recorded at training is left alone",
        "true",
    ),
    Option(
        "report",
        text,
        default_report_path(NAME),
        "where to write the JSON report",
        "reports/check-gates.json",
        is_path=True,
    ),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.outcome import publish

    from .run import execute

    return publish(execute(settings_from(values)))


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
        (
            "version",
            "the registered version that was checked, e.g. `7` (empty for a run or logged model that is not registered)",
        ),
    ),
)
