"""Stage ``evaluate@<run>``: the deterministic evaluation of every seed's final policy.

Each seed plays ``evaluation.episodes`` episodes on the fixed evaluation env seeds with its
mean action (VM3-AC §6.1). Runs with a latent z are evaluated in every ``latent_modes`` entry:
``zero`` (z = E[z] = 0, decentralised execution, the headline number) and ``sampled`` (a z
drawn each step and shared by the agents, as with a shared random generator; Table 1).
Writes ``results/runs/<run>/eval.json``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import torch

import envs
from algorithms import FAMILIES
from algorithms.seed_slices import load_seed_slices
from algorithms.seeding import SeedStreams
from pipeline import layout
from pipeline.params import Run, load_runs, run_from_argv
from pipeline.rollout import evaluate
from pipeline.staging import write_json
from pipeline.statistics import mean_ci95


def load_checkpoints(run: Run) -> list[dict]:
    """Every seed's checkpoint, or SystemExit naming the one that is missing or stale."""
    checkpoints = []
    for seed in run.seeds:
        path = layout.checkpoint(run.name, seed)
        if not path.exists():
            raise SystemExit(
                f"evaluate: {path} is missing: train the run first (dvc repro train@{run.name})"
            )
        ckpt = torch.load(path, weights_only=True)
        if ckpt["family"] != run.family or ckpt["settings"] != asdict(run.settings):
            raise SystemExit(
                f"evaluate: {path} was trained with other settings than params.yaml "
                f"says: retrain it (dvc repro train@{run.name})"
            )
        checkpoints.append(ckpt)
    return checkpoints


def evaluate_run(run: Run) -> dict:
    checkpoints = load_checkpoints(run)
    S, env_seeds = len(run.seeds), run.evaluation.env_seeds()
    env = envs.make_batched(run.task_id, S * len(env_seeds), **run.task_kwargs)
    algo = FAMILIES[run.family][0](env.spec, run.seeds, run.settings)
    load_seed_slices(algo, [c["parameters"] for c in checkpoints])
    modes = run.evaluation.latent_modes if getattr(algo, "latent_dim", 0) else ("zero",)
    by_mode = {}
    for mode in modes:
        noise = SeedStreams(run.seeds, "evaluation-latent") if mode == "sampled" else None
        returns = evaluate(algo, env, S, env_seeds, latent=mode, latent_noise=noise)
        per_seed = {
            str(seed): {"mean": float(returns[k].mean()), "returns": returns[k].tolist()}
            for k, seed in enumerate(run.seeds)
        }
        mean, low, high = mean_ci95([v["mean"] for v in per_seed.values()])
        by_mode[mode] = {"per_seed": per_seed, "mean": mean, "ci95": [low, high]}
    headline = by_mode[modes[0]]
    return {
        "run": run.name,
        "algorithm": run.algorithm,
        "task": run.task,
        "episodes": len(env_seeds),
        "env_seeds": env_seeds,
        "headline_latent": modes[0],
        "mean": headline["mean"],
        "ci95": headline["ci95"],
        "latent_modes": by_mode,
    }


def main(argv: list[str] | None = None) -> None:
    _, runs = load_runs()
    run = run_from_argv(sys.argv[1:] if argv is None else argv, runs)
    write_json(layout.run_dir(run.name) / "eval.json", evaluate_run(run))


if __name__ == "__main__":
    main()
