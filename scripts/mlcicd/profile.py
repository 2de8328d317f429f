"""Data profiles: compact, deterministic summaries of a dataset, built in one streaming pass.

A profile holds, per numeric column, moments and a fixed-size uniform row sample (bottom-k by a
hash of the row number, so the sample does not depend on how the file was split into batches);
per categorical column, exact category counts. The reference profile written by `mlcicd profile`
is this summary as JSON (a few MB at most, whatever the row count); validate-data builds the same
summary of the current data in memory and compares the two.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcicd.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

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
    return values[low] + (values[high] - values[low]) * fraction


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


def row_keys(start: int, count: int) -> np.ndarray:
    """Uniform pseudo-random keys in [0, 1) from the row number (splitmix64): batch-independent."""
    z = np.arange(start, start + count, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def float_values(array: pa.Array) -> np.ndarray:
    """A numeric Arrow array as float64 with NaN for nulls.

    Read from the Arrow buffers: pyarrow's to_numpy() imports pandas (~0.3 s) even for a plain
    float64 array.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pc.cast(array, pa.float64(), safe=False)
    if not len(array):
        return np.empty(0)
    start, end = array.offset, array.offset + len(array)
    validity, data = array.buffers()
    values = np.frombuffer(data, dtype=np.float64, count=end)[start:]
    if array.null_count:
        valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=end, bitorder="little")[start:].view(bool)
        values = np.where(valid, values, np.nan)
    return values


