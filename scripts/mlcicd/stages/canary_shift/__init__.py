"""canary-shift: move traffic to a new model step by step, judge each step, roll back by itself.

At each step the router gets the canary's share and is read back; after `interval` the metrics
of both variants over the step are judged (absolute limits, canary vs stable, or both). A pass
moves on; a failure, or too many inconclusive checks in a row, counts toward `failure-limit`,
and reaching it rolls back (canary 0 %, verified) or freezes the weight. The last step (100 %)
is the switch. A cancelled job (SIGINT/SIGTERM) restores stable before it exits, and so does
an unexpected error: nothing is left half-shifted without a loud message saying so.

State is recorded on the model version as tags (`mlcicd.canary.state`, `.weight`, `.updated`),
so a later job can see what happened; `mode: restore` puts all traffic back on stable.
"""

from __future__ import annotations

from typing import Any

from mlcicd.config import Option, Stage, boolean, choice, duration, number, text, whole_number
from mlcicd.judge import JUDGES
from mlcicd.metric_sources import METRICS_EXAMPLE, metrics_spec
from mlcicd.registry import version_number
from mlcicd.report import report_option
from mlcicd.routers import ROUTER_EXAMPLE, router_spec

from .plan import ABORTED, check_pairing, make_plan, per_test_alpha, steps_list
from .settings import DEFAULT_STEPS, MODES, NAME, STRATEGIES, PlanOptions, Settings

__all__ = [
    "ABORTED",
    "DEFAULT_STEPS",
    "NAME",
    "OPTIONS",
    "STAGE",
    "PlanOptions",
    "Settings",
    "check_pairing",
    "make_plan",
    "per_test_alpha",
    "run",
    "steps_list",
]

