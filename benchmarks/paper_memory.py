"""What each run of a profile holds in memory, from shapes alone (seconds, no training).

    python -m benchmarks.paper_memory [--profile paper] [--top 15]

The train stage's own estimate (pipeline/runtime/memory.py: networks with target copies, optimiser
moments and gradients, built once on torch's meta device, plus the replay storage), for every
run at the profile's seeds and env steps: what a cluster job must request per run. Activations
of an update come on top.
"""

from __future__ import annotations

import argparse

import envs
from algorithms import learner
from pipeline.design.budget import budget_of
from pipeline.design.params import load_runs
from pipeline.runtime import memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--top", type=int, default=15, help="the largest runs listed (0: all)")
    args = parser.parse_args()
    params, runs = load_runs()
    profile = params["profiles"][args.profile]
    seeds, steps = tuple(params["seeds"][: profile["seeds"]]), profile["env_steps"]
    rows = []
    for run in runs.values():
        spec = envs.make_batched(run.task_id, 1, **run.task_kwargs).spec
        run_steps = budget_of(profile, run.task).env_steps  # a task may set its own budget
        networks, storage = memory.estimate(learner(run.family), spec, seeds, run.settings, run_steps)
        rows.append((networks + storage, networks, storage, run.name))
    rows.sort(reverse=True)
    gib = 2**30
    print(f"profile {args.profile}: {len(seeds)} seeds, {steps:,} env steps per seed (unless a task sets its own); "
          f"{len(rows)} runs")
    print(f"{'run':46} {'total GiB':>9} {'networks':>9} {'storage':>9}")
    for total, networks, storage, name in rows[: args.top or None]:
        print(f"{name:46} {total / gib:9.2f} {networks / gib:9.3f} {storage / gib:9.2f}")
    totals = sorted(row[0] for row in rows)
    print(f"median run {totals[len(totals) // 2] / gib:.2f} GiB, largest {totals[-1] / gib:.2f} GiB")


if __name__ == "__main__":
    main()
