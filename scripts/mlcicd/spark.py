"""`engine: spark`: validate-data and profile on a table Spark reads, where it lives.

A Parquet or Delta path (local, hdfs://, s3a://, abfss://, …) or a metastore table name is read by
Spark; nothing is copied to the runner. The schema is checked by pandera's pyspark backend, and
the profile is computed with Spark aggregations into the same format ProfileBuilder writes
(profile.finished_column), so drift runs through the same code whichever engine built either side.

pyspark is the optional extra `mlcicd[spark]`, imported only here. The session runs on the cluster
`spark-master` names, on Spark Connect when SPARK_REMOTE is set, on the master of Spark's own
configuration (spark-defaults.conf, PYSPARK_SUBMIT_ARGS) when one is set, and on `local[*]` otherwise.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from mlcicd.errors import UsageError

SEED = 20240521
TABLE_NAME = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){0,2}")
# pandas dtypes as pandera writes them in a schema YAML -> the Spark SQL type pandera's pyspark backend checks
SPARK_TYPES = {
    "float64": "DoubleType",
    "float32": "FloatType",
    "int64": "LongType",
    "int32": "IntegerType",
    "int16": "ShortType",
    "int8": "ByteType",
    "bool": "BooleanType",
    "str": "StringType",
    "string": "StringType",
    "string[pyarrow]": "StringType",
    "string[python]": "StringType",
    "object": "StringType",
    "datetime64[ns]": "TimestampType",
    "datetime64[us]": "TimestampType",
    "date": "DateType",
}
INSTALL_HINT = (
    "Install it with `pip install 'mlcicd[spark]'` (pyspark and Java 17+, e.g. `apt-get install "
    "openjdk-17-jre-headless`)"
)


def _first_line(exc: BaseException) -> str:
    java = getattr(
        exc, "java_exception", None
    )  # py4j's own first line is "An error occurred while calling o66.load."
    text = (str(java.toString()) if java is not None else str(exc)).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# --- session and table --------------------------------------------------------------------------


def session(master: str) -> Any:
    """A SparkSession, or a UsageError saying why none could start (before any data is read)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError(
            "pyspark is not installed", f"`engine: spark` needs pyspark. {INSTALL_HINT}."
        ) from None
    # no progress bars: they fill the job log with carriage returns
    builder = SparkSession.builder.appName("mlcicd").config("spark.ui.showConsoleProgress", "false")
    remote = os.environ.get("SPARK_REMOTE", "")
    where = remote or master or "local[*]"
    if remote and not master:
        builder = builder.remote(remote)
    else:
        from pyspark import SparkConf

        configured = SparkConf().get("spark.master")  # spark-defaults.conf / PYSPARK_SUBMIT_ARGS
        where = master or configured or "local[*]"
        builder = builder.master(where)
        if where.startswith("local"):
            # one machine: no UI port to bind, few shuffle partitions (the default 200 is for clusters), and
            # naive timestamps read as UTC wall-clock time, as the Arrow engine reads them
            builder = (
                builder.config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
                .config("spark.sql.session.timeZone", "UTC")
            )
    try:
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR") if not remote else None
    except Exception as exc:  # noqa: BLE001 - py4j, the JVM launcher and Spark Connect raise many types
        raise UsageError(
            "Spark session did not start",
            f"Spark on `{where}`: {_first_line(exc)}. Check that Java 17+ is installed (`java -version`; "
            "`apt-get install openjdk-17-jre-headless`) and that `spark-master` / SPARK_REMOTE name a "
            "reachable cluster.",
        ) from None
    return spark


