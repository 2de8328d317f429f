"""Static rules for every action.yml and workflow: what actionlint and zizmor don't enforce on their own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

ACTIONS = sorted([ROOT / "action.yml", *ROOT.glob("actions/*/action.yml")])
WORKFLOWS = sorted(
    [
        *ROOT.glob(".github/workflows/*.yml"),
        *ROOT.glob("tests/workflows/*.yml"),
        *ROOT.glob("examples/.github/workflows/*.yml"),
    ]
)
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def steps_of(doc: dict) -> list[dict]:
    if "runs" in doc:
        return doc["runs"].get("steps", [])
    return [step for job in doc.get("jobs", {}).values() for step in job.get("steps", [])]


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.mark.parametrize("path", ACTIONS + WORKFLOWS, ids=ids(ACTIONS + WORKFLOWS))
def test_no_expression_inside_run_blocks(path: Path):
    # Anything in ${{ }} is pasted into the script before bash parses it: script injection.
    # Values reach scripts through `env:` instead.
    doc = yaml.safe_load(path.read_text())
    for step in steps_of(doc):
        if "run" in step:
            assert not EXPRESSION.search(step["run"]), (
                f"{path.name}: step {step.get('id') or step.get('name')} interpolates into run:"
            )


@pytest.mark.parametrize("path", ACTIONS, ids=ids(ACTIONS))
def test_every_action_input_and_output_is_described(path: Path):
    doc = yaml.safe_load(path.read_text())
    for name, spec in {**doc.get("inputs", {}), **doc.get("outputs", {})}.items():
        assert spec.get("description"), f"{path}: {name} has no description"
        assert name == name.lower() and "_" not in name, f"{path}: {name} is not kebab-case"
    for name, spec in doc.get("inputs", {}).items():
        assert "required" in spec and isinstance(spec.get("default", ""), str), f"{path}: {name}"


@pytest.mark.parametrize(
    "path",
    [p for p in ACTIONS if p.parent.parent.name == "actions"],
    ids=ids([p for p in ACTIONS if p.parent.parent.name == "actions"]),
)
def test_stage_actions_set_up_the_toolkit_first(path: Path):
    steps = yaml.safe_load(path.read_text())["runs"]["steps"]
    assert steps[0]["run"] == 'python3 "$GITHUB_ACTION_PATH/../../scripts/setup_toolkit.py"'


@pytest.mark.parametrize(
    "path",
    [p for p in ACTIONS if p.parent.parent.name == "actions"],
    ids=ids([p for p in ACTIONS if p.parent.parent.name == "actions"]),
)
def test_stage_action_inputs_match_the_cli_options(path: Path):
    from mlcicd.stages import all_stages

    stage = all_stages()[path.parent.name]
    doc = yaml.safe_load(path.read_text())
    assert set(doc["inputs"]) == {o.name for o in stage.options} | {"config"}
    assert set(doc["outputs"]) == {name for name, _ in stage.outputs}
    env = next(step for step in doc["runs"]["steps"] if step.get("id") == "run")["env"]
    for option in stage.options:
        assert env[option.env_name] == f"${{{{ inputs.{option.name} }}}}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids(WORKFLOWS))
def test_workflow_jobs_have_timeouts_and_permissions(path: Path):
    doc = yaml.safe_load(path.read_text())
    assert "permissions" in doc, f"{path}: no top-level permissions"
    for name, job in doc["jobs"].items():
        # A job that calls a reusable workflow cannot set timeout-minutes: the called jobs do.
        assert "timeout-minutes" in job or "uses" in job, f"{path}: job {name} has no timeout-minutes"


USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")


@pytest.mark.parametrize("path", ACTIONS + WORKFLOWS, ids=ids(ACTIONS + WORKFLOWS))
def test_third_party_actions_are_pinned_by_sha_with_a_version_comment(path: Path):
    # A tag can be moved to other code; a SHA cannot. The comment says which release the SHA is,
    # so a reviewer (and Dependabot) can tell an upgrade from a swap.
    doc = yaml.safe_load(path.read_text())
    found = [m for line in path.read_text().splitlines() if (m := USES.match(line))]
    in_yaml = [s for s in steps_of(doc) if "uses" in s] + [
        j for j in (doc.get("jobs") or {}).values() if "uses" in j
    ]
    assert len(found) == len(in_yaml), f"{path}: a `uses:` that this test cannot read line by line"
    for match in found:
        ref, comment = match["ref"], match["comment"] or ""
        if ref.startswith("./"):
            continue
        # Our own actions and workflows ride the same moving major tag as the reusable workflow that calls them.
        if re.fullmatch(r"org/ml-cicd(/actions/[\w-]+|/\.github/workflows/[\w-]+\.yml)?@v\d+", ref):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), (
            f"{path}: {ref} is not pinned by a full commit SHA"
        )
        assert re.fullmatch(r"v\d+(\.\d+){0,2}\b.*", comment), (
            f"{path}: {ref} has no `# vX.Y.Z` comment naming its release"
        )


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids(WORKFLOWS))
def test_permissions_are_explicit_per_job_and_secrets_are_passed_by_name(path: Path):
    doc = yaml.safe_load(path.read_text())
    for name, job in doc["jobs"].items():
        # A job without its own block inherits the top level, which must then grant nothing.
        assert "permissions" in job or doc["permissions"] == {}, (
            f"{path}: job {name} has no permissions block"
        )
        assert job.get("secrets") != "inherit", (
            f"{path}: job {name} passes `secrets: inherit`; pass each secret by name"
        )
    call = (
        (doc.get(True) or doc.get("on") or {}).get("workflow_call")
        if isinstance(doc.get(True) or doc.get("on"), dict)
        else None
    )
    if call is not None:
        # Every secret a reusable workflow reads is declared, so callers see what it needs.
        used = set(re.findall(r"secrets\.([A-Z0-9_]+)", path.read_text()))
        assert used <= set(call.get("secrets") or {}), (
            f"{path}: secrets used but not declared: {used - set(call.get('secrets') or {})}"
        )


def reusable(path: Path) -> dict | None:
    doc = yaml.safe_load(path.read_text())
    on = doc.get(True) or doc.get("on")
    return doc if isinstance(on, dict) and "workflow_call" in on else None


STATEFUL_ACTIONS = {
    "promote": "mlcicd-promote-",
    "canary-shift": "mlcicd-deploy-",
    "monitor": "mlcicd-deploy-",
}
"""Actions that move registry aliases or traffic, and the concurrency group prefix their jobs share."""


@pytest.mark.parametrize(
    "path", [p for p in WORKFLOWS if reusable(p)], ids=ids([p for p in WORKFLOWS if reusable(p)])
)
def test_jobs_that_move_aliases_or_traffic_never_overlap_for_one_model(path: Path):
    """Two runs for the same model queue instead of overlapping (and are never cancelled half way):
    train.yml's and deploy.yml's promote jobs share one group per model, so a training run cannot
    move @staging/@production while a deploy moves @production; deploy's canary and monitor's
    rollback share another, so traffic has one driver at a time."""
    doc = reusable(path)
    checked = 0
    for name, job in doc["jobs"].items():
        used = {
            m.group(1)
            for step in job.get("steps", [])
            if (m := re.fullmatch(r"org/ml-cicd/actions/([\w-]+)@v\d+", step.get("uses", "")))
        }
        aborts = any(step.get("with", {}).get("mode") == "abort" for step in job.get("steps", []))
        for action in used & set(STATEFUL_ACTIONS):
            concurrency = job.get("concurrency") or {}
            group = str(concurrency.get("group", ""))
            # An abort must run while the rollout it stops holds the deploy group: it has one of its own.
            prefix = "mlcicd-abort-" if aborts and action == "canary-shift" else STATEFUL_ACTIONS[action]
            assert group.startswith(prefix + "${{ github.repository }}-${{ inputs.model-name"), (
                f"{path}: job {name} runs {action} outside the `{prefix}<repository>-<model>` concurrency group: {group!r}"
            )
            assert concurrency.get("cancel-in-progress") is False, (
                f"{path}: job {name} may be cancelled half way by a newer run"
            )
            checked += 1
    if path.name in ("train.yml", "deploy.yml"):
        assert checked, f"{path}: no promote or canary-shift job found"


# --- pull requests, runner inputs, flags (issue 16) --------------------------------------------------

REUSABLE = {
    p.name: yaml.safe_load(p.read_text()) for p in ROOT.glob(".github/workflows/*.yml") if p.name != "ci.yml"
}
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
REGISTRY_WRITERS = ("actions/promote", "actions/canary-shift", "actions/monitor")


def inputs_of(doc: dict) -> dict:
    # PyYAML reads the key `on` as True
    return (doc.get("on") or doc.get(True))["workflow_call"]["inputs"]


def test_pull_requests_from_forks_never_run_and_pull_request_jobs_cannot_write_the_registry():
    jobs = REUSABLE["train.yml"]["jobs"]
    # The first job runs only for a pull request from this repository; every other job needs it, so a
    # fork's pull request runs nothing of its own, and the verdict says why.
    assert (
        jobs["validate-data"]["if"].replace("${{", "").replace("}}", "").strip()
        == f"!github.event.pull_request || {SAME_REPO}"
    )
    for name in ("train-gpu", "check-gates", "promote"):
        needs = jobs[name]["needs"]
        assert "validate-data" in needs or "train-gpu" in needs, name
    verdict = jobs["verdict"]["steps"][0]
    assert "github.event.pull_request.head.repo.full_name != github.repository" in verdict["env"]["FORK"]
    assert 'if [ -n "$FORK" ]' in verdict["run"] and "skipped: a pull request from the fork" in verdict["run"]
    # Pull-request jobs that hold the registry's credentials run read-only (enforced in code: mlcicd.readonly)
    # and never reach a step that writes versions, aliases or tags.
    for name, job in jobs.items():
        env = job.get("env", {})
        if "MLFLOW_TRACKING_URI" in env and name != "promote":
            assert env.get("MLCICD_READ_ONLY") == "${{ github.event.pull_request && 'true' || 'false' }}", (
                name
            )
    assert jobs["promote"]["if"] == "${{ !github.event.pull_request }}"
    # The example: its pull-request comment job does not run for a fork either, and nothing it runs on a
    # pull request writes the registry.
    ml = yaml.safe_load((ROOT / "examples/.github/workflows/ml.yml").read_text())
    assert SAME_REPO in ml["jobs"]["report"]["if"]
    assert "model-version != ''" in ml["jobs"]["deploy"]["if"]  # a pull request has no version: no deploy
    for job in ml["jobs"].values():
        for step in job.get("steps", []):
            assert not any(w in step.get("uses", "") for w in REGISTRY_WRITERS), step


RUNNER_EXPRESSION = (
    "(startsWith(inputs.{0}, '[') || startsWith(inputs.{0}, '\"')) && fromJSON(inputs.{0}) || inputs.{0}"
)


def test_every_runner_input_takes_a_label_or_a_json_list_and_flags_are_booleans():
    for file, doc in REUSABLE.items():
        inputs = inputs_of(doc)
        runners = [name for name in inputs if name == "runner" or name.endswith("-runner")]
        assert runners, file
        for name in runners:
            assert "one label or a JSON list" in inputs[name]["description"], (file, name)
        for job_name, job in doc["jobs"].items():
            runs_on = job["runs-on"]
            used = [n for n in runners if f"inputs.{n}" in str(runs_on)]
            assert used and runs_on == "${{ " + RUNNER_EXPRESSION.format(used[0]) + " }}", (
                file,
                job_name,
                runs_on,
            )
        for name, spec in inputs.items():  # a yes/no input is a boolean, never a 'true'/'false' string
            if spec.get("type") == "string":
                assert not re.match(r"'?`(true|false)`", spec["description"]), (file, name)
    assert inputs_of(REUSABLE["train.yml"])["require-gpu"]["type"] == "boolean"
    assert inputs_of(REUSABLE["monitor.yml"])["issue"]["type"] == "boolean"


def run_verdict(tmp_path: Path, **env: str) -> tuple[int, str]:
    """train.yml's verdict step, run by bash with the environment the job would give it."""
    import os
    import subprocess

    step = REUSABLE["train.yml"]["jobs"]["verdict"]["steps"][0]
    summary = tmp_path / "summary.md"
    full = {
        "PATH": os.environ["PATH"],
        "GITHUB_STEP_SUMMARY": str(summary),
        **{k: "" for k in step["env"]},
        **env,
    }
    proc = subprocess.run(["bash", "-c", step["run"]], env=full, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + (summary.read_text() if summary.exists() else "")


def test_the_verdict_of_a_forks_pull_request_is_a_clear_skip(tmp_path: Path):
    rc, text = run_verdict(
        tmp_path,
        EVENT="pull_request",
        FORK="mallory/churn",
        VALIDATE="skipped",
        TRAIN="skipped",
        GATES="skipped",
    )
    assert rc == 0 and "⏭️ skipped: a pull request from the fork mallory/churn" in text, text
    assert "::notice title=ml-cicd train: skipped::" in text
    rc, text = run_verdict(
        tmp_path,
        EVENT="pull_request_target",
        VALIDATE="success",
        TRAIN="success",
        GATES="success",
        PASSED="true",
    )
    assert (
        rc == 0
        and "✅ the candidate passed the gates" in text
        and "a pull request is judged, not promoted" in text
    ), text
    rc, text = run_verdict(
        tmp_path, EVENT="pull_request", VALIDATE="success", TRAIN="success", GATES="failure", PASSED="false"
    )
    assert rc == 1 and "❌ the candidate did not pass" in text
