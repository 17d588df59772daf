"""Stage ``train-<run>``: every seed of one run trained together in one process, as a Sacred run.

Writes ``results/runs/<run>/{curves.csv, checkpoints/seed<k>.pt, sacred/train/}``, and
``snapshots/step<T>/seed<k>.pt`` for the early policies a snapshot figure draws (Fig. 6).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

import envs
from pipeline import layout
from pipeline.build import build
from pipeline.loops import TooLarge, evaluate
from pipeline.loops import train as train_all_seeds
from pipeline.params import Run, load_runs, run_from_argv
from pipeline.sacred_run import Experiment, observe
from pipeline.staging import publish, staging

OUTPUTS = ("curves.csv", "checkpoints", "snapshots", "sacred")


def save_checkpoint(path: Path, run: Run, seed: int, spec, tensors: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "run": run.name,
            "seed": seed,
            "family": run.family,
            "settings": asdict(run.settings),
            "spec": asdict(spec),
            "tensors": tensors,
        },
        path,
    )


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


def train(run: Run, folder: Path, log_scalar=None) -> dict:
    """Train all seeds of ``run``; write curves.csv and one checkpoint per seed into folder.

    Returns what the Sacred run records as info (the storage and its size per seed)."""
    S = len(run.seeds)
    algo, env = build(run, S * run.settings.env_copies)
    curve_seeds = run.evaluation.env_seeds(run.budget.curve_episodes)
    curve_env = envs.make_batched(run.task_id, S * len(curve_seeds), **run.task_kwargs)
    headline = type(algo).execution_modes(run.settings)[0]
    rows = []

    def on_curve(points, losses):
        played = evaluate(algo, curve_env, run.seeds, curve_seeds, headline)
        returns = played.returns.mean(1)
        wins = played.won.mean(1) if env.spec.reports_wins else [float("nan")] * S
        for k, steps in points.items():
            seed = run.seeds[k]
            for step in set(steps) & set(run.snapshots):  # the policy that acted at that step
                path = folder / "snapshots" / f"step{step}" / layout.checkpoint_name(seed)
                save_checkpoint(path, run, seed, env.spec, algo.seed_state(k))
            for step in steps:
                rows.append((step, seed, float(returns[k]), float(wins[k])))
                if log_scalar:
                    log_scalar(f"return.seed{seed}", float(returns[k]), step)
                    if env.spec.reports_wins:
                        log_scalar(f"win_rate.seed{seed}", float(wins[k]), step)
            for name, value in losses[k].items():
                if log_scalar and value == value:  # NaN: no update since the last point
                    log_scalar(f"{name}.seed{seed}", value, steps[-1])

    record = train_all_seeds(algo, env, run.seeds, run.budget, on_curve)
    curves = pd.DataFrame(rows, columns=["step", "seed", "return", "win_rate"])
    curves.sort_values(["step", "seed"], kind="stable").to_csv(folder / "curves.csv", index=False)
    for k, seed in enumerate(run.seeds):
        path = folder / "checkpoints" / layout.checkpoint_name(seed)
        save_checkpoint(path, run, seed, env.spec, algo.seed_state(k))
    return record


def main(argv: list[str] | None = None) -> None:
    _, runs = load_runs()
    run = run_from_argv(sys.argv[1:] if argv is None else argv, runs)
    with staging(f"{run.name}-train") as folder:
        ex = Experiment(f"train_{run.name}", base_dir=".", save_git_info=False)
        observe(ex, folder / "sacred")
        ex.add_config(run_config(run))

        @ex.main
        def train_run(_run):
            _run.info.update(train(run, folder, _run.log_scalar))

        try:
            ex.run()
        except TooLarge as err:  # before any training: one line, as a params error
            raise SystemExit(f"train: {run.name}: {err}") from None
        for name in OUTPUTS:  # only after Sacred has written status COMPLETED
            if (folder / name).exists():  # snapshots only where params.yaml asks for them
                publish(folder / name, layout.run_dir(run.name) / name)


if __name__ == "__main__":
    main()
