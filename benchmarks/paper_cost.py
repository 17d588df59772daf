"""What the ``paper`` profile costs: measured per-step training time, extrapolated.

    python -m benchmarks.paper_cost [--figure fig3] [--env-steps 600] [--seeds 7]

For every run a figure implies, the run's learner trains its seeds together (the papers' 7 by
default) for ``--env-steps`` steps per seed, with learning starting after a tenth of them so the
window holds the algorithm's own update schedule (env steps and gradient steps in its ratio);
the learning-curve evaluations are left out. The time per env step (all seeds together) times the
paper profile's steps is the run's training cost; the curve and final evaluations come on top.
Measure with nothing else running.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import envs
from algorithms import learner
from pipeline.loops import Budget, train
from pipeline.params import load_runs, run_of


def seconds_per_step(run, env_steps: int) -> float:
    settings = dataclasses.replace(run.settings, learning_starts=env_steps // 10)
    env = envs.make_batched(run.task_id, len(run.seeds) * settings.env_copies, **run.task_kwargs)
    algo = learner(run.family)(env.spec, run.seeds, settings)
    start = time.perf_counter()
    train(algo, env, run.seeds, Budget(env_steps, env_steps, 1), lambda points, losses: None)
    return (time.perf_counter() - start) / env_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", default="fig3")
    parser.add_argument("--env-steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=None, help="first n of params.yaml's seeds")
    args = parser.parse_args()
    params, runs = load_runs()
    figure = params["figures"][args.figure]
    seeds = tuple(params["seeds"][: args.seeds])
    paper_steps = params["profiles"]["paper"]["env_steps"]
    print(f"{args.figure}: {len(seeds)} seeds together, {args.env_steps} env steps measured, "
          f"extrapolated to {paper_steps:,} steps per seed")
    print(f"{'run':42} {'ms/step':>8} {'paper h':>8}")
    total = 0.0
    for panel in figure["panels"].values():
        for curve in figure["curves"].values():
            run = dataclasses.replace(runs[run_of(curve["algorithm"], panel["task"])], seeds=seeds)
            per_step = seconds_per_step(run, args.env_steps)
            hours = per_step * paper_steps / 3600
            total += hours
            print(f"{run.name:42} {per_step * 1e3:8.1f} {hours:8.1f}", flush=True)
    print(f"total training: {total:.0f} h on this machine, one run after another")


if __name__ == "__main__":
    main()
