"""validate-data's run: read the schema, the reference and the data once, decide, return one Outcome."""

from __future__ import annotations

import json
from pathlib import Path

from mlcicd import __version__
from mlcicd.drift_check import check_drift
from mlcicd.outcome import Outcome
from mlcicd.profile import CURRENT_SAMPLE, load_profile
from mlcicd.scanning import read_data
from mlcicd.schemas import load_schema

from .decide import ending, findings, input_problems, judge
from .render import render_summary
from .settings import NAME, Settings


def execute(settings: Settings) -> Outcome:
    schema = load_schema(settings.schema) if settings.schema else None
    # read first: fail on a bad profile before reading gigabytes of data
    reference = load_profile(settings.reference) if settings.reference else None
    files, current, failures, digest = read_data(settings, CURRENT_SAMPLE, schema)
    problems = input_problems(current, failures, settings.target)
    drift = None
    if reference is not None and not problems:
        drift = check_drift(
            current,
            reference,
            settings.reference,
            settings.thresholds,
            settings.target,
            schema,
            settings.schema,
        )

    schema_list = failures.as_list()
    verdict = judge(schema_list, problems, drift, settings.fail_on)
    report = {
        "stage": NAME,
        "version": __version__,
        "passed": not verdict.failed,
        "fail_on": settings.fail_on,
        "data": {
            "source": settings.data,
            "files": files,
            "rows": current["rows"],
            "columns": list(current["columns"]),
            "digest": digest,
        },
        "schema": {"source": settings.schema, "failed": verdict.schema_failed, "failures": schema_list}
        if schema is not None
        else None,
        "drift": drift,
        "input_problems": problems,
    }
    report_path = str(Path(settings.report))  # as write_json names it
    found = findings(verdict, schema_list, drift)
    exit_code, result, annotations = ending(
        verdict, problems, found, settings.fail_on, report_path, settings.data
    )
    return Outcome(
        stage=NAME,
        exit_code=exit_code,
        result=result,
        report=report,
        report_path=report_path,
        outputs={
            "passed": "true" if not verdict.failed else "false",
            "drifted-features": json.dumps(drift["drifted"] if drift else []),
            "rows": str(current["rows"]),
            "data-digest": digest,
        },
        summary=render_summary(report),
        annotations=annotations,
    )
