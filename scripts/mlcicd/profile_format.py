"""What a data profile is: its constants, the stored form of a column, and the JSON file.

Every producer of a profile (profile.ProfileBuilder, spark_profile.profile, profile_merge.merge_profiles)
ends in `finished_column` and `profile_of_columns`; `to_json` and `load_profile` write and read
the reference profile file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from mlcicd.errors import UsageError

PROFILE_FORMAT = "mlcicd-profile"
PROFILE_VERSION = 1
REFERENCE_SAMPLE = 10_000
CURRENT_SAMPLE = 50_000
MAX_STORED_CATEGORIES = 1_000
MAX_TRACKED_CATEGORIES = 10_000
QUANTILES = np.linspace(0.0, 1.0, 21)
TOO_MANY_CATEGORIES = f"more than {MAX_TRACKED_CATEGORIES:,} distinct values (an identifier or free text?)"


def sorted_quantiles(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) quantiles of values already sorted, without its O(n) partition."""
    position = np.asarray(q, dtype=float) * (len(values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(values) - 1)
    fraction = position - low
    quantiles: np.ndarray = values[low] + (values[high] - values[low]) * fraction
    return quantiles


def combine_moments(col: dict[str, Any], m: int, mean: float, m2: float, low: float, high: float) -> None:
    """Add m values of this mean, sum of squared deviations m2, min and max to a numeric column's
    running state: Chan et al.'s pairwise update, exact up to rounding, in any order of the parts."""
    n = col["count"]
    total = n + m
    delta = mean - col["mean"]
    col["mean"] += delta * m / total
    col["m2"] += m2 + delta * delta * n * m / total
    col["count"] = total
    col["min"], col["max"] = min(col["min"], low), max(col["max"], high)


def finished_column(
    state: dict[str, Any], sample: np.ndarray | None = None, other: int = 0, truncated: bool = False
) -> dict[str, Any]:
    """A column of a profile from its running state (count, nulls; mean, m2, min, max and the sample
    of a numeric column; counts of a categorical one): the one place the stored form is decided,
    whichever engine or merge produced the state. The sample is sorted in place."""
    col = {k: v for k, v in state.items() if k != "m2"}
    if col["kind"] in ("numeric", "categorical") and col["count"] == 0:
        return {"kind": "empty", "count": 0, "nulls": col["nulls"]}
    if col["kind"] == "numeric":
        sample = np.empty(0) if sample is None else sample
        finite = np.isfinite(sample)
        # (a view of Arrow's buffer is read-only: copied by the indexing)
        sample = sample if finite.all() and sample.flags.writeable else sample[finite]
        sample.sort()
        col["std"] = float(np.sqrt(state["m2"] / (col["count"] - 1))) if col["count"] > 1 else 0.0
        col["quantiles"] = [float(q) for q in sorted_quantiles(sample, QUANTILES)] if len(sample) else []
        col["sample"] = sample
    elif col["kind"] == "categorical":
        ranked = sorted(col["counts"].items(), key=lambda kv: (-kv[1], kv[0]))
        col["counts"] = dict(ranked[:MAX_STORED_CATEGORIES])
        col["other"] = other + sum(c for _, c in ranked[MAX_STORED_CATEGORIES:])
        col["truncated"] = truncated or len(ranked) > MAX_STORED_CATEGORIES
    return col


def profile_of_columns(rows: int, columns: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "rows": rows,
        "columns-fingerprint": columns_fingerprint(columns),
        "columns": columns,
    }


def columns_fingerprint(columns: dict[str, Any]) -> str:
    kinds = sorted((name, col["kind"]) for name, col in columns.items())
    return "sha256:" + hashlib.sha256(json.dumps(kinds).encode()).hexdigest()


def encode_sample(sample: np.ndarray) -> str:
    return base64.b64encode(np.asarray(sample, dtype="<f8").tobytes()).decode("ascii")


def decode_sample(text: str) -> np.ndarray:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) % 8:
        raise ValueError("sample length is not a multiple of 8 bytes")
    sample: np.ndarray = np.frombuffer(raw, dtype="<f8").copy()
    return sample


def to_json(profile: dict[str, Any]) -> str:
    out = dict(profile)
    out["columns"] = {
        name: ({**col, "sample": encode_sample(col["sample"])} if "sample" in col else col)
        for name, col in profile["columns"].items()
    }
    return json.dumps(out, indent=1, sort_keys=False, allow_nan=False)


def load_profile(path: str) -> dict[str, Any]:
    """Read and check a reference profile; anything malformed is a UsageError naming the file."""

    def bad(why: str) -> UsageError:
        return UsageError(
            "malformed reference profile",
            f"{path}: {why}. Rebuild it with `mlcicd profile --data <training data> --out {path}`.",
            file=path,
        )

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            "reference profile not found",
            f"{path} does not exist. Create it with `mlcicd profile --data <training data> --out {path}`.",
            file=path,
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not a JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        raise bad(f"not an ml-cicd profile (no `format: {PROFILE_FORMAT}`)")
    if data.get("version") != PROFILE_VERSION:
        raise bad(f"profile version {data.get('version')!r}, this ml-cicd reads version {PROFILE_VERSION}")
    columns = data.get("columns")
    if not isinstance(columns, dict) or not isinstance(data.get("rows"), int):
        raise bad("`rows` or `columns` missing")
    for name, col in columns.items():
        try:
            kind = col["kind"]
            if kind == "numeric":
                col["sample"] = decode_sample(col["sample"])
                for key in ("count", "nulls", "mean", "std", "min", "max"):
                    float(col[key])
                if not len(col["sample"]):
                    raise ValueError("empty sample")
            elif kind == "categorical":
                if not isinstance(col["counts"], dict) or not all(
                    isinstance(v, int) for v in col["counts"].values()
                ):
                    raise ValueError("`counts` must map categories to integers")
                int(col["nulls"])
            elif kind not in ("empty", "unprofiled"):
                raise ValueError(f"unknown kind {kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"column `{name}`: {exc}") from None
    return data
