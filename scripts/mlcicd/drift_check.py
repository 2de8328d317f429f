"""Drift of a dataset's profile against a reference profile, as validate-data and monitor report it.

The per-column tests are drift.py's; this module checks that the two profiles are comparable
(same schema, shared columns) and assembles the report's `drift` section. `THRESHOLD_OPTIONS`
are the options both stages take for the thresholds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcicd.config import Option, number
from mlcicd.errors import UsageError
from mlcicd.schemas import schema_columns, schema_fingerprint

if TYPE_CHECKING:
    from mlcicd.drift import Thresholds


@dataclass(frozen=True)
class DriftSettings:
    """The THRESHOLD_OPTIONS, typed: a stage's settings that measure drift inherit these fields."""

    drift_threshold: float = 0.01
    min_wasserstein: float = 0.1
    min_psi: float = 0.2
    min_share_change: float = 0.05

    @property
    def thresholds(self) -> Thresholds:
        from mlcicd.drift import Thresholds

        return Thresholds(self.drift_threshold, self.min_wasserstein, self.min_psi, self.min_share_change)


THRESHOLD_OPTIONS = (
    Option(
        "drift-threshold",
        number(minimum=0, maximum=1),
        0.01,
        "significance level of the drift tests, 0 to 1: a change with a p-value below it is statistically "
        "significant",
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
)


def threshold_values(thresholds: Thresholds) -> dict[str, float]:
    """The thresholds by option name, as the report shows them."""
    return {
        "drift-threshold": thresholds.alpha,
        "min-wasserstein": thresholds.min_wasserstein,
        "min-psi": thresholds.min_psi,
        "min-share-change": thresholds.min_share_change,
    }


def check_drift(
    current: Mapping[str, Any],
    reference: Mapping[str, Any],
    where: str,
    thresholds: Thresholds,
    target: str = "",
    schema: Any = None,
    schema_spec: str = "",
) -> dict[str, Any]:
    """Compare the current profile with the reference profile (read from `where`, named in errors and
    the report). With the schema the data was checked against (`schema_spec`, as the user gave it),
    a reference built for another schema is a UsageError."""
    from mlcicd.drift import compare_column, is_failure

    if schema is not None and reference.get("schema-fingerprint"):
        now = schema_columns(schema)
        if schema_fingerprint(now) != reference["schema-fingerprint"]:
            then = reference.get("schema-columns", {})
            diff = sorted(set(then.items()) ^ set(now.items()))
            shown = ", ".join(f"{c} ({d})" for c, d in diff[:6])
            raise UsageError(
                "reference profile is of another schema",
                f"{where} was built for a different schema (differs in: {shown}). Rebuild it with "
                f"`mlcicd profile --data <training data> --schema {schema_spec} --out {where}`.",
                file=where,
            )
    ref_cols = {n: c for n, c in reference["columns"].items() if c["kind"] in ("numeric", "categorical")}
    if ref_cols and not set(ref_cols) & set(current["columns"]):
        raise UsageError(
            "reference profile is of another dataset",
            f"{where} describes columns {', '.join(list(ref_cols)[:6])}, none of which is in the data. Pass "
            "the profile of this dataset's training data.",
            file=where,
        )
    features = [
        compare_column(
            name, ref, current["columns"].get(name), thresholds, "target" if name == target else "feature"
        )
        for name, ref in ref_cols.items()
    ]
    return {
        "reference": where,
        "reference_rows": reference["rows"],
        "reference_digest": reference.get("data-digest"),
        "thresholds": threshold_values(thresholds),
        "features": features,
        "drifted": [f["column"] for f in features if is_failure(f)],
        "not_in_reference": [n for n in current["columns"] if n not in reference["columns"]],
        "not_compared": [n for n, c in reference["columns"].items() if n not in ref_cols],
    }
