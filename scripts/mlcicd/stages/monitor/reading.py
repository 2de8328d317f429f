"""What monitor reads before it changes anything: the live quality, the reference profile, drift of
recent inputs, the baseline. A source that is down or says nothing is exit 2 with nothing changed."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from typing import Any

from mlcicd import github
from mlcicd.errors import UsageError

from .settings import NAME, TAG_BASELINE, TAG_BASELINE_AT, Settings


def read_quality(spec: Mapping[str, Any]) -> tuple[float, str]:
    """(value, where it came from); a source that is down or says nothing is a usage error: nothing was
    changed."""
    from mlcicd.metric_sources import TOKEN_ENV, MetricsError, PrometheusSource, QueryError, finite_number
    from mlcicd.routers import request_json

    timeout = float(spec.get("timeout", 10.0))
    if spec["type"] == "prometheus":
        source = PrometheusSource({"address": spec["address"], "queries": {}, "timeout": timeout})
        try:
            series = source.query(spec["query"])
        except QueryError as exc:
            raise UsageError(
                "invalid quality query", f"{exc}. Fix `quality.query`; nothing was changed."
            ) from None
        except MetricsError as exc:
            raise UsageError(
                "quality source unreachable", f"{exc}. Check `quality.address`; nothing was changed."
            ) from None
        numbers = [finite_number((s.get("value") or [None, None])[1]) for s in series]
        first = numbers[0] if len(numbers) == 1 else None
        if first is None:
            got = (
                "no series"
                if not series
                else f"{len(series)} series"
                if len(numbers) != 1
                else "a value that is not a number"
            )
            raise UsageError(
                "quality query has no single value",
                f"`{spec['query']}` returned {got}; it must return exactly one number (aggregate with avg(…) "
                "or sum(…), "
                "and check the metric has data in the window). Nothing was changed.",
            )
        return first, f"Prometheus `{spec['query']}`"
    try:
        document = request_json(
            "GET", str(spec["address"]), TOKEN_ENV, MetricsError, "a JSON object", timeout=timeout
        )
    except MetricsError as exc:
        raise UsageError(
            "quality source unreachable", f"{exc}. Check `quality.address`; nothing was changed."
        ) from None
    found: Any = document
    for part in str(spec["field"]).split("."):
        found = found.get(part) if isinstance(found, dict) else None
    value = finite_number(found)
    if value is None:
        raise UsageError(
            "quality field missing",
            f"{spec['address']} has no number at `{spec['field']}` (keys: "
            f"{', '.join(list(document)[:8]) or 'none'}). "
            "Fix `quality.field`; nothing was changed.",
        )
    return value, f"{spec['address']} `{spec['field']}`"


def reference_profile(client: Any, settings: Settings, version: Any, workdir: str) -> tuple[str, str]:
    """(path, where it came from): the `reference` option, or the profile stored with the version."""
    from mlflow.exceptions import MlflowException

    from mlcicd.tracking import PROFILE_ARTIFACT

    if settings.reference:
        return settings.reference, settings.reference
    fix = (
        "Set `reference-profile` in train-gpu (or `reference` in validate-data of the same config) so the "
        "profile is stored "
        "with every trained version, or pass `reference` here."
    )
    if not version.run_id:
        raise UsageError(
            "no reference profile",
            f"version {version.version} of `{version.name}` has no MLflow run to read it from. {fix}",
        )
    try:
        path = client.download_artifacts(version.run_id, PROFILE_ARTIFACT, workdir)
    except (MlflowException, OSError):
        raise UsageError(
            "no reference profile",
            f"version {version.version} of `{version.name}` has no `{PROFILE_ARTIFACT}` in run "
            f"{version.run_id}. {fix}",
        ) from None
    return path, f"`{PROFILE_ARTIFACT}` of version {version.version} (run {version.run_id})"


def check_drift(client: Any, settings: Settings, version: Any) -> dict[str, Any]:
    from mlcicd import drift_check
    from mlcicd.profile import CURRENT_SAMPLE, load_profile
    from mlcicd.scanning import DataSource, scan

    with tempfile.TemporaryDirectory() as workdir:
        path, origin = reference_profile(client, settings, version, workdir)
        reference = load_profile(path)  # a bad profile fails before the data is read
        source = DataSource(settings.data, delimiter=settings.delimiter, encoding=settings.encoding)
        _, current, _ = scan(source, CURRENT_SAMPLE)
        label = settings.target
        unlabelled = bool(label) and label not in current["columns"] and label in reference["columns"]
        if unlabelled:
            # Production inputs rarely carry the label: its absence is expected, so it is not compared.
            reference = {
                **reference,
                "columns": {k: v for k, v in reference["columns"].items() if k != label},
            }
        drift = drift_check.check_drift(current, reference, path, settings.thresholds, settings.target)
    if unlabelled:
        drift["not_compared"] = [*drift.get("not_compared", []), label]
    drift["reference"] = origin
    drift["rows"] = current["rows"]
    return drift


def resolve_baseline(client: Any, settings: Settings, version: Any) -> tuple[float | None, str]:
    """(baseline, where it came from); None: none yet, this observation becomes it."""
    setting = settings.baseline
    if isinstance(setting, float):
        return setting, "the `baseline` option"
    if setting == "gates":
        key = "gates." + re.sub(r"[^\w.-]", "_", settings.quality_metric)  # as check-gates logs it
        metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
        if key not in metrics:
            raise UsageError(
                "no gate value for the baseline",
                f"`baseline: gates` reads `{key}` from run {version.run_id or '(none)'} of version "
                f"{version.version}, which has no such "
                "metric "
                f"({', '.join(k for k in metrics if k.startswith('gates.')) or 'no gates.* metrics'}). Set "
                "`quality-metric` to a "
                "metric check-gates computed, or use a number.",
            )
        return float(metrics[key]), f"check-gates' `{key}` of version {version.version}"
    recorded = (version.tags or {}).get(TAG_BASELINE)
    if recorded is not None:
        try:
            return float(
                recorded
            ), f"recorded on version {version.version} at {(version.tags or {}).get(TAG_BASELINE_AT, '?')}"
        except ValueError:
            github.warning(
                f"tag `{TAG_BASELINE}` is {recorded!r}, not a number; recording a new baseline.",
                title=f"{NAME}: bad baseline tag",
            )
    return None, ""
