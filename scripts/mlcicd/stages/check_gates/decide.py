"""check-gates' decisions: settings and measured facts in, gates and the verdict out. No I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.gate_table import METRICS, THRESHOLDS
from mlcicd.gates import GateResult, compare_to_baseline, row_gate
from mlcicd.outcome import Annotation

from .settings import NAME, Settings, probe_option


def gate(name: str, candidate: Any, baseline: Any, threshold: Any, passed: bool, detail: str) -> GateResult:
    delta = (
        candidate - baseline
        if isinstance(candidate, (int, float)) and isinstance(baseline, (int, float))
        else None
    )
    return GateResult(name, candidate, baseline, delta, threshold, passed, detail)


def threshold_gates(settings: Settings, scores: Mapping[str, Any]) -> list[GateResult]:
    """One gate per row of THRESHOLDS whose option is set, named by the row."""
    gates = []
    for row in THRESHOLDS:
        limit = settings.limits.get(row.option)
        if limit is None:
            continue
        value = scores.get(row.metric) if row.task == settings.task else None
        if value is None:
            raise UsageError(
                f"metric {row.metric} not available",
                f"`{row.option}` is set, but {row.metric} cannot be computed for this {settings.task} model "
                "(e.g. roc_auc needs class probabilities).",
            )
        gates.append(row_gate(row, value, limit))
    return gates


def primary_metric(settings: Settings) -> str:
    primary = settings.primary
    valid = [m for m, info in METRICS.items() if info.kind == settings.task]
    if primary not in valid:
        raise UsageError(
            "unknown primary-metric",
            f"`{primary}` is not a {settings.task} metric: use one of {', '.join(valid)}.",
        )
    return primary


def metric_gates(
    settings: Settings, cand: Mapping[str, Any], base: Mapping[str, Any] | None, y: Any
) -> tuple[list[GateResult], dict[str, Any]]:
    """Absolute thresholds, then the improvement (and significance) gate on the primary metric."""
    from mlcicd import significance

    gates = threshold_gates(settings, cand["scores"])
    primary = primary_metric(settings)
    if base is None:
        return gates, {"primary": primary}
    higher, _kind, test = METRICS[primary]
    # with no min-improvement / min-absolute-change the candidate must at least not be worse
    if test == "mcnemar":
        stat, p, b, c = significance.mcnemar(cand["predicted"] == y, base["predicted"] == y)
        result: dict[str, Any] = {
            "test": "mcnemar",
            "statistic": stat,
            "p_value": p,
            "candidate_only_right": b,
            "baseline_only_right": c,
        }
    else:
        use_proba = primary == "roc_auc"
        if use_proba and (cand["proba"] is None or base["proba"] is None):
            raise UsageError(
                "roc_auc needs probabilities",
                "`primary-metric: roc_auc` needs models that output class probabilities; "
                "choose f1 or accuracy.",
            )
        boot = significance.paired_bootstrap(
            primary,
            y if settings.task == "classification" else y.astype(float),
            cand["proba"] if use_proba else cand["predicted"],
            base["proba"] if use_proba else base["predicted"],
            higher_is_better=higher,
            alpha=settings.alpha,
        )
        result = {"test": "paired permutation (bootstrap interval)", **boot}
    gates.append(
        compare_to_baseline(
            primary,
            cand["scores"][primary],
            base["scores"][primary],
            min_improvement=settings.min_improvement,
            min_absolute_change=settings.min_absolute_change,
            p_value=result.get("p_value"),
            require_significance=settings.require_significance,
            alpha=settings.alpha,
        )
    )
    return gates, {"primary": primary, **result}


def comparison_gate(
    settings: Settings, name: str, is_baseline: bool, has_baseline: bool
) -> tuple[GateResult | None, str | None]:
    """(the `compare to @<alias>` gate or None, the `first-run` setting when it decided) when the candidate
    is the baseline itself, or when there is no baseline yet to compare with."""
    alias = settings.compare_to
    if is_baseline:
        return gate(
            f"compare to @{alias}",
            None,
            None,
            None,
            True,
            f"the candidate already is @{alias}: nothing to compare",
        ), None
    if settings.compare and not has_baseline:
        first_run = settings.first_run
        verdict = "passed" if first_run == "pass" else "failed"
        detail = (
            f"no @{alias} version of `{name or '?'}` yet: first run, {verdict} by `first-run: {first_run}`"
        )
        return gate(f"compare to @{alias}", None, None, None, first_run == "pass", detail), first_run
    return None, None


def latency_gates(settings: Settings, results: Mapping[str, Any]) -> list[GateResult]:
    from mlcicd.latency import regression_ratio

    gates = []
    first = settings.latency_batch_sizes[0]
    cand = results["candidate"][first]
    base = results.get("baseline", {}).get(first)
    for stat, limit in (("p95_ms", settings.max_latency_p95_ms), ("p99_ms", settings.max_latency_p99_ms)):
        if limit is not None:
            gates.append(
                gate(
                    f"latency {stat[:3]} @ batch {first}",
                    cand[stat],
                    base[stat] if base else None,
                    limit,
                    cand[stat] <= limit,
                    f"{cand[stat]:.2f} ms (limit {limit:g} ms, {cand['device']})",
                )
            )
    if settings.max_latency_regression is not None and "baseline" in results:
        for batch in settings.latency_batch_sizes:
            ratio = regression_ratio(results, "candidate", "baseline", batch, stat="p99_ms")
            limit = settings.max_latency_regression
            gates.append(
                gate(
                    f"latency regression @ batch {batch}",
                    ratio,
                    1.0,
                    limit,
                    ratio <= limit,
                    f"p99 candidate/baseline = {ratio:.2f} (limit {limit:g})",
                )
            )
    return gates


def size_gate(settings: Settings, size_bytes: int) -> list[GateResult]:
    limit = settings.max_model_size
    if limit is None:
        return []
    detail = f"{size_bytes / 2**20:.2f} MiB (limit {limit / 2**20:.2f} MiB)"
    return [gate("model size", size_bytes, None, limit, size_bytes <= limit, detail)]


def probe_gate(check: Any, level: str) -> GateResult:
    """A probe's gate: a failed `warn` probe passes, marked as a warning with its detail."""
    if check.passed or level == "fail":
        return gate(f"robustness: {check.name}", None, None, None, check.passed, check.detail)
    detail = f"warning only (`{probe_option(check.name)}: warn`): {check.detail}"
    return GateResult(f"robustness: {check.name}", None, None, None, None, True, detail, warning=True)


def verdict(
    report: Mapping[str, Any], gates: Sequence[GateResult], version: str | None
) -> tuple[int, dict[str, str], tuple[Annotation, ...]]:
    """(exit code, step outputs, the one annotation when a gate failed) of a finished report."""
    failed = report["failed_gates"]
    outputs = {
        "passed": "true" if not failed else "false",
        "metrics": json.dumps(report["metrics"]["candidate"]),
        "failed-gates": json.dumps(failed),
        "version": version or "",
    }
    if not failed:
        return PASSED, outputs, ()
    title = f"{NAME}: {'serve check failed' if report.get('serve_only') else 'model not promotable'}"
    message = f"{len(failed)} gate(s) failed: " + "; ".join(
        f"{g.gate}: {g.detail}" for g in gates if not g.passed
    )
    return CHECK_FAILED, outputs, (Annotation("error", title, message),)
