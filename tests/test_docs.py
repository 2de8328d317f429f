"""The docs agree with the YAML: every Inputs/Outputs/Secrets table lists exactly what the action or
reusable workflow declares (and the workflow defaults), every page is reachable, every local link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

DOCS = ROOT / "docs"
ACTIONS = {"setup": ROOT / "action.yml"} | {
    p.parent.name: p for p in sorted(ROOT.glob("actions/*/action.yml"))
}
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
NAME_CELL = re.compile(r"^`([^`]+)`$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def reusable_workflows() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.glob(".github/workflows/*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as the boolean true
        if isinstance(on, dict) and "workflow_call" in on:
            found[path.stem] = path
    return found


WORKFLOWS = reusable_workflows()


def workflow_call(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc.get("on", doc.get(True))["workflow_call"] or {}


def prose_lines(text: str) -> list[tuple[str, bool]]:
    """Each line with whether it is outside fenced code blocks (a `# comment` in a block is no heading)."""
    lines, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            lines.append((line, False))
        else:
            lines.append((line, not in_fence))
    return lines


def split_row(line: str) -> list[str]:
    cells = CELL_SEPARATOR.split(line.strip())
    if cells and cells[0] == "":
        cells = cells[1:]
    if cells and cells[-1] == "":
        cells = cells[:-1]
    return [cell.strip().replace("\\|", "|") for cell in cells]


def section_table(page: Path, heading: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the first markdown table under `heading`, before the next heading."""
    lines = prose_lines(page.read_text(encoding="utf-8"))
    start = next((i for i, (line, prose) in enumerate(lines) if prose and line.strip() == heading), None)
    assert start is not None, f"{page.relative_to(ROOT)}: no `{heading}` heading"
    table: list[str] = []
    for line, prose in lines[start + 1 :]:
        if prose and HEADING.match(line):
            break
        if prose and line.lstrip().startswith("|"):
            table.append(line)
        elif table:
            break  # the first table ended
    assert len(table) >= 2, f"{page.relative_to(ROOT)}: no table under `{heading}`"
    header, separator, *rows = (split_row(line) for line in table)
    assert all(re.fullmatch(r":?-{3,}:?", cell) for cell in separator), (
        f"{page.relative_to(ROOT)}: `{heading}` table has no separator row"
    )
    return header, rows


def table_names(page: Path, heading: str) -> list[str]:
    _, rows = section_table(page, heading)
    names = []
    for row in rows:
        match = NAME_CELL.match(row[0])
        assert match, (
            f"{page.relative_to(ROOT)}: `{heading}` row {row[0]!r} does not start with a `name` cell"
        )
        names.append(match.group(1))
    assert len(names) == len(set(names)), f"{page.relative_to(ROOT)}: `{heading}` lists a name twice: {names}"
    return names


def assert_same_names(page: Path, heading: str, declared: dict | None, source: Path) -> None:
    documented = set(table_names(page, heading))
    declared = set(declared or {})
    where = f"{page.relative_to(ROOT)} `{heading}` vs {source.relative_to(ROOT)}"
    assert not declared - documented, f"{where}: not documented: {sorted(declared - documented)}"
    assert not documented - declared, f"{where}: documented but not declared: {sorted(documented - declared)}"


def rendered_default(spec: dict) -> str:
    """How a workflow input's default is written in the Default column (backticks stripped)."""
    if "default" not in spec:
        return "(required)" if spec.get("required") else "(none)"
    value = spec["default"]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return "''"
    return str(value)


@pytest.mark.parametrize("stage", sorted(ACTIONS))
def test_action_page_tables_match_the_action(stage: str):
    action = ACTIONS[stage]
    page = DOCS / "actions" / f"{stage}.md"
    assert page.is_file(), f"{action.relative_to(ROOT)} has no docs page {page.relative_to(ROOT)}"
    doc = yaml.safe_load(action.read_text(encoding="utf-8"))
    assert_same_names(page, "## Inputs", doc.get("inputs"), action)
    assert_same_names(page, "## Outputs", doc.get("outputs"), action)


def test_every_action_page_documents_an_action():
    pages = {p.stem for p in (DOCS / "actions").glob("*.md")}
    assert pages == set(ACTIONS), f"pages without an action: {sorted(pages - set(ACTIONS))}"


def test_both_reusable_workflows_are_found():
    assert {"train", "deploy"} <= set(WORKFLOWS), sorted(WORKFLOWS)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_page_tables_match_the_workflow(name: str):
    workflow = WORKFLOWS[name]
    page = DOCS / "workflows" / f"{name}.md"
    assert page.is_file(), f"{workflow.relative_to(ROOT)} has no docs page {page.relative_to(ROOT)}"
    call = workflow_call(workflow)
    assert_same_names(page, "## Inputs", call.get("inputs"), workflow)
    assert_same_names(page, "## Secrets", call.get("secrets"), workflow)
    assert_same_names(page, "## Outputs", call.get("outputs"), workflow)


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_page_defaults_match_the_workflow(name: str):
    page = DOCS / "workflows" / f"{name}.md"
    assert page.is_file(), f"no docs page {page.relative_to(ROOT)}"
    header, rows = section_table(page, "## Inputs")
    assert "Default" in header, f"{page.relative_to(ROOT)}: the inputs table has no Default column"
    column = header.index("Default")
    inputs = workflow_call(WORKFLOWS[name]).get("inputs") or {}
    for row in rows:
        input_name = NAME_CELL.match(row[0]).group(1)
        if input_name not in inputs:
            continue  # reported by the names test
        documented = row[column].replace("`", "").strip()
        expected = rendered_default(inputs[input_name])
        assert documented == expected, (
            f"{page.relative_to(ROOT)}: default of `{input_name}` is {documented!r}, the workflow says {expected!r}"
        )


def links(page: Path) -> list[str]:
    """Link targets in the prose of a markdown page (not in code blocks or code spans)."""
    found = []
    for line, prose in prose_lines(page.read_text(encoding="utf-8")):
        if prose:
            found += LINK.findall(CODE_SPAN.sub("", line))
    return found


def local_target(page: Path, target: str) -> Path | None:
    """The file a link points to, or None for a web link or an anchor on the same page."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
        return None
    return (page.parent / target.split("#", 1)[0].split("?", 1)[0]).resolve()


def test_every_action_and_workflow_page_is_linked_from_the_readme_or_getting_started():
    entry_points = [ROOT / "README.md", DOCS / "getting-started.md"]
    linked = {
        target
        for page in entry_points
        if page.is_file()
        for link in links(page)
        if (target := local_target(page, link))
    }
    pages = sorted([*(DOCS / "actions").glob("*.md"), *(DOCS / "workflows").glob("*.md")])
    missing = [str(p.relative_to(ROOT)) for p in pages if p.resolve() not in linked]
    assert not missing, f"not linked from README.md or docs/getting-started.md: {missing}"


DOC_PAGES = sorted(DOCS.rglob("*.md"))


@pytest.mark.parametrize("page", DOC_PAGES, ids=[str(p.relative_to(ROOT)) for p in DOC_PAGES])
def test_local_links_resolve(page: Path):
    broken = [link for link in links(page) if (target := local_target(page, link)) and not target.exists()]
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"
