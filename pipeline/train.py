"""Stage ``train@<run>``: every seed of one run trained together in one process, as a Sacred run.

Writes ``results/runs/<run>/{curves.csv, checkpoints/seed<k>.pt, sacred/train/}``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

import envs
from algorithms import FAMILIES
from algorithms.seed_slices import seed_slice
from pipeline import layout
from pipeline.params import Run, load_runs, run_from_argv
from pipeline.rollout import train_off_policy
from pipeline.sacred_run import Experiment, observe
from pipeline.staging import publish, staging

OUTPUTS = ("curves.csv", "checkpoints", "sacred")


def run_config(run: Run) -> dict:
    """The run as Sacred records it (config.json)."""
    return {
        "run": run.name,
        "algorithm": run.algorithm,
        "family": run.family,
        "settings": asdict(run.settings),
        "task": run.task,
        "task_id": run.task_id,
        "task_kwargs": run.task_kwargs,
        "seeds": list(run.seeds),
        "budget": asdict(run.budget),
        "curve_env_seeds": run.evaluation.env_seeds(run.budget.curve_episodes),
        # Sacred seeds Python's, NumPy's and torch's global generators with this; the harness
        # draws nothing from them (every seed owns its streams), so it is fixed for the record.
        "seed": run.seeds[0],
    }


def train(run: Run, folder: Path, log_scalar=None) -> None:
    """Train all seeds of ``run``; write curves.csv and one checkpoint per seed into folder."""
    S = len(run.seeds)
    env = envs.make_batched(run.task_id, S, **run.task_kwargs)
    curve_seeds = run.evaluation.env_seeds(run.budget.curve_episodes)
    curve_env = envs.make_batched(run.task_id, S * len(curve_seeds), **run.task_kwargs)
    algo = FAMILIES[run.family][0](env.spec, run.seeds, run.settings)
    rows = []

    def on_curve(step, returns, losses):
        for k, seed in enumerate(run.seeds):
            rows.append((step, seed, float(returns[k])))
            if log_scalar:
                log_scalar(f"return.seed{seed}", float(returns[k]), step)
                for name, values in losses.items():
                    log_scalar(f"{name}.seed{seed}", float(values[k]), step)

    train_off_policy(algo, env, run.seeds, run.budget, curve_env, curve_seeds, on_curve)
    pd.DataFrame(rows, columns=["step", "seed", "return"]).to_csv(
        folder / "curves.csv", index=False
    )
    (folder / "checkpoints").mkdir()
    for k, seed in enumerate(run.seeds):
        torch.save(
            {
                "run": run.name,
                "seed": seed,
                "family": run.family,
                "settings": asdict(run.settings),
                "spec": asdict(env.spec),
                "parameters": seed_slice(algo, k),
            },
            folder / "checkpoints" / layout.checkpoint_name(seed),
        )


def main(argv: list[str] | None = None) -> None:
    _, runs = load_runs()
    run = run_from_argv(sys.argv[1:] if argv is None else argv, runs)
    with staging(f"{run.name}-train") as folder:
        ex = Experiment(f"train_{run.name}", base_dir=".", save_git_info=False)
        observe(ex, folder / "sacred")
        ex.add_config(run_config(run))

        @ex.main
        def train_run(_run):
            train(run, folder, _run.log_scalar)

        ex.run()
        for name in OUTPUTS:  # only after Sacred has written status COMPLETED
            publish(folder / name, layout.run_dir(run.name) / name)


if __name__ == "__main__":
    main()
