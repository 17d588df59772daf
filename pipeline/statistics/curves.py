"""A run's learning curve summed up over its seeds, and measured per seed."""

from __future__ import annotations

import pandas as pd

from pipeline.statistics.intervals import mean_ci95


def first_reach(curve: pd.DataFrame, threshold: float) -> pd.Series:
    """Per seed of one run's curve: the first step whose return is >= ``threshold`` (NaN where
    the seed never gets there). Unsmoothed: pipeline/analyses/iac/steps_saved.py, note (a), says why."""
    reached = curve[curve["return"] >= threshold]  # a NaN return never reaches
    first = reached.groupby("seed")["step"].min()
    return first.reindex(sorted(curve["seed"].unique())).astype(float)


def curve_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Per step: mean return and its 95% CI over seeds, and the same for the win rate on
    tasks that report wins (empty elsewhere)."""
    rows = []
    for step, group in curves.groupby("step", sort=True):
        mean, low, high = mean_ci95(group["return"])
        row = {"step": step, "mean_return": mean, "ci95_low": low, "ci95_high": high}
        wins = group["win_rate"].dropna()
        win = mean_ci95(wins) if len(wins) else (float("nan"),) * 3
        row.update(mean_win_rate=win[0], win_ci95_low=win[1], win_ci95_high=win[2])
        rows.append({**row, "seeds": len(group)})
    return pd.DataFrame(rows)
