"""validate-data's and `mlcicd profile`'s settings: the resolved options, typed, read once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlcicd.scanning import DataSource

if TYPE_CHECKING:
    from mlcicd.drift import Thresholds

NAME = "validate-data"


@dataclass(frozen=True)
class Settings(DataSource):
    """validate-data: the data options (a Settings is the DataSource it reads), then its own."""

    reference: str = ""
    target: str = ""
    drift_threshold: float = 0.01
    min_wasserstein: float = 0.1
    min_psi: float = 0.2
    min_share_change: float = 0.05
    fail_on: str = "both"
    report: str = ""

    @property
    def thresholds(self) -> Thresholds:
        from mlcicd.drift import Thresholds

        return Thresholds(self.drift_threshold, self.min_wasserstein, self.min_psi, self.min_share_change)


@dataclass(frozen=True)
class ProfileSettings(DataSource):
    """`mlcicd profile`: the data options, then its own."""

    out: str = "reference.json"
    overwrite: bool = True
    merge: Sequence[str] = ()
