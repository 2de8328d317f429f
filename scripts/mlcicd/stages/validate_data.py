"""validate-data: check a dataset against a pandera schema and for drift against a reference profile.

Also `mlcicd profile`, which writes the reference profile that drift is measured against.
Reads the data once, in batches: schema validation, profiling and hashing never hold the table.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcicd import __version__, github
from mlcicd.config import Option, Stage, boolean, choice, number, text, text_list
from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.report import default_report_path, fmt, markdown_table, write_json

# With pyspark installed (the `spark` extra), importing pandera imports pyspark.pandas, which warns
# that it does not support pandas 3 on every run; ml-cicd never uses pyspark.pandas.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

NAME = "validate-data"
STRUCTURAL_CHECKS = ("column_in_dataframe", "column_in_schema")
EXAMPLES = 5

_COMMON = (
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
        "CSV field delimiter, one character (`\\t` for tab). A `.tsv` file with the default `,` is read tab-delimited",
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

OPTIONS = (
    *_COMMON[:2],
    Option(
        "reference",
        text,
        "",
        "reference profile written by `mlcicd profile`",
        "reference.json",
        is_path=True,
        shown_default="none: no drift check",
    ),
    Option(
        "target",
        text,
        "",
        "label column. It must be in the data (exit 2 otherwise). It is compared like a feature, marked "
        "`(target)` in the summary, and its drift fails the step like any feature's",
        "churned",
    ),
    Option(
        "drift-threshold",
        number(minimum=0, maximum=1),
        0.01,
        "significance level of the drift tests, 0 to 1: a change with a p-value below it is statistically significant",
        "0.05",
    ),
    Option(
        "min-wasserstein",
        number(positive=True),
        0.1,
        "numeric drift effect size: Wasserstein distance in reference standard deviations, below which a "
        "significant change is not drift. Must be greater than 0",
        "0.2",
    ),
    Option(
        "min-psi",
        number(positive=True),
        0.2,
        "population stability index at or above which a significant change is drift. Must be greater than 0",
        "0.25",
    ),
    Option(
        "min-share-change",
        number(positive=True, maximum=1),
        0.05,
        "categorical drift effect size: the largest change of a category's share (`0.05` = 5 percentage "
        "points). Also the threshold for missing-value rates and for the share of new categories. Must be "
        "greater than 0",
        "0.1",
    ),
    Option(
        "fail-on",
        choice("both", "schema", "drift", "none"),
        "both",
        "which findings fail the step with exit 1: `schema`, `drift`, `both` or `none`",
        "schema",
    ),
    Option("report", text, default_report_path(NAME), "where to write the JSON report", "reports/validate-data.json", is_path=True),
    *_COMMON[2:],
)

PROFILE_OPTIONS = (
    *_COMMON[:2],
    Option("out", text, "reference.json", "where to write the profile", "reference.json"),
    Option("overwrite", boolean, True, "replace an existing profile file", "false"),
    Option(
        "merge",
        text_list,
        [],
        "profiles of other parts of the data to merge with this data's profile (incremental or parallel builds); "
        "with no `data`, only they are merged",
        "reference.json,parts/new.json",
    ),
    *_COMMON[2:],
)


# --- schema -------------------------------------------------------------------------------


def load_schema(spec: str) -> Any:
    """A pandera DataFrameSchema from a YAML file or `module:attribute`; bad ones are UsageErrors.

    A YAML schema of built-in checks only comes back as an ArrowSchema, which checks batches
    without pandas or pandera (see there).
    """
    is_module = re.fullmatch(r"[\w.]+:[\w.]+", spec) and not Path(spec).exists()
    if not is_module:
        builtin = ArrowSchema.from_yaml_file(spec)
        if builtin is not None:
            return builtin
    import pandera.pandas as pa

    if is_module:
        module_name, _, attribute = spec.partition(":")
        sys.path.insert(0, ".")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything on import
            raise UsageError(
                "schema not importable",
                f"`{spec}`: {type(exc).__name__}: {exc}. Check the module path (relative to the working directory) and the attribute name.",
            ) from None
        finally:
            sys.path.remove(".")
        if hasattr(obj, "to_schema"):  # a DataFrameModel class
            obj = obj.to_schema()
        if not isinstance(obj, pa.DataFrameSchema):
            raise UsageError(
                "not a pandera schema", f"`{spec}` is a {type(obj).__name__}, not a pandera DataFrameSchema or DataFrameModel."
            )
        return obj
    path = Path(spec)
    try:
        text_ = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError("schema not found", f"{spec} does not exist. Write it with `schema.to_yaml('{spec}')`.", file=spec) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError("schema unreadable", f"{spec}: {exc}.", file=spec) from None
    parsed: Any = None
    try:
        import yaml

        parsed = yaml.safe_load(text_)
        if not isinstance(parsed, dict) or "columns" not in parsed and "checks" not in parsed:
            raise ValueError("expected a mapping with `columns:` as DataFrameSchema.to_yaml() writes it")
        check_names_known(parsed, spec)
        return pa.DataFrameSchema.from_yaml(text_)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - pandera raises many types for a bad schema file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        from importlib.metadata import version

        installed = version("pandera")
        written_by = str(parsed.get("version", "")) if isinstance(parsed, dict) else ""
        if written_by and written_by != installed:
            raise UsageError(
                "schema from another pandera version",
                f"{spec} was written by pandera {written_by}, and pandera {installed} (installed) cannot read it ({first}). "
                f"Regenerate it with pandera {installed} (`DataFrameSchema.to_yaml()`), or install pandera {written_by}.",
                file=spec,
            ) from None
        raise UsageError(
            "malformed schema", f"{spec}: {first}. Regenerate it with `DataFrameSchema.to_yaml()` or fix the YAML.", file=spec
        ) from None


def check_names_known(parsed: dict[str, Any], spec: str) -> None:
    """pandera reads any unknown key under a column as a check name and silently drops it, so a
    misspelled check would never run; here it is an error naming the key."""
    import pandera.pandas as pa

    from mlcicd.config import closest

    try:
        from pandera.io._flat_checks import COMPONENT_RESERVED_KEYS as reserved
    except ImportError:  # older pandera: the keys a column may carry besides checks
        reserved = frozenset(
            {
                "title",
                "description",
                "dtype",
                "nullable",
                "checks",
                "name",
                "unique",
                "coerce",
                "required",
                "regex",
                "default",
                "report_duplicates",
                "drop_invalid_rows",
            }
        )
    known_checks = [name for name in dir(pa.Check) if not name.startswith("_")]
    for column, props in (parsed.get("columns") or {}).items():
        if not isinstance(props, dict):
            continue
        for key in props:
            if key not in reserved and not hasattr(pa.Check, key):
                raise UsageError(
                    "unknown check in schema",
                    f"{spec}: column `{column}` has `{key}`, which is neither a column property nor a pandera check{closest(key, known_checks)}. "
                    "Use a pandera check name (in_range, isin, greater_than, …) or remove it.",
                    file=spec,
                )


class ArrowSchema:
    """A YAML schema whose every rule validate-data can check on the Arrow batch itself: dtype,
    nullable, unique, required, strict, in_range, isin, notin and the four comparisons.

    Importing pandas and pandera and converting each batch to pandas cost more than reading the
    data (~1 s of a 1.7 s run on 100,000 rows). A batch that passes here passes pandera as well;
    a batch that may fail goes to pandera, so every failure report is pandera's own, word for
    word. Any other key, value or dtype makes `from_yaml_file` return None: pandera validates.
    """

    # pandera's spelling of the dtype -> str() of the Arrow types whose pandas conversion passes its
    # dtype check (int64 and bool only without nulls: pandas makes those float64 / object)
    DTYPES = {
        "float64": ("double",),
        "int64": ("int64",),
        "bool": ("bool",),
        "string[pyarrow]": ("string", "large_string"),
    }
    COMPARISONS = {
        "greater_than": ("min_value", lambda lo, hi, v: lo > v),
        "greater_than_or_equal_to": ("min_value", lambda lo, hi, v: lo >= v),
        "less_than": ("max_value", lambda lo, hi, v: hi < v),
        "less_than_or_equal_to": ("max_value", lambda lo, hi, v: hi <= v),
    }
    IGNORED = {"title", "description", "name", "version", "report_duplicates", "metadata"}
    TOP_DEFAULTS = {
        "schema_type": "dataframe",
        "api": "pandas",
        "checks": None,
        "index": None,
        "dtype": None,
        "coerce": False,
        "ordered": False,
        "unique": None,
        "unique_column_names": False,
        "add_missing_columns": False,
        "drop_invalid_rows": False,
    }

    def __init__(self, text: str, spec: str, columns: dict[str, dict[str, Any]], strict: bool) -> None:
        self.text, self.spec, self.rules, self.strict = text, spec, columns, strict
        self._pandera: Any = None

    @classmethod
    def from_yaml_file(cls, spec: str) -> ArrowSchema | None:
        try:
            text_ = Path(spec).read_text(encoding="utf-8")
            import yaml

            parsed = yaml.load(text_, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml's, where built in
        except Exception:  # noqa: BLE001 - load_schema reads it again and says what is wrong
            return None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("columns"), dict):
            return None
        for key, value in parsed.items():
            if key not in ("columns", "strict") and key not in cls.IGNORED and cls.TOP_DEFAULTS.get(key, ...) != value:
                return None
        if parsed.get("strict", False) not in (True, False):
            return None
        columns = {}
        for name, props in parsed["columns"].items():
            rule = cls._column_rule(props)
            if not isinstance(name, str) or rule is None:
                return None
            columns[name] = rule
        return cls(text_, spec, columns, parsed.get("strict", False))

    @classmethod
    def _column_rule(cls, props: Any) -> dict[str, Any] | None:
        if not isinstance(props, dict) or props.get("dtype") not in cls.DTYPES:
            return None
        rule: dict[str, Any] = {"dtype": props["dtype"], "nullable": False, "unique": False, "required": True, "checks": []}
        numeric = props["dtype"] in ("float64", "int64")
        for key, value in props.items():
            if key in ("dtype", "title", "description") or key == "checks" and value is None:
                continue
            if key in ("nullable", "unique", "required"):
                if not isinstance(value, bool) or key == "unique" and value and props["dtype"] not in ("int64", "string[pyarrow]"):
                    return None
                rule[key] = value
            elif key in ("coerce", "regex"):
                if value is not False:
                    return None
            elif key == "in_range" and numeric:
                if not isinstance(value, dict) or not set(value) <= {"min_value", "max_value", "include_min", "include_max"}:
                    return None
                lo, hi = value.get("min_value"), value.get("max_value")
                inc_lo, inc_hi = value.get("include_min", True), value.get("include_max", True)
                if not (_is_number(lo) and _is_number(hi) and isinstance(inc_lo, bool) and isinstance(inc_hi, bool)):
                    return None
                if lo > hi or lo == hi and not (inc_lo and inc_hi):
                    return None  # pandera refuses an empty interval: let it say so
                rule["checks"].append(
                    lambda a, b, lo=lo, hi=hi, il=inc_lo, ih=inc_hi: (a > lo or il and a >= lo) and (b < hi or ih and b <= hi)
                )
            elif key in cls.COMPARISONS and numeric:
                bound_key, compare = cls.COMPARISONS[key]
                bound = value.get(bound_key) if isinstance(value, dict) and set(value) == {bound_key} else value
                if not _is_number(bound):
                    return None
                rule["checks"].append(lambda a, b, compare=compare, bound=bound: compare(a, b, bound))
            elif key in ("isin", "notin") and props["dtype"] in ("int64", "string[pyarrow]"):
                values = value.get("allowed_values" if key == "isin" else "forbidden_values") if isinstance(value, dict) else value
                if not isinstance(values, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
                    return None
                rule["isin" if key == "isin" else "notin"] = set(values)
            else:
                return None
        return rule

    def pandera(self) -> Any:
        if self._pandera is None:
            import pandera.pandas as pa

            self._pandera = pa.DataFrameSchema.from_yaml(self.text)
        return self._pandera

    def surely_passes(self, batch: Any, names: Any = None) -> bool:
        """True only when pandera would find nothing in this batch. With `names` (every column of
        these rows), the batch is some of their columns: those are checked, and `names` for
        presence."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from mlcicd.data import read_as_dictionary
        from mlcicd.profile import float_values

        present = set(names if names is not None else batch.schema.names)
        in_batch = set(batch.schema.names)
        if self.strict and present - set(self.rules):
            return False
        for name, rule in self.rules.items():
            if name not in present:
                if rule["required"]:
                    return False
                continue
            if name not in in_batch:
                continue
            array = batch.column(name)
            if name in read_as_dictionary(batch):  # pandera will see it decoded (plain_strings)
                if array.dictionary.null_count:
                    return False
                type_name = str(array.type.value_type)
            else:
                type_name = str(array.type)
            if type_name not in self.DTYPES[rule["dtype"]]:
                return False
            nulls = array.null_count
            if nulls and rule["dtype"] in ("int64", "bool"):
                return False
            if rule["dtype"] == "float64":
                values = float_values(array)  # nulls become NaN, which pandas counts as null too
                missing = np.isnan(values)
                nulls = int(missing.sum())
                if rule["checks"] and nulls < len(values):
                    present_values = values[~missing] if nulls else values
                    low, high = float(present_values.min()), float(present_values.max())
            elif rule["checks"] and nulls < len(array):
                low, high = pc.min_max(array).values()
                low, high = low.as_py(), high.as_py()
                if max(abs(low), abs(high)) > 2**53:  # pandas compares as float64 there
                    return False
            if nulls and not rule["nullable"]:
                return False
            if nulls < len(array) and not all(check(low, high) for check in rule["checks"]):
                return False
            if "isin" in rule or "notin" in rule:
                if pa.types.is_dictionary(array.type):  # the dictionary entries this batch uses
                    used = array.dictionary.take(pc.unique(array.indices))
                else:
                    used = pc.unique(array)
                distinct = set(used.drop_null().to_pylist())
                if "isin" in rule and not distinct <= rule["isin"] or "notin" in rule and distinct & rule["notin"]:
                    return False
            if rule["unique"]:
                plain = array.dictionary_decode() if pa.types.is_dictionary(array.type) else array
                if pc.count_distinct(plain, mode="all").as_py() != len(array):
                    return False
        return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def schema_columns(schema: Any) -> dict[str, str]:
    if isinstance(schema, ArrowSchema):
        return {name: rule["dtype"] for name, rule in schema.rules.items()}  # pandera's spelling, so fingerprints agree
    return {str(name): str(column.dtype) for name, column in schema.columns.items()}


