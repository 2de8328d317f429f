"""Every input's text has one source: the `Option` declarations. The committed action.yml inputs, their
INPUT_* env lines and the docs' Inputs tables are what `make generate` writes from them, and the three
places a user reads an input's description (action.yml, `mlcicd <stage> --help`, the docs) agree word
for word."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from unittest import mock

import pytest
import yaml

from mlcicd.cli import main
from mlcicd.config import Option, text
from mlcicd.generate import END, START, Action, action_yml, actions, docs_page, generate
from mlcicd.inputs import default_text, describe, example_text, sentence

from conftest import ROOT

ACTIONS = actions(ROOT)
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def test_committed_files_are_what_make_generate_writes():
    wanted = generate(ROOT)
    stale = [str(path.relative_to(ROOT)) for path, want in wanted.items() if path.read_text("utf-8") != want]
    assert not stale, f"out of date, run `make generate` and commit: {stale}"


def test_every_action_and_page_is_generated():
    committed = {str(path.relative_to(ROOT)) for path in ROOT.glob("actions/*/action.yml")}
    assert {a.action for a in ACTIONS} == {"action.yml", *committed}
    assert all((ROOT / a.page).is_file() for a in ACTIONS)


# --- the three texts agree ----------------------------------------------------------------------


def action_descriptions(action: Action) -> dict[str, str]:
    doc = yaml.safe_load((ROOT / action.action).read_text(encoding="utf-8"))
    return {name: spec["description"] for name, spec in (doc.get("inputs") or {}).items()}


def docs_rows(action: Action) -> dict[str, list[str]]:
    """Input name → [default, description, example] from the generated table of the page."""
    page = (ROOT / action.page).read_text(encoding="utf-8")
    table = page.split(START, 1)[1].split(END, 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in CELL_SEPARATOR.split(line.strip())[1:-1]]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def docs_description(cells: list[str]) -> str:
    """A docs row read back as one description, the way describe() renders an Option."""
    default, description, example = cells
    option = Option("x", text, "", description, example.strip("`").strip(), shown_default=default)
    return describe(option)


@functools.cache
def cli_help(stage: str) -> dict[str, str]:
    """`--name` → its help as `mlcicd <stage> --help` prints it (on a terminal wide enough not to wrap).
    In-process: the same parser and formatter as the command (test_validate_data_cli runs it for real)."""
    printed = io.StringIO()
    with mock.patch.dict(os.environ, {"COLUMNS": "100000"}), contextlib.redirect_stdout(printed):
        with pytest.raises(SystemExit) as exited:
            main([stage, "--help"])
    assert exited.value.code == 0
    out = printed.getvalue().splitlines()
    helps: dict[str, str] = {}
    for i, line in enumerate(out):
        match = re.match(r"^  (--[a-z0-9-]+) VALUE", line)
        if match:
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            helps[match.group(1)[2:]] = parts[1] if len(parts) > 1 else out[i + 1].strip()
    return helps


def disagreements(action: Action) -> list[str]:
    found = []
    described = action_descriptions(action)
    rows = docs_rows(action)
    stage = action.action.split("/")[1] if action.action.startswith("actions/") else None
    cli = cli_help(stage) if stage else {}
    for option in action.inputs:
        canonical = describe(option)
        texts = {
            "action.yml": described.get(option.name),
            "docs": docs_description(rows[option.name]) if option.name in rows else None,
        }
        if stage:
            texts["--help"] = cli.get(option.name)
        where = f"{action.action} {option.name}"
        found += [f"{where}: {source} says {said!r}" for source, said in texts.items() if said != canonical]
        cells = [default_text(option), sentence(option.help), example_text(option)]
        if option.name in rows and rows[option.name] != cells:
            found.append(f"{action.page} {option.name}: row {rows[option.name]}")
    return found


def test_no_description_differs_between_action_yml_cli_help_and_docs():
    """The issue's count (69 of 124 differed when written by hand) is 0, over every input of every action."""
    differing = [line for action in ACTIONS for line in disagreements(action)]
    total = sum(len(action.inputs) for action in ACTIONS)
    assert total >= 124
    assert len(differing) == 0, "\n".join(differing)


def test_the_configuration_reference_says_the_same():
    """docs/configuration.md lists every key of every stage section with the same default and words."""
    from mlcicd.generate import config_description, split_row
    from mlcicd.stages import all_stages

    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name, stage in all_stages().items():
        if not stage.has_config_section:
            continue
        region = page.split(f"## `{name}`", 1)[1].split(START, 1)[1].split(END, 1)[0]
        table = [split_row(line) for line in region.splitlines() if line.startswith("| `")]
        rows = {cells[0].strip("`"): cells for cells in table}
        assert list(rows) == [o.name for o in stage.options], name
        for option in stage.options:
            _, kind, default, description = rows[option.name]
            assert kind, f"{name}.{option.name}: no Type"
            assert (default, description) == (default_text(option), config_description(option)), option.name


def test_the_cli_help_is_the_action_description_with_its_percent_signs():
    """argparse formats help with %, so a `1 %` in a help text must reach the terminal as `1 %`."""
    check_gates = next(a for a in ACTIONS if a.action == "actions/check-gates/action.yml")
    improvement = next(o for o in check_gates.inputs if o.name == "min-improvement")
    assert "1 % better" in improvement.help
    assert cli_help("check-gates")["min-improvement"] == describe(improvement)


