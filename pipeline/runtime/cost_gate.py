"""Before a long build: what it will cost, and a start only when the user has asked for it.

    python -m pipeline.runtime.cost_gate [--jobs N] [STAGE ...]    # make repro runs it first

The training stages the build would run (``parallel_repro.dry_plan``), each priced from the
committed table of measured per-step times (``benchmarks/measured/paper_cost.json``, written by
``python -m benchmarks.paper_cost --save``): the run's env steps at the acting time per step of
its seeds together, and its gradient steps from ``learning_starts`` on at theirs
(pipeline/design/measured_cost.py), scaled by its seeds against the seeds measured (an upper
bound: seeds batched together cost less than that). A run the table lacks (a new variant)
is priced as the median of its family's runs on its task, else of its family. Evaluations and
process start-ups come on top. When the build would take over ``LIMIT_HOURS`` on this machine
(CPU-hours over the stages running at once), it prints the estimate with the disk its resume
points need and stops, unless ``HARNESS_ACCEPT_COST=1`` (``make repro ACCEPT_COST=1``) or
``--accept-cost`` says to go on; so nobody starts the paper profile's 1,000-odd CPU-hours by
accident. Under the limit it prints nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.design.measured_cost import PRICED, training_seconds

TABLE = Path("benchmarks/measured/paper_cost.json")
LIMIT_HOURS = 1.0  # wall-clock hours on this machine above which a build needs the user's yes
ACCEPT = "HARNESS_ACCEPT_COST"
TRAIN = "train-"
GIB = 2**30


def table_path(root: Path) -> Path:
    """The table in the project ``root``; the evidence instance (evidence/) reads the repository's."""
    from pipeline.design import evidence

    return root.parent / TABLE if root.resolve() == (evidence.ROOT / evidence.FOLDER).resolve() else root / TABLE


def price(run, table: dict) -> tuple[float, str]:
    """Seconds to train ``run`` (its seeds, its budget's env steps), and where the number comes from."""
    rows = table["runs"]
    row = rows.get(run.name)
    source = "measured"
    if row is None:
        same = [r for r in rows.values() if r["family"] == run.family and r["task"] == run.task] or \
               [r for r in rows.values() if r["family"] == run.family]  # fmt: skip
        if not same:
            return 0.0, "not in the table"
        parts = [k for k in PRICED if all(k in r for r in same)]  # each part's median over those runs
        row = {"seeds": same[0]["seeds"], "threads": same[0]["threads"],
               **{k: statistics.median(r[k] for r in same) for k in parts}}
        source = f"median of {len(same)} {run.family} run(s)"
    return training_seconds(row, run.budget.env_steps, run.settings.learning_starts, len(run.seeds)), source


def planned_runs(targets: Sequence[str] = (), root: Path = Path(".")) -> list[str]:
    """The runs whose train stages the build would run (DVC's status of every stage: seconds)."""
    from pipeline.runtime.parallel_repro import dry_plan

    return [name[len(TRAIN) :] for name, _ in dry_plan(root, targets) if name.startswith(TRAIN)]


def estimate(planned: Sequence[str] | None = None, root: Path = Path(".")) -> dict:
    """What the runs named (default: every run of params.yaml) cost to train: runs, env steps
    over all seeds, CPU-hours, the runs priced from others and those not priced."""
    from pipeline.design.params import load_runs

    _, runs = load_runs(root / "params.yaml")
    planned = list(runs) if planned is None else planned
    table = json.loads(table_path(root).read_text()) if table_path(root).exists() else {"runs": {}}
    cost = {"runs": [], "env_steps": 0, "cpu_hours": 0.0, "unpriced": [], "estimated": []}
    for name in planned:
        run = runs.get(name)
        if run is None:
            continue
        seconds, source = price(run, table)
        cost["runs"].append(run)
        cost["env_steps"] += run.budget.env_steps * len(run.seeds)
        cost["cpu_hours"] += seconds / 3600
        if source == "not in the table":
            cost["unpriced"].append(name)
        elif source != "measured":
            cost["estimated"].append(name)
    measured = next(iter(table["runs"].values()), {})
    cost["measured"] = f"{measured.get('date', '?')} on {measured.get('device', '?')}, {measured.get('threads', '?')} thread"
    return cost


def resume_disk(runs: list, jobs: int) -> int:
    """Bytes of the largest ``jobs`` resume points held at once (replay storage and networks)."""
    import envs
    from algorithms import learner
    from pipeline.runtime import memory

    sizes = []
    for run in runs:
        spec = envs.make_batched(run.task_id, 1, **run.task_kwargs).spec
        networks, storage = memory.estimate(learner(run.family), spec, run.seeds, run.settings, run.budget.env_steps)
        sizes.append(networks + storage)
    return sum(sorted(sizes, reverse=True)[:jobs])


def check(jobs: int, targets: Sequence[str] = (), accept: bool = False, root: Path = Path(".")) -> None:
    if not table_path(root).exists():  # not this repository (parallel_repro builds any DVC project)
        return
    at_once = max(1, min(jobs, len(os.sched_getaffinity(0))))
    every = estimate(None, root)  # every run: a bound, in a second
    if every["cpu_hours"] / at_once <= LIMIT_HOURS and not every["unpriced"]:
        return
    cost = estimate(planned_runs(targets, root), root)
    hours = cost["cpu_hours"] / at_once
    if hours <= LIMIT_HOURS:
        if cost["unpriced"]:  # a price of 0 is no price: say so rather than pass it silently
            print(f"cost: {len(cost['unpriced'])} run(s) this build trains are not priced (no run of their family "
                  f"measured: {', '.join(cost['unpriced'][:3])}{', ...' if len(cost['unpriced']) > 3 else ''}); "
                  f"the rest: about {hours:,.1f} h", file=sys.stderr)  # fmt: skip
        return
    need = resume_disk(cost["runs"], jobs)
    free = shutil.disk_usage(root.resolve()).free
    print(f"cost: this build trains {len(cost['runs'])} run(s), {cost['env_steps']:,} env steps over all seeds: "
          f"about {cost['cpu_hours']:,.0f} CPU-hours of training ({TABLE}, measured {cost['measured']}; "
          f"evaluations on top), about {hours:,.0f} h on this machine with {jobs} stage(s) at once; resume points "
          f"need up to {need / GIB:.1f} GiB at once ({free / GIB:.0f} GiB free here)", file=sys.stderr)  # fmt: skip
    if cost["estimated"] or cost["unpriced"]:
        print(f"cost: {len(cost['estimated'])} run(s) priced from their family's measured runs, "
              f"{len(cost['unpriced'])} not priced (no run of their family measured: "
              f"python -m benchmarks.paper_cost --runs NAME --save {TABLE})", file=sys.stderr)  # fmt: skip
    if accept or os.environ.get(ACCEPT) == "1":
        print(f"cost: going on ({ACCEPT}=1)", file=sys.stderr)
        return
    raise SystemExit(f"cost: over {LIMIT_HOURS:g} h: to start it, run `make repro ACCEPT_COST=1` "
                     f"(or set {ACCEPT}=1, or pass --accept-cost to parallel_repro)")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="STAGE", help="only these stages and what they read from")
    parser.add_argument("--jobs", type=int, default=1, help="stages at once (make repro's JOBS)")
    parser.add_argument("--accept-cost", action="store_true", help="go on whatever the estimate")
    args = parser.parse_args(argv)
    check(args.jobs, args.targets, args.accept_cost)


if __name__ == "__main__":
    main()
