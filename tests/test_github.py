from __future__ import annotations

import uuid

import pytest

from mlcicd import github

from conftest import parse_outputs


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("50% done", "50%25 done"),
        ("line1\nline2", "line1%0Aline2"),
        ("crlf\r\nend", "crlf%0D%0Aend"),
        ("%0A literal", "%250A literal"),
    ],
    ids=["plain", "percent", "newline", "crlf", "already-escaped-looking"],
)
def test_escape_data(raw, escaped):
    assert github.escape_data(raw) == escaped


def test_escape_property_also_escapes_colon_and_comma():
    assert github.escape_property("a: b, c\n") == "a%3A b%2C c%0A"


def test_error_annotation_in_actions(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    github.error("bad value\nsecond line", title="stage: bad, input", file="data/x.csv")
    out = capsys.readouterr().out
    assert out == "::error title=stage%3A bad%2C input,file=data/x.csv::bad value%0Asecond line\n"


def test_annotation_outside_actions_is_plain_stderr(monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    github.warning("careful", title="t")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "warning: t: careful\n"


def test_outputs_single_and_multiline(monkeypatch, tmp_path):
    path = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(path))
    github.set_outputs({"passed": "true", "table": "a\nb\nc", "json": '["x"]'})
    github.set_outputs({"rows": "3"})
    text = path.read_text()
    assert "table<<ghadelimiter_" in text
    assert parse_outputs(text) == {"passed": "true", "table": "a\nb\nc", "json": '["x"]', "rows": "3"}


def test_multiline_delimiter_is_random(monkeypatch, tmp_path):
    # A fixed delimiter could be forged by a value that contains it; uuid4 cannot be guessed.
    path = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(path))
    github.set_outputs({"a": "x\ny"})
    github.set_outputs({"a": "x\ny"})
    delimiters = [line.split("<<")[1] for line in path.read_text().splitlines() if "<<" in line]
    assert len(set(delimiters)) == 2
    uuid.UUID(delimiters[0].removeprefix("ghadelimiter_"))


def test_add_mask_masks_every_line(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    github.add_mask("token-1\ntoken-2\n")
    assert capsys.readouterr().out == "::add-mask::token-1\n::add-mask::token-2\n"


def test_summary_appends_or_prints(monkeypatch, tmp_path, capsys):
    path = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    github.write_summary("## one")
    github.write_summary("## two")
    assert path.read_text() == "## one\n\n## two\n\n"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    github.write_summary("## three")
    assert capsys.readouterr().out == "## three\n"
