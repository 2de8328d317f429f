"""Stage reports: one JSON file for machines, markdown for people (step summary or stdout)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcicd.errors import UsageError

if TYPE_CHECKING:
    from mlcicd.config import Option

REPORT_DIR = "mlcicd-reports"


def default_report_path(stage: str) -> str:
    return str(Path(REPORT_DIR) / f"{stage}.json")


def report_option(stage: str, what: str = "") -> Option:
    """Every stage's `report` input: where its JSON report goes (`what`: what the report holds besides)."""
    from mlcicd.config import Option, text

    help_text = "where to write the JSON report" + (f" ({what})" if what else "")
    return Option(
        "report", text, default_report_path(stage), help_text, f"reports/{stage}.json", is_path=True
    )


def _jsonable(value: Any) -> Any:
    # NaN/inf are not JSON; null keeps the report readable by every JSON parser.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def _not_a_file(target: Path) -> UsageError | None:
    # os.replace would put the report in place of a device (/dev/null, /dev/full) when run as root.
    if target.exists() and not target.is_file():
        kind = "a directory" if target.is_dir() else "not a regular file"
        return UsageError(
            "report not writable",
            f"{target} is {kind}. Pass the path of a file as `report`.",
            file=str(target),
        )
    return None


def write_json(path: str | Path, payload: dict[str, Any]) -> str:
    """Write the report atomically (a reader never sees half a file); returns the path written."""
    target = Path(path)
    if problem := _not_a_file(target):
        raise problem
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_jsonable(payload), fh, indent=2, sort_keys=False, allow_nan=False)
            fh.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the report from other users of the runner
        os.replace(tmp, target)
    except OSError as exc:
        raise UsageError(
            "report not writable",
            f"{target}: {exc.strerror}. Pass a writable path as `report`.",
            file=str(target),
        ) from None
    return str(target)


def check_report_path(path: str) -> None:
    """Fail before touching a registry or a router when the report cannot be written: a file is
    created there and removed (os.access says yes to root on a read-only mount)."""
    target = Path(path)
    if problem := _not_a_file(target):
        raise problem
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            "report not writable", f"{path}: {exc.strerror}. Pass a writable path as `report`.", file=path
        ) from None


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a table: short, and honest about tiny p-values."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–" if math.isnan(value) else ("∞" if value > 0 else "−∞")
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
