"""`mlcicd local` without running act: what it maps, and the event it writes (tests/test_byod.py runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlcicd import local_run

from demo import git

STAMPED_CALLER = """\
on: [workflow_dispatch, pull_request]
jobs:
  train:
    uses: acme/ml-cicd/.github/workflows/train.yml@v1.0.0
    with:
      gpu-runner: '["self-hosted", "a100"]'
      cpu-runner: cpu-box
  report:
    runs-on: [self-hosted, reporting]
    steps:
      - uses: acme/ml-cicd/actions/pr-report@v1.0.0
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
"""


def test_labels_refs_and_the_event(tmp_path: Path):
    texts = [STAMPED_CALLER]
    labels = local_run.runner_labels(texts, ["extra"])
    assert {"ubuntu-latest", "self-hosted", "a100", "cpu-box", "reporting", "extra"} <= set(labels)
    assert local_run.toolkit_refs([*texts, "      - uses: acme/ml-cicd@v1.0.0\n"]) == {
        "acme/ml-cicd@v1.0.0"
    }  # the workflow, the action and the setup action: one repository at one ref
    assert local_run.setup_python_refs(texts) == {
        "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
    }
    assert local_run.labels_of('"gpu-4x"') == ["gpu-4x"] and local_run.labels_of("${{ inputs.x }}") == []
    event = local_run.event_payload("workflow_dispatch", {"retrain": "true", "n": "3"}, "local/x")
    assert event == {"inputs": {"retrain": "true", "n": "3"}}  # strings, as GitHub sends them
    pr = local_run.event_payload("pull_request", {}, "local/x")["pull_request"]
    assert (
        pr["head"]["repo"]["full_name"] == "local/x"
    )  # from the repository itself: the fork guard lets it run


def test_print_shows_the_act_command_for_a_repository_of_ones_own(tmp_path: Path):
    repo = tmp_path / "mine"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ml.yml").write_text(STAMPED_CALLER)
    run = [sys.executable, "-m", "mlcicd", "local", "--repo", str(repo)]
    refused = subprocess.run([*run, "--print"], capture_output=True, text=True)
    assert refused.returncode == 2 and "not a git repository" in refused.stderr, refused.stderr
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "mine")
    proc = subprocess.run(
        [*run, "pull_request", "-W", "ml.yml", "--print", "--", "-j", "train"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert (
        " pull_request --eventpath " in line
        and "-W .github/workflows/ml.yml" in line
        and line.endswith("-j train")
    )
    assert (
        "--local-repository acme/ml-cicd@v1.0.0=" in line and "--local-repository org/ml-cicd@v1=" in line
    )  # ours, too
    assert "-P a100=-self-hosted" in line and "-P cpu-box=-self-hosted" in line
    assert (
        f"MLCICD_HOME={Path.home() / '.mlcicd-local' / 'mine'}" in line
        and "GITHUB_REPOSITORY=local/mine" in line
    )
    unknown = subprocess.run([*run, "-W", "nope.yml", "--print"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "nope.yml does not exist" in unknown.stderr
    bad = subprocess.run([*run, "--input", "retrain", "--print"], capture_output=True, text=True)
    assert bad.returncode == 2 and "is not NAME=VALUE" in bad.stderr