def read(spark: Any, spec: str) -> tuple[Any, str]:
    """The DataFrame `spec` names, and what it is ("parquet <path>", "delta <path>", "table <name>").

    `table:<name>`, `delta:<path>` and `parquet:<path>` say it outright; otherwise an existing local
    path or a URI is Parquet (Delta when it holds a `_delta_log`), and a dotted name is a table."""
    if not spec:
        raise UsageError(
            "missing data",
            "`data` is required: a Parquet or Delta path, or a metastore table name (e.g. `sales.orders`).",
        )
    kind, _, rest = spec.partition(":")
    if kind in ("table", "delta", "parquet") and rest:
        target = rest
    elif Path(spec).exists() or re.match(r"^[a-z][a-z0-9+.-]*://", spec):
        target = spec
        kind = "delta" if (Path(spec) / "_delta_log").is_dir() else "parquet"
    elif TABLE_NAME.fullmatch(spec):
        kind, target = "table", spec
    else:
        raise UsageError(
            "data not found",
            f"{spec} is neither an existing path nor a table name (relative to {os.getcwd()}). "
            "Pass a Parquet or Delta path, `table:<db.table>`, `delta:<path>` or `parquet:<path>`.",
            file=spec,
        )
    try:
        frame = spark.table(target) if kind == "table" else spark.read.format(kind).load(target)
        columns = frame.columns  # resolves the plan: a missing path or table fails here, before any work
    except Exception as exc:  # noqa: BLE001 - AnalysisException and the JVM's own
        message = _first_line(exc)
        if kind == "delta" and (
            "DATA_SOURCE_NOT_FOUND" in message or "data source: delta" in message.lower()
        ):
            raise UsageError(
                "Delta Lake is not available to Spark",
                f"{target}: {message}. Reading Delta needs the Delta Lake jars on Spark's classpath (a "
                "cluster that has them, "
                "or `spark.jars.packages io.delta:delta-spark_2.13:<version>` in spark-defaults.conf where "
                "Maven is reachable); "
                "or pass the table's Parquet files with `parquet:<path>`.",
                file=spec,
            ) from None
        what = "table" if kind == "table" else "path"
        raise UsageError(
            f"{what} not readable by Spark",
            f"{target}: {message}. Check the {what} name (and, for a table, that the session's "
            "catalog/metastore holds it).",
            file=spec,
        ) from None
    if not columns:
        raise UsageError("no columns", f"{spec} has no columns.", file=spec)
    return frame, f"{kind} {target}"


def digest(frame: Any, described: str) -> str:
    """What a stage can record of a table it did not copy: its input files (names and count) or name.
    Not a content hash: the same files rewritten in place keep the digest."""
    try:
        files = sorted(frame.inputFiles())
    except Exception:  # noqa: BLE001 - Spark Connect and some catalogs cannot list them
        files = []
    text = "\n".join([described, *files])
    return "spark:sha256:" + hashlib.sha256(text.encode()).hexdigest()


# --- schema: pandera's pyspark backend ----------------------------------------------------------


def pandera_pyspark() -> Any:
    """pandera's pyspark API (pandera.pyspark).

    It imports pyspark.pandas for a type alias, and pyspark.pandas (4.3) does not import with pandas 3
    (it imports `DateOffset` from pandas.tseries.frequencies, then `infer_dtype_from_object`, both
    gone). validate-data hands pandera only pyspark.sql DataFrames, so when that import fails a
    stand-in module whose DataFrame class nothing is an instance of takes its place."""
    import contextlib
    import io
    import sys
    import types

    # pandera also imports Spark Connect, whose first import calls sys.exit(0) ("Skipping doctests")
    # when __main__ has neither __spec__ nor __file__ (`python -c`, `python -`, a pytest-xdist worker)
    # and grpc is missing: the stage would end as passed without validating. Marked unavailable, it is
    # an ImportError, which pandera handles as it does when grpc is missing under `python -m`.
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import pyspark.sql.connect
    except SystemExit:
        sys.modules["pyspark.sql.connect"] = None  # type: ignore[assignment]
    except ImportError:
        pass
    # (its warning that it does not support pandas 3 is silenced where validate_data is imported)
    try:
        import pyspark.pandas  # noqa: F401
    except ImportError:
        for name in [m for m in sys.modules if m == "pyspark.pandas" or m.startswith("pyspark.pandas.")]:
            del sys.modules[name]
        stand_in = types.ModuleType("pyspark.pandas")
        stand_in.__path__ = []  # a package, for pyspark.pandas.extensions
        for name in ("DataFrame", "Series", "Index", "MultiIndex"):  # what pandera's type aliases subclass
            setattr(stand_in, name, type(name, (), {"__module__": "pyspark.pandas"}))
        extensions = types.ModuleType(
            "pyspark.pandas.extensions"
        )  # pandera registers accessors on those classes
        for name in ("register_dataframe_accessor", "register_series_accessor", "register_index_accessor"):
            setattr(extensions, name, lambda accessor: lambda cls: cls)
        stand_in.extensions = extensions  # type: ignore[attr-defined]
        sys.modules["pyspark.pandas"], sys.modules["pyspark.pandas.extensions"] = stand_in, extensions
    import pandera.pyspark

    return pandera.pyspark


