"""What monitor does about a degraded or drifting model: roll back (traffic, then alias), dispatch a
retrain, open or update an issue, post to a webhook."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from mlcicd.errors import UsageError

from .decide import marker
from .settings import ISSUE_LABEL, TAG_ROLLED_BACK, Settings


def roll_back(client: Any, settings: Settings, version: Any, reason: str) -> dict[str, Any]:
    """Traffic first (users are being served by the bad model), then the alias, through promote's rollback."""
    from mlcicd.history import read_history
    from mlcicd.promotion import PRODUCTION, AliasMove, Refused, plan_rollback
    from mlcicd.promotion import roll_back as move_back
    from mlcicd.routers import RouterError, Weights, make_router

    name, observed = version.name, str(version.version)
    model = client.get_registered_model(name)
    aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
    plan = plan_rollback(aliases, read_history(dict(model.tags or {})))
    result: dict[str, Any] = {"traffic": "no router configured", "registry": "", "ok": False}
    if isinstance(plan, str):
        result["registry"] = f"not rolled back: {plan}"
        return result
    if settings.router and settings.deploy_command:
        ok, result["traffic"] = redeploy_previous(settings, name, reason)
        if not ok:
            return result
    elif settings.router:
        router = make_router(settings.router)
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
    move = AliasMove(name, PRODUCTION, "rollback")
    try:
        move_back(client, move, expected=observed, reason=reason)
    except Refused as refusal:
        result["registry"] = f"not rolled back: {refusal.message}"
        return result
    result["registry"] = f"`{name}@{PRODUCTION}`: {move.from_version} → {move.version}"
    result["to_version"] = move.version
    result["event"] = move.event
    client.set_model_version_tag(name, observed, TAG_ROLLED_BACK, json.dumps({"at": now(), "reason": reason}))
    result["ok"] = True
    return result


def redeploy_previous(settings: Settings, name: str, reason: str) -> tuple[bool, str]:
    """After a handoff the stable server serves the degraded version: canary-shift's mode rollback
    puts @previous-production back on it (canary, switch, stable, back), through its command line
    so that the rollback is the very one an operator runs. Its annotations become lines of this log;
    monitor's own error says what happened."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlcicd-rollback-") as tmp:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("INPUT_")
        }  # monitor's inputs are not canary-shift's
        env.update(
            GITHUB_OUTPUT=os.path.join(tmp, "output"), GITHUB_STEP_SUMMARY=os.path.join(tmp, "summary")
        )
        report = os.path.join(tmp, "report.json")
        args = ["--mode", "rollback", "--model-name", name, "--router", json.dumps(settings.router)]
        args += ["--deploy-command", settings.deploy_command, "--reason", reason, "--report", report]
        if settings.config:
            args += ["--config", settings.config]
        proc = subprocess.run(
            [sys.executable, "-m", "mlcicd", "canary-shift", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def github_api(settings: Settings) -> Any:
    from mlcicd.github_api import GitHubApi, repository_from_env, token_from_env

    try:
        repository = repository_from_env(settings.repository)
    except ValueError as exc:
        raise UsageError("invalid value for repository", f"{exc}; set `repository`.") from None
    token = token_from_env()
    if not token:
        raise UsageError(
            "no GitHub token",
            "retrain-workflow and issue call the GitHub API: set `MLCICD_GITHUB_TOKEN: ${{ github.token }}` "
            "in the step's env "
            "(the job needs `actions: write` to dispatch, `issues: write` for the issue).",
        )
    return GitHubApi(repository, token)


def dispatch_retrain(api: Any, settings: Settings, why: str) -> str:
    from mlcicd.github_api import GitHubApiError

    ref = settings.retrain_ref or os.environ.get("GITHUB_REF_NAME", "") or "main"
    try:
        api.dispatch_workflow(settings.retrain_workflow, ref, {"retrain": "true"})
    except GitHubApiError as exc:
        hint = " The job's token needs `permissions: actions: write`." if exc.forbidden else ""
        if exc.status == 422:
            hint = f" `{settings.retrain_workflow}` must have `on: workflow_dispatch` with a `retrain` input."
        return f"FAILED: {exc.message}.{hint}"
    return f"dispatched `{settings.retrain_workflow}` on `{ref}` with retrain=true ({why})"


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
