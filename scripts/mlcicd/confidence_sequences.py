"""Confidence sequences for a Bernoulli share: the one-sided beta-binomial mixture of Howard, Ramdas,
McAuliffe and Sekhon (2021), ported from confseq's `BetaBinomialMixture` (scipy only). The bounds hold
at every sample size at once, so the sequential judge (mlcicd.sequential) may read them at every poll."""

from __future__ import annotations

import functools
import math
from typing import Any

T_OPT = 1000.0
"""Requests at which the bounds are tightest (the mixture's tuning, `t_opt` in confseq): a step's
typical canary sample. Any value keeps the guarantee; it only moves where the bound is sharpest."""
ALPHA_OPT = 0.05
"""confseq's default tuning level for the mixture's width; as T_OPT, a shape choice, not the guarantee."""


# --- the beta-binomial mixture (Howard et al. 2021; confseq's BetaBinomialMixture) ---------------------


def _best_rho(v: float, alpha: float, one_sided: bool) -> float:
    """The mixture's precision that makes the boundary tightest at intrinsic time v (confseq's
    TwoSidedNormalMixture::best_rho, the tuning rule of Howard et al. 2021); one-sided uses the rule at
    2·alpha."""
    a = 2 * alpha if one_sided else alpha
    return v / (2 * math.log(1 / a) + math.log(1 + 2 * math.log(1 / a)))


def beta_binomial_log_mixture(
    s: float, v: float, v_opt: float, g: float, h: float, alpha_opt: float = ALPHA_OPT, one_sided: bool = True
) -> float:
    """log of the beta-binomial mixture supermartingale at centred sum `s` and intrinsic time `v` for
    observations in
    [−g, h] (a Bernoulli(p) centred at p: g = p, h = 1 − p, v = p(1 − p)·n). Ville: P(ever ≥ log(1/alpha)) ≤
    alpha."""
    from scipy.special import betainc

    def betaln(
        a: float, b: float
    ) -> float:  # math.lgamma: a scalar call, several times faster than scipy's ufunc
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    rho = _best_rho(v_opt, alpha_opt, one_sided)
    r = max(rho - g * h, 1e-3 * g * h)
    x = h / (g + h) if one_sided else 1.0

    def log_incomplete_beta(a: float, b: float) -> float:
        if x == 1.0:
            return betaln(a, b)
        value = float(betainc(a, b, x))
        return (math.log(value) if value > 0 else -math.inf) + betaln(a, b)

    normaliser = log_incomplete_beta(r / (g * (g + h)), r / (h * (g + h)))
    return (
        v / (g * h) * math.log(g + h)
        - (v + h * s) / (h * (g + h)) * math.log(g)
        - (v - g * s) / (g * (g + h)) * math.log(h)
        + log_incomplete_beta((r + v - g * s) / (g * (g + h)), (r + v + h * s) / (h * (g + h)))
        - normaliser
    )


def _bernoulli_log_mixture(
    successes: float, trials: float, p: float, t_opt: float, alpha_opt: float, one_sided: bool
) -> float:
    """The mixture for H0 'the true share is p' after `successes` of `trials` (confseq's
    bernoulli_confidence_interval)."""
    return beta_binomial_log_mixture(
        (successes / trials - p) * trials,
        p * (1 - p) * trials,
        p * (1 - p) * t_opt,
        p,
        1 - p,
        alpha_opt,
        one_sided,
    )


def _bisect(f: Any, lo: float, hi: float) -> float:
    """The root of f between lo (f > 0) and hi (f < 0), to 1e-7 (a share: finer than any decision needs)."""
    from scipy.optimize import brentq

    return float(brentq(f, lo, hi, xtol=1e-7, rtol=1e-5))


@functools.lru_cache(
    maxsize=65536
)  # a poll's stable bound is often the last poll's; the benchmark repeats many
def lower_bound(
    successes: float,
    trials: float,
    alpha: float,
    t_opt: float = T_OPT,
    alpha_opt: float = ALPHA_OPT,
    one_sided: bool = True,
) -> float:
    """An anytime-valid lower confidence bound for a share: P(the true share is ever below it) ≤ alpha.
    `successes` may be fractional (Prometheus extrapolates increase()); 0 when there is no evidence."""
    if trials <= 0:
        return 0.0
    successes = min(max(successes, 0.0), trials)
    estimate = successes / trials
    if estimate <= 0:
        return 0.0
    threshold = math.log(1 / alpha)

    def excess(p: float) -> float:
        return _bernoulli_log_mixture(successes, trials, p, t_opt, alpha_opt, one_sided) - threshold

    if estimate >= 1.0:  # all successes: the mixture at p → 1 is still finite; search below
        estimate = 1.0 - 1e-12
    if excess(estimate) >= 0:
        return estimate
    # A bracket from the normal approximation saves most of the root search (the benchmark calls this a lot);
    # where it does not hold, the search starts from 0.
    guess = estimate - 2 * math.sqrt(estimate * (1 - estimate) * 2 * (threshold + 3) / trials) - 2 / trials
    lo = guess if guess > 1e-12 and excess(guess) > 0 else 1e-12
    if lo == 1e-12 and excess(lo) <= 0:
        return 0.0
    return _bisect(excess, lo, estimate)


def upper_bound(
    successes: float,
    trials: float,
    alpha: float,
    t_opt: float = T_OPT,
    alpha_opt: float = ALPHA_OPT,
    one_sided: bool = True,
) -> float:
    """An anytime-valid upper confidence bound for a share: the failures' share's lower bound, mirrored."""
    if trials <= 0:
        return 1.0
    return 1.0 - lower_bound(
        trials - min(max(successes, 0.0), trials), trials, alpha, t_opt, alpha_opt, one_sided
    )


def confidence_interval(
    successes: float, trials: float, alpha: float, t_opt: float, alpha_opt: float = ALPHA_OPT
) -> tuple[float, float]:
    """The two-sided confidence sequence of confseq's bernoulli_confidence_interval: covers the share at every
    number of trials at once with probability ≥ 1 − alpha."""
    return (
        lower_bound(successes, trials, alpha, t_opt, alpha_opt, one_sided=False),
        upper_bound(successes, trials, alpha, t_opt, alpha_opt, one_sided=False),
    )
