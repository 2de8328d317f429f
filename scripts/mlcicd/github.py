"""GitHub Actions I/O: step outputs, the step summary, annotations and masking.

Outside Actions (no GITHUB_OUTPUT / GITHUB_STEP_SUMMARY) the summary goes to stdout and
annotations become plain `error: ...` lines on stderr, so every stage also runs in a terminal.
"""

from __future__ import annotations

import os
import sys
import uuid


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def escape_data(value: str) -> str:
    """Escape a workflow-command message (the part after `::`)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a workflow-command property value (`title=`, `file=`), where `:` and `,` are syntax."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, message: str, **properties: str | int | None) -> str:
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items() if v is not None)
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"


def annotate(kind: str, message: str, *, title: str | None = None, file: str | None = None) -> None:
    """Print an `error`, `warning` or `notice` annotation."""
    if in_actions():
        print(_command(kind, message, title=title, file=file), flush=True)
    else:
        where = f"{file}: " if file else ""
        head = f"{title}: " if title else ""
        print(f"{kind}: {where}{head}{message}", file=sys.stderr, flush=True)


def error(message: str, *, title: str | None = None, file: str | None = None) -> None:
    annotate("error", message, title=title, file=file)


def warning(message: str, *, title: str | None = None, file: str | None = None) -> None:
    annotate("warning", message, title=title, file=file)


def add_mask(secret: str) -> None:
    """Ask the runner to mask a secret in all later log lines (each line of a multi-line secret)."""
    if not in_actions():
        return
    for line in secret.splitlines():
        if line.strip():
            print(f"::add-mask::{escape_data(line)}", flush=True)


def set_outputs(outputs: dict[str, str]) -> None:
    """Append step outputs to $GITHUB_OUTPUT; multi-line values use a random heredoc delimiter."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    lines = []
    for name, value in outputs.items():
        if "\n" in value or "\r" in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            lines.append(f"{name}={value}\n")
    _append(path, "".join(lines))


def write_summary(markdown: str) -> None:
    """Append markdown to the job's step summary, or print it when not running in Actions."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        _append(path, markdown.rstrip("\n") + "\n\n")
    else:
        print(markdown, flush=True)


def _append(path: str, text: str) -> None:
    # The runner's files live on the runner's disk: a full disk or quota must name the file, not end as a bug.
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
