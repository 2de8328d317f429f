"""train-gpu: run the user's training command inside an MLflow run, on the GPU when there is one.

The stage creates the run and hands it to the command through MLFLOW_RUN_ID (so `mlflow.start_run()`
and autologging in the user's script log into it), records where and how it trained (commit,
workflow run, GPUs, versions, pip freeze, the params file), streams the command's output live,
enforces a timeout on the whole process tree, and makes sure the run ends with exactly one model:
the one the script logged, or `$MLCICD_MODEL_DIR/model.pt` / an MLflow model directory there.
Training is skipped when a registered version already carries the same fingerprint.

Inside: settings.py (typed options), decide.py (argv, names, failure reasons), gpu.py, fingerprint.py,
process.py (the command's process tree), model.py (the model hand-off), records.py (what the MLflow run
records), tracked_run.py (training inside the run), render.py (summary) and run.py (`execute`).
"""

from __future__ import annotations

from typing import Any

from mlcicd import tracking
from mlcicd.config import Option, Stage, boolean, number, text, text_list
from mlcicd.report import default_report_path

from .decide import NAME
from .settings import nproc

OPTIONS = (
    Option(
        "command",
        text,
        "",
        "the training command (not a shell: wrap it in `bash -c '…'` if you need one)",
        "python train.py --config params.yaml",
    ),
    Option(
        "working-directory",
        text,
        "",
        "directory to run the command in (default: the current one)",
        "training",
        is_path=True,
    ),
    Option(
        "model-name",
        tracking.registered_model_name,
        "",
        "registered model name (MLflow's rules: no `/` or `:`); versions with the same fingerprint are reused",
        "churn-classifier",
    ),
    Option("experiment", text, "", "MLflow experiment (default: the model name)", "churn"),
    Option("run-name", text, "", "MLflow run name (default: ci-<short sha>)", "nightly-retrain"),
    Option(
        "params",
        text,
        "",
        "training parameters file (YAML/JSON): logged as an artifact and flattened params, part of the fingerprint",
        "params.yaml",
        is_path=True,
    ),
    Option(
        "require-gpu", boolean, True, "fail (exit 2) when the runner has no GPU; false trains on CPU", "false"
    ),
    Option(
        "nproc-per-node",
        nproc,
        "1",
        "processes per node: 1, auto (one per visible GPU) or N; above 1 the command runs under torchrun",
        "auto",
    ),
    Option(
        "timeout-minutes",
        number(positive=True),
        360.0,
        "kill the whole training process tree after this long",
        "90",
    ),
    Option(
        "retrain", boolean, False, "train even when a registered version has the same fingerprint", "true"
    ),
    Option(
        "fingerprint-paths",
        text_list,
        [],
        "globs of code and config whose content defines 'the same training'",
        "train.py,src/**/*.py",
    ),
    Option(
        "data",
        text_list,
        [],
        "data the command trains on (files, directories, globs): their content is part of the fingerprint; "
        "empty = validate-data's `data` in the same config file",
        "data/train.parquet",
        is_path=True,
    ),
    Option(
        "data-digest",
        text,
        "",
        "content hash of the training data (validate-data's `data-digest` output)",
        "sha256:…",
    ),
    Option(
        "signature-data",
        text,
        "",
        "data file whose first rows give the signature of a model handed over as model.pt",
        "data/train.parquet",
        is_path=True,
    ),
    Option("target", text, "", "label column to drop from `signature-data`", "churned"),
    Option(
        "reference-profile",
        text,
        "",
        "the training data's profile (`mlcicd profile`), stored with the version for monitor; empty = validate-data's `reference`",
        "reference.json",
        is_path=True,
    ),
    Option(
        "report",
        text,
        default_report_path(NAME),
        "where to write the JSON report",
        "reports/train-gpu.json",
        is_path=True,
    ),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .run import execute
    from .settings import Settings

    return publish(execute(build_settings(Settings, values)))


STAGE = Stage(
    NAME,
    "run the training command inside a tracked MLflow run (GPU when present) and hand over its model",
    OPTIONS,
    run,
    outputs=(
        ("run-id", "MLflow run id of the training (or of the reused version when skipped)"),
        ("model-uri", "the trained model, e.g. `models:/m-…` (or `models:/<name>/<version>` when skipped)"),
        ("skipped", "`true` when a registered version had the same fingerprint and training was skipped"),
        ("fingerprint", "`sha256:…` of the fingerprint files, params, command and data digest"),
        ("model-name", "the registered model name, for the next jobs (check-gates, promote)"),
        ("device", "where it trained, e.g. `cuda:NVIDIA H100 80GB HBM3 x1` or `cpu`"),
        ("report", "path of the JSON report"),
    ),
)