def column_kind(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_null(t):
        return "empty"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_temporal(t):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        return "categorical"
    return "unprofiled"


class ProfileBuilder:
    """Consumes record batches; `finish()` returns the profile with numpy samples.

    `first_row` is the row number of this builder's first row in the whole dataset. Builders of
    consecutive parts (Parquet files or row groups, appended data) given their offsets combine with
    `merge` into exactly the builder of the whole: same counts, categories and sample, moments equal
    up to floating-point summation order.
    """

    def __init__(self, sample_size: int, first_row: int = 0) -> None:
        self.sample_size = sample_size
        self.first_row = first_row
        self.rows = 0
        self.columns: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.where: dict[str, str] = {}
        # The bottom-k sample, kept as appended chunks and compacted only once they hold well over k
        # rows: compacting at every batch cost O(k) per numeric column per batch, which on wide
        # tables (hundreds of columns, k = 50,000) was most of the run.
        self.key_chunks: list[np.ndarray] = []
        self.sample_chunks: dict[str, list[np.ndarray]] = {}
        self.buffered = 0
        self.threshold = np.inf  # the largest kept key once the sample is full: rows above it cannot enter
        # the rows of the last add(): count, picked (slice or indices), numeric columns seen, picked count
        self._block: tuple[int, Any, set[str], int] | None = None

    @property
    def samples(self) -> dict[str, np.ndarray]:
        self._end_rows()
        self._compact()
        return {name: chunks[0] if chunks else np.empty(0) for name, chunks in self.sample_chunks.items()}

    def _column(self, name: str, kind: str, source: str) -> dict[str, Any]:
        col = self.columns.get(name)
        if col is None:
            col = {"kind": kind, "count": 0, "nulls": 0}
            if kind == "numeric":
                col.update(mean=0.0, m2=0.0, min=np.inf, max=-np.inf)
            elif kind == "categorical":
                col.update(counts={})
            self.columns[name] = col
            self.order.append(name)
            self.where[name] = source
        elif col["kind"] == "empty" and kind != "empty":
            nulls = col["nulls"]
            self.columns.pop(name)
            self.order.remove(name)
            col = self._column(name, kind, source)
            col["nulls"] = nulls
        elif kind not in ("empty", col["kind"]) and col["kind"] != "unprofiled":
            raise UsageError(
                "column type differs between files",
                f"column `{name}` is {col['kind']} in {self.where[name]} but {kind} in {source}. Make the files agree.",
                file=source,
            )
        return col

    @staticmethod
    def _unprofile(col: dict[str, Any], reason: str) -> None:
        count, nulls = col["count"], col["nulls"]
        col.clear()
        col.update(kind="unprofiled", count=count, nulls=nulls, reason=reason)

    def _sample_column(self, name: str) -> list[np.ndarray]:
        chunks = self.sample_chunks.get(name)
        if chunks is None:  # first seen now: the rows buffered before the current ones had no value for it
            before = self.buffered - (self._block[3] if self._block is not None else 0)
            chunks = self.sample_chunks[name] = [np.full(before, np.nan)] if before else []
        return chunks

    def add(self, batch: pa.RecordBatch, source: str = "", more_columns: bool = False) -> None:
        """Profile a batch of rows. With more_columns, the batch holds other columns of the rows the
        previous add() covered (a wide Parquet row group is read a group of columns at a time)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = batch.num_rows
        if more_columns:
            if self._block is None or self._block[0] != n:
                raise ValueError("more_columns: the batch does not continue the previous rows")
        else:
            self._end_rows()
            self._start_rows(n)
        picked, numeric_seen = self._block[1], self._block[2]

        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            kind = column_kind(array.type)
            if pa.types.is_dictionary(array.type) and kind != "categorical":  # value_counts takes dictionaries as they are
                array = array.dictionary_decode()
            col = self._column(name, kind, source)
            kind = col["kind"] if kind == "empty" else kind
            if kind in ("empty", "unprofiled") or col["kind"] == "unprofiled":
                col["nulls"] += array.null_count
                col["count"] += n - array.null_count
                continue
            if kind == "numeric":
                if pa.types.is_temporal(array.type):
                    # dates and timestamps as nanoseconds since the epoch whatever the stored unit, so that a
                    # profile compares with one of the same data in another unit (Spark writes microseconds)
                    if pa.types.is_date(array.type):
                        array = pc.cast(array, pa.timestamp("ns"))
                    elif pa.types.is_timestamp(array.type) and array.type.unit != "ns":
                        array = pc.cast(array, pa.timestamp("ns", array.type.tz))
                    array = pc.cast(array, pa.int64())
                values = float_values(array)
                finite = np.isfinite(values)
                all_finite = bool(finite.all())
                good = values if all_finite else values[finite]
                self._add_moments(col, good)
                col["nulls"] += n - len(good)
                chosen = values[picked]
                self._sample_column(name).append(chosen if all_finite else np.where(finite[picked], chosen, np.nan))
                numeric_seen.add(name)
            else:
                col["nulls"] += array.null_count
                col["count"] += n - array.null_count
                counts = col["counts"]
                for item in pc.value_counts(array).to_pylist():
                    value = item["values"]
                    if value is None:
                        continue
                    key = str(value).lower() if isinstance(value, bool) else str(value)
                    counts[key] = counts.get(key, 0) + item["counts"]
                if len(counts) > MAX_TRACKED_CATEGORIES:
                    self._unprofile(col, TOO_MANY_CATEGORIES)

    def _start_rows(self, n: int) -> None:
        keys = row_keys(self.first_row + self.rows, n)
        picked: Any = slice(None) if self.threshold == np.inf else np.nonzero(keys < self.threshold)[0]
        picked_keys = keys[picked]
        self._block = (n, picked, set(), len(picked_keys))
        self.key_chunks.append(picked_keys)
        self.buffered += len(picked_keys)
        self.rows += n

    def _end_rows(self) -> None:
        """Close the rows of the last add(): columns absent from them get NaN in the sample."""
        if self._block is None:
            return
        _, _, numeric_seen, picked_count = self._block
        self._block = None
        for name, chunks in self.sample_chunks.items():
            if name not in numeric_seen:
                chunks.append(np.full(picked_count, np.nan))
        if self.buffered > self.sample_size + max(self.sample_size // 4, 1):
            self._compact()

    def _compact(self) -> None:
        """Keep the sample_size rows of smallest key among those buffered."""
        if len(self.key_chunks) <= 1 and self.buffered <= self.sample_size:
            return
        keys = np.concatenate(self.key_chunks) if self.key_chunks else np.empty(0)
        keep = np.argpartition(keys, self.sample_size - 1)[: self.sample_size] if len(keys) > self.sample_size else None
        if keep is not None:
            keys = keys[keep]
            self.threshold = float(keys.max())
        self.key_chunks = [keys]
        for name, chunks in self.sample_chunks.items():
            values = np.concatenate(chunks) if chunks else np.empty(0)
            self.sample_chunks[name] = [values[keep] if keep is not None else values]
        self.buffered = len(keys)

    def merge(self, other: ProfileBuilder) -> ProfileBuilder:
        """Add another builder's data to this one (in place; returns self).

        Exact for counts, nulls, min, max and category counts; mean and variance by Chan et al.'s
        pairwise formula (equal up to summation order). The sample is the bottom-k of both by row
        key, so it is the whole's sample when the two builders' `first_row`s number the rows of one
        dataset (each part a distinct row range); parts numbered from 0 alike still give a uniform
        sample of the union, but not the one a single pass would draw.
        """
        if other.sample_size != self.sample_size:
            raise ValueError(f"sample sizes differ: {self.sample_size} and {other.sample_size}")
        self._end_rows()
        other._end_rows()
        buffered_before = self.buffered
        for name in other.order:
            theirs = other.columns[name]
            col = self._column(name, theirs["kind"], other.where[name])
            if theirs["kind"] == "unprofiled" and col["kind"] == "categorical":
                self._unprofile(col, theirs["reason"])
            if col["kind"] == "unprofiled" or theirs["kind"] in ("empty", "unprofiled"):
                col["count"] += theirs["count"]
                col["nulls"] += theirs["nulls"]
                continue
            if col["kind"] == "numeric":
                if theirs["count"]:
                    combine_moments(col, theirs["count"], theirs["mean"], theirs["m2"], theirs["min"], theirs["max"])
                col["nulls"] += theirs["nulls"]
            else:
                col["count"] += theirs["count"]
                col["nulls"] += theirs["nulls"]
                counts = col["counts"]
                for key, count in theirs["counts"].items():
                    counts[key] = counts.get(key, 0) + count
                if len(counts) > MAX_TRACKED_CATEGORIES:
                    self._unprofile(col, TOO_MANY_CATEGORIES)
        their_samples = other.samples
        for name in set(self.sample_chunks) | set(their_samples):
            if name in self.columns and self.columns[name]["kind"] != "numeric":
                continue
            if name not in self.sample_chunks:
                self._sample_column(name)
            theirs = their_samples.get(name)
            self.sample_chunks[name].append(theirs if theirs is not None else np.full(other.buffered, np.nan))
        other._compact()
        self.key_chunks += other.key_chunks
        self.buffered = buffered_before + other.buffered
        self.rows += other.rows
        self.threshold = min(self.threshold, other.threshold)
        self._compact()
        return self

    @staticmethod
    def _add_moments(col: dict[str, Any], values: np.ndarray) -> None:
        # Chan et al.'s parallel update: exact mean/variance without keeping the values.
        m = len(values)
        if not m:
            return
        mean_b = float(values.mean())
        # not np.dot: OpenBLAS threads it, and on a busy 2-core machine its threads' spinning made
        # this 30x slower (7 ms instead of 0.25 ms per 262,144 values)
        m2_b = float(np.square(values - mean_b).sum())
        combine_moments(col, m, mean_b, m2_b, float(values.min()), float(values.max()))

    def finish(self) -> dict[str, Any]:
        """The profile. This ends the builder: its samples become the profile's (sorted in place,
        so that a wide profile never holds two copies of them)."""
        samples = self.samples
        self.sample_chunks, self.key_chunks, self.buffered = {}, [], 0
        columns = {name: finished_column(self.columns[name], samples.pop(name, None)) for name in self.order}
        return profile_of_columns(self.rows, columns)


def finished_column(state: dict[str, Any], sample: np.ndarray | None = None, other: int = 0, truncated: bool = False) -> dict[str, Any]:
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
                merged[name] = {**{k: v for k, v in theirs.items() if k in ("kind", "reason")}, "count": 0, "nulls": col["nulls"]}
                if theirs["kind"] == "numeric":
                    merged[name].update(mean=0.0, m2=0.0, min=np.inf, max=-np.inf)
                elif theirs["kind"] == "categorical":
                    merged[name].update(counts={}, other=0, truncated=False)
                col = merged[name]
            elif kinds == {"categorical", "unprofiled"}:
                col.clear()
                col.update(kind="unprofiled", count=0, nulls=0, reason=theirs.get("reason", TOO_MANY_CATEGORIES))
            elif len(kinds - {"empty"}) > 1:
                raise UsageError(
                    "profiles do not agree",
                    f"column `{name}` is {col['kind']} in one profile and {theirs['kind']} in another. Profile data of one schema.",
                )
            col["nulls"] += theirs["nulls"]
            if theirs["kind"] == "empty":
                continue
            if col["kind"] == "numeric":
                m = theirs["count"]
                combine_moments(col, m, theirs["mean"], theirs["std"] ** 2 * (m - 1), theirs["min"], theirs["max"])
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
        sample = _merge_samples(samples[name], sample_size, rng) if col["kind"] == "numeric" and col["count"] else None
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
    return np.concatenate([sample[rng.choice(len(sample), int(k), replace=False)] for k, (_, sample) in zip(take, parts, strict=True)])


def columns_fingerprint(columns: dict[str, Any]) -> str:
    kinds = sorted((name, col["kind"]) for name, col in columns.items())
    return "sha256:" + hashlib.sha256(json.dumps(kinds).encode()).hexdigest()


def encode_sample(sample: np.ndarray) -> str:
    return base64.b64encode(np.asarray(sample, dtype="<f8").tobytes()).decode("ascii")


def decode_sample(text: str) -> np.ndarray:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) % 8:
        raise ValueError("sample length is not a multiple of 8 bytes")
    return np.frombuffer(raw, dtype="<f8").copy()


def to_json(profile: dict[str, Any]) -> str:
    out = dict(profile)
    out["columns"] = {
        name: ({**col, "sample": encode_sample(col["sample"])} if "sample" in col else col) for name, col in profile["columns"].items()
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
                if not isinstance(col["counts"], dict) or not all(isinstance(v, int) for v in col["counts"].values()):
                    raise ValueError("`counts` must map categories to integers")
                int(col["nulls"])
            elif kind not in ("empty", "unprofiled"):
                raise ValueError(f"unknown kind {kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"column `{name}`: {exc}") from None
    return data
