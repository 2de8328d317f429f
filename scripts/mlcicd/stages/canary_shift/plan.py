"""canary-shift's decisions: the plan, the alpha per test, which option combinations cannot work, and how
a result ends the step. Pure functions: no router, no metrics, no registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlcicd.errors import CHECK_FAILED, PASSED, UsageError
from mlcicd.routers import Weights

from .settings import DEFAULT_STEPS, LINEAR_STEP, PlanOptions, Settings

ABORTED = "aborted"


def steps_list(value: Any) -> tuple[int, ...]:
    """`5,25,50,100` or a YAML list → whole percentages, strictly increasing, within 1..100."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    items = list(value) if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
    steps = []
    for item in items:
        text_item = str(item).strip().rstrip("%")
        if isinstance(item, bool) or not text_item.isdigit():
            raise ValueError(f"{item!r} is not a whole percentage (steps look like 5,25,50,100)")
        steps.append(int(text_item))
    if any(not 1 <= s <= 100 for s in steps):
        raise ValueError(f"{','.join(map(str, steps))}: every step must be between 1 and 100")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"{','.join(map(str, steps))}: steps must increase")
    return tuple(steps)


def make_plan(options: PlanOptions) -> list[Weights]:
    """The weights the rollout goes through; the last is always the switch to 100 %."""
    strategy, steps, step_weight = options.strategy, options.steps, options.step_weight
    if steps and step_weight:
        raise UsageError("conflicting options", "give `steps` or `step-weight` (+ `max-weight`), not both.")
    if strategy == "shadow":
        if steps or step_weight:
            raise UsageError(
                "option not used by shadow",
                "shadow mirrors all traffic to the canary, then switches: drop `steps`/`step-weight`.",
            )
        return [Weights(0, shadow=100), Weights(100)]
    if strategy == "blue-green":
        warm_up = steps[0] if steps else (step_weight or DEFAULT_STEPS[0])
        if len(steps) > 1:
            raise UsageError(
                "option not used by blue-green",
                "blue-green takes one warm-up share, e.g. `steps: 5`, then switches to 100.",
            )
        if warm_up >= 100:
            # A warm-up of 100 % would be the switch itself, with nothing judged before it.
            raise UsageError(
                "blue-green warm-up of 100 %",
                "the warm-up share comes before the switch to 100: give one below 100, e.g. `steps: 5`.",
            )
        return [Weights(warm_up), Weights(100)]
    if strategy == "linear" or step_weight:
        if steps:
            raise UsageError(
                "option not used by linear",
                "linear steps by `step-weight` up to `max-weight`; for explicit `steps` use strategy canary.",
            )
        size = step_weight or LINEAR_STEP
        top = options.max_weight
        if size > top:
            raise UsageError(
                "step-weight above max-weight", f"step-weight {size:g} is above max-weight {top:g}."
            )
        weights = list(range(size, top + 1, size))
    else:
        weights = list(steps or DEFAULT_STEPS)
    if weights[-1] != 100:
        weights.append(100)
    return [Weights(w) for w in weights]


def per_test_alpha(alpha: float, plan: Sequence[Weights], judge_kind: str, extra_tests: int = 0) -> float:
    """`alpha` is the false-rollback budget of the whole rollout, not of one test: a healthy canary
    meets every test at every judged step, and 0.01 per test over 3 steps × 4 tests would roll back
    about one in twenty. Bonferroni: each test runs at alpha / (judged steps × tests per check)."""
    judged = max(1, sum(1 for w in plan if w.canary < 100))
    # error rate and latency, per judge; sequential: its bounds, and the fixed-sample tests at the end of an
    # interval
    tests = 2 * (2 if judge_kind in ("both", "sequential") else 1) + extra_tests  # + the custom checks' tests
    return alpha / (judged * tests)


def check_pairing(settings: Settings, deploys: bool = False, kind: str = "") -> None:
    """Option combinations that cannot work, before anything is read or changed. `deploys`: the router
    (of `kind`) puts the version on its servers itself (kserve)."""
    mode, name = settings.mode, settings.model_name
    if deploys and settings.deploy_command:
        raise UsageError(
            "deploy-command with a router that deploys",
            f"drop `deploy-command`: the {kind} router deploys the version itself.",
        )
    if deploys and mode == "shift" and not name:
        raise UsageError(
            f"the {kind} router needs the model", "give `model-name` and `version`: it deploys that version."
        )
    if settings.version and not name:
        raise UsageError(
            "version without model-name",
            "give `model-name` too: `version` is a version of that registered model.",
        )
    if mode == "shift" and bool(name) != bool(settings.version):
        raise UsageError(
            "model-name and version go together",
            "give both `model-name` and `version` (the canary's model), or neither.",
        )
    if mode in ("abort", "rollback") and not name:
        raise UsageError(
            f"{mode} needs model-name",
            f"give `model-name`: mode {mode} reads the model's rollout record in the registry.",
        )
    if settings.deploy_command and mode == "shift" and not name:
        raise UsageError(
            "deploy-command needs the model",
            "give `model-name` and `version`: the deploy command gets MODEL_URI from them.",
        )
    if mode == "rollback" and not settings.deploy_command and not deploys:
        raise UsageError(
            "rollback needs deploy-command",
            "set `deploy-command`: a rollback puts @previous-production on the canary, then on the stable "
            "server.",
        )
    if settings.force and not settings.reason.strip():
        raise UsageError(
            "force without a reason",
            "give `reason` with `force: true`; it is recorded in the model's history.",
        )


SUCCESS = {
    "shift": ("promoted", "dry-run"),
    "restore": ("rolled-back", "dry-run"),
    "abort": (ABORTED, "dry-run"),
    "rollback": ("rolled-back", "dry-run"),
}
"""The results each mode exits 0 with; every other result is exit 1 with one annotation."""
FAILURE_TITLES = {
    "rolled-back": "rolled back",
    "refused": "refused",
    "deploy-failed": "deploy command failed",
    "handoff-failed": "handoff to stable failed",
    ABORTED: "aborted",
}


@dataclass(frozen=True)
class Ending:
    exit_code: int
    title: str | None
    """The annotation's title; None: no error annotation."""
    message: str


def ending(result: str, mode: str, message: str, where: str, report_path: str) -> Ending:
    """Exit code and the one annotation for a rollout's result; `where` names the router (unknown state)."""
    if result in SUCCESS[mode]:
        return Ending(PASSED, None, message)
    if result in FAILURE_TITLES:
        return Ending(CHECK_FAILED, FAILURE_TITLES[result], f"{message} Report: {report_path}.")
    if result == "frozen":
        return Ending(
            CHECK_FAILED,
            "frozen",
            f"{message} Look at the canary, then rerun with `mode: restore` to roll back. Report: "
            f"{report_path}.",
        )
    return Ending(
        CHECK_FAILED,
        "traffic state unknown",
        f"{message} Traffic may still reach the canary ({where}): once the router answers, "
        f"rerun with `mode: restore`. Report: {report_path}.",
    )
