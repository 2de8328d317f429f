#!/usr/bin/env python3
"""Significance gate of check-gates: how often is a candidate that is not better promoted?

    python benchmarks/significance_gate.py [--quick] [--seed N] [--json PATH]

Simulated paired predictions on one test set: a production model with accuracy 0.90 and a
candidate that is equal, slightly worse or truly better, their per-row correctness correlated.
Each repetition runs check-gates' own comparison path: `check_gates.metric_gates` (which runs the
paired test: McNemar for accuracy, the paired permutation test with 2,000 swaps for f1, and the gate
`<metric> vs baseline`), then `metrics.compare_to_baseline` with that p-value for the other gate
settings, exactly as metric_gates calls it. Promotion = the comparison gate passed.

`run(quick)` is imported by benchmarks/run.py; it returns {"title", "markdown", "results"}.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

import common
from common import pct, wilson

SEED = 20240613
TITLE = "Significance gate (check-gates)"
BASE_ACCURACY = 0.90
CORRELATION = 0.5  # correlation of the two models' per-row correctness
POSITIVE_SHARE = 0.3  # binary labels, 30 % positive
CASES = (  # name, candidate accuracy, is the candidate better?
    ("equal", 0.90, False),
    ("worse −0.5 pt", 0.895, False),
    ("better +1 pt", 0.91, True),
    ("better +2 pts", 0.92, True),
)
SIZES = (1_000, 10_000)
FULL_REPS = {("accuracy", 1_000): 1000, ("accuracy", 10_000): 1000, ("f1", 1_000): 200, ("f1", 10_000): 200}
# The better candidates carry no target (they show power), so they get fewer of the slow f1 repetitions on 10,000 rows;
# the not-better ones need many: with 40, which datasets chance drew decided the rate (4 of the first 40 equal pairs
# have McNemar p < 0.05 in the candidate's favour, 10 % where 2.5 % is expected).
BETTER_REPS = {("f1", 10_000): 40}
QUICK_REPS = {("accuracy", 1_000): 300, ("accuracy", 10_000): 300, ("f1", 1_000): 30}


def gate_settings(alpha: float) -> list[dict[str, Any]]:
    return [
        {"key": "min0", "label": "min-improvement 0", "min-improvement": 0.0, "require-significance": False},
        {
            "key": "min0+sig",
            "label": f"min-improvement 0 + require-significance (alpha {alpha:g})",
            "min-improvement": 0.0,
            "require-significance": True,
        },
        {
            "key": "min0.001",
            "label": "min-improvement 0.001",
            "min-improvement": 0.001,
            "require-significance": False,
        },
        {
            "key": "min0.001+sig",
            "label": f"min-improvement 0.001 + require-significance (alpha {alpha:g})",
            "min-improvement": 0.001,
            "require-significance": True,
        },
    ]


def stage_values() -> dict[str, Any]:
    """check-gates' option defaults (alpha 0.05, no absolute thresholds, ...)."""
    from mlcicd.stages.check_gates import OPTIONS

    return {o.name: o.default for o in OPTIONS}


def cell_probabilities(p_base: float, p_cand: float, rho: float) -> np.ndarray:
    """P(both right), P(only candidate right), P(only baseline right), P(both wrong)."""
    both = p_base * p_cand + rho * math.sqrt(p_base * (1 - p_base) * p_cand * (1 - p_cand))
    cand_only, base_only = p_cand - both, p_base - both
    cells = np.array([both, cand_only, base_only, 1 - both - cand_only - base_only])
    if np.any(cells < 0):
        raise ValueError(f"correlation {rho} impossible for accuracies {p_base}, {p_cand}")
    return cells


