"""monitor: watch the production model after deployment; roll back and retrain when it goes bad.

Meant for a scheduled workflow. Two checks, each optional:

- drift: recent production inputs (`data`) against the reference profile stored with the version
  behind the alias (train-gpu logs it as `mlcicd/reference-profile.json` in the version's run), with
  the same tests as validate-data;
- quality: one live number (F1 on delayed labels, CTR, conversion…) from Prometheus or an HTTP JSON
  endpoint, against a baseline: below `baseline × (1 − tolerance)` is degraded.

Degraded → rollback: traffic back to stable through the router, then `production` back to
`previous-production` through promote's rollback (so it is in the promotion history). Drift or
degradation → the consumer's training workflow is dispatched with `retrain: true`, one issue is
opened or updated, and a Slack-compatible webhook is told. Exit 0 healthy, 1 action taken, 2 bad
input — and on exit 2 nothing was changed.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from typing import Any

from mlcicd import __version__, github
from mlcicd.config import Option, Stage, boolean, choice, duration, number, text
from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.report import check_report_path, default_report_path, fmt, markdown_table, write_json
from mlcicd.routers import ROUTER_EXAMPLE, parse_spec, router_spec

NAME = "monitor"
WEBHOOK_ENV = "MLCICD_WEBHOOK_URL"
ISSUE_LABEL = "ml-cicd-monitor"
TAG_BASELINE = "mlcicd.monitor.baseline"
TAG_BASELINE_AT = "mlcicd.monitor.baseline_at"
TAG_ROLLED_BACK = "mlcicd.monitor.rolled_back"
TAG_RETRAIN = "mlcicd.monitor.retrain_dispatched"
QUALITY_KEYS = {
    "prometheus": {"type", "address", "query", "timeout"},
    "http": {"type", "address", "field", "timeout"},
}
QUALITY_EXAMPLE = "{type: prometheus, address: http://prometheus:9090, query: 'avg_over_time(model_f1[1d])'}"
DRIFT_OPTIONS = ("drift-threshold", "min-wasserstein", "min-psi", "min-share-change", "delimiter", "encoding")


def quality_spec(value: Any) -> dict[str, Any]:
    spec = parse_spec(value, QUALITY_KEYS, {"prometheus": ("address", "query"), "http": ("address", "field")}, "quality")
    if spec and not str(spec["address"]).startswith(("http://", "https://")):
        raise ValueError(f"`quality.address` {spec['address']!r} must be an http:// or https:// URL")
    return spec


def baseline_setting(value: Any) -> str | float:
    """Empty (recorded on the version), `gates` (check-gates' value) or a number."""
    raw = text(value).strip().lower()
    if raw in ("", "recorded", "gates"):
        return "" if raw == "recorded" else raw
    return number()(raw)


def _drift_options() -> tuple[Option, ...]:
    from mlcicd.stages.validate_data import _COMMON
    from mlcicd.stages.validate_data import OPTIONS as VALIDATE

    by_name = {o.name: o for o in (*VALIDATE, *_COMMON)}
    return tuple(by_name[name] for name in DRIFT_OPTIONS)


OPTIONS = (
    Option("model-name", text, "", "registered model to watch", "churn-classifier"),
    Option("alias", text, "production", "the alias serving users", "production"),
    Option(
        "data",
        text,
        "",
        "recent production inputs (CSV, Parquet, JSON Lines; file, directory or glob); empty = no drift check",
        "exports/last-7-days.parquet",
        is_path=True,
    ),
    Option(
        "reference",
        text,
        "",
        "reference profile; empty = the one stored with the version (`mlcicd/reference-profile.json` in its run)",
        "reference.json",
        is_path=True,
    ),
    Option(
        "target",
        text,
        "",
        "label column: compared when the recent inputs carry it, ignored when they do not (unset, a missing label is drift)",
        "churned",
    ),
    *_drift_options(),
    Option(
        "quality",
        quality_spec,
        {},
        "live quality metric (YAML mapping): type prometheus|http, address, query or field",
        QUALITY_EXAMPLE,
        shown_default="none",
    ),
    Option("quality-metric", text, "quality", "the quality metric's name, for reports (and `baseline: gates`)", "f1"),
    Option(
        "baseline",
        baseline_setting,
        "",
        "empty: the value recorded on the version (the first check after it became production records it); "
        "`gates`: check-gates' value of quality-metric; or a number",
        "gates",
        shown_default="recorded",
    ),
    Option("tolerance", number(minimum=0, maximum=1), 0.03, "degraded below baseline × (1 − tolerance)", "0.05"),
    Option(
        "direction", choice("higher", "lower"), "higher", "higher: higher is better (F1, CTR); lower: lower is better (error rate)", "lower"
    ),
    Option("on-degradation", choice("rollback", "alert"), "rollback", "rollback (traffic and alias) or alert only", "alert"),
    Option(
        "router",
        router_spec,
        {},
        "traffic router to put back on stable at a rollback; empty = canary-shift's `router` in the same config file",
        ROUTER_EXAMPLE,
        shown_default="canary-shift's",
    ),
    Option(
        "deploy-command",
        text,
        "",
        "at a rollback, put @previous-production back on the canary and then the stable server with this command, "
        "as canary-shift's mode rollback does; empty = canary-shift's `deploy-command` in the same config file",
        "python serving/deploy.py",
        shown_default="canary-shift's",
    ),
    Option("retrain-workflow", text, "", "workflow file to dispatch with `retrain: true` on drift or degradation; empty = none", "ml.yml"),
    Option("retrain-ref", text, "", "branch or tag to run the retrain on; empty = the ref of this run", "main"),
    Option("retrain-on", choice("any", "drift", "degradation"), "any", "what dispatches the retrain", "drift"),
    Option(
        "retrain-cooldown",
        duration,
        86400.0,
        "no second dispatch for the same version within this time (a scheduled monitor sees the same drift every run)",
        "12h",
        shown_default="24h",
    ),
    Option("issue", boolean, False, "open (or update) one issue while the model is unhealthy", "true"),
    Option("notify", choice("problems", "always", "never"), "problems", f"when to post the summary to ${WEBHOOK_ENV}", "always"),
    Option("repository", text, "", "owner/name for the GitHub API; empty = GITHUB_REPOSITORY", "acme/churn"),
    Option("dry-run", boolean, False, "check and report; roll back, dispatch and notify nothing", "true"),
    Option("report", text, default_report_path(NAME), "where to write the JSON report", "reports/monitor.json", is_path=True),
)


# --- pure decisions ---------------------------------------------------------------------------


def degraded(value: float, baseline: float, tolerance: float, direction: str) -> tuple[bool, float]:
    """(is it degraded, the limit it was held to)."""
    if direction == "higher":
        limit = baseline * (1 - tolerance) if baseline >= 0 else baseline * (1 + tolerance)
        return value < limit, limit
    limit = baseline * (1 + tolerance) if baseline >= 0 else baseline * (1 - tolerance)
    return value > limit, limit


def wants_retrain(setting: str, drifted: bool, is_degraded: bool) -> bool:
    return (drifted and setting in ("any", "drift")) or (is_degraded and setting in ("any", "degradation"))


def marker(model: str) -> str:
    return f"<!-- mlcicd-monitor: {model} -->"


# --- reading ------------------------------------------------------------------------------------


def read_quality(spec: dict[str, Any]) -> tuple[float, str]:
    """(value, where it came from); a source that is down or says nothing is a usage error: nothing was changed."""
    from mlcicd.metric_sources import TOKEN_ENV, MetricsError, PrometheusSource, QueryError, finite_number
    from mlcicd.routers import request_json

    timeout = float(spec.get("timeout", 10.0))
    if spec["type"] == "prometheus":
        source = PrometheusSource({"address": spec["address"], "queries": {}, "timeout": timeout})
        try:
            series = source.query(spec["query"])
        except QueryError as exc:
            raise UsageError("invalid quality query", f"{exc}. Fix `quality.query`; nothing was changed.") from None
        except MetricsError as exc:
            raise UsageError("quality source unreachable", f"{exc}. Check `quality.address`; nothing was changed.") from None
        values = [finite_number((s.get("value") or [None, None])[1]) for s in series]
        if len(values) != 1 or values[0] is None:
            found = "no series" if not series else f"{len(series)} series" if len(values) != 1 else "a value that is not a number"
            raise UsageError(
                "quality query has no single value",
                f"`{spec['query']}` returned {found}; it must return exactly one number (aggregate with avg(…) or sum(…), "
                "and check the metric has data in the window). Nothing was changed.",
            )
        return values[0], f"Prometheus `{spec['query']}`"
    try:
        document = request_json("GET", str(spec["address"]), TOKEN_ENV, MetricsError, "a JSON object", timeout=timeout)
    except MetricsError as exc:
        raise UsageError("quality source unreachable", f"{exc}. Check `quality.address`; nothing was changed.") from None
    found: Any = document
    for part in str(spec["field"]).split("."):
        found = found.get(part) if isinstance(found, dict) else None
    value = finite_number(found)
    if value is None:
        raise UsageError(
            "quality field missing",
            f"{spec['address']} has no number at `{spec['field']}` (keys: {', '.join(list(document)[:8]) or 'none'}). "
            "Fix `quality.field`; nothing was changed.",
        )
    return value, f"{spec['address']} `{spec['field']}`"


def reference_profile(client: Any, values: dict[str, Any], version: Any, workdir: str) -> tuple[str, str]:
    """(path, where it came from): the `reference` option, or the profile stored with the version."""
    from mlflow.exceptions import MlflowException

    from mlcicd.tracking import PROFILE_ARTIFACT

    if values["reference"]:
        return values["reference"], values["reference"]
    fix = (
        "Set `reference-profile` in train-gpu (or `reference` in validate-data of the same config) so the profile is stored "
        "with every trained version, or pass `reference` here."
    )
    if not version.run_id:
        raise UsageError("no reference profile", f"version {version.version} of `{version.name}` has no MLflow run to read it from. {fix}")
    try:
        path = client.download_artifacts(version.run_id, PROFILE_ARTIFACT, workdir)
    except (MlflowException, OSError):
        raise UsageError(
            "no reference profile",
            f"version {version.version} of `{version.name}` has no `{PROFILE_ARTIFACT}` in run {version.run_id}. {fix}",
        ) from None
    return path, f"`{PROFILE_ARTIFACT}` of version {version.version} (run {version.run_id})"


def check_drift(client: Any, values: dict[str, Any], version: Any) -> dict[str, Any]:
    from mlcicd.profile import CURRENT_SAMPLE, load_profile
    from mlcicd.stages import validate_data

    with tempfile.TemporaryDirectory() as workdir:
        path, origin = reference_profile(client, values, version, workdir)
        reference = load_profile(path)  # a bad profile fails before the data is read
        _, current, _ = validate_data.scan(values, CURRENT_SAMPLE)
        label = values["target"]
        unlabelled = bool(label) and label not in current["columns"] and label in reference["columns"]
        if unlabelled:
            # Production inputs rarely carry the label: its absence is expected, so it is not compared.
            reference = {**reference, "columns": {k: v for k, v in reference["columns"].items() if k != label}}
        drift = validate_data.check_drift({**values, "reference": path}, current, None, reference)
    if unlabelled:
        drift["not_compared"] = [*drift.get("not_compared", []), label]
    drift["reference"] = origin
    drift["rows"] = current["rows"]
    return drift


def resolve_baseline(client: Any, values: dict[str, Any], version: Any) -> tuple[float | None, str]:
    """(baseline, where it came from); None: none yet, this observation becomes it."""
    setting = values["baseline"]
    if isinstance(setting, float):
        return setting, "the `baseline` option"
    if setting == "gates":
        key = "gates." + re.sub(r"[^\w.-]", "_", values["quality-metric"])  # as check-gates logs it
        metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
        if key not in metrics:
            raise UsageError(
                "no gate value for the baseline",
                f"`baseline: gates` reads `{key}` from run {version.run_id or '(none)'} of version {version.version}, which has no such "
                f"metric ({', '.join(k for k in metrics if k.startswith('gates.')) or 'no gates.* metrics'}). Set `quality-metric` to a "
                "metric check-gates computed, or use a number.",
            )
        return float(metrics[key]), f"check-gates' `{key}` of version {version.version}"
    recorded = (version.tags or {}).get(TAG_BASELINE)
    if recorded is not None:
        try:
            return float(recorded), f"recorded on version {version.version} at {(version.tags or {}).get(TAG_BASELINE_AT, '?')}"
        except ValueError:
            github.warning(
                f"tag `{TAG_BASELINE}` is {recorded!r}, not a number; recording a new baseline.", title=f"{NAME}: bad baseline tag"
            )
    return None, ""


# --- acting -------------------------------------------------------------------------------------


def roll_back(client: Any, values: dict[str, Any], version: Any, reason: str) -> dict[str, Any]:
    """Traffic first (users are being served by the bad model), then the alias, through promote's rollback."""
    from mlcicd.routers import RouterError, Weights, make_router
    from mlcicd.stages import promote

    name, observed = version.name, str(version.version)
    model = client.get_registered_model(name)
    aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
    plan = promote.plan_rollback(aliases, promote.read_history(dict(model.tags or {})))
    result: dict[str, Any] = {"traffic": "no router configured", "registry": "", "ok": False}
    if isinstance(plan, str):
        result["registry"] = f"not rolled back: {plan}"
        return result
    if values["router"] and values["deploy-command"]:
        ok, result["traffic"] = redeploy_previous(values, name, reason)
        if not ok:
            return result
    elif values["router"]:
        router = make_router(values["router"])
        try:
            before = router.get()
            if before.canary:
                router.set(Weights(0))
                result["traffic"] = f"{router.describe()}: {before.describe()} → canary 0 % (verified)"
            else:
                result["traffic"] = f"{router.describe()}: already all on stable"
        except RouterError as exc:
            result["traffic"] = f"FAILED: {exc}; traffic state unknown"
            return result
    outcome = promote.Outcome(name, promote.PRODUCTION, "rollback")
    settings = {"mode": "rollback", "expected-current-version": observed, "reason": reason}
    try:
        promote.execute(client, settings, None, outcome)
    except promote.Refused as refusal:
        result["registry"] = f"not rolled back: {refusal.message}"
        return result
    result["registry"] = f"`{name}@{promote.PRODUCTION}`: {outcome.from_version} → {outcome.version}"
    result["to_version"] = outcome.version
    result["event"] = outcome.event
    client.set_model_version_tag(name, observed, TAG_ROLLED_BACK, json.dumps({"at": _now(), "reason": reason}))
    result["ok"] = True
    return result


def redeploy_previous(values: dict[str, Any], name: str, reason: str) -> tuple[bool, str]:
    """After a handoff the stable server serves the degraded version: canary-shift's mode rollback
    puts @previous-production back on it (canary, switch, stable, back), through its command line
    so that the rollback is the very one an operator runs. Its annotations become lines of this log;
    monitor's own error says what happened."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlcicd-rollback-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INPUT_")}  # monitor's inputs are not canary-shift's
        env.update(GITHUB_OUTPUT=os.path.join(tmp, "output"), GITHUB_STEP_SUMMARY=os.path.join(tmp, "summary"))
        report = os.path.join(tmp, "report.json")
        args = ["--mode", "rollback", "--model-name", name, "--router", json.dumps(values["router"])]
        args += ["--deploy-command", values["deploy-command"], "--reason", reason, "--report", report]
        if values["config"]:
            args += ["--config", values["config"]]
        proc = subprocess.run([sys.executable, "-m", "mlcicd", "canary-shift", *args], env=env, capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            if line.startswith("::add-mask::") or not line.startswith("::"):
                print(line, flush=True)
        try:
            with open(report, encoding="utf-8") as handle:
                message = json.load(handle).get("message") or ""
        except (OSError, ValueError):
            message = (proc.stdout.strip().splitlines() or [proc.stderr.strip()[-300:]])[-1]
    if proc.returncode != 0:
        return False, f"FAILED: canary-shift's rollback exited with {proc.returncode}: {message}"
    return True, message


def canary_setting(config: str, key: str) -> Any:
    """A setting of the `canary-shift:` section of the same config file: the router the model was
    rolled out through (the one to put back on stable), and the deploy command that put it there."""
    from mlcicd.config import section_of

    return section_of(config, "canary-shift").get(key) or ({} if key == "router" else "")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _api(values: dict[str, Any]) -> Any:
    from mlcicd.github_api import GitHubApi, repository_from_env, token_from_env

    try:
        repository = repository_from_env(values["repository"])
    except ValueError as exc:
        raise UsageError("invalid value for repository", f"{exc}; set `repository`.") from None
    token = token_from_env()
    if not token:
        raise UsageError(
            "no GitHub token",
            "retrain-workflow and issue call the GitHub API: set `MLCICD_GITHUB_TOKEN: ${{ github.token }}` in the step's env "
            "(the job needs `actions: write` to dispatch, `issues: write` for the issue).",
        )
    return GitHubApi(repository, token)


def recent_dispatch(version: Any, cooldown_s: float) -> str:
    """When a retrain was dispatched for this version within the cooldown, else ''."""
    stamp = (version.tags or {}).get(TAG_RETRAIN, "")
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)  # a hand-set tag without an offset: read as UTC, like ours
    return stamp if (datetime.now(timezone.utc) - at).total_seconds() < cooldown_s else ""


def dispatch_retrain(api: Any, values: dict[str, Any], why: str) -> str:
    from mlcicd.github_api import GitHubApiError

    ref = values["retrain-ref"] or os.environ.get("GITHUB_REF_NAME", "") or "main"
    try:
        api.dispatch_workflow(values["retrain-workflow"], ref, {"retrain": "true"})
    except GitHubApiError as exc:
        hint = " The job's token needs `permissions: actions: write`." if exc.forbidden else ""
        if exc.status == 422:
            hint = f" `{values['retrain-workflow']}` must have `on: workflow_dispatch` with a `retrain` input."
        return f"FAILED: {exc.message}.{hint}"
    return f"dispatched `{values['retrain-workflow']}` on `{ref}` with retrain=true ({why})"


def post_issue(api: Any, model: str, title: str, body: str) -> str:
    from mlcicd.github_api import GitHubApiError

    try:
        how, issue = api.upsert_issue(marker(model), ISSUE_LABEL, title, f"{body}\n\n{marker(model)}\n")
    except GitHubApiError as exc:
        hint = " The job's token needs `permissions: issues: write`." if exc.forbidden else ""
        return f"FAILED: {exc.message}.{hint}"
    return f"{how} issue #{issue.get('number')} {issue.get('html_url', '')}".strip()


def notify(url: str, text_: str) -> str:
    import requests

    try:
        response = requests.post(url, json={"text": text_}, timeout=10)
    except requests.RequestException as exc:
        return f"FAILED: {type(exc).__name__}"
    return "sent" if response.status_code < 300 else f"FAILED: HTTP {response.status_code}"


# --- the stage ----------------------------------------------------------------------------------


def run(values: dict[str, Any]) -> int:
    from mlcicd import metric_sources, routers

    for env in (routers.TOKEN_ENV, metric_sources.TOKEN_ENV, WEBHOOK_ENV):
        if os.environ.get(env):
            github.add_mask(os.environ[env])
    name = values["model-name"].strip()
    if not name:
        raise UsageError("missing model-name", "pass `model-name`, the registered model to watch.")
    if not values["data"] and not values["quality"]:
        raise UsageError("nothing to monitor", "set `data` (drift of recent inputs), `quality` (a live metric), or both.")
    for key in ("router", "deploy-command"):
        if not values[key] and values["config"]:
            values = {**values, key: canary_setting(values["config"], key)}
    if values["router"]:
        try:
            routers.make_router(values["router"])
        except ValueError as exc:
            raise UsageError("invalid value for router", f"{exc}.") from None
    api = _api(values) if (values["retrain-workflow"] or values["issue"]) and not values["dry-run"] else None
    check_report_path(values["report"])

    from mlflow import MlflowClient

    from mlcicd import monitor_idle, tracking

    uri = tracking.connect()
    client = MlflowClient()
    version, why = monitor_idle.watched_version(client, name, values["alias"])
    if version is None:  # before the first rollout: a notice, not an hourly failure
        return monitor_idle.report_nothing_to_watch(name, values["alias"], why, values["report"], tracking.redact(uri))
    report: dict[str, Any] = {
        "stage": NAME,
        "version": __version__,
        "model": {"name": name, "alias": values["alias"], "version": str(version.version), "run_id": version.run_id},
        "tracking_uri": tracking.redact(uri),
        "checked_at": _now(),
        "drift": None,
        "quality": None,
        "actions": {},
        "dry_run": values["dry-run"],
    }
    # Read everything before changing anything: a source that is down is exit 2 with nothing changed.
    if values["data"]:
        report["drift"] = check_drift(client, values, version)
    if values["quality"]:
        value, origin = read_quality(values["quality"])
        baseline, baseline_origin = resolve_baseline(client, values, version)
        quality: dict[str, Any] = {"metric": values["quality-metric"], "value": value, "source": origin, "tolerance": values["tolerance"]}
        if baseline is None:
            quality.update(baseline=value, baseline_source="recorded now (first check of this version)", degraded=False, limit=None)
            if not values["dry-run"]:
                client.set_model_version_tag(name, str(version.version), TAG_BASELINE, repr(value))
                client.set_model_version_tag(name, str(version.version), TAG_BASELINE_AT, _now())
        else:
            is_degraded, limit = degraded(value, baseline, values["tolerance"], values["direction"])
            quality.update(baseline=baseline, baseline_source=baseline_origin, degraded=is_degraded, limit=limit)
        report["quality"] = quality

    drifted = bool(report["drift"] and report["drift"]["drifted"])
    is_degraded = bool(report["quality"] and report["quality"]["degraded"])
    report["status"] = "+".join(s for s, on in (("drift", drifted), ("degraded", is_degraded)) if on) or "healthy"
    headline = headline_of(report, values)
    actions = report["actions"]
    if values["dry-run"]:
        actions["dry-run"] = "nothing was changed"
    else:
        if is_degraded and values["on-degradation"] == "rollback" and values["alias"] == "production":
            actions["rollback"] = roll_back(client, values, version, f"monitor: {headline}")
        if values["retrain-workflow"] and wants_retrain(values["retrain-on"], drifted, is_degraded):
            last = recent_dispatch(version, values["retrain-cooldown"])
            if last:
                actions["retrain"] = f"already dispatched at {last} (retrain-cooldown {values['retrain-cooldown'] / 3600:g} h)"
            else:
                actions["retrain"] = dispatch_retrain(api, values, report["status"])
                if actions["retrain"].startswith("dispatched"):
                    client.set_model_version_tag(name, str(version.version), TAG_RETRAIN, _now())
        if values["issue"] and report["status"] != "healthy":
            actions["issue"] = post_issue(api, name, f"ml-cicd monitor: {name} {report['status']}", render_summary(report, headline))
        webhook = os.environ.get(WEBHOOK_ENV, "").strip()
        if webhook and (values["notify"] == "always" or (values["notify"] == "problems" and report["status"] != "healthy")):
            actions["notification"] = notify(webhook, f"ml-cicd monitor · {name}@{values['alias']} v{version.version}: {headline}")
    report["headline"] = headline
    report_path = write_json(values["report"], report)
    rollback = actions.get("rollback") or {}
    github.set_outputs(
        {
            "status": report["status"],
            "rolled-back": "true" if rollback.get("ok") else "false",
            "retrain-dispatched": "true" if str(actions.get("retrain", "")).startswith("dispatched") else "false",
            "drifted-features": json.dumps(report["drift"]["drifted"] if report["drift"] else []),
            "quality": "" if not report["quality"] else repr(report["quality"]["value"]),
            "report": report_path,
        }
    )
    github.write_summary(render_summary(report, headline))
    if report["status"] == "healthy":
        failed = [f"{k}: {v}" for k, v in actions.items() if isinstance(v, str) and v.startswith("FAILED")]
        if failed:
            github.warning("; ".join(failed), title=f"{NAME}: notification failed")
        return PASSED
    github.error(f"{headline} {describe_actions(actions)} See {report_path}.", title=f"{NAME}: {name} {report['status']}")
    return CHECK_FAILED


def headline_of(report: dict[str, Any], values: dict[str, Any]) -> str:
    parts = []
    drift, quality = report["drift"], report["quality"]
    if drift:
        parts.append(
            f"drift in {len(drift['drifted'])} feature(s): {', '.join(drift['drifted'][:8])}"
            if drift["drifted"]
            else f"no drift in {len(drift['features'])} feature(s)"
        )
    if quality:
        metric, value, base = quality["metric"], quality["value"], quality["baseline"]
        if quality["limit"] is None:
            parts.append(f"{metric} {fmt(value)} recorded as the baseline")
        else:
            word = "below" if values["direction"] == "higher" else "above"
            state = f"{word} the limit" if quality["degraded"] else "within the limit"
            parts.append(f"{metric} {fmt(value)} {state} {fmt(quality['limit'])} (baseline {fmt(base)}, tolerance {values['tolerance']:g})")
    return "; ".join(parts) + "."


def describe_actions(actions: dict[str, Any]) -> str:
    said = []
    rollback = actions.get("rollback")
    if rollback:
        if rollback["ok"]:
            said.append(f"Rolled back: {rollback['registry']}; traffic: {rollback['traffic']}.")
        else:
            said.append(
                f"Rollback incomplete — registry: {rollback['registry'] or 'unchanged'}; traffic: {rollback['traffic']}. "
                "Finish it by hand: `mlcicd promote --mode rollback` and `mlcicd canary-shift --mode restore`."
            )
    for key in ("retrain", "issue", "notification"):
        if key in actions:
            said.append(f"{key.capitalize()}: {actions[key]}.")
    if not said:
        said.append("No action configured (set retrain-workflow, issue, or a webhook).")
    return " ".join(said)


def render_summary(report: dict[str, Any], headline: str) -> str:
    model = report["model"]
    icon = "✅" if report["status"] == "healthy" else "🚨"
    lines = [f"## monitor: {icon} `{model['name']}@{model['alias']}` (version {model['version']}) {report['status']}", "", headline, ""]
    quality = report["quality"]
    if quality:
        rows = [
            (
                quality["metric"],
                quality["value"],
                quality["baseline"],
                quality["limit"],
                "❌ degraded" if quality["degraded"] else "✅",
                f"{quality['source']}; baseline: {quality['baseline_source']}",
            )
        ]
        lines += ["### Live quality", "", markdown_table(["metric", "now", "baseline", "limit", "result", "source"], rows), ""]
    drift = report["drift"]
    if drift:
        lines += [f"### Drift: {fmt(drift['rows'])} recent rows vs {drift['reference']}", ""]
        shown = sorted(drift["features"], key=lambda f: f["column"] not in drift["drifted"])[:15]
        rows = [
            (f"`{f['column']}`", f["status"], f.get("test"), f.get("p_value"), f.get("effect_size"), f.get("psi"), "; ".join(f["reasons"]))
            for f in shown
        ]
        lines += [markdown_table(["feature", "status", "test", "p-value", "effect size", "PSI", "why"], rows), ""]
    if report["actions"]:
        lines += ["### Actions", ""]
        for key, value in report["actions"].items():
            if isinstance(value, dict):
                value = f"registry: {value['registry'] or 'unchanged'}; traffic: {value['traffic']}"
            lines.append(f"- **{key}**: {value}")
    return "\n".join(lines)


STAGE = Stage(
    NAME,
    "watch the production model: drift of recent inputs and a live quality metric; roll back, retrain and alert when they go bad",
    OPTIONS,
    run,
    outputs=(
        ("status", "`healthy`, `drift`, `degraded` or `drift+degraded`"),
        ("rolled-back", "`true` when production was rolled back"),
        ("retrain-dispatched", "`true` when the training workflow was dispatched"),
        ("drifted-features", "JSON list of the drifted features"),
        ("quality", "the live quality value read (empty without `quality`)"),
        ("report", "path of the JSON report"),
    ),
)
