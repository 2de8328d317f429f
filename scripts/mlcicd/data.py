"""Reading tabular data in bounded-memory batches (CSV, Parquet, JSON Lines) and hashing it.

Every reader error becomes a UsageError naming the file and the fix, so bad data ends in one
clear line, never a pyarrow traceback.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcicd.data_files import FORMATS, data_digest, data_format, resolve_files
from mlcicd.errors import UsageError

__all__ = ["FORMATS", "data_digest", "data_format", "resolve_files"]  # where the data is, and its digest

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 1 << 18
COLUMN_GROUP_BYTES = 64 << 20
"""iter_blocks reads a Parquet row group this many uncompressed bytes of columns at a time: reading
all of a wide row group at once (or iter_batches, even with small batches) held ~10x the data of
one row group (1.3-1.6 GB RSS on 100,000 rows x 500 columns, against 0.17 GB a column group at a time)."""
READ_AS_DICTIONARY = b"mlcicd:read-as-dictionary"
"""Schema metadata key of a batch whose Parquet string columns (a JSON list) were read dictionary-encoded."""
CSV_BLOCK_BYTES = 16 << 20
LIKELY_DELIMITERS = (";", "\t", "|")


def _arrow_error(path: Path, exc: Exception, columns: list[str] | None = None) -> UsageError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if columns:  # pyarrow numbers CSV columns; people know them by name
        message = re.sub(
            r"In CSV column #(\d+)",
            lambda m: (
                f"column `{columns[int(m.group(1))]}`" if int(m.group(1)) < len(columns) else m.group(0)
            ),
            message,
        )
    if "Empty CSV file" in message or "Empty file" in message:
        return UsageError(
            "empty data file", f"{path} is empty. Check the step that produced it.", file=str(path)
        )
    if "UTF8" in message or "utf-8" in message.lower():
        return UsageError(
            "data is not UTF-8",
            f"{path}: {message}. Re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or set "
            "`encoding` (e.g. `latin-1`).",
            file=str(path),
        )
    if "conversion error" in message or "Expected" in message and "columns" in message:
        return UsageError(
            "data does not parse",
            f"{path}: {message}. Fix the offending value, or declare the column's real type in the schema "
            "(a column with text in it must be `str`).",
            file=str(path),
        )
    kind = {".parquet": "Parquet", ".pq": "Parquet", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines"}.get(
        path.suffix.lower(), "CSV"
    )
    return UsageError(
        "unreadable data",
        f"{path}: {message}. Check that it is a complete {kind} file (re-export it).",
        file=str(path),
    )


def _check_header(path: Path, schema: pa.Schema, delimiter: str) -> None:
    import pyarrow as pa

    if len(schema) == 1:
        for candidate in LIKELY_DELIMITERS:
            if candidate != delimiter and candidate in schema.names[0]:
                shown = "\\t" if candidate == "\t" else candidate
                raise UsageError(
                    "wrong delimiter",
                    f"{path} parsed as a single column `{schema.names[0][:60]}`; it looks "
                    f"`{shown}`-delimited. Set `delimiter: '{shown}'`.",
                    file=str(path),
                )
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise UsageError(
                "data is not UTF-8",
                f"{path}: column `{field.name}` holds bytes that are not valid UTF-8. Re-encode the file as "
                "UTF-8 "
                "(e.g. `iconv -f latin1 -t utf-8`) or set `encoding` (e.g. `latin-1`).",
                file=str(path),
            )
    seen: set[str] = set()
    for name in schema.names:
        if name in seen:
            raise UsageError(
                "duplicate column names",
                f"{path}: column `{name}` appears twice in the header. Rename one of them.",
                file=str(path),
            )
        seen.add(name)


MAX_COLUMNS = 10_000
"""pyarrow holds per-column state for every column of a block: a 1e6-column header takes >18 GB."""


def _check_width(path: Path, delimiter: str) -> None:
    """Count the header's columns on a bounded read, before pyarrow sizes its buffers by them."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(MAX_COLUMNS * 64)
    except OSError:
        return  # open_csv reports it, with its own message
    line = head.split(b"\n", 1)[0]
    columns = line.count(delimiter.encode()) + 1
    if columns > MAX_COLUMNS or (b"\n" not in head and len(head) == MAX_COLUMNS * 64):
        shown = f"{columns:,}" if b"\n" in head else f"more than {columns:,}"
        raise UsageError(
            "too many columns",
            f"{path} has {shown} columns; at most {MAX_COLUMNS:,} are read. Select the columns the schema "
            "describes, "
            "or check the `delimiter`.",
            file=str(path),
        )


