"""What defines "the same training": the content of code, params, command and data, hashed; and the
registered version that already carries that fingerprint."""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from mlcicd import github, tracking
from mlcicd.errors import UsageError

from .decide import NAME
from .settings import Settings


def data_fingerprint(specs: list[str]) -> tuple[str, list[str]]:
    """Content hash of every file the data specs name ('' without any), and the files."""
    from mlcicd.data import data_digest, resolve_files

    files = sorted({f for spec in specs for f in resolve_files(spec, option="data")}, key=str)
    return (data_digest(files) if files else ""), [str(f) for f in files]


def fingerprint(settings: Settings, workdir: Path, data: str = "") -> tuple[str, list[str]]:
    """sha256 of the fingerprint files' contents, the params file, the command, the data digest and the
    content
    of the training data (`data`, from data_fingerprint)."""
    digest = hashlib.sha256()
    files: set[Path] = set()
    for pattern in settings.fingerprint_paths:
        matched = [Path(p) for p in glob.glob(pattern, root_dir=workdir, recursive=True)]
        matched = [p for p in matched if (workdir / p).is_file()]
        if not matched:
            raise UsageError(
                "fingerprint path matches nothing",
                f"`{pattern}` (in fingerprint-paths) matches no file under {workdir}. Fix the glob or remove "
                "it.",
            )
        files.update(matched)
    if not settings.fingerprint_paths:
        # No globs given: every file git tracks under the working directory counts, so a code
        # change can never be mistaken for "the same training" (retraining too often is the safe side).
        tracked = git_tracked(workdir)
        if tracked is None:
            github.warning(
                f"{workdir} is not in a git checkout and `fingerprint-paths` is empty: only the command, "
                "params and data digest "
                "define the fingerprint, so a code change alone would reuse the old model. Set "
                "`fingerprint-paths`.",
                title=f"{NAME}: weak fingerprint",
            )
        else:
            digest.update(f"git\0{tracked}\0".encode())
    if settings.params:
        files.add(Path(os.path.relpath(settings.params, workdir)))
    for rel in sorted(files, key=str):
        digest.update(
            f"file\0{rel.as_posix()}\0".encode() + hashlib.sha256((workdir / rel).read_bytes()).digest()
        )
    digest.update(
        f"command\0{settings.command}\0nproc\0{settings.nproc_per_node}\0data\0{settings.data_digest}".encode()
    )
    if data:
        digest.update(f"training-data\0{data}".encode())
    return "sha256:" + digest.hexdigest(), sorted(str(f) for f in files)


def git_tracked(workdir: Path) -> str | None:
    """`git ls-files -s` of the directory (blob hashes of every tracked file), or None outside git."""
    try:
        out = subprocess.run(
            ["git", "-C", str(workdir), "ls-files", "-s", "--", "."],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def find_trained_version(model_name: str, fp: str) -> Any | None:
    from mlflow import MlflowClient

    versions = MlflowClient().search_model_versions(
        f"name='{model_name}' and tags.`{tracking.TAG_FINGERPRINT}` = '{fp}'"
    )
    return max(versions, key=lambda v: int(v.version)) if versions else None
