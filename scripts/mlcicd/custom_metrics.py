"""A user's own metric, `module:function(y_true, y_pred) -> float`, imported from the working directory.

The only side effect among the metrics: importing user code.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_SPEC_HELP = (
    "expected 'module:function' (e.g. 'my_metrics:weighted_f1', or 'path/to/file.py:function'), "
    "imported from the working directory"
)


def load_custom_metric(spec: str) -> Callable[[Any, Any], float]:
    """Import a user's `metric(y_true, y_pred) -> float` named as 'module:function'.

    The module is found relative to the working directory (where the workflow checked out the
    repository), the way `python -c 'import module'` would find it there; a path ending in .py
    is loaded from that file. The returned wrapper turns the result into a float so that a
    metric returning, say, a string fails where it is called, not deep inside a gate.
    """
    if not isinstance(spec, str):
        raise ValueError(f"invalid custom metric {spec!r}: {_SPEC_HELP}")
    module_name, sep, function_name = spec.strip().rpartition(":")
    is_file = module_name.endswith(".py")
    if not sep or not function_name.isidentifier() or not module_name:
        raise ValueError(f"invalid custom metric {spec!r}: {_SPEC_HELP}")
    if not is_file and not all(part.isidentifier() for part in module_name.split(".")):
        raise ValueError(
            f"invalid custom metric {spec!r}: {module_name!r} is not a module name; {_SPEC_HELP}"
        )
    cwd = os.getcwd()
    try:
        module = _import_file(module_name, cwd) if is_file else _import_module(module_name, cwd)
    except Exception as err:  # any error while importing user code is the user's to fix
        raise ValueError(
            f"cannot import custom metric module {module_name!r} (working directory {cwd}): "
            f"{type(err).__name__}: {err}"
        ) from err
    function = getattr(module, function_name, None)
    if function is None:
        raise ValueError(f"custom metric module {module_name!r} has no attribute {function_name!r}")
    if not callable(function):
        raise ValueError(
            f"custom metric {spec!r} is a {type(function).__name__}, not a function taking (y_true, y_pred)"
        )

    def metric(y_true: Any, y_pred: Any) -> float:
        value = function(y_true, y_pred)
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"custom metric {spec!r} returned {value!r}, not a number") from err

    metric.__name__ = function_name
    metric.__qualname__ = function_name
    metric.__doc__ = function.__doc__
    return metric


def _import_module(name: str, cwd: str) -> Any:
    # The working directory is on sys.path only while importing, so loading a metric does not
    # change what every later import in this process resolves to.
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        importlib.invalidate_caches()  # the file may be newer than the finder's directory listing
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(cwd)


def _import_file(path: str, cwd: str) -> Any:
    file = Path(cwd, path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file {file}")
    name = f"mlcicd_custom_metric_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"{file} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
