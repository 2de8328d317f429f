"""train-gpu's decisions: pure functions from settings and what was measured to argv, names and reports."""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcicd import tracking
from mlcicd.errors import UsageError

from .settings import Settings

NAME = "train-gpu"


def device_label(gpus: Mapping[str, Any]) -> str:
    if not gpus["count"]:
        return "cpu"
    names = sorted(set(gpus["names"]))
    return f"cuda:{' + '.join(names)} x{gpus['count']}"


def training_data(settings: Settings) -> tuple[list[str], str | None]:
    """The data the fingerprint covers: `data`, else validate-data's `data` in the same config file (the one
    declared data path), else none. Training data that validate-data does not check is worth a warning,
    returned as its message."""
    validated = settings.validated_data
    if not settings.data:
        return ([validated] if validated else []), None
    if validated and os.path.normpath(validated) not in {os.path.normpath(d) for d in settings.data}:
        return settings.data, (
            f"the command trains on {', '.join(settings.data)}, but validate-data checks {validated}: the "
            "training data is "
            "not validated. Point validate-data's `data` at what training reads."
        )
    return settings.data, None


def launch_argv(command: str, procs: int) -> list[str]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(
            "command does not parse", f"`command`: {exc}. Quote it as you would in a shell."
        ) from None
    if not argv:
        raise UsageError(
            "missing command", "`command` is required, e.g. `python train.py --params params.yaml`."
        )
    if procs <= 1:
        return argv
    run = ["--standalone", f"--nproc-per-node={procs}"]
    if Path(argv[0]).name.startswith("python"):
        # torchrun as a module of the user's own interpreter, so it has their torch
        return [argv[0], "-m", "torch.distributed.run", *run, *argv[1:]]
    return ["torchrun", *run, "--no-python", *argv]


def exit_reason(code: int) -> str:
    """How the command ended, in words: a signal is named, and SIGKILL's usual sender too."""
    if code >= 0:
        return f"exited with {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"was killed by signal {-code}"
    said = f"was killed by signal {-code} ({name})"
    if name == "SIGKILL":
        said += (
            ", which is what the kernel's OOM killer sends: check the runner's memory (`dmesg`) or lower the "
            "batch size"
        )
    return said


def failure(settings: Settings, code: int, timed_out: bool, cancelled: bool) -> str | None:
    """Why the training failed, in words, or None when it succeeded."""
    if not (timed_out or cancelled or code != 0):
        return None
    if timed_out:
        return f"timed out after {settings.timeout_minutes:g} min; the process tree was killed"
    if cancelled:
        return "cancelled; the process tree was killed"
    return exit_reason(code)


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(data) if isinstance(data, list) else str(data)}


def run_name(settings: Settings, sha: str) -> str:
    if settings.run_name:
        return settings.run_name
    return f"ci-{sha[:7]}" if sha else time.strftime("local-%Y%m%d-%H%M%S")


def run_tags(
    settings: Settings, fp: str, data: str, device: str, procs: int, context: Mapping[str, str]
) -> dict[str, str]:
    """Tags of the training run: lineage (what promote copies onto the version) and how it ran."""
    tags = {
        tracking.TAG_FINGERPRINT: fp,
        tracking.TAG_DATA_DIGEST: settings.data_digest or data,
        tracking.TAG_MODEL_NAME: settings.model_name,
        tracking.TAG_GIT_SHA: context["sha"],
        tracking.TAG_GIT_REF: context["ref"],
        tracking.TAG_WORKFLOW_RUN: context["run_url"],
        "mlcicd.device": device,
        "mlcicd.command": settings.command,
        "mlcicd.nproc_per_node": str(procs),
        "mlflow.source.git.commit": context["sha"],
        "mlflow.user": context["actor"],
    }
    return {k: v for k, v in tags.items() if v}


NO_MODEL = (
    "the command finished but produced no model. Either log it in the run (e.g. "
    "`mlflow.pytorch.log_model(model, name='model', "
    "input_example=x)` — MLFLOW_RUN_ID is set, so `mlflow.start_run()` joins the run) or write it to "
    "`$MLCICD_MODEL_DIR/model.pt` "
    "(torch.save(model, path) or TorchScript) or an MLflow model directory to `$MLCICD_MODEL_DIR`."
)
