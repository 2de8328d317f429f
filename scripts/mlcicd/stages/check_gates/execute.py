"""check-gates' run: read the test data and the models, measure, decide every gate, record the verdict."""

from __future__ import annotations

from typing import Any

from mlcicd import __version__, tracking
from mlcicd.errors import UsageError
from mlcicd.gates import GateResult
from mlcicd.outcome import Outcome
from mlcicd.report import check_report_path

from . import decide, registry
from .render import render_summary
from .scoring import evaluate, load_test_data
from .serve import SERVE_ROWS, serve_check
from .settings import NAME, Settings


def execute(settings: Settings) -> Outcome:
    from mlflow import MlflowClient

    from mlcicd.latency import measure_latency
    from mlcicd.model_input import head
    from mlcicd.model_loading import load_model, model_size_bytes
    from mlcicd.robustness import check_robustness

    if not settings.model_uri:
        raise UsageError(
            "missing model-uri",
            "`model-uri` (the candidate) is required, e.g. `models:/churn/7` or the `model-uri` output "
            "of train-gpu.",
        )
    if not settings.test_data:
        raise UsageError(
            "missing test-data", "`test-data` (labelled rows the model has not seen) is required."
        )
    check_report_path(settings.report)  # before the verdict is tagged on the version
    x, y, columns = load_test_data(settings)
    tracking.connect()
    client = MlflowClient()
    name, version, run_id = registry.resolve_candidate(client, settings.model_uri, settings.model_name)
    if settings.serve_only:
        return serve_only(settings, x, y, columns, name, version, run_id)
    baseline_version = registry.find_baseline(client, name, settings.compare_to)
    if settings.compare and not name:
        raise UsageError(
            "missing model-name",
            f"`{settings.model_uri}` names no registered model: set `model-name` so "
            f"`@{settings.compare_to}` can be found, "
            "or `compare-to: none`.",
        )
    is_baseline = (
        baseline_version is not None
        and version is not None
        and str(baseline_version.version) == str(version.version)
    )
    if is_baseline:
        baseline_version = None  # nothing to compare with itself

    candidate = load_model(settings.model_uri)
    baseline = (
        load_model(f"models:/{name}/{baseline_version.version}") if baseline_version is not None else None
    )
    cand = evaluate(candidate, x, y, settings)
    base = evaluate(baseline, x, y, settings) if baseline is not None else None

    gates, significance = decide.metric_gates(settings, cand, base, y)
    comparison, first_run = decide.comparison_gate(settings, name, is_baseline, base is not None)
    gates += [comparison] if comparison is not None else []

    models = {"candidate": candidate, **({"baseline": baseline} if baseline is not None else {})}
    iterations = int(settings.latency_iterations)
    latency = measure_latency(models, x, batch_sizes=settings.latency_batch_sizes, iterations=iterations)
    gates += decide.latency_gates(settings, latency)
    size_bytes = model_size_bytes(settings.model_uri)
    gates += decide.size_gate(settings, size_bytes)
    levels = settings.probe_levels
    if levels:
        labels = y if settings.task == "classification" else None
        robustness = check_robustness(
            candidate, x, labels, settings.task, settings.missing_values, probes=list(levels)
        )
        gates += [decide.probe_gate(c, levels[c.name]) for c in robustness]
    if settings.serve_check:
        gates.append(serve_check(settings.model_uri, x, candidate.predict(head(x, SERVE_ROWS))))

    report = gates_report(settings, gates, name, version, run_id, columns, len(y))
    report.update(  # the measured keys, each in its place
        baseline={
            "alias": settings.compare_to,
            "model_version": baseline_version.version if baseline_version else None,
            "first_run": first_run,
        },
        metrics={"candidate": cand["scores"], "baseline": base["scores"] if base else None},
        significance=significance,
        latency=latency,
        model_size_bytes=size_bytes,
    )
    registry.record(client, report, version, run_id)
    return outcome(settings, report, gates, version)


def serve_only(
    settings: Settings, x: Any, y: Any, columns: list[str], name: str | None, version: Any, run_id: str | None
) -> Outcome:
    """deploy.yml's check of the exact version before it gets traffic: `mlflow models serve` answers as the
    model does in-process. Quality was judged at training time, on the runner meant for it: its
    verdict tag stays as it is, and nothing is re-measured on a deploy runner that may not be alike."""
    from mlcicd.model_input import head
    from mlcicd.model_loading import load_model

    candidate = load_model(settings.model_uri)
    gates = [serve_check(settings.model_uri, x, candidate.predict(head(x, SERVE_ROWS)))]
    report = gates_report(settings, gates, name, version, run_id, columns, len(y), serve_only=True)
    return outcome(settings, report, gates, version)


def gates_report(
    settings: Settings,
    gates: list[GateResult],
    name: str | None,
    version: Any,
    run_id: str | None,
    columns: list[str],
    rows: int,
    *,
    serve_only: bool = False,
) -> dict[str, Any]:
    """The report's keys in their documented order; a full run fills in the measured ones."""
    failed = [g.gate for g in gates if not g.passed]
    return {
        "stage": NAME,
        "version": __version__,
        **({"serve_only": True} if serve_only else {}),
        "passed": not failed,
        "failed_gates": failed,
        **({} if serve_only else {"warnings": [g.gate for g in gates if g.warning]}),
        "candidate": {
            "model_uri": settings.model_uri,
            "model_name": name,
            "model_version": version.version if version else None,
            "run_id": run_id,
        },
        "baseline": {"alias": "none", "model_version": None, "first_run": None},
        "task": settings.task,
        "test_rows": int(rows),
        "features": columns,
        "metrics": {"candidate": {}, "baseline": None},
        "significance": {},
        "latency": {},
        "model_size_bytes": None,
        "gates": [g.__dict__ for g in gates],
    }


def outcome(settings: Settings, report: dict[str, Any], gates: list[GateResult], version: Any) -> Outcome:
    exit_code, outputs, annotations = decide.verdict(
        report, gates, str(version.version) if version is not None else None
    )
    return Outcome(
        stage=NAME,
        exit_code=exit_code,
        result="passed" if report["passed"] else "failed",
        report=report,
        report_path=settings.report,
        outputs=outputs,
        summary=render_summary(report),
        annotations=annotations,
    )
