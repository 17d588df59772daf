"""Every run in the JSON layout of marl-eval (InstaDeep's ``id-marl-eval``, Gorsane et al.,
NeurIPS 2022), so our results load in the tools other MARL papers use:

    {environment: {task: {algorithm: {"seed_<k>": {"step_<i>": {"step_count": int,
                                                                "return": [...], "win_rate": [...]},
                                                   "absolute_metrics": {"return": [...], ...}}}}}}

marl-eval compares algorithms per environment and needs every algorithm on every task of one
environment with the same seeds and logging steps. A figure is exactly such a block, so each
figure of params.yaml is one environment (its panels the tasks, its curves the algorithms, named
by their legend labels); runs that no figure draws go under ``unplotted``, by task and algorithm
key. A logged step holds the learning-curve point (the mean of the profile's ``curve_episodes``
deterministic episodes: one element, as marl-eval allows for a value computed over episodes);
``absolute_metrics`` holds the final evaluation's episode returns of the headline mode.
"""

from __future__ import annotations

import pandas as pd

from pipeline.design.params import run_of

UNPLOTTED = "unplotted"


def seed_block(curves: pd.DataFrame, evaluation: dict, seed: int) -> dict:
    """One seed of one run: its learning-curve points and its absolute metrics."""
    block = {}
    rows = curves[curves["seed"] == seed].sort_values("step")
    for i, (step, episode_return, win_rate) in enumerate(zip(rows["step"], rows["return"], rows["win_rate"])):
        point = {"step_count": int(step), "return": [float(episode_return)]}
        if pd.notna(win_rate):
            point["win_rate"] = [float(win_rate)]
        block[f"step_{i}"] = point
    final = evaluation["modes"][evaluation["headline_mode"]]["per_seed"][str(seed)]
    absolute = {"return": [float(r) for r in final["returns"]]}
    if "win_rate" in final:
        absolute["win_rate"] = [float(final["win_rate"])]
    block["absolute_metrics"] = absolute
    return block


def run_block(curves: pd.DataFrame, evaluation: dict) -> dict:
    return {f"seed_{s}": seed_block(curves, evaluation, s) for s in sorted(curves["seed"].unique())}


def export(figures: dict, runs: dict, data: dict[str, tuple[pd.DataFrame, dict]]) -> dict:
    """The marl-eval document from ``data``: run name -> (curves.csv, eval.json) of each run."""
    document, plotted = {}, set()
    for name, figure in figures.items():
        environment = document.setdefault(name, {})
        for panel in figure["panels"].values():
            task = environment.setdefault(panel["task"], {})
            for label, curve in figure["curves"].items():
                run = run_of(curve["algorithm"], panel["task"])
                task[label] = run_block(*data[run])
                plotted.add(run)
    for run in runs.values():
        if run.name not in plotted:
            task = document.setdefault(UNPLOTTED, {}).setdefault(run.task, {})
            task[run.algorithm] = run_block(*data[run.name])
    return document
