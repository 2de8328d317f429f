"""Data schemas: loading a pandera schema (or its Arrow-only form) and collecting its failures.

Used by every stage that checks data against a schema while scanning it (validate-data,
`mlcicd profile`); see scanning.py for the pass over the data.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from mlcicd.arrow_schema import ArrowSchema
from mlcicd.errors import UsageError

STRUCTURAL_CHECKS = ("column_in_dataframe", "column_in_schema")
EXAMPLES = 5


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
                f"`{spec}`: {type(exc).__name__}: {exc}. Check the module path (relative to the working "
                "directory) and the attribute name.",
            ) from None
        finally:
            sys.path.remove(".")
        if hasattr(obj, "to_schema"):  # a DataFrameModel class
            obj = obj.to_schema()
        if not isinstance(obj, pa.DataFrameSchema):
            raise UsageError(
                "not a pandera schema",
                f"`{spec}` is a {type(obj).__name__}, not a pandera DataFrameSchema or DataFrameModel.",
            )
        return obj
    path = Path(spec)
    try:
        text_ = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            "schema not found", f"{spec} does not exist. Write it with `schema.to_yaml('{spec}')`.", file=spec
        ) from None
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
                f"{spec} was written by pandera {written_by}, and pandera {installed} (installed) cannot "
                f"read it ({first}). "
                f"Regenerate it with pandera {installed} (`DataFrameSchema.to_yaml()`), or install pandera "
                f"{written_by}.",
                file=spec,
            ) from None
        raise UsageError(
            "malformed schema",
            f"{spec}: {first}. Regenerate it with `DataFrameSchema.to_yaml()` or fix the YAML.",
            file=spec,
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
                    f"{spec}: column `{column}` has `{key}`, which is neither a column property nor a "
                    f"pandera check{closest(key, known_checks)}. "
                    "Use a pandera check name (in_range, isin, greater_than, …) or remove it.",
                    file=spec,
                )


def schema_columns(schema: Any) -> dict[str, str]:
    if isinstance(schema, ArrowSchema):
        return {
            name: rule["dtype"] for name, rule in schema.rules.items()
        }  # pandera's spelling, so fingerprints agree
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
            group = self.groups.setdefault(
                (column, check), {"column": column, "check": check, "count": 0, "examples": [], "rows": []}
            )
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
        group = self.groups.setdefault(
            (column, check), {"column": column, "check": check, "count": 0, "examples": [], "rows": []}
        )
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
