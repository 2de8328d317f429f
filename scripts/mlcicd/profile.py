"""Data profiles: compact, deterministic summaries of a dataset, built in one streaming pass.

A profile holds, per numeric column, moments and a fixed-size uniform row sample (bottom-k by a
hash of the row number, so the sample does not depend on how the file was split into batches);
per categorical column, exact category counts. The reference profile written by `mlcicd profile`
is this summary as JSON (a few MB at most, whatever the row count); validate-data builds the same
summary of the current data in memory and compares the two.

This module builds profiles (ProfileBuilder); profile_format.py holds their stored form and the
JSON file, profile_merge.py merges finished ones. Their names are importable from here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlcicd.errors import UsageError
from mlcicd.profile_format import (
    CURRENT_SAMPLE,
    MAX_TRACKED_CATEGORIES,
    REFERENCE_SAMPLE,
    TOO_MANY_CATEGORIES,
    combine_moments,
    finished_column,
    load_profile,
    profile_of_columns,
    sorted_quantiles,
    to_json,
)
from mlcicd.profile_merge import merge_profiles, sample_rank_error

if TYPE_CHECKING:
    import pyarrow as pa

# what other modules import from here
__all__ = [
    "CURRENT_SAMPLE",
    "MAX_TRACKED_CATEGORIES",
    "REFERENCE_SAMPLE",
    "TOO_MANY_CATEGORIES",
    "ProfileBuilder",
]
__all__ += [
    "finished_column",
    "float_values",
    "load_profile",
    "merge_profiles",
    "profile_of_columns",
    "row_keys",
]
__all__ += ["sample_rank_error", "sorted_quantiles", "to_json"]


def row_keys(start: int, count: int) -> np.ndarray:
    """Uniform pseudo-random keys in [0, 1) from the row number (splitmix64): batch-independent."""
    z = np.arange(start, start + count, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    keys: np.ndarray = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return keys


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
        valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=end, bitorder="little")[
            start:
        ].view(bool)
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
                f"column `{name}` is {col['kind']} in {self.where[name]} but {kind} in {source}. Make the "
                "files agree.",
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
        assert self._block is not None  # set by _start_rows, or checked above
        picked, numeric_seen = self._block[1], self._block[2]

        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            kind = column_kind(array.type)
            if (
                pa.types.is_dictionary(array.type) and kind != "categorical"
            ):  # value_counts takes dictionaries as they are
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
                self._sample_column(name).append(
                    chosen if all_finite else np.where(finite[picked], chosen, np.nan)
                )
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
        keep = (
            np.argpartition(keys, self.sample_size - 1)[: self.sample_size]
            if len(keys) > self.sample_size
            else None
        )
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
                    combine_moments(
                        col, theirs["count"], theirs["mean"], theirs["m2"], theirs["min"], theirs["max"]
                    )
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
            their_sample = their_samples.get(name)
            self.sample_chunks[name].append(
                their_sample if their_sample is not None else np.full(other.buffered, np.nan)
            )
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
