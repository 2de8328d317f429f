"""Merging finished profiles: one profile of the union of the data several profiles describe."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcicd.errors import UsageError
from mlcicd.profile_format import (
    REFERENCE_SAMPLE,
    TOO_MANY_CATEGORIES,
    combine_moments,
    finished_column,
    profile_of_columns,
)

SAMPLE_ERROR_DELTA = 0.01


def sample_rank_error(sample_size: int, delta: float = SAMPLE_ERROR_DELTA) -> float:
    """Dvoretzky-Kiefer-Wolfowitz: with probability 1 - delta, the empirical CDF of a uniform sample
    of this size is within this distance of the data's CDF at every point (so is every quantile's
    rank). A merged profile's sample is such a sample of the union: the error stated for it."""
    return float(np.sqrt(np.log(2.0 / delta) / (2.0 * max(sample_size, 1))))


def merge_profiles(profiles: list[dict[str, Any]], sample_size: int = REFERENCE_SAMPLE) -> dict[str, Any]:
    """One profile of the union of the data the given finished profiles describe.

    Counts, nulls, min, max and category counts add up exactly (categories past the stored top
    MAX_STORED_CATEGORIES of a part are only known as its `other`); mean and std are combined
    exactly (Chan et al.), up to rounding. A finished profile keeps its sample but not the row
    keys it was drawn by, so the merged sample is drawn anew: from each part a hypergeometric
    share of its sample, which makes it a uniform sample of the union again, its quantiles within
    `sample_rank_error(len(sample))` of the union's in rank (99 % of the time). The draw is seeded
    by the parts' row counts: merging the same profiles twice gives the same profile.
    """
    if not profiles:
        raise ValueError("no profiles to merge")
    rng = np.random.default_rng([p["rows"] for p in profiles])
    merged: dict[str, Any] = {}
    samples: dict[str, list[tuple[int, np.ndarray]]] = {}
    order: list[str] = []
    for part in profiles:
        for name, theirs in part["columns"].items():
            col = merged.get(name)
            if col is None:
                if name not in order:
                    order.append(name)
                col = merged[name] = {"kind": theirs["kind"], "count": 0, "nulls": 0}
                if theirs["kind"] == "numeric":
                    col.update(mean=0.0, m2=0.0, min=np.inf, max=-np.inf)
                elif theirs["kind"] == "categorical":
                    col.update(counts={}, other=0, truncated=False)
                elif theirs["kind"] == "unprofiled":
                    col["reason"] = theirs.get("reason", "")
            kinds = {col["kind"], theirs["kind"]}
            if col["kind"] == "empty" and theirs["kind"] != "empty":  # the part with values decides the kind
                merged[name] = {
                    **{k: v for k, v in theirs.items() if k in ("kind", "reason")},
                    "count": 0,
                    "nulls": col["nulls"],
                }
                if theirs["kind"] == "numeric":
                    merged[name].update(mean=0.0, m2=0.0, min=np.inf, max=-np.inf)
                elif theirs["kind"] == "categorical":
                    merged[name].update(counts={}, other=0, truncated=False)
                col = merged[name]
            elif kinds == {"categorical", "unprofiled"}:
                col.clear()
                col.update(
                    kind="unprofiled", count=0, nulls=0, reason=theirs.get("reason", TOO_MANY_CATEGORIES)
                )
            elif len(kinds - {"empty"}) > 1:
                raise UsageError(
                    "profiles do not agree",
                    f"column `{name}` is {col['kind']} in one profile and {theirs['kind']} in another. "
                    "Profile data of one schema.",
                )
            col["nulls"] += theirs["nulls"]
            if theirs["kind"] == "empty":
                continue
            if col["kind"] == "numeric":
                m = theirs["count"]
                combine_moments(
                    col, m, theirs["mean"], theirs["std"] ** 2 * (m - 1), theirs["min"], theirs["max"]
                )
                samples.setdefault(name, []).append((m, np.asarray(theirs["sample"], dtype=float)))
            elif col["kind"] == "categorical":
                col["count"] += theirs["count"]
                for key, count in theirs["counts"].items():
                    col["counts"][key] = col["counts"].get(key, 0) + count
                col["other"] += theirs.get("other", 0)
                col["truncated"] = col["truncated"] or bool(theirs.get("truncated"))
            else:
                col["count"] += theirs["count"]
    columns = {}
    for name in order:
        col = merged[name]
        sample = (
            _merge_samples(samples[name], sample_size, rng)
            if col["kind"] == "numeric" and col["count"]
            else None
        )
        other, truncated = col.pop("other", 0), col.pop("truncated", False)
        columns[name] = finished_column(col, sample, other, truncated)
    return profile_of_columns(sum(p["rows"] for p in profiles), columns)


def _merge_samples(parts: list[tuple[int, np.ndarray]], size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform sample of the union from uniform samples of the parts ((values in the part, sample))."""
    counts = np.array([count for count, _ in parts], dtype=np.int64)
    available = np.array([len(sample) for _, sample in parts], dtype=np.int64)
    target = int(min(size, available.sum()))
    if (available == counts).all() and counts.sum() <= size:  # every part's sample is all of its values
        return np.concatenate([sample for _, sample in parts])
    # how many of a uniform draw of `target` from the union fall in each part: multivariate hypergeometric
    take = rng.multivariate_hypergeometric(counts, target) if target else np.zeros(len(parts), dtype=np.int64)
    take = np.minimum(take, available)  # a part's sample can be short of its share only when tiny
    return np.concatenate(
        [
            sample[rng.choice(len(sample), int(k), replace=False)]
            for k, (_, sample) in zip(take, parts, strict=True)
        ]
    )