def supported_checks() -> set[str]:
    """The built-in checks pandera's pyspark backend implements (registered by its module)."""
    pandera_pyspark()
    import pandera.backends.pyspark.builtin_checks as builtin

    return {name for name, value in vars(builtin).items() if callable(value) and not name.startswith("_")}


def spark_schema(schema: Any, where: str) -> Any:
    """The schema (a pandas DataFrameSchema or validate-data's ArrowSchema) for pandera's pyspark
    backend. A dtype or check that backend does not support is a UsageError naming the column."""
    ps = pandera_pyspark()
    pandas_schema = schema.pandera() if hasattr(schema, "pandera") else schema
    known = supported_checks()
    if pandas_schema.checks:
        raise UsageError(
            "schema check not supported on Spark",
            f"{where}: dataframe-wide checks ({', '.join(c.name for c in pandas_schema.checks)}) are not "
            "supported by "
            "pandera's pyspark backend. Move them to columns, or use the default engine.",
            file=where,
        )
    columns = {}
    for name, column in pandas_schema.columns.items():
        dtype = str(column.dtype)
        spark_type = SPARK_TYPES.get(dtype)
        if spark_type is None:
            raise UsageError(
                "column type not supported on Spark",
                f"{where}: column `{name}` has dtype `{dtype}`, which pandera's pyspark backend cannot "
                "check. "
                f"Use one of {', '.join(sorted(set(SPARK_TYPES)))}, or the default engine.",
                file=where,
            )
        for check in column.checks:
            if check.name not in known:
                raise UsageError(
                    "schema check not supported on Spark",
                    f"{where}: column `{name}` has check `{check.name}`, which pandera's pyspark backend "
                    "does not implement "
                    f"(it does: {', '.join(sorted(known))}). Use one of those, or the default engine.",
                    file=where,
                )
        columns[name] = ps.Column(
            spark_type, checks=list(column.checks), nullable=column.nullable, required=column.required
        )
    return ps.DataFrameSchema(columns, strict=bool(pandas_schema.strict), name=pandas_schema.name)


def validate(pyspark_schema: Any, frame: Any, failures: Any) -> None:
    """Run pandera's pyspark backend and add what it found to `failures` (schemas.SchemaFailures).

    That backend reports each failed check once, with its message, not the failing rows: a group's
    count is then the number of failed checks (1), its example the message."""
    pandera_pyspark()  # registers the DataFrame.pandera accessor
    checked = pyspark_schema.validate(frame)
    for category in (checked.pandera.errors or {}).values():
        for reason, errors in category.items():
            for error in errors:
                column = str(error.get("column") or error.get("schema") or "")
                check = str(error.get("check") or reason)
                if reason == "WRONG_DATATYPE" and not check.startswith("dtype("):
                    check = f"dtype('{check}')"  # so that input_problems reads it as the Arrow engine's
                elif reason == "COLUMN_NOT_IN_DATAFRAME":
                    check = "column_in_dataframe"
                elif reason == "COLUMN_NOT_IN_SCHEMA":
                    check = "column_in_schema"
                failures.add_group(column, check, str(error.get("error", ""))[:200])
