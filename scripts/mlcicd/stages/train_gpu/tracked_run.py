"""Training inside the MLflow run the stage created: environment recorded, the command run with the
run handed to it, the outcome tagged on the run, and the model found or logged."""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcicd import github
from mlcicd.errors import CHECK_FAILED, PASSED
from mlcicd.outcome import Annotation

from .decide import NAME, NO_MODEL, failure
from .model import log_handed_over_model, logged_model_uri
from .process import Training
from .records import log_params_after, record_environment
from .settings import Settings


@dataclass(frozen=True)
class Job:
    """Everything decided before the command starts."""

    settings: Settings
    workdir: Path
    gpus: dict[str, Any]
    device: str
    argv: list[str]
    fingerprint: str
    fingerprint_files: list[str]
    params: dict[str, str]
    reference_profile: str
    tracking_uri: str
    experiment_id: str
    run_id: str


def train_in_run(job: Job, client: Any) -> tuple[int, dict[str, Any], Annotation | None]:
    """The exit code, the report and the closing error (None on success). The run ends FINISHED, FAILED or
    KILLED."""
    settings, gpus, run_id = job.settings, job.gpus, job.run_id
    record_environment(client, run_id, gpus, settings, job.reference_profile, job.fingerprint_files)

    with tempfile.TemporaryDirectory(
        prefix="mlcicd-model-", dir=os.environ.get("RUNNER_TEMP") or None
    ) as model_dir:
        env = {
            **os.environ,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_TRACKING_URI": job.tracking_uri,
            "MLFLOW_EXPERIMENT_ID": job.experiment_id,
            "MLCICD_MODEL_DIR": model_dir,
            "MLCICD_DEVICE": "cuda" if gpus["count"] else "cpu",
            "PYTHONUNBUFFERED": "1",
        }
        training = Training(job.argv, job.workdir, env, settings.timeout_s)
        command = shlex.join(job.argv)
        print(f"::group::{NAME}: {command}" if github.in_actions() else f"$ {command}", flush=True)
        started = time.monotonic()
        try:
            code = training.run()
        finally:
            if github.in_actions():
                print("::endgroup::", flush=True)
        wall = time.monotonic() - started
        client.log_metric(run_id, "mlcicd.wall_time_s", wall)
        client.set_tag(run_id, "mlcicd.exit_code", str(code))
        log_params_after(client, run_id, job.params)
        base = {
            "stage": NAME,
            "skipped": False,
            "run_id": run_id,
            "fingerprint": job.fingerprint,
            "device": job.device,
            "wall_time_s": wall,
            "exit_code": code,
            "command": command,
        }
        why = failure(settings, code, training.timed_out, training.cancelled)
        if why is not None:
            ended = "KILLED" if training.cancelled else "FAILED"
            client.set_terminated(run_id, ended)
            message = (
                f"the training command {why} (MLflow run {run_id} marked {ended}). "
                "The last lines of its output are in the step summary."
            )
            failed = {**base, "failed": why, "log_tail": list(training.tail)}
            return CHECK_FAILED, failed, Annotation("error", f"{NAME}: training failed", message)

        model_uri = logged_model_uri(run_id, job.experiment_id) or log_handed_over_model(
            Path(model_dir), run_id, settings
        )
    if model_uri is None:
        client.set_terminated(run_id, "FAILED")
        return (
            CHECK_FAILED,
            {**base, "failed": "no model"},
            Annotation("error", f"{NAME}: no model", NO_MODEL),
        )
    client.set_tag(run_id, "mlcicd.model_uri", model_uri)
    client.set_terminated(run_id, "FINISHED")
    return PASSED, {**base, "model_uri": model_uri}, None
