"""Training throughput: the seeds of one run trained together versus one after another.

    python -m benchmarks.seed_batching [--runs RUN ...] [--env-steps 2000] [--seeds 7]

For each run (default: one run per algorithm of params.yaml) with the first ``--seeds`` seeds of
params.yaml (default: all of them, the papers' 7), both arms use the run's settings
and the profile's curve settings, with ``--env-steps`` per seed; throughput is environment steps
(all seeds) per wall-clock second. Learning-curve evaluations are part of both arms.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from pipeline.design.params import load_runs
from pipeline.stages.train import train


def timed_train(run) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        train(run, Path(folder))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", help="run names (default: one per algorithm)")
    parser.add_argument("--env-steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=None, help="first n of params.yaml's seeds")
    args = parser.parse_args()
    params, runs = load_runs()
    chosen_seeds = tuple(params["seeds"][: args.seeds])
    chosen = args.runs or list({r.algorithm: r.name for r in reversed(runs.values())}.values())[::-1]
    print(f"{args.env_steps} env steps per seed, torch threads {torch.get_num_threads()}")
    print(f"{'run':20} {'seeds':>5} {'batched s':>9} {'steps/s':>8} {'seq. s':>8} {'steps/s':>8} {'ratio':>6}")
    for name in chosen:
        run = runs[name]
        budget = dataclasses.replace(run.budget, env_steps=args.env_steps)
        run = dataclasses.replace(run, budget=budget, seeds=chosen_seeds)
        total = args.env_steps * len(run.seeds)
        # Warm-ups with both batch shapes: SMAX compiles once per shape and process.
        short = dataclasses.replace(run.budget, env_steps=min(args.env_steps, 200))
        for seeds in (run.seeds, run.seeds[:1]):
            timed_train(dataclasses.replace(run, seeds=seeds, budget=short))
        batched = timed_train(run)
        sequential = sum(timed_train(dataclasses.replace(run, seeds=(s,))) for s in run.seeds)
        print(
            f"{name:20} {len(run.seeds):5} {batched:9.1f} {total / batched:8.0f} "
            f"{sequential:8.1f} {total / sequential:8.0f} {sequential / batched:5.2f}x"
        )


if __name__ == "__main__":
    main()
