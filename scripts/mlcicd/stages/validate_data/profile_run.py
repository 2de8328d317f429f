"""`mlcicd profile`: write the reference profile that validate-data measures drift against.

Its product is the profile file itself, not a report, so it ends by writing that file and its
step outputs rather than through outcome.publish (which would add a report file and output).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlcicd import __version__, github
from mlcicd.errors import PASSED, UsageError
from mlcicd.profile import REFERENCE_SAMPLE, load_profile, merge_profiles, to_json
from mlcicd.report import write_json
from mlcicd.scanning import read_data
from mlcicd.schemas import load_schema, schema_columns, schema_fingerprint

from .decide import check_one_schema, input_problems, merged_digest, schema_failures_warning
from .settings import ProfileSettings


def execute_profile(settings: ProfileSettings) -> int:
    out = Path(settings.out)
    if out.exists() and not settings.overwrite:
        raise UsageError(
            "profile exists", f"{out} already exists; pass `--overwrite true` to replace it.", file=str(out)
        )
    schema = load_schema(settings.schema) if settings.schema else None
    parts = [
        load_profile(path) for path in settings.merge
    ]  # read first: a bad part fails before the data is read
    if settings.data or not parts:
        _, profile, failures, digest = read_data(settings, REFERENCE_SAMPLE, schema)
        problems = input_problems(profile, failures, "")
        if problems:
            raise UsageError("data cannot be profiled", "; ".join(problems) + ".", file=settings.data)
        if warning := schema_failures_warning(failures):
            github.warning(warning, title="profile: schema failures")
        profile["data-digest"] = digest
        if schema is not None:
            columns = schema_columns(schema)
            profile["schema-columns"] = columns
            profile["schema-fingerprint"] = schema_fingerprint(columns)
        parts.append(profile)
    if len(parts) > 1:
        profile = merged_profile(parts, settings.merge)
    profile["created-by"] = f"mlcicd {__version__}"
    write_json(out, json.loads(to_json(profile)))
    size = out.stat().st_size
    github.set_outputs(
        {"profile": str(out), "rows": str(profile["rows"]), "data-digest": profile["data-digest"]}
    )
    print(f"wrote {out}: {profile['rows']:,} rows, {len(profile['columns'])} columns, {size / 1024:.0f} KiB")
    return PASSED


def merged_profile(parts: list[dict[str, Any]], sources: Sequence[str]) -> dict[str, Any]:
    """One profile of all the parts' data (profile.merge_profiles), if they were built for one schema."""
    check_one_schema(parts, sources)
    profile = merge_profiles(parts)
    for key in ("schema-columns", "schema-fingerprint"):
        if key in parts[0]:
            profile[key] = parts[0][key]
    profile["data-digest"] = merged_digest(parts)
    return profile
