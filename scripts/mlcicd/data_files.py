"""Which files are the data (a file, a directory or a glob) and their content digest."""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path

from mlcicd.errors import UsageError

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def data_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(
            "unsupported data format",
            f"{path}: the extension `{path.suffix or '(none)'}` is not one of {', '.join(sorted(FORMATS))}. "
            "Rename the file or convert it to CSV, Parquet or JSON Lines.",
            file=str(path),
        )
    return fmt


def resolve_files(spec: str, *, option: str = "data") -> list[Path]:
    """A file, a directory (every supported file under it) or a glob; sorted, never empty."""
    if not spec:
        raise UsageError(
            f"missing {option}",
            f"`{option}` is required: a CSV, Parquet or JSON Lines file, a directory or a glob.",
        )
    path = Path(spec)
    if path.is_file():
        data_format(path)
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
        if not files:
            raise UsageError(
                f"no data in {option}",
                f"{spec}: the directory holds no {', '.join(sorted(FORMATS))} files.",
                file=spec,
            )
        return files
    if glob.has_magic(spec):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise UsageError(
                f"{option} glob matched nothing",
                f"`{spec}` matched no file (relative to {os.getcwd()}). Check the pattern and that the data "
                "was fetched.",
                file=spec,
            )
        for file in files:
            data_format(file)
        return files
    raise UsageError(
        f"{option} not found",
        f"{spec} does not exist (relative to {os.getcwd()}). Pass a file, a directory or a glob.",
        file=spec,
    )


def data_digest(files: list[Path]) -> str:
    """sha256 over each file's name and bytes, in sorted order: same files, same digest, wherever they are."""
    common = Path(os.path.commonpath([str(f.resolve()) for f in files]))
    overall = hashlib.sha256()
    for file in files:
        resolved = file.resolve()
        name = resolved.name if resolved == common else str(resolved.relative_to(common))
        content = hashlib.sha256()
        with open(file, "rb") as fh:
            while chunk := fh.read(1 << 22):
                content.update(chunk)
        overall.update(f"{name}\0{content.hexdigest()}\n".encode())
    return "sha256:" + overall.hexdigest()
