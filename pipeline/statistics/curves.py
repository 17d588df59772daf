"""Measures of a learning curve per seed."""

from __future__ import annotations

import pandas as pd


def first_reach(curve: pd.DataFrame, threshold: float) -> pd.Series:
    """Per seed of one run's curve: the first step whose return is >= ``threshold`` (NaN where
    the seed never gets there). Unsmoothed: pipeline/analyses/iac/steps_saved.py, note (a), says why."""
    reached = curve[curve["return"] >= threshold]  # a NaN return never reaches
    first = reached.groupby("seed")["step"].min()
    return first.reindex(sorted(curve["seed"].unique())).astype(float)