def schema_fingerprint(columns: dict[str, str]) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(sorted(columns.items())).encode()).hexdigest()


def arrow_types_for(schema: Any) -> dict[str, Any]:
    """CSV column types from the schema, so a declared text column is never inferred as numbers."""
    import pyarrow as pa

    types = {}
    for name, dtype in schema_columns(schema).items():
        d = dtype.lower()
        if d.startswith(("int", "uint")):
            types[name] = pa.int64()
        elif d.startswith("float"):
            types[name] = pa.float64()
        elif d.startswith(("str", "object")):
            types[name] = pa.string()
        elif d.startswith("bool"):
            types[name] = pa.bool_()
    return types


class SchemaFailures:
    """Failure cases from every batch, grouped by (column, check): count, examples, row numbers."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, cases: Any) -> None:
        for row in cases.itertuples(index=False):
            check = str(row.check)
            # A missing/unexpected column is reported with the column's name as the failure case.
            column = str(row.failure_case) if check in STRUCTURAL_CHECKS else str(row.column)
            value = row.failure_case
            if isinstance(value, str) and value.startswith("TypeError(") and row.index is None:
                continue  # a check that could not run because the dtype is already wrong
            group = self.groups.setdefault((column, check), {"column": column, "check": check, "count": 0, "examples": [], "rows": []})
            if check in STRUCTURAL_CHECKS:
                group["count"] = 1
                continue
            group["count"] += 1
            shown = str(value)
            if len(group["examples"]) < EXAMPLES and shown not in group["examples"]:
                group["examples"].append(shown)
            index = row.index
            if index is not None and index == index and len(group["rows"]) < EXAMPLES:
                group["rows"].append(int(index))

    def add_group(self, column: str, check: str, example: str) -> None:
        """A failed check reported without its failing rows (pandera's pyspark backend): counted once."""
        group = self.groups.setdefault((column, check), {"column": column, "check": check, "count": 0, "examples": [], "rows": []})
        group["count"] += 1
        if example and len(group["examples"]) < EXAMPLES:
            group["examples"].append(example)

    def as_list(self) -> list[dict[str, Any]]:
        return sorted(self.groups.values(), key=lambda g: (g["column"], g["check"]))


def validate_batch(schema: Any, batch: Any, offset: int, failures: SchemaFailures) -> None:
    if isinstance(schema, ArrowSchema):
        if schema.surely_passes(batch):
            return
        schema = schema.pandera()
    import pandas as pd
    import pandera.errors as pe

    from mlcicd.data import plain_strings

    frame = plain_strings(batch).to_pandas()
    frame.index = pd.RangeIndex(offset, offset + len(frame))
    try:
        schema.validate(frame, lazy=True, inplace=True)  # the frame is discarded: skip pandera's copy
    except pe.SchemaErrors as exc:
        failures.add(exc.failure_cases)


# --- stage --------------------------------------------------------------------------------


def scan(
    values: dict[str, Any], sample_size: int, schema: Any = None, files: list[Path] | None = None
) -> tuple[list[Path], dict[str, Any], SchemaFailures]:
    """One pass over the data: profile (and schema failures when a schema is given)."""
    from mlcicd.data import iter_blocks, resolve_files
    from mlcicd.profile import ProfileBuilder

    files = files if files is not None else resolve_files(values["data"])
    builder = ProfileBuilder(sample_size)
    failures = SchemaFailures()
    column_types = arrow_types_for(schema) if schema is not None else {}
    for block in iter_blocks(
        files,
        delimiter=_delimiter(values["delimiter"]),
        encoding=values["encoding"],
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
            "no data rows", f"{values['data']} has a header but no rows. Check the step that produced it.", file=values["data"]
        )
    return files, profile, failures


def read_data(values: dict[str, Any], sample_size: int, schema: Any) -> tuple[list[str], dict[str, Any], SchemaFailures, str]:
    """(sources, profile, schema failures, digest) of `data`, by the configured engine."""
    if values["engine"] == "spark":
        return scan_spark(values, sample_size, schema)
    from mlcicd.data import resolve_files

    files = resolve_files(values["data"])
    digest = _digest_meanwhile(files)
    files, profile, failures = scan(values, sample_size, schema, files)
    return [str(f) for f in files], profile, failures, digest()


def scan_spark(values: dict[str, Any], sample_size: int, schema: Any) -> tuple[list[str], dict[str, Any], SchemaFailures, str]:
    """The same, with Spark: every input problem (no pyspark, no session, a schema its pandera
    backend cannot check, no such table) is raised before the data is read."""
    from mlcicd import spark

    session = spark.session(values["spark-master"])
    checker = spark.spark_schema(schema, values["schema"]) if schema is not None else None
    frame, described = spark.read(session, values["data"])
    failures = SchemaFailures()
    if checker is not None:
        spark.validate(checker, frame, failures)
    profile = spark.profile(frame, sample_size)
    if profile["rows"] == 0:
        raise UsageError("no data rows", f"{values['data']} has no rows. Check the step that produced it.", file=values["data"])
    return [described], profile, failures, spark.digest(frame, described)


def _delimiter(value: str) -> str:
    value = value.replace("\\t", "\t")
    if len(value) != 1:
        raise UsageError("invalid value for delimiter", f"`delimiter` must be one character, got {value!r}. Example: `delimiter: ';'`.")
    return value


def input_problems(profile: dict[str, Any], failures: SchemaFailures, target: str) -> list[str]:
    """Problems that mean the data cannot be judged at all (exit 2), as opposed to failed checks."""
    problems = []
    for (column, check), group in failures.groups.items():
        if check.startswith("dtype("):
            wanted = check[len("dtype(") : -1].strip("'")
            examples = ", ".join(repr(e) for e in group["examples"][:3])
            problems.append(f"column `{column}` is not {wanted} (found {examples}); fix the data or the column's dtype in the schema")
    for name, col in profile["columns"].items():
        if col["kind"] == "empty":
            problems.append(f"column `{name}` has no values (all {col['nulls']:,} rows are null/NaN); fix the export or drop the column")
    if target and target not in profile["columns"]:
        problems.append(f"target column `{target}` is not in the data (columns: {', '.join(list(profile['columns'])[:10])}); fix `target`")
    return problems


def check_drift(values: dict[str, Any], current: dict[str, Any], schema: Any, reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compare the current profile with the reference profile (`values["reference"]`, read
    unless already loaded and passed as `reference`)."""
    from mlcicd.drift import Thresholds, compare_column, is_failure
    from mlcicd.profile import load_profile

    if reference is None:
        reference = load_profile(values["reference"])
    where = values["reference"]
    if schema is not None and reference.get("schema-fingerprint"):
        now = schema_columns(schema)
        if schema_fingerprint(now) != reference["schema-fingerprint"]:
            then = reference.get("schema-columns", {})
            diff = sorted(set(then.items()) ^ set(now.items()))
            shown = ", ".join(f"{c} ({d})" for c, d in diff[:6])
            raise UsageError(
                "reference profile is of another schema",
                f"{where} was built for a different schema (differs in: {shown}). Rebuild it with "
                f"`mlcicd profile --data <training data> --schema {values['schema']} --out {where}`.",
                file=where,
            )
    ref_cols = {n: c for n, c in reference["columns"].items() if c["kind"] in ("numeric", "categorical")}
    if ref_cols and not set(ref_cols) & set(current["columns"]):
        raise UsageError(
            "reference profile is of another dataset",
            f"{where} describes columns {', '.join(list(ref_cols)[:6])}, none of which is in the data. Pass the profile of this dataset's training data.",
            file=where,
        )
    thresholds = Thresholds(values["drift-threshold"], values["min-wasserstein"], values["min-psi"], values["min-share-change"])
    features = [
        compare_column(name, ref, current["columns"].get(name), thresholds, "target" if name == values["target"] else "feature")
        for name, ref in ref_cols.items()
    ]
    return {
        "reference": where,
        "reference_rows": reference["rows"],
        "reference_digest": reference.get("data-digest"),
        "thresholds": {k: values[k] for k in ("drift-threshold", "min-wasserstein", "min-psi", "min-share-change")},
        "features": features,
        "drifted": [f["column"] for f in features if is_failure(f)],
        "not_in_reference": [n for n in current["columns"] if n not in reference["columns"]],
        "not_compared": [n for n, c in reference["columns"].items() if n not in ref_cols],
    }


def run(values: dict[str, Any]) -> int:
    from mlcicd.profile import CURRENT_SAMPLE, load_profile

    schema = load_schema(values["schema"]) if values["schema"] else None
    # read first: fail on a bad profile before reading gigabytes of data
    reference = load_profile(values["reference"]) if values["reference"] else None
    files, current, failures, digest = read_data(values, CURRENT_SAMPLE, schema)
    problems = input_problems(current, failures, values["target"])
    drift = check_drift(values, current, schema, reference) if reference is not None and not problems else None

    schema_list = failures.as_list()
    schema_failed = bool([g for g in schema_list if not g["check"].startswith("dtype(")]) or bool(problems)
    drift_failed = bool(drift and drift["drifted"])
    fail_on = values["fail-on"]
    failed = bool(problems) or (schema_failed and fail_on in ("schema", "both")) or (drift_failed and fail_on in ("drift", "both"))
    report = {
        "stage": NAME,
        "version": __version__,
        "passed": not failed,
        "fail_on": fail_on,
        "data": {
            "source": values["data"],
            "files": files,
            "rows": current["rows"],
            "columns": list(current["columns"]),
            "digest": digest,
        },
        "schema": {"source": values["schema"], "failed": schema_failed, "failures": schema_list} if schema is not None else None,
        "drift": drift,
        "input_problems": problems,
    }
    report_path = write_json(values["report"], report)
    github.set_outputs(
        {
            "passed": "true" if not failed else "false",
            "report": report_path,
            "drifted-features": json.dumps(drift["drifted"] if drift else []),
            "rows": str(current["rows"]),
            "data-digest": digest,
        }
    )
    github.write_summary(render_summary(report))
    if problems:
        raise UsageError("data cannot be validated", "; ".join(problems) + f". Full report: {report_path}.", file=values["data"])
    findings = []
    if schema_failed:
        findings.append(
            f"{sum(g['count'] for g in schema_list)} schema failure(s) in "
            + ", ".join(sorted({f"`{g['column']}` ({g['check']})" for g in schema_list})[:8])
        )
    if drift_failed:
        findings.append(f"drift in {len(drift['drifted'])} feature(s): " + ", ".join(f"`{c}`" for c in drift["drifted"][:10]))
    if failed:
        github.error(
            "; ".join(findings)
            + f". See the step summary or {report_path}; fix the data, or rebuild the reference profile if the change is expected.",
            title=f"{NAME}: data check failed",
            file=values["data"],
        )
        return CHECK_FAILED
    if findings:
        github.warning("; ".join(findings) + f" (not failing: fail-on is `{fail_on}`).", title=f"{NAME}: findings")
    return PASSED


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

    thread = threading.Thread(target=work, name="data-digest", daemon=True)  # daemon: an input error exits at once
    thread.start()

    def wait() -> str:
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["digest"]

    return wait


def render_summary(report: dict[str, Any]) -> str:
    data = report["data"]
    icon = "✅ passed" if report["passed"] else "❌ failed"
    lines = [
        f"## validate-data: {icon}",
        "",
        f"**{fmt(data['rows'])} rows**, {len(data['columns'])} columns, {len(data['files'])} file(s) from `{data['source']}` · digest `{data['digest'][:19]}…`",
        "",
    ]
    for problem in report["input_problems"]:
        lines.append(f"- ⛔ {problem}")
    schema = report["schema"]
    if schema is not None:
        lines.append(f"### Schema (`{schema['source']}`)")
        if schema["failures"]:
            rows = [
                (f"`{g['column']}`", g["check"], g["count"], ", ".join(g["examples"]), ", ".join(map(str, g["rows"])))
                for g in schema["failures"]
            ]
            lines += ["", markdown_table(["column", "check", "failures", "examples", "first rows"], rows), ""]
        else:
            lines += ["", "All schema checks passed.", ""]
    drift = report["drift"]
    if drift is not None:
        lines.append(f"### Drift vs `{drift['reference']}` ({fmt(drift['reference_rows'])} reference rows)")
        rows = []
        for f in drift["features"]:
            name = f"`{f['column']}`" + (" (target)" if f["role"] == "target" else "")
            rows.append(
                (
                    name,
                    f["status"],
                    f.get("test"),
                    f.get("statistic"),
                    f.get("p_value"),
                    f.get("effect_size"),
                    f.get("psi"),
                    f["severity"],
                    "; ".join(f["reasons"]),
                )
            )
        lines += [
            "",
            markdown_table(["feature", "status", "test", "statistic", "p-value", "effect size", "PSI", "severity", "why"], rows),
            "",
        ]
        chart = [f for f in drift["features"] if "ratio" in f][:30]
        if chart:
            ratios = [min(f["ratio"], 5.0) for f in chart]
            labels = ", ".join(json.dumps(f["column"][:20]) for f in chart)
            lines += [
                "```mermaid",
                "xychart-beta",
                '    title "Drift effect size (1 = threshold)"',
                f"    x-axis [{labels}]",
                f'    y-axis "x threshold" 0 --> {max(2.0, max(ratios)):.1f}',
                f"    bar [{', '.join(f'{r:.2f}' for r in ratios)}]",
                f"    line [{', '.join('1' for _ in ratios)}]",
                "```",
                "",
            ]
        if drift["not_in_reference"]:
            lines.append(f"Not in the reference (not compared): {', '.join(f'`{c}`' for c in drift['not_in_reference'])}")
    return "\n".join(lines)


def run_profile(values: dict[str, Any]) -> int:
    from mlcicd.profile import REFERENCE_SAMPLE, load_profile, to_json

    out = Path(values["out"])
    if out.exists() and not values["overwrite"]:
        raise UsageError("profile exists", f"{out} already exists; pass `--overwrite true` to replace it.", file=str(out))
    schema = load_schema(values["schema"]) if values["schema"] else None
    parts = [load_profile(path) for path in values["merge"]]  # read first: a bad part fails before the data is read
    if values["data"] or not parts:
        _, profile, failures, digest = read_data(values, REFERENCE_SAMPLE, schema)
        problems = input_problems(profile, failures, "")
        if problems:
            raise UsageError("data cannot be profiled", "; ".join(problems) + ".", file=values["data"])
        if failures.groups:
            shown = ", ".join(sorted({f"`{c}` ({check})" for c, check in failures.groups})[:8])
            github.warning(
                f"the reference data itself fails the schema: {shown}. The profile is written, but drift will be measured against flawed data.",
                title="profile: schema failures",
            )
        profile["data-digest"] = digest
        if schema is not None:
            columns = schema_columns(schema)
            profile["schema-columns"] = columns
            profile["schema-fingerprint"] = schema_fingerprint(columns)
        parts.append(profile)
    if len(parts) > 1:
        profile = merged_profile(parts, values["merge"])
    profile["created-by"] = f"mlcicd {__version__}"
    write_json(out, json.loads(to_json(profile)))
    size = out.stat().st_size
    github.set_outputs({"profile": str(out), "rows": str(profile["rows"]), "data-digest": profile["data-digest"]})
    print(f"wrote {out}: {profile['rows']:,} rows, {len(profile['columns'])} columns, {size / 1024:.0f} KiB")
    return PASSED


def merged_profile(parts: list[dict[str, Any]], sources: list[str]) -> dict[str, Any]:
    """One profile of all the parts' data (profile.merge_profiles), if they were built for one schema."""
    from mlcicd.profile import merge_profiles

    fingerprints = {p.get("schema-fingerprint") for p in parts}
    if len(fingerprints) > 1:
        raise UsageError(
            "profiles of different schemas",
            f"the profiles to merge ({', '.join(sources)} and the data) were built with different schemas. "
            "Build every part with the same `--schema`.",
        )
    profile = merge_profiles(parts)
    for key in ("schema-columns", "schema-fingerprint"):
        if key in parts[0]:
            profile[key] = parts[0][key]
    # the parts' digests, in order: the same parts merged give the same digest
    profile["data-digest"] = "merged:sha256:" + hashlib.sha256("\n".join(str(p.get("data-digest")) for p in parts).encode()).hexdigest()
    return profile


STAGE = Stage(
    NAME,
    "check data against a pandera schema and for drift against a reference profile",
    OPTIONS,
    run,
    outputs=(
        ("passed", "`true` when no finding fails the step under `fail-on`"),
        ("report", "path of the JSON report"),
        ("drifted-features", 'JSON list of drifted or missing columns, e.g. `["age"]`'),
        ("rows", "number of data rows read"),
        ("data-digest", "content hash of the data files (`sha256:…`), recorded by later stages"),
    ),
)
PROFILE = Stage(
    "profile",
    "write the reference profile that validate-data measures drift against",
    PROFILE_OPTIONS,
    run_profile,
    has_config_section=False,
)