OPTIONS = (
    Option(
        "strategy",
        choice(*STRATEGIES),
        "canary",
        "`canary` (the `steps`), `linear` (`step-weight` up to `max-weight`), `blue-green` (one warm-up "
        "share, then 100) or `shadow` (mirror, compare, then 100; http router only)",
        "linear",
    ),
    Option(
        "steps",
        steps_list,
        (),
        "canary weights in whole percent, increasing; 100 is added when missing",
        "10,50,100",
        shown_default="`5,25,50,100`",
    ),
    Option(
        "step-weight",
        whole_number(maximum=100),
        0,
        "linear steps of this many percent instead of `steps`; 10 with strategy `linear`",
        "10",
        shown_default="`0` (use `steps`)",
    ),
    Option(
        "max-weight",
        whole_number(minimum=1, maximum=100),
        50,
        "with `step-weight`: the last step before the switch to 100",
        "60",
    ),
    Option(
        "interval",
        duration,
        300.0,
        "time between checks, also the analysis window of a check (`250ms`, `30s`, `5m`, `1h`, or seconds)",
        "30s",
        shown_default="`5m`",
    ),
    Option(
        "min-requests",
        whole_number(),
        100,
        "requests a variant must serve in a window before it is judged; fewer is inconclusive (wait)",
        "500",
    ),
    Option(
        "max-error-rate",
        number(minimum=0, maximum=1),
        0.01,
        "threshold judge: highest canary error rate (`0.01` = 1 %)",
        "0.02",
    ),
    Option(
        "max-latency-p99-ms",
        number(minimum=0),
        150.0,
        "threshold judge: highest canary p99 latency in milliseconds; `0` = no latency limit",
        "250",
        aliases=("max-latency-p99",),
    ),
    Option(
        "judge",
        choice(*JUDGES),
        "both",
        "`threshold` (absolute limits), `statistical` (canary vs stable over the same window), `both`, or "
        "`sequential` (canary vs stable at every poll, decides early)",
        "sequential",
    ),
    Option(
        "poll",
        duration,
        15.0,
        "sequential judge: how often metrics are read and judged; `interval` is then the longest a step may "
        "take",
        "10s",
        shown_default="`15s`",
    ),
    Option(
        "alpha",
        number(positive=True, maximum=0.5),
        0.01,
        "the chance of rolling back a healthy canary over the whole rollout, split evenly over its tests "
        "(both judges)",
        "0.001",
    ),
    Option(
        "error-rate-tolerance",
        number(minimum=0, maximum=1),
        0.005,
        "statistical judge: how much worse, in absolute terms, the canary's error rate may be than stable's "
        "(`0.005` = half a point)",
        "0.01",
    ),
    Option(
        "latency-tolerance",
        number(minimum=0),
        0.2,
        "statistical judge: how much higher, relatively, the canary's p99 may be than stable's "
        "(`0.2` = 20 %)",
        "0.5",
    ),
    Option("failure-limit", whole_number(minimum=1), 1, "failed checks before `on-failure` happens", "3"),
    Option(
        "max-inconclusive",
        whole_number(minimum=1),
        3,
        "inconclusive checks in a row (too little traffic, metrics source down or empty) that count as one "
        "failure",
        "5",
    ),
    Option(
        "on-failure",
        choice("rollback", "freeze"),
        "rollback",
        "`rollback` (canary 0 %, verified) or `freeze` (keep the weight for a human to look; exit 1)",
        "freeze",
    ),
    Option(
        "router",
        router_spec,
        {},
        "the traffic router, a YAML mapping: `{type: haproxy, address: 127.0.0.1:9999, backend: model, "
        "stable: stable, canary: canary}` or `{type: http, address: https://lb.internal, route: churn}` "
        ", or on Kubernetes `{type: gateway-api|istio|kserve, namespace: ml, name: churn}` (see Routers "
        "and Kubernetes in the canary-shift docs). Token for the http router: env `MLCICD_ROUTER_TOKEN`",
        ROUTER_EXAMPLE,
        shown_default="none (required)",
    ),
    Option(
        "metrics",
        metrics_spec,
        {},
        "the metrics source, a YAML mapping: `{type: prometheus, address: http://prometheus:9090}` "
        "(optional `queries`) or `{type: http, address: https://metrics.internal/canary}`, with optional "
        "`checks`: business metrics, output drift and shadow answers judged per variant (see Metrics and "
        "Custom checks in the canary-shift docs). Token: env `MLCICD_METRICS_TOKEN`",
        METRICS_EXAMPLE,
        shown_default="none (required)",
    ),
    Option(
        "model-name",
        text,
        "",
        "registered model being rolled out; with `version`, the state is tagged on that version "
        "(`mlcicd.canary.*`)",
        "churn",
    ),
    Option("version", version_number, "", "the model version behind the canary", "7"),
    Option(
        "deploy-command",
        text,
        "",
        "shell command that puts the version on a server, run with `MODEL_URI`, `MODEL_NAME`, "
        "`MODEL_VERSION`, `MODEL_GIT_SHA` (the training commit), `MODEL_TAGS` (the version's tags as JSON) "
        "and `DEPLOY_TARGET` (`canary` before traffic moves, `stable` at the handoff after "
        "the last judged step). Empty: you deploy the canary yourself, and it keeps 100 % at the end",
        "./deploy.sh",
    ),
    Option(
        "deploy-timeout",
        duration,
        900.0,
        "the longest one run of `deploy-command` may take",
        "30m",
        shown_default="`15m`",
    ),
    Option(
        "mode",
        choice(*MODES),
        "shift",
        "`shift` runs the rollout; `restore` puts all traffic back on stable; `abort` stops a running or "
        "frozen rollout; `rollback` puts `@previous-production` on the stable server (needs "
        "`deploy-command`)",
        "restore",
    ),
    Option(
        "force",
        boolean,
        False,
        "roll out a version whose check-gates verdict is missing or failed; needs `reason`, recorded in the "
        "history",
        "true",
    ),
    Option(
        "reason",
        text,
        "",
        "why; required with `force`, and recorded in the history with modes `restore`, `abort` and "
        "`rollback` too",
        "INC-123 hotfix",
    ),
    Option(
        "dry-run",
        boolean,
        False,
        "check the router, the metrics source, the gate verdict and the plan; change nothing",
        "true",
    ),
    report_option(NAME),
)


def run(values: dict[str, Any]) -> int:
    from mlcicd.config import build_settings
    from mlcicd.outcome import publish

    from .execute import execute

    return publish(execute(build_settings(Settings, values)))


STAGE = Stage(
    name=NAME,
    summary="shift traffic to a canary step by step, judge each step on live metrics, roll back on failure",
    options=OPTIONS,
    run=run,
    outputs=(
        (
            "result",
            "promoted, rolled-back, frozen, aborted, refused, deploy-failed or handoff-failed (dry-run for a "
            "dry run; "
            "empty when the traffic state is unknown)",
        ),
        ("final-weight", "the canary's last verified share of traffic in percent"),
        ("version", "the model version rolled out (with mode rollback: the one put back)"),
        ("traffic-changed", "true once the rollout changed a weight"),
        ("report", "path of the JSON report"),
    ),
)
