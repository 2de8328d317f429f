"""One pass over a dataset: its profile, its schema failures and its digest, read in batches.

Shared by the stages that read data: validate-data and `mlcicd profile` (with a schema), and
monitor (drift of production inputs). `DATA_OPTIONS` are the options that say where the data is
and how to read it; a stage builds a `DataSource` from them in its settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcicd.arrow_schema import ArrowSchema
from mlcicd.config import Option, choice, text
from mlcicd.errors import UsageError
from mlcicd.schemas import SchemaFailures, arrow_types_for, validate_batch

Scanned = tuple[list[str], dict[str, Any], SchemaFailures, str]
"""(sources read, profile, schema failures, data digest)."""

DATA_OPTIONS = (
    Option(
        "data",
        text,
        "",
        "data to check: a CSV (`.csv`, `.tsv`), Parquet (`.parquet`, `.pq`) or JSON Lines (`.jsonl`, "
        "`.ndjson`) file, a directory (every such file under it, recursively, in sorted order) or a glob "
        "(`**` allowed)",
        "data/current.parquet",
        is_path=True,
        shown_default="none (required, here or in `mlcicd.yaml`)",
    ),
    Option(
        "schema",
        text,
        "",
        "a pandera schema: a YAML file as written by `DataFrameSchema.to_yaml()`, or `module:attribute` "
        "naming a `DataFrameSchema` or `DataFrameModel` (imported relative to the working directory)",
        "schema.yaml",
        is_path=True,
        shown_default="none: no schema check",
    ),
    Option(
        "delimiter",
        text,
        ",",
        "CSV field delimiter, one character (`\\t` for tab). A `.tsv` file with the default `,` is read "
        "tab-delimited",
        ";",
    ),
    Option("encoding", text, "utf-8", "text encoding of CSV files", "latin-1"),
    Option(
        "engine",
        choice("arrow", "spark"),
        "arrow",
        "`arrow` reads the files on the runner. `spark` has Spark read `data` where it lives: a Parquet or "
        "Delta path (local, `hdfs://`, `s3a://`, `abfss://`, …; Delta when it holds a `_delta_log`), a "
        "metastore table name, or `table:<name>`, `delta:<path>`, `parquet:<path>`. In the action, `spark` "
        "also installs the toolkit's `spark` extra (pyspark); the runner needs Java 17+",
        "spark",
    ),
    Option(
        "spark-master",
        text,
        "",
        "with `engine: spark`, the cluster to run on: a master URL such as `spark://host:7077` or `yarn`",
        "spark://spark-master:7077",
        shown_default="none: `SPARK_REMOTE` (Spark Connect), else Spark's configuration, else `local[*]`",
    ),
)
"""data, schema, then how to read it: delimiter, encoding, engine, spark-master."""


@dataclass(frozen=True)
class DataSource:
    """The DATA_OPTIONS, typed: where the data is and how to read it."""

    data: str
    schema: str = ""
    delimiter: str = ","
    encoding: str = "utf-8"
    engine: str = "arrow"
    spark_master: str = ""


def scan(
    source: DataSource, sample_size: int, schema: Any = None, files: list[Path] | None = None
) -> tuple[list[Path], dict[str, Any], SchemaFailures]:
    """One pass over the data: profile (and schema failures when a schema is given)."""
    from mlcicd.data import iter_blocks, resolve_files
    from mlcicd.profile import ProfileBuilder

    files = files if files is not None else resolve_files(source.data)
    builder = ProfileBuilder(sample_size)
    failures = SchemaFailures()
    column_types = arrow_types_for(schema) if schema is not None else {}
    for block in iter_blocks(
        files,
        delimiter=_delimiter(source.delimiter),
        encoding=source.encoding,
        column_types=column_types,
        strings_as_dictionary=True,
    ):
        offset = builder.rows
        if schema is not None and not isinstance(schema, ArrowSchema):  # pandera sees whole rows
            batch = block.whole()
            validate_batch(schema, batch, offset, failures)
            builder.add(batch, str(block.path))
            continue
        # an ArrowSchema checks each group of columns; rows it cannot pass are read whole, for pandera
        doubtful = False
        for i, piece in enumerate(block.pieces()):
            doubtful = doubtful or (schema is not None and not schema.surely_passes(piece, block.names))
            builder.add(piece, str(block.path), more_columns=i > 0)
        if doubtful:
            validate_batch(schema, block.whole(), offset, failures)
    profile = builder.finish()
    if profile["rows"] == 0:
        raise UsageError(
            "no data rows",
            f"{source.data} has a header but no rows. Check the step that produced it.",
            file=source.data,
        )
    return files, profile, failures


def read_data(source: DataSource, sample_size: int, schema: Any) -> Scanned:
    """(sources, profile, schema failures, digest) of `data`, by the configured engine."""
    if source.engine == "spark":
        return scan_spark(source, sample_size, schema)
    from mlcicd.data import resolve_files

    files = resolve_files(source.data)
    digest = _digest_meanwhile(files)
    files, profile, failures = scan(source, sample_size, schema, files)
    return [str(f) for f in files], profile, failures, digest()


def scan_spark(source: DataSource, sample_size: int, schema: Any) -> Scanned:
    """The same, with Spark: every input problem (no pyspark, no session, a schema its pandera
    backend cannot check, no such table) is raised before the data is read."""
    from mlcicd import spark, spark_profile

    session = spark.session(source.spark_master)
    checker = spark.spark_schema(schema, source.schema) if schema is not None else None
    frame, described = spark.read(session, source.data)
    failures = SchemaFailures()
    if checker is not None:
        spark.validate(checker, frame, failures)
    profile = spark_profile.profile(frame, sample_size)
    if profile["rows"] == 0:
        raise UsageError(
            "no data rows", f"{source.data} has no rows. Check the step that produced it.", file=source.data
        )
    return [described], profile, failures, spark.digest(frame, described)


def _delimiter(value: str) -> str:
    value = value.replace("\\t", "\t")
    if len(value) != 1:
        raise UsageError(
            "invalid value for delimiter",
            f"`delimiter` must be one character, got {value!r}. Example: `delimiter: ';'`.",
        )
    return value


def _digest_meanwhile(files: list[Path]) -> Callable[[], str]:
    """Hash the files in a thread while the data is read (hashlib and file reads release the
    GIL): on one core's worth of time that was a tenth of the run. The returned function waits
    for the digest, or raises what hashing raised."""
    import threading

    from mlcicd.data import data_digest

    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["digest"] = data_digest(files)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    # daemon: an input error exits at once
    thread = threading.Thread(target=work, name="data-digest", daemon=True)
    thread.start()

    def wait() -> str:
        thread.join()
        if "error" in result:
            raise result["error"]
        digest: str = result["digest"]
        return digest

    return wait
