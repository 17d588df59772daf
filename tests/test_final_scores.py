"""Final-performance statistics: rliable's IQM and probability of improvement on hand-computed
cases, and the bootstrap interval against a direct bootstrap written out in the test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.statistics.final_scores import interval_estimates, iqm, probability_of_improvement

SAMPLE = [12.0, -3.0, 7.5, 30.0, 8.0, 9.5, 1.0]


def direct_bootstrap(values, statistic, reps: int, seed: int) -> tuple[float, float]:
    """Resample the seeds with replacement ``reps`` times; the 2.5th and 97.5th percentiles."""
    rng = np.random.default_rng(seed)
    x = np.asarray(values)
    draws = [statistic(x[rng.integers(0, len(x), len(x))]) for _ in range(reps)]
    return tuple(np.percentile(draws, [2.5, 97.5]))


def iqm_by_hand(x: np.ndarray) -> float:
    """The 25%-trimmed mean: drop floor(n/4) values at each end (scipy's trim_mean)."""
    cut = int(0.25 * len(x))
    kept = np.sort(x)[cut : len(x) - cut]
    return float(kept.mean())


def test_iqm_drops_the_lowest_and_highest_quarter():
    assert iqm(SAMPLE) == pytest.approx(iqm_by_hand(np.array(SAMPLE)))
    assert iqm([1, 2, 3, 4, 100, 0, 2]) == pytest.approx((1 + 2 + 2 + 3 + 4) / 5)


def test_probability_of_improvement_counts_pairs_and_half_ties():
    # x = 1 beats 0 and ties 1; x = 2 beats 0 and 1 and ties 2; x = 3 beats all three
    assert probability_of_improvement([1, 2, 3], [0, 2, 1]) == pytest.approx((1 + 0.5 + 2 + 0.5 + 3) / 9)
    assert probability_of_improvement([5, 5], [5, 5]) == 0.5


@pytest.mark.parametrize("name, statistic", [("mean", np.mean), ("iqm", iqm_by_hand)])
def test_the_interval_matches_a_direct_bootstrap(name, statistic):
    ours = interval_estimates(SAMPLE, reps=20000, seed=3)
    direct = direct_bootstrap(SAMPLE, statistic, reps=20000, seed=11)
    width = ours[f"{name}_ci95_high"] - ours[f"{name}_ci95_low"]
    assert ours[name] == pytest.approx(statistic(np.array(SAMPLE)))
    assert ours[f"{name}_ci95_low"] == pytest.approx(direct[0], abs=0.05 * width)
    assert ours[f"{name}_ci95_high"] == pytest.approx(direct[1], abs=0.05 * width)


def test_the_same_scores_and_seed_give_the_same_interval_and_one_seed_has_none():
    assert interval_estimates(SAMPLE, 500, 0) == interval_estimates(SAMPLE, 500, 0)
    one = interval_estimates([4.0], 500, 0)
    assert one["iqm"] == 4.0 and math.isnan(one["iqm_ci95_low"]) and math.isnan(one["mean_ci95_high"])
    alike = interval_estimates([2.0, 2.0, 2.0], 500, 0)
    assert (alike["mean_ci95_low"], alike["mean_ci95_high"]) == (2.0, 2.0)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="finite"):
        interval_estimates([1.0, float("nan")], 500, 0)
