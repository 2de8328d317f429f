"""validate-data: check a dataset against a pandera schema and for drift against a reference profile.

Also `mlcicd profile`, which writes the reference profile that drift is measured against.
Reads the data once, in batches: schema validation, profiling and hashing never hold the table.
The options are declared here; settings.py types them, decide.py judges, render.py writes the
summary, run.py and profile_run.py run the two commands. Scanning data, schemas and drift
are shared with other stages: mlcicd.scanning, mlcicd.schemas, mlcicd.drift_check.
"""

from __future__ import annotations

import warnings
from typing import Any

from mlcicd.config import Option, Stage, boolean, choice, text, text_list
from mlcicd.drift_check import THRESHOLD_OPTIONS
from mlcicd.report import report_option
from mlcicd.scanning import DATA_OPTIONS

from .settings import NAME, ProfileSettings, Settings

# With pyspark installed (the `spark` extra), importing pandera imports pyspark.pandas, which warns
# that it does not support pandas 3 on every run; ml-cicd never uses pyspark.pandas.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

OPTIONS = (
    *DATA_OPTIONS[:2],
    Option(
        "reference",
        text,
        "",
        "reference profile written by `mlcicd profile`",
        "reference.json",
        is_path=True,
        shown_default="none: no drift check",
    ),
    Option(
        "target",
        text,
        "",
        "label column. It must be in the data (exit 2 otherwise). It is compared like a feature, marked "
        "`(target)` in the summary, and its drift fails the step like any feature's",
        "churned",
    ),
    *THRESHOLD_OPTIONS,
    Option(
        "fail-on",
        choice("both", "schema", "drift", "none"),
        "both",
        "which findings fail the step with exit 1: `schema`, `drift`, `both` or `none`",
        "schema",
    ),
    report_option(NAME),
    *DATA_OPTIONS[2:],
)

PROFILE_OPTIONS = (
    *DATA_OPTIONS[:2],
    Option("out", text, "reference.json", "where to write the profile", "reference.json"),
    Option("overwrite", boolean, True, "replace an existing profile file", "false"),
    Option(
        "merge",
        text_list,
        [],
        "profiles of other parts of the data to merge with this data's profile (incremental or parallel "
        "builds); "
        "with no `data`, only they are merged",
        "reference.json,parts/new.json",
    ),
    *DATA_OPTIONS[2:],
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .execute import execute

    return publish(execute(build_settings(Settings, values)))


def run_profile(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings

    from .profile_run import execute_profile

    return execute_profile(build_settings(ProfileSettings, values))


STAGE = Stage(
    NAME,
    "check data against a pandera schema and for drift against a reference profile",
    OPTIONS,
    run,
    outputs=(
        ("passed", "`true` when no finding fails the step under `fail-on`"),
        ("report", "path of the JSON report"),
        ("drifted-features", 'JSON list of drifted or missing columns, e.g. `["age"]`'),
        ("rows", "number of data rows read"),
        ("data-digest", "content hash of the data files (`sha256:…`), recorded by later stages"),
    ),
)
PROFILE = Stage(
    "profile",
    "write the reference profile that validate-data measures drift against",
    PROFILE_OPTIONS,
    run_profile,
    has_config_section=False,
)

__all__ = [
    "NAME",
    "OPTIONS",
    "PROFILE",
    "PROFILE_OPTIONS",
    "STAGE",
    "run",
    "run_profile",
]
