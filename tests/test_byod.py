"""Bring your own data, end to end: a consumer repository with no data in git calls train.yml with a
`setup-command` that produces the data (and the reference profile) in every job that reads it, using a
secret passed explicitly; act runs it in host mode with this checkout as org/ml-cicd@v1."""

from __future__ import annotations

import shutil

import pytest

from conftest import EXAMPLES
from demo import Act, git, registry

pytestmark = pytest.mark.act

CALLER = """\
name: byod
on: workflow_dispatch
permissions: {}
jobs:
  train:
    uses: org/ml-cicd/.github/workflows/train.yml@v1
    permissions:
      contents: read
    with:
      model-name: churn-classifier
      require-gpu: 'false'
      setup-command: >-
        test "$DATA_SECRET" = from-the-caller &&
        python make_data.py --rows 4000 --out data &&
        python -m mlcicd profile --data data/train.parquet --schema schema.yaml --out reference.json
    secrets:
      DATA_SECRET: ${{ secrets.DATA_SECRET }}
"""


def test_setup_command_fetches_the_data_in_every_job(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns(".demo", "data", "reference.json", "__pycache__", "serving"))
    (repo / ".gitignore").write_text("data/\nreference.json\n")
    (repo / ".github" / "workflows" / "byod.yml").write_text(CALLER)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a consumer whose data is not in git")
    assert not (repo / "data").exists()

    proc = Act(tmp_path, repo, home, {}).run("workflow_dispatch", "-s", "DATA_SECRET=from-the-caller", workflow="byod.yml")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    assert registry(home)[0].get("staging") == "1", log[-4000:]
    assert not (repo / "data").exists()  # each job fetched its own copy in its own workspace
