"""How every stage ends: one `Outcome` value, written by one `publish`.

A stage's run reads, decides and acts, then returns an Outcome; nothing else in a stage writes the
report file, step outputs, the step summary or the closing annotation. Every report carries the
same envelope (`stage`, `toolkit_version`, `result`, `passed`), so a consumer of several stages'
reports reads them alike, and the `report` output always names the file written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlcicd import __version__, github
from mlcicd.errors import PASSED
from mlcicd.report import write_json

AnnotationKind = Literal["error", "warning", "notice"]


@dataclass(frozen=True)
class Annotation:
    kind: AnnotationKind
    title: str
    message: str
    file: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What a stage run produced. `result` is the stage's one-word verdict (`passed`, `promoted`,
    `rolled-back`…); `report` is the stage-specific body of the JSON report."""

    stage: str
    exit_code: int
    result: str
    report: Mapping[str, Any]
    report_path: str
    outputs: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    annotations: tuple[Annotation, ...] = ()
    log: str = ""
    """A line for the job log (stdout), e.g. what a rollout that ended well did."""

    @property
    def passed(self) -> bool:
        return self.exit_code == PASSED


def envelope(outcome: Outcome) -> dict[str, Any]:
    """The report as written: the common keys first, then the stage's own (which may refine `passed`)."""
    head = {
        "stage": outcome.stage,
        "toolkit_version": __version__,
        "result": outcome.result,
        "passed": outcome.passed,
    }
    return {**head, **outcome.report}


def publish(outcome: Outcome) -> int:
    """Write the report, the step outputs, the summary and the annotations; return the exit code."""
    path = write_json(outcome.report_path, envelope(outcome))
    github.set_outputs({**outcome.outputs, "report": path})
    if outcome.summary:
        github.write_summary(outcome.summary)
    if outcome.log:
        print(outcome.log, flush=True)
    for note in outcome.annotations:
        github.annotate(note.kind, note.message, title=note.title, file=note.file)
    return outcome.exit_code
