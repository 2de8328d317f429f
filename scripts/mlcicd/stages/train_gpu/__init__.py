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
from mlcicd.report import report_option

from .decide import NAME
from .settings import nproc

OPTIONS = (
    Option(
        "command",
        text,
        "",
        "the training command. It is split into words like a shell command line (quotes work) but not run "
        "by a shell: no variables, globs, pipes or `&&`. Wrap it in `bash -c '…'` if you need a shell. It "
        "runs in `working-directory`, with the environment listed under The environment in the "
        "train-gpu docs",
        "python train.py --params params.yaml",
        shown_default="none (required, here or in `mlcicd.yaml`)",
    ),
    Option(
        "working-directory",
        text,
        "",
        "directory the command runs in. `fingerprint-paths` are relative to it",
        "training",
        is_path=True,
        shown_default="the current directory (in a workflow, the workspace)",
    ),
    Option(
        "model-name",
        tracking.registered_model_name,
        "",
        "the registered model this training produces: where the skip looks for a version with the same "
        "fingerprint, and the default experiment; tagged on the run (`mlcicd.model_name`), where "
        "check-gates finds it. train-gpu does not register the model itself. Checked by MLflow's own rules "
        "(no `/`, `:` or control characters such as a newline) before anything runs: exit 2 `invalid value "
        "for model-name`",
        "churn-classifier",
        shown_default="none (required, here or in `mlcicd.yaml`)",
    ),
    Option(
        "experiment",
        text,
        "",
        "MLflow experiment of the run, created on first use (in the embedded store with its artifacts under "
        "`$MLCICD_HOME/artifacts/<experiment>`). A deleted experiment of that name is an error (exit 2)",
        "churn",
        shown_default="the model name",
    ),
    Option(
        "run-name",
        text,
        "",
        "MLflow run name",
        "nightly-retrain",
        shown_default="`ci-<first 7 characters of the commit>`; `local-<YYYYMMDD-HHMMSS>` when no commit is "
        "known",
    ),
    Option(
        "params",
        text,
        "",
        "training parameters file, YAML or JSON. It is logged as an artifact and as flattened run params "
        "and is part of the fingerprint. It is not passed to the command: give the path in `command` too",
        "params.yaml",
        is_path=True,
    ),
    Option(
        "require-gpu",
        boolean,
        True,
        "with `true`, a runner without a GPU stops the step with exit 2. With `false`, such a runner trains "
        "on CPU and a warning says so",
        "false",
    ),
    Option(
        "nproc-per-node",
        nproc,
        "1",
        "processes to start: `1`, `auto` (one per detected GPU; 1 without a GPU) or a whole number. Above 1 "
        "the command runs under `torchrun --standalone`",
        "auto",
    ),
    Option(
        "timeout-minutes",
        number(positive=True),
        360.0,
        "minutes after which the command's whole process tree is killed and the step fails. Fractions are "
        "allowed; must be greater than 0",
        "90",
    ),
    Option(
        "retrain",
        boolean,
        False,
        "with `true`, train even when a registered version has the same fingerprint (the registry is not "
        "searched)",
        "true",
    ),
    Option(
        "fingerprint-paths",
        text_list,
        [],
        'globs (`**` for any depth) of the code and config whose content defines "the same training", '
        "relative to `working-directory`, comma- or newline-separated (in `mlcicd.yaml` also a YAML list). "
        "Every glob must match at least one file. Empty: every file git tracks under `working-directory` "
        "counts instead",
        "train.py,src/**/*.py",
    ),
    Option(
        "data",
        text_list,
        [],
        "the data your command trains on: files, directories or globs, comma- or newline-separated (in "
        "`mlcicd.yaml` a YAML list, relative to the file). The content of every file they name is part of "
        "the fingerprint, so a change to the data alone trains again. Each must exist. A warning says when "
        "they leave out what validate-data checks",
        "data/train.parquet",
        is_path=True,
        shown_default="validate-data's `data` in the same config file",
    ),
    Option(
        "data-digest",
        text,
        "",
        "content hash of the training data, e.g. validate-data's `data-digest` output. Part of the "
        "fingerprint; tagged on the run",
        "sha256:1792…",
    ),
    Option(
        "signature-data",
        text,
        "",
        "data file (or directory or glob, read as validate-data reads `data`) whose first 64 rows become "
        "the input example, and so the signature, of a model handed over as `$MLCICD_MODEL_DIR/model.pt`. "
        "Not used for other models",
        "data/train.parquet",
        is_path=True,
    ),
    Option("target", text, "", "label column dropped from `signature-data` when present", "churned"),
    Option(
        "reference-profile",
        text,
        "",
        "the training data's reference profile (`mlcicd profile`), stored with the version as "
        "`mlcicd/reference-profile.json` so monitor measures drift against it. It is checked before the run "
        "is created: a missing or malformed profile is exit 2",
        "reference.json",
        is_path=True,
        shown_default="validate-data's `reference` in the same config file; none without one",
    ),
    report_option(NAME),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .execute import execute
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