def draw(rng: np.random.Generator, n: int, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y, candidate prediction, baseline prediction (binary labels; a wrong prediction is the other label)."""
    y = (rng.random(n) < POSITIVE_SHARE).astype(np.int64)
    kind = np.searchsorted(np.cumsum(cells)[:-1], rng.random(n), side="right")
    cand_right = (kind == 0) | (kind == 1)
    base_right = (kind == 0) | (kind == 2)
    return y, np.where(cand_right, y, 1 - y), np.where(base_right, y, 1 - y)


def decide(
    values: dict[str, Any],
    primary: str,
    y: np.ndarray,
    cand_pred: np.ndarray,
    base_pred: np.ndarray,
    settings: list,
) -> dict:
    from mlcicd import gates as gate_rules
    from mlcicd import metrics
    from mlcicd.stages.check_gates.decide import metric_gates
    from mlcicd.stages.check_gates.settings import settings_from

    cand = {"scores": metrics.classification_metrics(y, cand_pred), "predicted": cand_pred, "proba": None}
    base = {"scores": metrics.classification_metrics(y, base_pred), "predicted": base_pred, "proba": None}
    first = {
        **values,
        "primary-metric": primary,
        "task": "classification",
        "min-improvement": settings[0]["min-improvement"],
        "require-significance": settings[0]["require-significance"],
    }
    gates, info = metric_gates(settings_from(first), cand, base, y)
    decisions = {settings[0]["key"]: gates[-1].passed}
    for s in settings[1:]:
        result = gate_rules.compare_to_baseline(
            primary,
            cand["scores"][primary],
            base["scores"][primary],
            min_improvement=s["min-improvement"],
            min_absolute_change=values["min-absolute-change"],
            p_value=info.get("p_value"),
            require_significance=s["require-significance"],
            alpha=values["alpha"],
        )
        decisions[s["key"]] = result.passed
    return {
        "decisions": decisions,
        "p_value": info.get("p_value"),
        "delta": cand["scores"][primary] - base["scores"][primary],
    }


def measure(quick: bool, seed: int) -> dict[str, Any]:
    values = stage_values()
    settings = gate_settings(values["alpha"])
    reps = QUICK_REPS if quick else FULL_REPS
    cells: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for (primary, n), n_reps in reps.items():
        t0 = time.perf_counter()
        for ci, (case, p_cand, better) in enumerate(CASES):
            probs = cell_probabilities(BASE_ACCURACY, p_cand, CORRELATION)
            outcomes = []
            case_reps = min(n_reps, BETTER_REPS.get((primary, n), n_reps)) if better and not quick else n_reps
            for rep in range(case_reps):
                # the same seed for accuracy and f1: both metrics judge the same simulated predictions
                rng = np.random.default_rng(np.random.SeedSequence([seed, n, ci, rep]))
                outcomes.append(decide(values, primary, *draw(rng, n, probs), settings))
            promoted = {s["key"]: sum(o["decisions"][s["key"]] for o in outcomes) for s in settings}
            cells[f"{primary}|{n}|{case}"] = {
                "metric": primary,
                "rows": n,
                "case": case,
                "candidate_accuracy": p_cand,
                "better": better,
                "reps": case_reps,
                "promoted": promoted,
                "rate": {k: v / case_reps for k, v in promoted.items()},
                "ci95": {k: list(wilson(v, case_reps)) for k, v in promoted.items()},
                "median_p_value": float(np.median([o["p_value"] for o in outcomes])),
                "mean_delta": float(np.mean([o["delta"] for o in outcomes])),
            }
        seconds[f"{primary}@{n}"] = time.perf_counter() - t0
    return {
        "seed": seed,
        "quick": quick,
        "alpha": values["alpha"],
        "base_accuracy": BASE_ACCURACY,
        "correlation": CORRELATION,
        "positive_share": POSITIVE_SHARE,
        "settings": [{k: v for k, v in s.items()} for s in settings],
        "reps": {f"{m}@{n}": r for (m, n), r in reps.items()},
        "cells": cells,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def verdict(cell: dict[str, Any], alpha: float) -> tuple[bool | None, str]:
    """Target (derived from the gate's purpose; the issue sets no number): with require-significance a
    candidate that is not better is promoted at most `alpha` of the time."""
    if cell["better"]:
        return None, "– (power, no target)"
    key = max(("min0+sig", "min0.001+sig"), key=lambda k: cell["rate"][k])
    worst = cell["rate"][key]
    lo, hi = cell["ci95"][key]
    met = worst <= alpha
    return (
        met,
        f"{'met' if met else 'MISSED'}: ≤ {alpha:g} with require-significance ({pct(worst)}, 95 % CI {100 * lo:.1f}–{100 * hi:.1f} %)",
    )


def summary_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One target per metric and test-set size: not-better candidates promoted at most alpha of the time with
    require-significance; the measured figure also gives the rate with min-improvement 0 alone."""
    alpha = results["alpha"]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for cell in results["cells"].values():
        if not cell["better"]:
            groups.setdefault((cell["metric"], cell["rows"]), []).append(cell)
    out = []
    for (metric, rows), cells in groups.items():
        parts = [
            f"{c['case']}: {pct(max(c['rate']['min0+sig'], c['rate']['min0.001+sig']))} "
            f"(min-improvement 0 alone: {pct(c['rate']['min0'])}, {c['reps']} reps)"
            for c in cells
        ]
        out.append(
            {
                "target": f"check-gates ({metric}, {rows:,} rows): a candidate that is not better is promoted ≤ {alpha:g} "
                "with require-significance",
                "measured": "; ".join(parts),
                "met": all(verdict(c, alpha)[0] for c in cells),
            }
        )
    return out


def render(results: dict[str, Any]) -> str:
    settings = results["settings"]
    alpha = results["alpha"]

    def reps_of(key: str) -> list[int]:
        return [c["reps"] for c in results["cells"].values() if f"{c['metric']}@{c['rows']}" == key]

    reps_text = ", ".join(
        f"{r} for {k.replace('@', ' on ')} rows"
        + (f" ({min(reps_of(k))} for the better candidates)" if min(reps_of(k)) < r else "")
        for k, r in results["reps"].items()
    )
    lines = [
        f"Binary labels ({results['positive_share']:.0%} positive) on one test set; the production model is right on each row with "
        f"probability {results['base_accuracy']:g}, the candidate with its own accuracy, and the two models' per-row correctness "
        f"has correlation {results['correlation']:g} (so an equal candidate makes different errors: about 9 % of rows are "
        "discordant). A wrong prediction is the other label. Each repetition runs `check_gates.metric_gates` "
        "(McNemar for accuracy; for f1 `metrics.paired_bootstrap`: a two-sided paired permutation test with 2,000 random swaps "
        "of the two models' predictions per row for the p-value, and 2,000 bootstrap resamples for the interval), then "
        f"`metrics.compare_to_baseline` with the same p-value for each gate setting, at check-gates' default alpha {alpha:g}. "
        f"Promotion = the `<metric> vs baseline` gate passed. Repetitions: {reps_text} (fewer for f1: "
        + ", ".join(
            f"{results['seconds'][k] / sum(reps_of(k)):.2f} s per comparison on {int(k.split('@')[1]):,} rows"
            for k, r in results["reps"].items()
            if k.startswith("f1@") and r
        )
        + f"); seed {results['seed']}.",
        "",
        "Cells: promotion rate (95 % Wilson interval). Target (the issue sets no number; derived from what the option promises): "
        "with require-significance, a candidate that is not better is promoted at most alpha of the time. McNemar's p-value is "
        "two-sided and the gate also requires a gain, so an equal candidate is expected near alpha/2; the same holds for the "
        "permutation test. (The p-value f1 used before, the share of bootstrap resamples in which the candidate was not better, "
        "is one-sided and centred on the observed gain instead of on 0: an equal candidate passed in 7.0 % of trials on 1,000 "
        "rows and 10.0 % on 10,000, docs/benchmarks.md of 2026-11-22.)",
        "",
        "| metric | rows | candidate | "
        + " | ".join(s["label"] for s in settings)
        + " | median p | Target |",
        "|---|---|---|" + "---|" * len(settings) + "---|---|",
    ]
    for cell in results["cells"].values():
        row = [cell["metric"], f"{cell['rows']:,}", f"{cell['case']} ({cell['candidate_accuracy']:g})"]
        for s in settings:
            lo, hi = cell["ci95"][s["key"]]
            row.append(f"{pct(cell['rate'][s['key']])} ({100 * lo:.1f}–{100 * hi:.1f})")
        row.append(f"{cell['median_p_value']:.2g}")
        row.append(verdict(cell, alpha)[1])
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "Run time: "
        + ", ".join(f"{k.replace('@', ' on ')} rows {v:.1f} s" for k, v in results["seconds"].items())
        + ".",
    ]
    return "\n".join(lines)


def run(quick: bool = False, seed: int = SEED) -> dict[str, Any]:
    results = measure(quick, seed)
    alpha = results["alpha"]
    for cell in results["cells"].values():
        cell["target_met"], cell["target_text"] = verdict(cell, alpha)
    results["targets"] = summary_targets(results)
    return {"title": TITLE, "markdown": render(results), "results": results}


def main() -> int:
    return common.main(
        run, __doc__, "accuracy on 1,000 and 10,000 rows (300 repetitions), f1 on 1,000 rows (30)", SEED
    )


if __name__ == "__main__":
    sys.exit(main())
