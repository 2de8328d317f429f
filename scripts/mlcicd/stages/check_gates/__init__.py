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
from mlcicd.gate_table import THRESHOLDS
from mlcicd.report import report_option

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
        Option(row.option, optional_number(), None, row.help, row.example, shown_default="none: no gate")
        for row in THRESHOLDS
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
        "the metric the comparison gate compares: `accuracy`, `f1`, `roc_auc`, `precision`, `recall` "
        "(classification), `rmse`, `mae` or `r2` (regression)",
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
        "alpha",
        number(positive=True, maximum=0.5),
        0.05,
        "significance level of the paired test, greater than 0 and at most 0.5",
        "0.01",
    ),
    Option(
        "first-run",
        choice("pass", "fail"),
        "pass",
        "what the `compare to @<alias>` gate says when no baseline version is found (e.g. the alias does not "
        "exist yet): `pass` or `fail`",
        "fail",
    ),
    Option(
        "max-latency-p95-ms",
        optional_number(positive=True),
        None,
        "p95 latency limit in milliseconds at the first of `latency-batch-sizes`. CLI alias "
        "`--max-latency-p95`",
        "50",
        aliases=("max-latency-p95",),
    ),
    Option(
        "max-latency-p99-ms",
        optional_number(positive=True),
        None,
        "p99 latency limit in milliseconds at the first of `latency-batch-sizes`. CLI alias "
        "`--max-latency-p99`",
        "100",
        aliases=("max-latency-p99",),
    ),
    Option(
        "latency-batch-sizes",
        batch_sizes,
        [1, 32],
        "comma-separated batch sizes to time (whole numbers ≥ 1). The first one is the one the p95/p99 "
        "limits apply to",
        "1,32,256",
    ),
    Option(
        "latency-iterations",
        number(minimum=1),
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
        "robustness",
        boolean,
        True,
        "run the robustness probes on the candidate, each at its `probe-*` level; `false` runs none",
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
        "what the missing-values probe accepts: `reject` (the model may raise on NaN input, or return "
        "finite outputs) or `handle` (it must return finite outputs)",
        "handle",
    ),
    Option(
        "serve-check",
        boolean,
        False,
        "serve the candidate with `mlflow models serve` on loopback and compare its answers with in-process "
        "predictions",
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
    report_option(NAME),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.outcome import publish

    from .execute import execute

    return publish(execute(settings_from(values)))


STAGE = Stage(
    NAME,
    "decide whether a candidate model may be promoted: metrics, improvement and significance vs production, "
    "latency, size, robustness, serving",
    OPTIONS,
    run,
    outputs=(
        ("passed", "`true` when every gate passed"),
        ("report", "path of the JSON report"),
        ("metrics", 'the candidate\'s test metrics as JSON, e.g. `{"accuracy": 0.93, "f1": 0.91}`'),
        ("failed-gates", "JSON list of the gates that failed"),
        (
            "version",
            "the registered version that was checked, e.g. `7` (empty for a run or logged model that is not "
            "registered)",
        ),
    ),
)
