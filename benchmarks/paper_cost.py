"""What the ``paper`` profile costs: measured per-step training time, extrapolated.

    python -m benchmarks.paper_cost [--figure fig3] [--runs 'iac-*' ...] [--env-steps 600] [--seeds 7]
                                    [--threads N] [--device auto] [--save benchmarks/measured/paper_cost.json]

For every run the pipeline trains (or only those a figure draws, with ``--figure``), the run's learner trains its seeds together (the papers' 7 by
default), measured in two parts: acting and stepping without updates, for ``--env-steps`` steps
per seed or until every seed's storage holds a batch, whichever is longer; then its gradient step
on batches sampled from that storage. A paper run makes its schedule's gradient steps per env step
(``gradient_steps_per_env_step``) from ``learning_starts`` on. The learning-curve evaluations are
left out: the time per env step (all seeds together) times the paper profile's steps, plus its
gradient steps times their time, is the run's training cost; the curve and final evaluations
come on top.

Learners that update on whole episodes (recurrent agents on SMAC: a batch of 32 episodes can
take thousands of steps to fill) are measured in the same two parts, their update on a batch of
episodes whose lengths are drawn from those acting gave (the episodes' lengths under the
learner's exploring policy, their mean L; an update runs to the longest episode of all seeds'
batches); a paper run makes one update phase per ``update_every`` episodes of each of its
``env_copies``, i.e. ``steps / (L x copies x update_every)`` phases. Measure with nothing else running. With a GPU (``--device``, by default
params.yaml's ``device``), the runs train on it as the train stage would, and the hours are
GPU-hours.

``--save`` merges each run's measurement, as it is taken, into a JSON table (with the machine,
threads, seeds, load and commit it was measured at): the committed table is what ``make repro``
reads to estimate a build's cost before starting it (pipeline/runtime/cost_gate.py).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import envs
from algorithms import learner
from benchmarks import measured
from pipeline import stage_threads
from pipeline.design.budget import Budget, budget_of
from pipeline.design.params import load_runs, run_of, train_device
from pipeline.runtime import devices
from pipeline.runtime.loops import Training, train


def gradient_steps_per_env_step(st, mean_length: float) -> float:
    """The schedule's gradient steps per env step of a seed (pipeline/runtime/loops.py
    ``_Schedule``): per env step, ``gradient_steps``; per phase, ``gradient_steps`` per phase,
    a phase every ``update_every`` env steps or every ``update_every`` episodes of each copy."""
    if st.gradient_steps_per == "env_step":
        return float(st.gradient_steps)
    if st.update_unit == "step":
        return st.gradient_steps / st.update_every
    return st.gradient_steps / (mean_length * st.env_copies * st.update_every)


def counting_lengths(env) -> list[int]:
    """Wrap ``env.step`` so that every episode that ends appends its length to the list returned."""
    step, running, lengths = env.step, np.zeros(env.n_copies, dtype=int), []

    def counting(actions, active=None):
        out = step(actions, active)
        moved = np.ones(env.n_copies, bool) if active is None else np.asarray(active, bool).ravel()
        running[moved] += 1
        ended = np.asarray(out.terminated | out.truncated, bool).ravel() & moved
        lengths.extend(running[ended].tolist())
        running[ended] = 0
        return out

    env.step = counting
    return lengths


def replay_learner_cost(run, env_steps: int, paper_steps: int) -> tuple[float, float, float, float, float]:
    """Seconds per env step without updates, seconds per gradient step, gradient steps per env
    step, the paper run's hours and its gradient steps, for a learner on per-step transitions.

    Acting is timed over at least ``env_steps`` steps per seed, the storage filling to a batch
    (MADDPG's and MAAC's 1,024 transitions, VM3-AC's and IAC's 256); then gradient steps on
    batches sampled from it, and the schedule's own rate of them (VM3-AC: one per env step, in a
    phase after each episode, which a short window would miss or count whole). Until 2026-12-06
    a 300-step window with learning from its 30th step was timed instead: it held no gradient
    step of MADDPG or MAAC and a sixth of IAC's (issue 28's note)."""
    st = run.settings
    fill = st.batch_size // st.env_copies + 1  # steps per seed until each seed's storage holds a batch
    steps = max(env_steps, fill) + 10
    no_updates = dataclasses.replace(st, learning_starts=10 * steps)
    env = envs.make_batched(run.task_id, len(run.seeds) * st.env_copies, **run.task_kwargs)
    lengths = counting_lengths(env)
    algo = learner(run.family)(env.spec, run.seeds, no_updates)
    training = Training(algo, env, run.seeds, Budget(steps, steps, 1))
    quiet = lambda points, losses: None  # noqa: E731
    for _ in range(10):  # warm-up: first calls allocate (and SMAX compiles), not per step
        training.advance(quiet)
    first, start = training.t.clone(), time.perf_counter()
    while not training.finished:
        training.advance(quiet)
    per_step = (time.perf_counter() - start) / float((training.t - first).float().mean())
    if not bool(training.ready.all()):
        raise RuntimeError(f"paper_cost: {run.name}'s storage holds no batch after {steps} steps")
    algo.update(algo.sample(training.storage, None), None)  # warm-up
    start = time.perf_counter()
    for _ in range(5):
        algo.update(algo.sample(training.storage, None), None)
    per_update = (time.perf_counter() - start) / 5
    mean_length = float(np.mean(lengths)) if lengths else float(env.spec.episode_limit)
    rate = gradient_steps_per_env_step(st, mean_length)
    updates = rate * max(0, paper_steps - st.learning_starts)
    return per_step, per_update, rate, (paper_steps * per_step + updates * per_update) / 3600, updates


def env_seconds_per_step(run, steps: int = 50) -> float:
    """The environment alone: one step of every copy of every seed, on random actions (after a
    warm-up step, which compiles SMAX's batch)."""
    env = envs.make_batched(run.task_id, len(run.seeds) * run.settings.env_copies, **run.task_kwargs)
    spec, rng = env.spec, np.random.default_rng(0)
    B = len(run.seeds) * run.settings.env_copies
    _, _, avail = env.reset(list(range(B)))

    def actions(avail):
        if spec.discrete:
            return np.array([[rng.choice(np.flatnonzero(m)) for m in copy] for copy in avail])
        return rng.uniform(spec.action_low, spec.action_high, (B, spec.n_agents, spec.action_dim)).astype(np.float32)

    avail = env.step(actions(avail)).avail
    start = time.perf_counter()
    for _ in range(steps):
        avail = env.step(actions(avail)).avail  # ended copies are reset by the batch itself
    return (time.perf_counter() - start) / steps


def floor_hours(run, table: dict, updates: float, paper_steps: int, length: int | None = None) -> float | None:
    """The FLOP floor of a paper run: its updates' matmul FLOPs at the roofline of their own
    shapes (benchmarks.update_efficiency --save) plus its environment's own steps; None when the
    run's update is not in the table. A batched step moves each of a seed's ``env_copies`` one
    step, so it counts as that many of the seed's env steps. update_efficiency's episodes run to
    the task's limit: an update on episodes of ``length`` steps does ``length / limit`` of its
    FLOPs (recurrent agents and critics run once per step)."""
    row = table.get(run.name)
    if row is None:
        return None
    gflop = row["gflop"]
    if length is not None:
        gflop *= length / envs.make_batched(run.task_id, 1, **run.task_kwargs).spec.episode_limit
    env = env_seconds_per_step(run) / run.settings.env_copies
    return (updates * gflop / row["roofline"] + paper_steps * env) / 3600


def episode_batch(algo, spec, S: int, B: int, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
    """A batch as EpisodeReplay.sample gives it: B episodes per seed, their lengths drawn from
    the measured ``lengths`` (the update runs to the longest of all S x B, as trim_episodes
    cuts a real batch), with random contents of the learner's declared fields (every agent
    keeps a legal action)."""
    g = torch.Generator().manual_seed(0)
    drawn = lengths[torch.randint(len(lengths), (S, B), generator=g)]
    rows = spec.episode_limit + 1
    batch = {}
    for name, field in algo.fields(spec).items():
        shape = (S, B, rows, *field.shape)
        if field.dtype == torch.bool:
            value = torch.rand(shape, generator=g, device="cpu") < 0.5
            if name == "avail":
                value[..., 0] = True
        elif field.dtype == torch.int64:
            value = torch.randint(0, spec.action_dim, shape, generator=g, device="cpu")
        else:
            value = torch.randn(shape, generator=g, device="cpu")
        batch[name] = value.to(torch.get_default_device())  # a CPU generator: the same batch on a GPU
    batch["terminated"] = torch.zeros(S, B, rows, dtype=torch.bool)
    batch["filled"] = torch.arange(spec.episode_limit) < drawn.unsqueeze(-1)
    return batch


def update_batch(algo, spec, S: int, st, lengths: torch.Tensor) -> dict:
    """What the learner's ``sample`` gives its ``update``: one batch of episodes, or DOP's three
    (the critic's on- and off-policy draws and the actor's batch, algorithms/learners/dop.py)."""
    if hasattr(st, "off_batch_size"):
        return {name: episode_batch(algo, spec, S, size, lengths) for name, size in
                (("on", st.batch_size), ("off", st.off_batch_size), ("actor", st.batch_size))}  # fmt: skip
    return episode_batch(algo, spec, S, st.batch_size, lengths)


def episode_learner_cost(run, env_steps: int, paper_steps: int) -> tuple[float, float, int, float, float]:
    """Seconds per env step without updates, seconds per update, the mean episode length, the
    paper run's hours and its gradient steps."""
    st = run.settings
    # long enough that every copy finishes a few episodes (LICA plays 32 copies per seed)
    limit = envs.make_batched(run.task_id, 1, **run.task_kwargs).spec.episode_limit
    env_steps = max(env_steps, 3 * limit * st.env_copies)
    no_updates = dataclasses.replace(st, learning_starts=10 * env_steps)
    env = envs.make_batched(run.task_id, len(run.seeds) * st.env_copies, **run.task_kwargs)
    algo = learner(run.family)(env.spec, run.seeds, no_updates)
    lengths = counting_lengths(env)
    # warm-up: SMAX compiles its step once per batch shape and process (seconds), not per step
    train(algo, env, run.seeds, Budget(20, 20, 1), lambda points, losses: None)
    lengths.clear()
    start = time.perf_counter()
    train(algo, env, run.seeds, Budget(env_steps, env_steps, 1), lambda points, losses: None)
    per_step = (time.perf_counter() - start) / env_steps
    # the episodes' own lengths: L sets how many updates a run makes, and the longest of a
    # batch how long each takes (the rows up to it are padded, as trim_episodes cuts a real one)
    measured = torch.tensor(lengths or [limit])
    mean_length = float(measured.float().mean())
    algo = learner(run.family)(env.spec, run.seeds, st)
    batch = update_batch(algo, env.spec, len(run.seeds), st, measured)
    algo.update(batch, None)  # warm-up
    start = time.perf_counter()
    for _ in range(3):
        algo.update(batch, None)
    per_update = (time.perf_counter() - start) / 3
    updates = gradient_steps_per_env_step(st, mean_length) * paper_steps
    hours = (paper_steps * per_step + updates * per_update) / 3600
    return per_step, per_update, round(mean_length), hours, updates


def warn_if_loaded() -> float:
    """Per-step times measured beside other work are not this machine's: say so before starting
    (the 1-minute load average against the usable cores). Returns the load."""
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    if load > 0.5:
        print(f"paper_cost: warning: this machine is busy (load {load:.1f} on {cores} cores): the "
              "times below include the other work; measure with nothing else running", file=sys.stderr)
    return load


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", help="only the runs this figure draws (default: every run)")
    parser.add_argument("--runs", nargs="+", metavar="PATTERN",
                        help="only the runs whose names match one of these shell patterns, e.g. 'iac-*'")
    parser.add_argument("--env-steps", type=int, default=600,
                        help="env steps per seed measured per run, then extrapolated (default 600)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: HARNESS_THREADS or the usable cores, as a stage)")
    parser.add_argument("--seeds", type=int, default=None, help="first n of params.yaml's seeds")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:<n> (default: params.yaml's device)")
    parser.add_argument("--floor", type=Path, metavar="JSON", nargs="?", const=Path("benchmarks/measured/update_efficiency.json"),
                        help="print each run's FLOP floor from this table of benchmarks.update_efficiency --save "
                             "(default benchmarks/measured/update_efficiency.json): its updates' FLOPs at their "
                             "own roofline plus its environment's own steps")
    parser.add_argument("--save", type=Path, metavar="JSON",
                        help="merge each run's measurement into this table (make repro's cost estimate reads "
                             "benchmarks/measured/paper_cost.json)")
    args = parser.parse_args()
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    torch.set_num_threads(args.threads or stage_threads())  # explicit: torch started before pipeline
    load = warn_if_loaded()
    params, runs = load_runs()
    device = devices.resolve(args.device or train_device(params))
    devices.use(device)
    if args.figure:
        figure = params["figures"][args.figure]
        names = [run_of(c["algorithm"], p["task"]) for p in figure["panels"].values() for c in figure["curves"].values()]
    else:
        names = list(runs)
    if args.runs:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in args.runs)]
        if not names:
            parser.error(f"--runs {' '.join(args.runs)} matches no run of params.yaml")
    seeds = tuple(params["seeds"][: args.seeds])
    paper = params["profiles"]["paper"]
    paper_steps = paper["env_steps"]  # the default; a run's task may set its own (budget_of)
    threads = torch.get_num_threads()
    on = ("on " + torch.cuda.get_device_name(device) + ", so GPU-hours = hours") if device.type == "cuda" else \
        f"{threads} torch thread(s), so CPU-hours = hours x {threads}"
    print(f"{args.figure or 'every run'}: {len(seeds)} seeds together, {args.env_steps} env steps measured, "
          f"extrapolated to the paper profile's steps per seed ({paper_steps:,} unless its task sets its own); {on}")
    floors = json.loads(args.floor.read_text())["runs"] if args.floor else None
    print(f"{'run':46} {'ms/step':>8} {'paper h':>8}" + (f" {'floor h':>8} {'x floor':>7}" if floors is not None else ""))
    per_family: dict[str, float] = {}
    floor_family: dict[str, float] = {}  # and the measured hours of the runs that have one:
    floored: dict[str, float] = {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    measured_at = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
                "threads": threads, "seeds": len(seeds), "env_steps_measured": args.env_steps,
                "load_at_start": round(load, 2), "commit": commit, "date": time.strftime("%Y-%m-%d")}
    for name in dict.fromkeys(names):
        run = dataclasses.replace(runs[name], seeds=seeds)
        paper_steps = budget_of(paper, run.task).env_steps
        if learner(run.family).loop == "transitions":
            per_step, per_update, rate, hours, updates = replay_learner_cost(run, args.env_steps, paper_steps)
            extra, length = f"  (no updates; gradient step {per_update * 1e3:.1f} ms, {rate:.3g} per env step)", None
        else:
            per_step, per_update, length, hours, updates = episode_learner_cost(run, args.env_steps, paper_steps)
            extra = f"  (no updates; update {per_update:.2f} s on episodes of {length} steps on average)"
        per_family[run.family] = per_family.get(run.family, 0.0) + hours
        floor = ""
        if floors is not None:
            low = floor_hours(run, floors, updates, paper_steps, length)
            if low is None:
                floor = f" {'-':>8} {'-':>7}"
            else:
                floor_family[run.family] = floor_family.get(run.family, 0.0) + low
                floored[run.name] = hours
                floor = f" {low:8.1f} {hours / low:7.1f}"
        print(f"{run.name:46} {per_step * 1e3:8.1f} {hours:8.1f}{floor}{extra}", flush=True)
        if args.save:  # the two parts price a run of any length (pipeline/design/measured_cost.py)
            row = {"family": run.family, "task": run.task, "paper_env_steps": paper_steps,
                   "seconds_per_env_step": hours * 3600 / paper_steps,  # updates included
                   "acting_seconds_per_env_step": per_step, "seconds_per_gradient_step": per_update,
                   "gradient_steps_per_env_step": updates / max(1, paper_steps - run.settings.learning_starts)}
            measured.merge(args.save, run.name, dict(row, **measured_at))
    print("per family (hours):", ", ".join(f"{f} {h:.1f}" for f, h in sorted(per_family.items(), key=lambda x: -x[1])))
    if floors is not None:
        print("per family (hours / FLOP floor):", ", ".join(
            f"{f} {sum(v for k, v in floored.items() if runs[k].family == f):.1f} / {h:.1f}" for f, h in
            sorted(floor_family.items(), key=lambda x: -per_family[x[0]])))  # fmt: skip
        low, high = sum(floor_family.values()), sum(floored.values())
        print(f"total with a floor ({len(floored)} runs): {high:.0f} h measured, FLOP floor {low:.0f} h: {high / low:.2f}x")
    total = sum(per_family.values())
    hours = f"{total:.0f} GPU-hours" if device.type == "cuda" else f"{total * threads:.0f} CPU-hours"
    print(f"total training: {total:.0f} h on this machine one run after another, {hours} "
          "(curve and final evaluations on top)")


if __name__ == "__main__":
    main()
