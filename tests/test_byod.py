"""Bring your own data, end to end, run the way a user runs their own repository: `mlcicd local`.

A consumer repository with no data in git calls train.yml with a `setup-command` that produces the
data (and the reference profile) in every job that reads it, using a secret passed explicitly; its
runner inputs are a plain label and a JSON list, its dispatch input a boolean. `mlcicd local` runs it
through act on this machine against this checkout, with the embedded registry in a folder of its own."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import EXAMPLES
from demo import git, registry

pytestmark = pytest.mark.act

CALLER = """\
name: byod
on:
  workflow_dispatch:
    inputs:
      retrain:
        description: Train even when nothing changed
        type: boolean
        default: false
permissions: {}
jobs:
  train:
    uses: org/ml-cicd/.github/workflows/train.yml@v1
    permissions:
      contents: read
    with:
      model-name: churn-classifier
      retrain: ${{ inputs.retrain }}
      gpu-runner: gpu-box
      cpu-runner: '["self-hosted"]'
      require-gpu: false
      setup-command: >-
        test "$DATA_SECRET" = from-the-caller &&
        python make_data.py --rows 4000 --out data &&
        python -m mlcicd profile --data data/train.parquet --schema schema.yaml --out reference.json
    secrets:
      DATA_SECRET: ${{ secrets.DATA_SECRET }}
"""


def test_mlcicd_local_runs_a_consumer_repository_whose_data_is_not_in_git(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home"
    shutil.copytree(
        EXAMPLES,
        repo,
        ignore=shutil.ignore_patterns(".demo", "data", "reference.json", "__pycache__", "serving", ".github"),
    )
    (repo / ".gitignore").write_text("data/\nreference.json\n")
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "byod.yml").write_text(CALLER)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a consumer whose data is not in git")
    assert not (repo / "data").exists()

    command = [sys.executable, "-m", "mlcicd", "local", "-W", "byod.yml", "--input", "retrain=true"]
    command += ["--secret", "DATA_SECRET=from-the-caller", "--home", str(home)]
    proc = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    assert "-P gpu-box=-self-hosted" in log  # the plain label of gpu-runner, found in the caller's `with:`
    assert registry(home)[0].get("staging") == "1", log[-4000:]
    assert not (repo / "data").exists()  # each job fetched its own copy in its own workspace