def _csv_batches(
    path: Path, delimiter: str, encoding: str, column_types: Mapping[str, pa.DataType]
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if path.suffix.lower() == ".tsv" and delimiter == ",":
        delimiter = "\t"
    _check_width(path, delimiter)
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, encoding=encoding)
    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        first = pacsv.open_csv(path, read_options=read, parse_options=parse)
    except (pa.ArrowException, OSError, LookupError) as exc:
        raise _arrow_error(path, exc) from None
    _check_header(path, first.schema, delimiter)
    # Types are inferred from the first block only; an int column whose later rows hold
    # decimals would then fail mid-file, so integers are read as float64 unless declared.
    types = {f.name: pa.float64() for f in first.schema if pa.types.is_integer(f.type)}
    types.update({k: v for k, v in column_types.items() if k in first.schema.names})
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        yield from reader
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(path, exc, first.schema.names) from None


def _parquet_batches(
    path: Path, strings_as_dictionary: bool = False, row_groups: list[int] | None = None
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer=True (the default) loads every column chunk of the file before the first
        # batch: memory would grow with the file, not the batch.
        parquet = pq.ParquetFile(path, pre_buffer=False)
        _check_header(path, parquet.schema_arrow, ",")
        names = _dictionary_strings(parquet) if strings_as_dictionary else []
        if not names:
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=row_groups)
            return
        # A string column the writer dictionary-encoded is read as stored, without building a
        # Python-visible string per row: at 5,000,000 rows that was 1.3 s of a 1.8 s read.
        parquet = pq.ParquetFile(path, pre_buffer=False, read_dictionary=names)
        marker = {READ_AS_DICTIONARY: json.dumps(names).encode()}
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=row_groups):
            yield batch.replace_schema_metadata({**(batch.schema.metadata or {}), **marker})
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(path, exc) from None


def _dictionary_strings(parquet: Any) -> list[str]:
    """Top-level string columns whose first row group has a dictionary page."""
    import pyarrow as pa

    if not parquet.metadata.num_row_groups:
        return []
    group = parquet.metadata.row_group(0)
    paths = {
        group.column(i).path_in_schema: group.column(i).has_dictionary_page for i in range(group.num_columns)
    }
    return [
        f.name
        for f in parquet.schema_arrow
        if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)) and paths.get(f.name)
    ]


def read_as_dictionary(batch: pa.RecordBatch) -> set[str]:
    """The columns of a batch that iter_batches(strings_as_dictionary=True) dictionary-encoded."""
    marker = (batch.schema.metadata or {}).get(READ_AS_DICTIONARY)
    return set(json.loads(marker)) if marker else set()