def test_every_input_reaches_its_step_as_input_env():
    for action in ACTIONS:
        doc = yaml.safe_load((ROOT / action.action).read_text(encoding="utf-8"))
        step = next(s for s in doc["runs"]["steps"] if s.get("id") == action.env_step)
        passed = {k: v for k, v in step["env"].items() if k.startswith("INPUT_")}
        for option in action.inputs:
            expected = f"${{{{ inputs.{option.name} }}}}"
            assert passed.get(option.env_name) == expected, f"{action.action}: {option.name}"


# --- the generator rewrites only its regions, and twice is once -------------------------------

OLD_ACTION = """\
name: demo
description: A hand-written description.

inputs:
  gone:
    description: An input no option declares any more.
    required: false
    default: ''
  kept:
    description: Old words.
    required: false
    default: ''

outputs:
  passed:
    description: hand-written
    value: ${{ steps.run.outputs.passed }}

runs:
  using: composite
  steps:
    - id: setup
      shell: bash
      env:
        INPUT_EXTRAS: ${{ inputs.engine == 'spark' && 'spark' || '' }}
      run: setup
    - id: run
      shell: bash
      env:
        MLCICD_TOOLKIT_PYTHON: ${{ steps.setup.outputs.python }}
        INPUT_GONE: ${{ inputs.gone }}
        INPUT_KEPT: ${{ inputs.kept }}
      # a comment that stays
      run: 'exec "$MLCICD_TOOLKIT_PYTHON" -m mlcicd demo'
    - id: restore
      env:
        INPUT_KEPT: ${{ inputs.kept }}
      run: restore
"""

OLD_PAGE = """\
# demo

## Inputs

Hand-written prose | with a pipe.

| Input | Default | Description | Example |
|---|---|---|---|
| `gone` | none | Old. | |

## Outputs
"""

DEMO = Action(
    "actions/demo/action.yml",
    "docs/actions/demo.md",
    (
        Option("kept", text, "", "new words, with a | pipe and 5 %", "x"),
        Option("added", text, "a b", "a new input: `added`", "", shown_default="`a b` (two words)"),
    ),
    "run",
)


def test_generator_rewrites_inputs_env_and_table_and_keeps_the_rest():
    new = action_yml(OLD_ACTION, DEMO, prune=True)
    doc = yaml.safe_load(new)
    assert list(doc["inputs"]) == ["kept", "added"]
    assert doc["inputs"]["kept"]["description"] == "New words, with a | pipe and 5 %. Example: `x`."
    assert doc["inputs"]["added"]["description"] == "A new input: `added`. Default: `a b` (two words)."
    steps = {s["id"]: s for s in doc["runs"]["steps"]}
    assert steps["run"]["env"] == {
        "MLCICD_TOOLKIT_PYTHON": "${{ steps.setup.outputs.python }}",
        "INPUT_KEPT": "${{ inputs.kept }}",
        "INPUT_ADDED": "${{ inputs.added }}",
    }
    assert steps["setup"] == yaml.safe_load(OLD_ACTION)["runs"]["steps"][0]  # other steps as written
    assert steps["restore"]["env"] == {"INPUT_KEPT": "${{ inputs.kept }}"}
    assert doc["outputs"] == yaml.safe_load(OLD_ACTION)["outputs"] and doc["name"] == "demo"
    assert "# a comment that stays" in new
    assert action_yml(new, DEMO) == new

    page = docs_page(OLD_PAGE, DEMO)
    assert "Hand-written prose | with a pipe." in page and page.endswith("## Outputs\n")
    assert "`gone`" not in page
    assert "| `kept` | none | New words, with a \\| pipe and 5 %. | `x` |" in page
    assert "| `added` | `a b` (two words) | A new input: `added`. |  |" in page
    assert page.index(START) < page.index("| Input |") < page.index(END) < page.index("## Outputs")
    assert docs_page(page, DEMO) == page


@pytest.mark.parametrize(
    "broken",
    [OLD_ACTION.replace("inputs:\n", "ins:\n"), OLD_ACTION.replace("- id: run", "- id: go"), OLD_ACTION],
    ids=["no inputs key", "no run step", "an input no Option declares"],
)
def test_generator_names_a_file_it_cannot_place_its_region_in(broken: str):
    from mlcicd.generate import GenerateError

    with pytest.raises(GenerateError, match="actions/demo/action.yml"):
        action_yml(broken, DEMO, prune=broken != OLD_ACTION)


def test_every_example_is_a_value_its_input_accepts():
    """The docs and action.yml show each example as a value to copy: it must parse."""
    for action in ACTIONS:
        for option in action.inputs:
            if option.example:
                option.parse(option.example)


def test_generator_refuses_an_expression_in_a_description():
    from mlcicd.generate import GenerateError

    jobs = Option("jobs", text, "", "the caller's `needs`", "${{ toJSON(needs) }}")
    bad = Action(DEMO.action, DEMO.page, (jobs,), "run")
    with pytest.raises(GenerateError, match="jobs"):
        action_yml(OLD_ACTION, bad, prune=True)
