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
class DataSettings:
    """The data-reading options both commands take (scanning.DATA_OPTIONS)."""

    data: str = ""
    schema: str = ""
    delimiter: str = ","
    encoding: str = "utf-8"
    engine: str = "arrow"
    spark_master: str = ""

    @property
    def source(self) -> DataSource:
        return DataSource(
            self.data, self.schema, self.delimiter, self.encoding, self.engine, self.spark_master
        )


@dataclass(frozen=True)
class Settings(DataSettings):
    """validate-data."""

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
class ProfileSettings(DataSettings):
    """`mlcicd profile`."""

    out: str = "reference.json"
    overwrite: bool = True
    merge: Sequence[str] = ()