def plain_strings(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch as iter_batches() without strings_as_dictionary yields it: those columns decoded."""
    names = read_as_dictionary(batch)
    if not names:
        return batch
    import pyarrow as pa

    columns = [
        c.dictionary_decode() if n in names else c
        for n, c in zip(batch.schema.names, batch.columns, strict=True)
    ]
    metadata = {k: v for k, v in batch.schema.metadata.items() if k != READ_AS_DICTIONARY} or None
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names, metadata=metadata)


def _jsonl_batches(path: Path) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.json as pajson

    if path.stat().st_size == 0:
        raise UsageError(
            "empty data file", f"{path} is empty. Check the step that produced it.", file=str(path)
        )
    try:
        reader = pajson.open_json(path, read_options=pajson.ReadOptions(block_size=CSV_BLOCK_BYTES))
        _check_header(path, reader.schema, ",")
        yield from reader
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(path, exc) from None


@dataclass(frozen=True)
class Block:
    """Rows of one file, readable a group of columns at a time (`pieces`) or all at once (`whole`)."""

    path: Path
    rows: int
    names: tuple[str, ...]
    pieces: Callable[[], Iterator[pa.RecordBatch]]
    whole: Callable[[], pa.RecordBatch]


def _pieces_of(
    read: Callable[[int, list[str] | None], pa.RecordBatch], group: int, groups: list[list[str]]
) -> Callable[[], Iterator[pa.RecordBatch]]:
    return lambda: (read(group, columns) for columns in groups)


def _single(path: Path, batch: pa.RecordBatch) -> Block:
    return Block(path, batch.num_rows, tuple(batch.schema.names), lambda: iter((batch,)), lambda: batch)


def column_groups(sizes: Mapping[str, int], limit: int | None = None) -> list[list[str]]:
    """Consecutive columns in groups of at most `limit` (default COLUMN_GROUP_BYTES) bytes; a larger column
    alone."""
    limit = COLUMN_GROUP_BYTES if limit is None else limit
    groups: list[list[str]] = []
    total = limit
    for name, size in sizes.items():
        if total + size > limit:
            groups.append([])
            total = 0
        groups[-1].append(name)
        total += size
    return groups


def _parquet_blocks(path: Path, strings_as_dictionary: bool) -> Iterator[Block]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)
        _check_header(path, parquet.schema_arrow, ",")
        dictionary = _dictionary_strings(parquet) if strings_as_dictionary else []
        if dictionary:
            parquet = pq.ParquetFile(path, pre_buffer=False, read_dictionary=dictionary)
        metadata = {READ_AS_DICTIONARY: json.dumps(dictionary).encode()} if dictionary else {}
        names = tuple(parquet.schema_arrow.names)
        meta = parquet.metadata
    except (pa.ArrowException, OSError) as exc:
        raise _arrow_error(path, exc) from None

    def read(group: int, columns: list[str] | None) -> pa.RecordBatch:
        try:
            table = parquet.read_row_group(group, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise _arrow_error(path, exc) from None
        batches = table.to_batches()
        batch = batches[0] if len(batches) == 1 else pa.concat_batches(batches)
        return (
            batch.replace_schema_metadata({**(batch.schema.metadata or {}), **metadata})
            if metadata
            else batch
        )

    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if not rows:
            continue
        if rows > BATCH_ROWS:  # a long row group: batches of rows, as narrow tables are usually written
            for batch in _parquet_batches(path, strings_as_dictionary, row_groups=[group]):
                yield _single(path, batch)
            continue
        sizes = dict.fromkeys(names, 0)
        row_group = meta.row_group(group)
        for i in range(row_group.num_columns):
            chunk = row_group.column(i)
            top = chunk.path_in_schema.split(".", 1)[0]
            if top in sizes:
                sizes[top] += chunk.total_uncompressed_size
        groups = column_groups(sizes)
        if len(groups) <= 1:
            yield _single(path, read(group, None))
            continue
        yield Block(path, rows, names, _pieces_of(read, group, groups), functools.partial(read, group, None))


def iter_blocks(
    files: list[Path],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    column_types: Mapping[str, pa.DataType] | None = None,
    strings_as_dictionary: bool = False,
) -> Iterator[Block]:
    """Like iter_batches, but a wide Parquet row group comes as one Block whose columns are read a
    COLUMN_GROUP_BYTES group at a time: memory stays at about one such group, whatever the width."""
    for path in files:
        if data_format(path) == "parquet":
            yield from _parquet_blocks(path, strings_as_dictionary)
            continue
        for _, batch in iter_batches(
            [path], delimiter=delimiter, encoding=encoding, column_types=column_types
        ):
            yield _single(path, batch)


def iter_batches(
    files: list[Path],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    column_types: Mapping[str, pa.DataType] | None = None,
    strings_as_dictionary: bool = False,
) -> Iterator[tuple[Path, pa.RecordBatch]]:
    """Yield (file, batch) for every file in turn; memory stays at about one batch.

    With strings_as_dictionary, Parquet string columns stored dictionary-encoded come as
    dictionary arrays (listed by read_as_dictionary; plain_strings undoes it)."""
    for path in files:
        fmt = data_format(path)
        if fmt == "csv":
            batches = _csv_batches(path, delimiter, encoding, column_types or {})
        elif fmt == "parquet":
            batches = _parquet_batches(path, strings_as_dictionary)
        else:
            batches = _jsonl_batches(path)
        for batch in batches:
            if batch.num_rows:
                yield path, batch
