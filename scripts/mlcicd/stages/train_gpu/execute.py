"""train-gpu's run: check everything that can fail before an MLflow run exists, skip when a registered
version has the same fingerprint, else train inside a new run and end in one Outcome."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcicd import __version__, github, tracking
from mlcicd.errors import PASSED, UsageError
from mlcicd.outcome import Annotation, Outcome
from mlcicd.report import check_report_path

from .decide import NAME, device_label, launch_argv, run_name, run_tags, training_data
from .fingerprint import data_fingerprint, find_trained_version, fingerprint
from .gpu import check_gpu, detect_gpus
from .process import check_command
from .records import read_params, reference_profile
from .render import render_summary
from .settings import Settings
from .tracked_run import Job, train_in_run


def execute(settings: Settings) -> Outcome:
    from mlflow import MlflowClient

    if not settings.command:
        raise UsageError(
            "missing command", "`command` is required, e.g. `python train.py --params params.yaml`."
        )
    if not settings.model_name:
        raise UsageError(
            "missing model-name",
            "`model-name` is required: the registered model this training produces, e.g. `churn-classifier`.",
        )
    workdir = Path(settings.working_directory or ".").resolve()
    if not workdir.is_dir():
        raise UsageError(
            "working-directory not found", f"{workdir} is not a directory. Fix `working-directory`."
        )
    params = read_params(settings.params) if settings.params else {}
    profile = reference_profile(settings)

    gpus = detect_gpus()
    check_gpu(gpus, settings.require_gpu)
    device = device_label(gpus)
    procs = settings.processes(gpus["count"])
    argv = launch_argv(settings.command, procs)
    check_command(argv[0], workdir)
    check_report_path(settings.report)  # before a run exists and hours of training are spent
    specs, unvalidated = training_data(settings)
    if unvalidated:
        github.warning(unvalidated, title=f"{NAME}: training data not validated")
    data, data_files = data_fingerprint(specs)
    fp, fp_files = fingerprint(settings, workdir, data)
    fp_files += data_files

    uri = tracking.connect()
    context = tracking.git_context()
    outputs = {"fingerprint": fp, "device": device}

    if not settings.retrain:
        found = find_trained_version(settings.model_name, fp)
        if found is not None:
            model_uri = f"models:/{settings.model_name}/{found.version}"
            report = {
                "stage": NAME,
                "skipped": True,
                "fingerprint": fp,
                "device": device,
                "model_uri": model_uri,
                "run_id": found.run_id,
                "model_version": found.version,
            }
            skipped = {**outputs, "skipped": "true", "run-id": found.run_id or "", "model-uri": model_uri}
            return ending(settings, "skipped", PASSED, report, skipped)

    client = MlflowClient()
    exp_id = tracking.experiment_id(settings.experiment or settings.model_name)
    tags = run_tags(settings, fp, data, device, procs, context)
    run_id = client.create_run(exp_id, run_name=run_name(settings, context["sha"]), tags=tags).info.run_id
    job = Job(settings, workdir, gpus, device, argv, fp, fp_files, params, profile, uri, exp_id, run_id)
    try:
        code, report, ended = train_in_run(job, client)
    except BaseException as exc:
        # a usage error, a cancel or a bug after the run exists: the run must not stay RUNNING forever
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    model_uri = str(report.get("model_uri") or "")
    trained = {**outputs, "skipped": "false", "run-id": run_id, "model-uri": model_uri}
    return ending(settings, "trained" if code == PASSED else "failed", code, report, trained, ended)


def ending(
    settings: Settings,
    result: str,
    code: int,
    report: Mapping[str, Any],
    outputs: Mapping[str, str],
    error: Annotation | None = None,
) -> Outcome:
    full = {
        **report,
        "version": __version__,
        "tracking_uri": tracking.redact(os.environ.get("MLFLOW_TRACKING_URI", "")),
    }
    return Outcome(
        stage=NAME,
        exit_code=code,
        result=result,
        report=full,
        report_path=settings.report,
        outputs={**outputs, "model-name": settings.model_name},
        summary=render_summary(full),
        annotations=(error,) if error else (),
    )
