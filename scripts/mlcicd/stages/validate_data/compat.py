"""The scanning and drift calls by raw option values, as monitor and the tests made them before
validate-data became a package. New code calls mlcicd.scanning and mlcicd.drift_check with typed
values; this goes once monitor does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcicd import drift_check, scanning
from mlcicd.config import build_settings
from mlcicd.scanning import DataSource, Scanned
from mlcicd.schemas import SchemaFailures


def _source(values: Mapping[str, Any]) -> DataSource:
    return build_settings(DataSource, values)


def scan(
    values: Mapping[str, Any], sample_size: int, schema: Any = None, files: list[Path] | None = None
) -> tuple[list[Path], dict[str, Any], SchemaFailures]:
    return scanning.scan(_source(values), sample_size, schema, files)


def read_data(values: Mapping[str, Any], sample_size: int, schema: Any) -> Scanned:
    return scanning.read_data(_source(values), sample_size, schema)


def scan_spark(values: Mapping[str, Any], sample_size: int, schema: Any) -> Scanned:
    return scanning.scan_spark(_source(values), sample_size, schema)


def check_drift(
    values: Mapping[str, Any], current: dict[str, Any], schema: Any, reference: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Compare the current profile with the reference profile (`values["reference"]`, read
    unless already loaded and passed as `reference`)."""
    from mlcicd.drift import Thresholds
    from mlcicd.profile import load_profile

    if reference is None:
        reference = load_profile(values["reference"])
    thresholds = Thresholds(
        values["drift-threshold"], values["min-wasserstein"], values["min-psi"], values["min-share-change"]
    )
    return drift_check.check_drift(
        current,
        reference,
        values["reference"],
        thresholds,
        values["target"],
        schema,
        values.get("schema", ""),
    )
