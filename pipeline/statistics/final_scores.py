"""Final performance of runs: the mean and the interquartile mean (IQM) of the per-seed final
scores with 95% bootstrap intervals, and the probability of improvement of one run over
another (Agarwal et al., "Deep RL at the edge of the statistical precipice", NeurIPS 2021).

The statistics are rliable's own functions (``rliable.metrics``). The interval is the
percentile bootstrap over seeds from ``scipy.stats.bootstrap``, which for one task is exactly
rliable's stratified bootstrap: rliable 1.2.0 (the latest release) draws its bootstrap from
``arch`` < 8, arch 7.x cannot be imported beside pandas 3 (pandas changed ``deprecate_kwarg``)
and arch 8 no longer takes the ``random_state`` rliable passes, so ``rliable.library`` cannot
run in this environment. tests/test_final_scores.py checks the interval against a direct
bootstrap. The generator is seeded from params.yaml (``report.bootstrap_seed``): the same
results give the same intervals.
"""

from __future__ import annotations

import numpy as np
from rliable import metrics
from scipy import stats

STATISTICS = {"mean": metrics.aggregate_mean, "iqm": metrics.aggregate_iqm}


def _scores(values) -> np.ndarray:
    """rliable's layout: (runs x tasks), here (seeds x 1)."""
    scores = np.asarray(values, dtype=float).reshape(-1, 1)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise ValueError(f"final scores must be finite and non-empty, got {list(np.ravel(values))!r}")
    return scores


def interval_estimates(values, reps: int, seed: int) -> dict[str, float]:
    """{mean, mean_ci95_low, mean_ci95_high, iqm, iqm_ci95_low, iqm_ci95_high} of one run's
    per-seed scores. One seed has no interval (NaN); seeds that all score alike have a
    zero-width one."""
    scores = _scores(values)
    out = {}
    for name, statistic in STATISTICS.items():
        point = float(statistic(scores))
        if len(scores) < 2:
            low = high = np.nan
        elif np.ptp(scores) == 0:
            low = high = point
        else:
            result = stats.bootstrap(
                (scores[:, 0],),
                lambda x, f=statistic: f(x.reshape(-1, 1)),
                vectorized=False,
                n_resamples=reps,
                confidence_level=0.95,
                method="percentile",
                rng=np.random.default_rng(seed),
            )
            low, high = result.confidence_interval
        out.update({name: point, f"{name}_ci95_low": float(low), f"{name}_ci95_high": float(high)})
    return out


def iqm(values) -> float:
    return float(metrics.aggregate_iqm(_scores(values)))


def probability_of_improvement(x, y) -> float:
    """P(X > Y) on one task: the Mann-Whitney U statistic over every pair of seeds, ties
    counting one half (rliable)."""
    return float(metrics.probability_of_improvement(_scores(x), _scores(y)))
