"""Static rules for every action.yml and workflow: what actionlint and zizmor don't enforce on their own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

ACTIONS = sorted([ROOT / "action.yml", *ROOT.glob("actions/*/action.yml")])
WORKFLOWS = sorted(
    [*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("tests/workflows/*.yml"), *ROOT.glob("examples/.github/workflows/*.yml")]
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
            assert not EXPRESSION.search(step["run"]), f"{path.name}: step {step.get('id') or step.get('name')} interpolates into run:"


@pytest.mark.parametrize("path", ACTIONS, ids=ids(ACTIONS))
def test_every_action_input_and_output_is_described(path: Path):
    doc = yaml.safe_load(path.read_text())
    for name, spec in {**doc.get("inputs", {}), **doc.get("outputs", {})}.items():
        assert spec.get("description"), f"{path}: {name} has no description"
        assert name == name.lower() and "_" not in name, f"{path}: {name} is not kebab-case"
    for name, spec in doc.get("inputs", {}).items():
        assert "required" in spec and isinstance(spec.get("default", ""), str), f"{path}: {name}"


@pytest.mark.parametrize(
    "path", [p for p in ACTIONS if p.parent.parent.name == "actions"], ids=ids([p for p in ACTIONS if p.parent.parent.name == "actions"])
)
def test_stage_actions_set_up_the_toolkit_first(path: Path):
    steps = yaml.safe_load(path.read_text())["runs"]["steps"]
    assert steps[0]["run"] == 'python3 "$GITHUB_ACTION_PATH/../../scripts/setup_toolkit.py"'


@pytest.mark.parametrize(
    "path", [p for p in ACTIONS if p.parent.parent.name == "actions"], ids=ids([p for p in ACTIONS if p.parent.parent.name == "actions"])
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
        assert "timeout-minutes" in job or "uses" in job, f"{path}: job {name} has no timeout-minutes"
    for step in steps_of(doc):
        uses = step.get("uses", "")
        if uses and not uses.startswith("./"):
            # Our own actions ride the same moving major tag as the reusable workflow that calls them.
            own = re.fullmatch(r"org/ml-cicd(/actions/[\w-]+)?@v\d+", uses)
            assert own or re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses), f"{path}: {uses} is not pinned by SHA"


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids(WORKFLOWS))
def test_permissions_are_explicit_per_job_and_secrets_are_passed_by_name(path: Path):
    doc = yaml.safe_load(path.read_text())
    for name, job in doc["jobs"].items():
        # A job without its own block inherits the top level, which must then grant nothing.
        assert "permissions" in job or doc["permissions"] == {}, f"{path}: job {name} has no permissions block"
        assert job.get("secrets") != "inherit", f"{path}: job {name} passes `secrets: inherit`; pass each secret by name"
    call = (doc.get(True) or doc.get("on") or {}).get("workflow_call") if isinstance(doc.get(True) or doc.get("on"), dict) else None
    if call is not None:
        # Every secret a reusable workflow reads is declared, so callers see what it needs.
        used = set(re.findall(r"secrets\.([A-Z0-9_]+)", path.read_text()))
        assert used <= set(call.get("secrets") or {}), f"{path}: secrets used but not declared: {used - set(call.get('secrets') or {})}"
