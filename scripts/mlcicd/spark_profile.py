"""`engine: spark`: the profile of a table computed with Spark aggregations, in the format
ProfileBuilder writes (profile.finished_column), so drift runs through the same code whichever
engine built either side. pyspark is imported only here and in mlcicd.spark."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlcicd.profile import MAX_TRACKED_CATEGORIES, TOO_MANY_CATEGORIES, finished_column, profile_of_columns
from mlcicd.spark import SEED


def kind_of(data_type: Any) -> str:
    """profile.column_kind for a Spark SQL type."""
    from pyspark.sql import types as T

    if isinstance(data_type, T.NullType):
        return "empty"
    numeric = (
        T.ByteType,
        T.ShortType,
        T.IntegerType,
        T.LongType,
        T.FloatType,
        T.DoubleType,
        T.DecimalType,
        T.DateType,
        T.TimestampType,
    )
    timestamp_ntz = getattr(T, "TimestampNTZType", ())
    if isinstance(data_type, numeric) or (timestamp_ntz and isinstance(data_type, timestamp_ntz)):
        return "numeric"
    if isinstance(data_type, (T.StringType, T.BooleanType)):
        return "categorical"
    return "unprofiled"


def _as_double(name: str, data_type: Any) -> Any:
    """The column as the double the Arrow engine would see: dates and timestamps in nanoseconds since
    the epoch (Spark keeps timestamps in microseconds), NaN and ±inf as null."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    column = F.col(f"`{name}`")
    if isinstance(data_type, T.DateType):
        value = F.unix_date(column).cast("double") * 86_400e9
    elif kind_of(data_type) == "numeric" and not isinstance(
        data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
    ):
        if isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
            value = column.cast("double")
        else:  # TimestampType / TimestampNTZType
            value = F.unix_micros(column.cast("timestamp")).cast("double") * 1000.0
    else:
        value = column.cast("double")
    return F.when(F.isnan(value) | (F.abs(value) == math.inf), None).otherwise(value)


def profile(frame: Any, sample_size: int) -> dict[str, Any]:
    """The profile of the DataFrame, in ProfileBuilder's format, from three Spark jobs: one
    aggregation (counts, moments, min/max, distinct estimates), one count per category of the
    categorical columns, and one uniform sample of the numeric columns' rows."""
    from pyspark.sql import functions as F

    fields = [(f.name, f.dataType, kind_of(f.dataType)) for f in frame.schema.fields]
    numeric = [(name, t) for name, t, kind in fields if kind == "numeric"]
    categorical = [name for name, _, kind in fields if kind == "categorical"]

    aggregates = [F.count(F.lit(1)).alias("__rows")]
    for i, (name, data_type) in enumerate(numeric):
        value = _as_double(name, data_type)
        aggregates += [
            F.count(value).alias(f"n{i}"),
            F.mean(value).alias(f"mean{i}"),
            F.var_samp(value).alias(f"var{i}"),
            F.min(value).alias(f"min{i}"),
            F.max(value).alias(f"max{i}"),
        ]
    for i, name in enumerate(categorical):
        column = F.col(f"`{name}`")
        aggregates += [F.count(column).alias(f"c{i}"), F.approx_count_distinct(column).alias(f"d{i}")]
    unprofiled = [name for name, _, kind in fields if kind == "unprofiled"]
    aggregates += [F.count(F.col(f"`{name}`")).alias(f"u{i}") for i, name in enumerate(unprofiled)]
    totals = frame.agg(*aggregates).collect()[0].asDict()
    rows = int(totals["__rows"])

    states: dict[str, dict[str, Any]] = {}
    for i, (name, _) in enumerate(numeric):
        count = int(totals[f"n{i}"])
        state = {"kind": "numeric", "count": count, "nulls": rows - count}
        if count:
            variance = totals[f"var{i}"]
            state.update(
                mean=float(totals[f"mean{i}"]),
                m2=float(variance) * (count - 1) if variance is not None and count > 1 else 0.0,
                min=float(totals[f"min{i}"]),
                max=float(totals[f"max{i}"]),
            )
        states[name] = state
    counted = []
    for i, name in enumerate(categorical):
        count = int(totals[f"c{i}"])
        states[name] = {"kind": "categorical", "count": count, "nulls": rows - count, "counts": {}}
        # the estimate's error is ~2 %: columns clearly past the limit are not counted at all
        if totals[f"d{i}"] > MAX_TRACKED_CATEGORIES * 1.1:
            states[name] = {
                "kind": "unprofiled",
                "count": count,
                "nulls": rows - count,
                "reason": TOO_MANY_CATEGORIES,
            }
        elif count:
            counted.append(name)
    if counted:
        pairs = F.explode(
            F.array(
                *[
                    F.struct(F.lit(i).alias("k"), F.col(f"`{name}`").cast("string").alias("v"))
                    for i, name in enumerate(counted)
                ]
            )
        )
        for row in (
            frame.select(pairs.alias("p"))
            .where(F.col("p.v").isNotNull())
            .groupBy("p.k", "p.v")
            .count()
            .collect()
        ):
            states[counted[row["k"]]]["counts"][row["v"]] = int(row["count"])
        for name in counted:
            if len(states[name]["counts"]) > MAX_TRACKED_CATEGORIES:
                state = states[name]
                states[name] = {
                    "kind": "unprofiled",
                    "count": state["count"],
                    "nulls": state["nulls"],
                    "reason": TOO_MANY_CATEGORIES,
                }

    samples = _sample(frame, numeric, rows, sample_size) if numeric and rows else {}
    columns = {}
    for name, _, kind in fields:
        if kind == "empty":
            columns[name] = {"kind": "empty", "count": 0, "nulls": rows}
        elif kind == "unprofiled":
            count = int(totals[f"u{unprofiled.index(name)}"])
            columns[name] = {"kind": "unprofiled", "count": count, "nulls": rows - count}
        else:
            columns[name] = finished_column(states[name], samples.get(name))
    return profile_of_columns(rows, columns)


def _sample(frame: Any, numeric: list[tuple[str, Any]], rows: int, size: int) -> dict[str, np.ndarray]:
    """A uniform sample of `size` rows (all of them when fewer) of the numeric columns: a Bernoulli
    pre-sample with ample margin, then the `size` rows of smallest random key (Spark takes the
    top-k per partition, so no partition is ever sorted whole)."""
    from pyspark.sql import functions as F

    values = [_as_double(name, data_type).alias(f"v{i}") for i, (name, data_type) in enumerate(numeric)]
    selected = frame.select(*values)
    if rows > size:
        fraction = min(1.0, (1.2 * size + 1000) / rows)
        selected = selected.sample(False, fraction, SEED).orderBy(F.rand(SEED)).limit(size)
    table = selected.toArrow() if hasattr(selected, "toArrow") else None
    if table is None:  # pyspark < 4: through pandas
        pandas_frame = selected.toPandas()
        return {
            name: pandas_frame[f"v{i}"].to_numpy(dtype=float, na_value=np.nan)
            for i, (name, _) in enumerate(numeric)
        }
    from mlcicd.profile import float_values

    return {name: float_values(table.column(f"v{i}").combine_chunks()) for i, (name, _) in enumerate(numeric)}
