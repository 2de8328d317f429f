"""validate-data's decisions: from what the scan found to problems, a verdict, findings and the closing
annotation. Pure: no I/O, no pandas, pyarrow or numpy."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlcicd.errors import CHECK_FAILED, PASSED, USAGE_ERROR, UsageError
from mlcicd.outcome import Annotation
from mlcicd.schemas import SchemaFailures

from .settings import NAME


def input_problems(profile: Mapping[str, Any], failures: SchemaFailures, target: str) -> list[str]:
    """Problems that mean the data cannot be judged at all (exit 2), as opposed to failed checks."""
    problems = []
    for (column, check), group in failures.groups.items():
        if check.startswith("dtype("):
            wanted = check[len("dtype(") : -1].strip("'")
            examples = ", ".join(repr(e) for e in group["examples"][:3])
            problems.append(
                f"column `{column}` is not {wanted} (found {examples}); fix the data or the column's dtype "
                "in the schema"
            )
    for name, col in profile["columns"].items():
        if col["kind"] == "empty":
            problems.append(
                f"column `{name}` has no values (all {col['nulls']:,} rows are null/NaN); fix the export or "
                "drop the column"
            )
    if target and target not in profile["columns"]:
        problems.append(
            f"target column `{target}` is not in the data (columns: "
            f"{', '.join(list(profile['columns'])[:10])}); fix `target`"
        )
    return problems


@dataclass(frozen=True)
class Verdict:
    schema_failed: bool
    drift_failed: bool
    failed: bool


def judge(
    schema_list: Sequence[Mapping[str, Any]],
    problems: Sequence[str],
    drift: Mapping[str, Any] | None,
    fail_on: str,
) -> Verdict:
    """Which findings there are, and whether they fail the step under `fail-on` (problems always do)."""
    schema_failed = bool([g for g in schema_list if not g["check"].startswith("dtype(")]) or bool(problems)
    drift_failed = bool(drift and drift["drifted"])
    failed = (
        bool(problems)
        or (schema_failed and fail_on in ("schema", "both"))
        or (drift_failed and fail_on in ("drift", "both"))
    )
    return Verdict(schema_failed, drift_failed, failed)


def findings(
    verdict: Verdict, schema_list: Sequence[Mapping[str, Any]], drift: Mapping[str, Any] | None
) -> list[str]:
    found = []
    if verdict.schema_failed:
        found.append(
            f"{sum(g['count'] for g in schema_list)} schema failure(s) in "
            + ", ".join(sorted({f"`{g['column']}` ({g['check']})" for g in schema_list})[:8])
        )
    if verdict.drift_failed and drift is not None:
        found.append(
            f"drift in {len(drift['drifted'])} feature(s): "
            + ", ".join(f"`{c}`" for c in drift["drifted"][:10])
        )
    return found


def ending(
    verdict: Verdict, problems: Sequence[str], found: Sequence[str], fail_on: str, report_path: str, data: str
) -> tuple[int, str, tuple[Annotation, ...]]:
    """(exit code, result, annotations). Data that cannot be judged ends as a usage error (exit 2),
    annotated as cli.py annotates a UsageError, after the report is written."""
    if problems:
        message = "; ".join(problems) + f". Full report: {report_path}."
        return (
            USAGE_ERROR,
            "invalid-data",
            (Annotation("error", f"{NAME}: data cannot be validated", message, file=data),),
        )
    if verdict.failed:
        message = (
            "; ".join(found)
            + f". See the step summary or {report_path}; fix the data, or rebuild the reference profile if "
            "the change is expected."
        )
        return (
            CHECK_FAILED,
            "failed",
            (Annotation("error", f"{NAME}: data check failed", message, file=data),),
        )
    if found:
        message = "; ".join(found) + f" (not failing: fail-on is `{fail_on}`)."
        return PASSED, "passed", (Annotation("warning", f"{NAME}: findings", message),)
    return PASSED, "passed", ()


# --- mlcicd profile -------------------------------------------------------------------------


def schema_failures_warning(failures: SchemaFailures) -> str:
    """What to say when the reference data itself fails the schema (empty when it passes)."""
    if not failures.groups:
        return ""
    shown = ", ".join(sorted({f"`{c}` ({check})" for c, check in failures.groups})[:8])
    return (
        f"the reference data itself fails the schema: {shown}. The profile is written, but drift will be "
        "measured against flawed data."
    )


def check_one_schema(parts: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> None:
    """Profiles merge only if they were built for one schema."""
    fingerprints = {p.get("schema-fingerprint") for p in parts}
    if len(fingerprints) > 1:
        raise UsageError(
            "profiles of different schemas",
            f"the profiles to merge ({', '.join(sources)} and the data) were built with different schemas. "
            "Build every part with the same `--schema`.",
        )


def merged_digest(parts: Sequence[Mapping[str, Any]]) -> str:
    # the parts' digests, in order: the same parts merged give the same digest
    return (
        "merged:sha256:"
        + hashlib.sha256("\n".join(str(p.get("data-digest")) for p in parts).encode()).hexdigest()
    )
