"""Stage ``evaluate-<run>``: the deterministic evaluation of every seed's final policy.

Each seed plays ``evaluation.episodes`` episodes on the fixed evaluation env seeds in each of
its learner's execution modes (VM3-AC §6.1). A learner with several modes (VM3-AC's z: ``zero``,
z = E[z] = 0, decentralised execution, the headline number; ``sampled``, a z drawn each step and
shared by the agents, Table 1) is evaluated in those ``evaluation.latent_modes`` lists, in that
order; any other learner in its one mode. Writes ``results/runs/<run>/eval.json``.
"""

from __future__ import annotations

import sys

from algorithms import learner
from pipeline.design.params import Run, load_runs, run_from_argv
from pipeline.outputs import layout, stopping
from pipeline.outputs.checkpoint_file import load_checkpoints
from pipeline.outputs.staging import write_json
from pipeline.runtime.build import build
from pipeline.runtime.loops import evaluate
from pipeline.statistics.intervals import mean_ci95


def execution_modes(run: Run) -> tuple[str, ...]:
    declared = learner(run.family).execution_modes(run.settings)
    if len(declared) == 1:
        return declared
    return tuple(m for m in run.evaluation.latent_modes if m in declared)


def evaluate_run(run: Run) -> dict:
    checkpoints = load_checkpoints(run)
    S, env_seeds = len(run.seeds), run.evaluation.env_seeds()
    algo, env = build(run, S * len(env_seeds))
    algo.load_seed_states([c["tensors"] for c in checkpoints])
    modes = execution_modes(run)
    by_mode = {}
    for mode in modes:
        played = evaluate(algo, env, run.seeds, env_seeds, mode)
        per_seed = {}
        for k, seed in enumerate(run.seeds):
            per_seed[str(seed)] = {
                "mean": float(played.returns[k].mean()),
                "returns": played.returns[k].tolist(),
            }
            if env.spec.reports_wins:
                per_seed[str(seed)]["win_rate"] = float(played.won[k].mean())
        mean, low, high = mean_ci95([v["mean"] for v in per_seed.values()])
        by_mode[mode] = {"per_seed": per_seed, "mean": mean, "ci95": [low, high]}
        if env.spec.reports_wins:
            by_mode[mode]["win_rate"] = float(played.won.mean())
    headline = by_mode[modes[0]]
    return {
        "run": run.name,
        "algorithm": run.algorithm,
        "task": run.task,
        "episodes": len(env_seeds),
        "env_seeds": env_seeds,
        "headline_mode": modes[0],
        "mean": headline["mean"],
        "ci95": headline["ci95"],
        "modes": by_mode,
    }


def main(argv: list[str] | None = None) -> None:
    _, runs = load_runs()
    run = run_from_argv(sys.argv[1:] if argv is None else argv, runs)
    write_json(layout.run_dir(run.name) / "eval.json", evaluate_run(run))


if __name__ == "__main__":
    stopping.run(main)
