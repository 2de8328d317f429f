"""The docs' snippets hold: what a page shows a user to write or run is checked against the workflows,
the actions, the CLI and the example, so that drift between them fails CI.

- every YAML snippet that calls a reusable workflow or an action passes only inputs and secrets it
  declares, booleans as booleans, runner inputs as a label or a JSON list, and the required inputs;
- every `mlcicd …` command line in a shell block names a real subcommand and real flags;
- every `python train.py …` names flags the example's train.py takes;
- the tracking URI is a secret everywhere, as the workflows declare it;
- figures the docs quote (the registry lease, the demo's and the example's canary steps, the
  pr-report sample's gate names) are the code's;
- the terminal commands of getting started and the README run against the example.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import EXAMPLES, ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
WORKFLOW_USES = re.compile(r"^org/ml-cicd/\.github/workflows/(\w+)\.yml@")
ACTION_USES = re.compile(r"^org/ml-cicd/actions/([\w-]+)@")


def fenced(text: str) -> Iterator[tuple[str, str]]:
    """(language, dedented body) of each fenced code block of a markdown text."""
    lines, i = text.splitlines(), 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```(\w*)", lines[i])
        if not opening:
            i += 1
            continue
        indent, body, i = opening.group(1), [], i + 1
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        yield opening.group(2), textwrap.dedent("\n".join(body) + "\n")


def blocks(languages: tuple[str, ...]) -> Iterator[tuple[Path, str]]:
    for page in PAGES:
        for language, body in fenced(page.read_text(encoding="utf-8")):
            if language in languages:
                yield page, body


def declared(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    on = doc.get("on", doc.get(True))
    return on["workflow_call"] if isinstance(on, dict) and "workflow_call" in on else doc


def calls(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("uses"), str):
            yield node
        for value in node.values():
            yield from calls(value)
    elif isinstance(node, list):
        for value in node:
            yield from calls(value)


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith("${{")


def runner_ok(value: Any) -> bool:
    if is_expression(value):
        return True
    if not isinstance(value, str) or not value.strip():
        return False
    text = value.strip()
    if text.startswith("["):
        parsed = json.loads(text)
        return isinstance(parsed, list) and all(isinstance(v, str) for v in parsed)
    return text.startswith('"') or " " not in text


def check_call(call: dict[str, Any]) -> list[str]:
    uses, given = call["uses"], call.get("with") or {}
    if found := WORKFLOW_USES.match(uses):
        spec = declared(ROOT / ".github" / "workflows" / f"{found.group(1)}.yml")
    elif found := ACTION_USES.match(uses):
        spec = declared(ROOT / "actions" / found.group(1) / "action.yml")
    else:
        return []
    inputs, problems = spec.get("inputs") or {}, []
    for name, value in given.items():
        if name not in inputs:
            problems.append(f"{uses}: no input `{name}`")
            continue
        kind = inputs[name].get("type", "string")
        if kind == "boolean" and not (isinstance(value, bool) or is_expression(value)):
            problems.append(f"{uses}: `{name}` is a boolean, given {value!r}")
        if (name == "runner" or name.endswith("-runner")) and not runner_ok(value):
            problems.append(f"{uses}: `{name}` takes a label or a JSON list, given {value!r}")
    if "with" in call and WORKFLOW_USES.match(uses):
        missing = [n for n, s in inputs.items() if s.get("required") and n not in given]
        problems += [f"{uses}: required input `{n}` missing" for n in missing]
    secrets = call.get("secrets")
    if isinstance(secrets, dict):
        problems += [f"{uses}: no secret `{n}`" for n in secrets if n not in (spec.get("secrets") or {})]
    return problems


def test_yaml_snippets_call_the_workflows_and_actions_as_they_are_declared():
    checked, problems = 0, []
    sources = [
        *blocks(("yaml", "yml")),
        *((p, p.read_text()) for p in sorted(EXAMPLES.glob(".github/workflows/*.yml"))),
    ]
    for page, text in sources:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # a fragment such as `- id: …` continued from the block before
        for call in calls(doc):
            checked += 1
            problems += [f"{page.relative_to(ROOT)}: {p}" for p in check_call(call)]
    assert checked >= 25, f"only {checked} calls found: is the snippet extraction broken?"
    assert not problems, "\n".join(problems)


def subcommands() -> dict[str, set[str]]:
    import argparse

    from mlcicd import cli, local_run

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = {name: set(p._option_string_actions) for name, p in sub.choices.items()}
    found["local"] = set(local_run.parser()._option_string_actions)
    return found


def command_lines(prefix: str) -> Iterator[tuple[Path, list[str]]]:
    for page, text in blocks(("sh", "bash", "console", "shell")):
        for line in text.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|\|\||;", line.split(" # ")[0]):
                try:
                    words = shlex.split(part.strip().removeprefix("$ "), comments=True)
                except ValueError:  # a quote that spans lines (`python -c "…`): not a command line of ours
                    continue
                if words[: len(prefix.split())] == prefix.split():
                    yield page, words


def test_every_mlcicd_command_the_docs_show_has_real_flags():
    known, problems, seen = subcommands(), [], 0
    for page, words in command_lines("mlcicd"):
        seen += 1
        if len(words) < 2 or words[1] not in known:
            problems.append(f"{page.relative_to(ROOT)}: unknown subcommand in {' '.join(words)}")
            continue
        flags = [w.split("=")[0] for w in words[2:] if w.startswith("-") and w != "--"]
        problems += [
            f"{page.relative_to(ROOT)}: `mlcicd {words[1]}` has no {f}"
            for f in flags
            if f not in known[words[1]]
        ]
    assert seen >= 10, seen
    assert not problems, "\n".join(problems)


def test_every_train_py_command_takes_the_example_train_py_flags():
    flags = set(re.findall(r"add_argument\(\"(--[\w-]+)\"", (EXAMPLES / "train.py").read_text()))
    problems = []
    for page in PAGES:
        for match in re.finditer(r"python3? train\.py((?: --?[\w-]+(?: [\w./-]+)?)*)", page.read_text()):
            used = re.findall(r"(--?[\w-]+)", match.group(1))
            problems += [
                f"{page.relative_to(ROOT)}: train.py has no {u}"
                for u in used
                if u.startswith("-") and u not in flags
            ]
    assert not problems, "\n".join(problems)


def test_the_tracking_uri_is_a_secret_everywhere():
    for path in [*PAGES, *ROOT.glob(".github/workflows/*.yml"), *EXAMPLES.glob(".github/workflows/*.yml")]:
        assert "vars.MLFLOW_" not in path.read_text(), (
            f"{path.relative_to(ROOT)}: the workflows take MLFLOW_* as secrets"
        )


def test_figures_the_docs_quote_are_the_codes():
    from mlcicd import gate_table, tracking

    # The registry lease: every duration written next to it is the code's.
    for page in PAGES:
        for match in re.finditer(r"\blease\b[^.|]{0,60}?\b(\d+)\s*(s|seconds|minutes?)\b", page.read_text()):
            seconds = int(match.group(1)) * (60 if match.group(2).startswith("minute") else 1)
            assert seconds == tracking.LEASE_SECONDS, f"{page.relative_to(ROOT)}: {match.group(0)!r}"
    # The demo's canary steps and the example's, as the README tells them.
    readme = (ROOT / "README.md").read_text()
    demo_steps = re.search(r'"steps": "([\d,]+)"', (ROOT / "tests" / "demo.py").read_text())
    assert demo_steps and " → ".join(f"{s} %" for s in demo_steps.group(1).split(",")) + " while" in readme
    example = yaml.safe_load((EXAMPLES / "mlcicd.yaml").read_text())["canary-shift"]
    for quoted in re.findall(r"`steps: ([\d,]+)`", readme):
        assert quoted == example["steps"], f"README quotes steps {quoted}, the example has {example['steps']}"
    # pr-report's sample comment shows gates by their real names.
    page = (ROOT / "docs" / "actions" / "pr-report.md").read_text()
    sample = page[page.index("| gate | candidate") :].split("\n\n")[0]
    names = [row.split("|")[1].strip() for row in sample.splitlines()[2:]]
    real = set(gate_table.THRESHOLD_OPTIONS) | {f"{m} vs baseline" for m in gate_table.METRICS}
    assert names and set(names) <= real, names
    # The canary judge's false rollbacks are measured (docs/benchmarks.md), not promised away.
    for page in PAGES:
        said = re.search(r"\b(no|never any|zero) false[- ]rollbacks?\b", page.read_text(), re.I)
        assert not said, f"{page.relative_to(ROOT)}: {said.group(0)!r}, but docs/benchmarks.md measures them"
    # deploy.yml's serve check leaves the training verdict alone (check-gates' serve-only does not record).
    deploy = (ROOT / "docs" / "workflows" / "deploy.md").read_text()
    row = next(line for line in deploy.splitlines() if line.startswith("| serve-check: the served model"))
    assert "gates.passed=false" not in row and "left as it is" in row


@pytest.fixture(scope="module")
def example_copy(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("from-the-docs")
    for name in ("make_data.py", "schema.yaml", "mlcicd.yaml", "train.py", "params.yaml"):
        (repo / name).write_text((EXAMPLES / name).read_text())
    return repo


def shown(page_name: str, prefix: str) -> str:
    """The first command line of `page_name` that starts with `prefix`, as written there."""
    words = next(w for page, w in command_lines(prefix) if page.name == page_name)
    return " ".join(shlex.quote(w) for w in words)


def test_the_terminal_commands_of_the_docs_run_against_the_example(example_copy: Path):
    """getting-started's data and profile commands, then the README's validate-data line, as written
    (make_data.py with fewer rows, to stay fast), in a copy of the example."""
    commands = [
        shown("getting-started.md", "python make_data.py") + " --rows 2000",
        shown("getting-started.md", "mlcicd profile"),
        shown("README.md", "mlcicd profile"),
        shown("README.md", "mlcicd validate-data"),
    ]
    bin_dir = Path(sys.executable).parent
    for command in dict.fromkeys(commands):
        local = re.sub(
            r"^mlcicd ", f"{bin_dir / 'mlcicd'} ", re.sub(r"^python ", f"{sys.executable} ", command)
        )
        proc = subprocess.run(
            local, shell=True, cwd=example_copy, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
