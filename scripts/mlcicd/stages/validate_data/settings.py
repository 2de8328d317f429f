"""validate-data's and `mlcicd profile`'s settings: the resolved options, typed, read once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlcicd.drift_check import DriftSettings
from mlcicd.scanning import DataSource

if TYPE_CHECKING:
    pass

NAME = "validate-data"


@dataclass(frozen=True)
class Settings(DriftSettings, DataSource):
    """validate-data: the data options (a Settings is the DataSource it reads), the drift thresholds,
    then its own."""

    reference: str = ""
    target: str = ""
    fail_on: str = "both"
    report: str = ""


@dataclass(frozen=True)
class ProfileSettings(DataSource):
    """`mlcicd profile`: the data options, then its own."""

    out: str = "reference.json"
    overwrite: bool = True
    merge: Sequence[str] = ()
