"""Training throughput: the seeds of one run trained together versus one after another.

    python -m benchmarks.seed_batching [--run vm3ac_cn3] [--env-steps 2000]

Both arms use the run's settings from params.yaml and the profile's curve settings, with
``--env-steps`` per seed; throughput is environment steps (all seeds) per wall-clock second.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from pipeline.params import load_runs
from pipeline.train import train


def timed_train(run) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        train(run, Path(folder))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="vm3ac_cn3")
    parser.add_argument("--env-steps", type=int, default=2000)
    args = parser.parse_args()
    _, runs = load_runs()
    run = runs[args.run]
    run = dataclasses.replace(run, budget=dataclasses.replace(run.budget, env_steps=args.env_steps))
    total = args.env_steps * len(run.seeds)
    batched = timed_train(run)
    sequential = sum(timed_train(dataclasses.replace(run, seeds=(s,))) for s in run.seeds)
    print(
        f"run {run.name}: {len(run.seeds)} seeds x {args.env_steps} env steps, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"  batched    {batched:8.1f} s  {total / batched:8.1f} env steps/s")
    print(f"  sequential {sequential:8.1f} s  {total / sequential:8.1f} env steps/s")
    print(f"  batched / sequential throughput: {sequential / batched:.2f}x")


if __name__ == "__main__":
    main()
