"""The MLflow run's records of where and how it trained: params, environment, pip freeze, the config,
the reference profile."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlcicd import __version__, tracking
from mlcicd.errors import UsageError

from .decide import flatten
from .settings import Settings


def read_params(path: str) -> dict[str, str]:
    import yaml  # type: ignore[import-untyped,unused-ignore]

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            "params file not found", f"{path} does not exist. Fix `params`.", file=path
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(
            "params file unreadable",
            f"{path}{where}: {problem}. Fix the YAML (or JSON) of `params`.",
            file=path,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            "params file unreadable", f"{path}: {exc}. It must be a UTF-8 YAML or JSON file.", file=path
        ) from None
    return flatten(data) if isinstance(data, dict) else {}


def pip_freeze() -> str:
    python = shutil.which("python") or sys.executable
    try:
        out = subprocess.run(
            [python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, timeout=120
        )
        return (
            out.stdout
            if out.returncode == 0
            else f"# pip freeze failed with {python}: {out.stderr.strip()[:500]}\n"
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"# pip freeze failed: {exc}\n"


def reference_profile(settings: Settings) -> str:
    """The profile to store with the version: the option, else validate-data's `reference` in the same config
    file
    (the profile drift was measured against is the one monitor should keep measuring against)."""
    from mlcicd.profile import load_profile

    path = settings.reference_profile or settings.validated_reference
    if path:
        load_profile(path)  # a broken profile fails here, before a run exists
    return path


def record_environment(
    client: Any, run_id: str, gpus: dict[str, Any], settings: Settings, profile: str, files: list[str]
) -> None:
    """`profile` is the reference profile chosen by reference_profile (the option or validate-data's)."""
    environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": gpus["torch"],
        "cuda": gpus["cuda"],
        "gpu": gpus,
        "mlcicd": __version__,
        "fingerprint_files": files,
    }
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "environment.json").write_text(json.dumps(environment, indent=2))
        (Path(tmp) / "requirements-frozen.txt").write_text(pip_freeze())
        client.log_artifacts(run_id, tmp, "mlcicd")
    if settings.params:
        client.log_artifact(run_id, settings.params, "mlcicd")
    if settings.config:
        client.log_artifact(run_id, settings.config, "mlcicd")
    if profile:
        with tempfile.TemporaryDirectory() as tmp:
            stored = Path(tmp) / Path(tracking.PROFILE_ARTIFACT).name
            shutil.copyfile(profile, stored)
            client.log_artifact(run_id, str(stored), str(Path(tracking.PROFILE_ARTIFACT).parent))


def log_params_after(client: Any, run_id: str, params: dict[str, str]) -> None:
    """The params file as run params, after training: keys the script logged itself are kept as they are."""
    from mlflow.entities import Param

    existing = client.get_run(run_id).data.params
    fresh = [Param(k[:250], v[:6000]) for k, v in params.items() if k[:250] not in existing]
    for start in range(0, len(fresh), 100):
        client.log_batch(run_id, params=fresh[start : start + 100])
