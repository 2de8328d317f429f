"""The rows a model is given: a DataFrame with the test data's column names and dtypes for a pyfunc model
(a scikit-learn Pipeline, XGBoost, any flavour), following the model's signature when it has one, and
positional float32 arrays for a PyTorch module. Also the bad-input probes built from those rows.

Pure functions over numpy/pandas; pandas is imported only when a DataFrame is involved.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from mlcicd.errors import UsageError

EXTREME = 1e6


def is_frame(x: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(x, pandas.DataFrame)


def numeric_array(x: Any, dtype: Any = np.float32) -> np.ndarray:
    """The rows as a positional numeric array, what a PyTorch module takes; a non-numeric column is a usage
    error."""
    if not is_frame(x):
        return np.asarray(x, dtype=dtype)
    import pandas as pd

    text = [
        str(c)
        for c in x.columns
        if not (pd.api.types.is_numeric_dtype(x[c]) or pd.api.types.is_bool_dtype(x[c]))
    ]
    if text:
        raise UsageError(
            "non-numeric test features",
            f"columns {', '.join(f'`{c}`' for c in text[:5])} of the test data are not numeric, and a "
            "PyTorch module takes "
            "positional numeric arrays. Encode them in the model (or log it as a pyfunc, e.g. a scikit-learn "
            "Pipeline with a "
            "OneHotEncoder), or drop them from the test data.",
        )
    array: np.ndarray = x.to_numpy(dtype=dtype)
    return array


def cast_columns(frame: Any, types: list[Any]) -> Any:
    """Numeric columns in the exact numpy type of the signature (MLflow enforces it strictly): an int64 column
    where the signature says float32 is refused. Values an integer type cannot hold (NaN, fractions) stay, for
    MLflow to refuse as serving would."""
    for column, dtype in zip(frame.columns, types, strict=False):
        if dtype is None or dtype.kind not in "biuf" or frame[column].dtype.kind not in "biuf":
            continue
        values = frame[column].to_numpy()
        if dtype.kind == "f" or (np.all(np.isfinite(values)) and np.all(values == np.round(values))):
            frame[column] = values.astype(dtype)
    return frame


def array_input(schema: Any, x: np.ndarray) -> Any:
    """Positional rows in the form a pyfunc's signature enforces: a float32 tensor signature refuses float64,
    a
    column signature wants a DataFrame with its column names (in the signature's order) and each column's
    type."""
    types = schema.numpy_types()
    if schema.is_tensor_spec():
        return x.astype(types[0], copy=False) if len(types) == 1 and types[0] is not None else x
    import pandas as pd

    names = schema.input_names() if schema.has_input_names() else []
    frame = pd.DataFrame(x, columns=names if len(names) == x.shape[1] else None)
    return cast_columns(frame, types) if len(types) == x.shape[1] else frame


def frame_input(schema: Any, frame: Any) -> Any:
    """Named rows for a pyfunc model: its signature's columns, by name and in its order, in its types; without
    a
    signature the test data's own columns and dtypes."""
    if schema is None:
        return frame
    if schema.is_tensor_spec():
        return array_input(schema, numeric_array(frame, None))
    if not schema.has_input_names():
        return frame
    names = schema.input_names()
    required = [spec.name for spec in schema.inputs if getattr(spec, "required", True)]
    missing = [n for n in required if n not in frame.columns]
    if missing:
        raise UsageError(
            "test data lacks model inputs",
            f"the model's signature needs columns {', '.join(f'`{n}`' for n in missing[:8])}, which the test "
            "data does not have "
            f"(it has {', '.join(f'`{c}`' for c in list(frame.columns)[:8])}). Give check-gates test data "
            "with the columns the model was trained on.",
        )
    present = [n for n in names if n in frame.columns]
    types = dict(zip(names, schema.numpy_types(), strict=True))
    return cast_columns(frame[present].copy(), [types[n] for n in present])


# --- probe rows ---------------------------------------------------------------------------------


def head(sample: Any, rows: int) -> Any:
    return sample.iloc[:rows].reset_index(drop=True) if is_frame(sample) else sample[:rows]


def take(sample: Any, rows: np.ndarray) -> Any:
    """The sample's rows at these positions (repeating rows as given)."""
    return (
        sample.iloc[rows].reset_index(drop=True) if is_frame(sample) else np.ascontiguousarray(sample[rows])
    )


def _numeric_columns(frame: Any) -> list[Any]:
    import pandas as pd

    return [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def with_numbers(sample: Any, values: np.ndarray) -> Any:
    """Rows whose numeric features are `values` (rows × numeric features); a DataFrame keeps the sample's
    other
    columns (categories, text) from its first rows, so only the numbers are unusual."""
    if not is_frame(sample):
        return values.astype(sample.dtype if sample.dtype.kind == "f" else np.float64)
    frame = take(sample, np.arange(len(values)) % len(sample))
    for j, column in enumerate(_numeric_columns(frame)):
        frame[column] = values[:, j % values.shape[1]].astype(np.float64)
    return frame


def numeric_width(sample: Any) -> int:
    return len(_numeric_columns(sample)) if is_frame(sample) else sample.shape[1]


def with_missing(sample: Any, rows: int) -> tuple[Any, int]:
    """The first rows with one missing cell each, in a rotating column, so every feature gets one: NaN in a
    numeric
    column, None in any other."""
    if not is_frame(sample):
        x = sample[:rows].astype(sample.dtype if sample.dtype.kind == "f" else np.float64, copy=True)
        index = np.arange(len(x))
        x[index, index % x.shape[1]] = np.nan
        return x, len(x)
    frame = head(sample, rows).copy()
    numeric = set(_numeric_columns(frame))
    for column in numeric:
        frame[column] = frame[column].astype(np.float64)
    for column in frame.columns:
        if column not in numeric:
            frame[column] = frame[column].astype(object)
    for i in range(len(frame)):
        column = frame.columns[i % frame.shape[1]]
        frame.iat[i, i % frame.shape[1]] = np.nan if column in numeric else None
    return frame, len(frame)


def to_json_rows(x: Any) -> dict[str, Any]:
    """The body of an /invocations request for these rows: `dataframe_split` for named rows, `inputs` for an
    array."""
    if is_frame(x):
        import json

        return {"dataframe_split": json.loads(x.to_json(orient="split", index=False))}
    return {"inputs": np.asarray(x).tolist()}
