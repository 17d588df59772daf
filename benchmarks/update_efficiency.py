"""How close each learner's update comes to the machine's matmul speed on its own shapes.

    python -m benchmarks.update_efficiency [--learners vm3ac-cooperative_navigation_n3 maddpg-cooperative_navigation_n3 ...] [--seeds 7]

For each run named (default: one run per learner of params.yaml), with the run's own settings,
task and seed count, this measures in one process:

- the update: wall time of one gradient step (``update(batch)``) on a batch from the run's own
  storage filled with random experience, averaged over many steps after a warm-up;
- its matmul FLOPs (``torch.utils.flop_counter``) and so its GFLOP/s;
- the roofline of its own shapes: every matmul the update runs (forward and backward, recorded
  with their shapes and strides) replayed alone on fresh tensors; their summed time is what the
  update would take if nothing but its matmuls ran. GFLOP/s over that time is the roofline.

It prints GFLOP/s, the roofline and their ratio (% of roofline), each the median of several
rounds that alternate updates and replays. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import envs
from algorithms import learner
from algorithms.components.storage import STORAGES
from benchmarks import measured
from pipeline.design.params import load_runs

MATMULS = {
    torch.ops.aten.mm.default,
    torch.ops.aten.addmm.default,
    torch.ops.aten.bmm.default,
    torch.ops.aten.baddbmm.default,
}


class RecordMatmuls(TorchDispatchMode):
    """Records (op, tensor layouts, other arguments) of every matmul that runs."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in MATMULS:
            layout = [
                (a.shape, a.stride()) if isinstance(a, torch.Tensor) else a for a in args
            ]
            self.calls.append((func, layout, kwargs or {}))
        return func(*args, **(kwargs or {}))


def tensor_like(shape: torch.Size, stride: tuple[int, ...]) -> torch.Tensor:
    """A random tensor with exactly this shape and these strides (transposed views included)."""
    size = 1 + sum((n - 1) * st for n, st in zip(shape, stride)) if all(shape) else 0
    return torch.randn(size).as_strided(shape, stride)


def replay_seconds(calls, repeats: int) -> float:
    """Time of running every recorded matmul once, alone, on fresh tensors of its layout."""
    prepared = []
    for func, layout, kwargs in calls:
        args = [
            tensor_like(*item) if isinstance(item, tuple) and isinstance(item[0], torch.Size) else item
            for item in layout
        ]
        prepared.append((func, args, kwargs))
    for func, args, kwargs in prepared:  # warm-up
        func(*args, **kwargs)
    start = time.perf_counter()
    for _ in range(repeats):
        for func, args, kwargs in prepared:
            func(*args, **kwargs)
    return (time.perf_counter() - start) / repeats


def random_batch(algo, spec, seeds, settings) -> dict:
    """A batch from the run's own storage, filled with random experience."""
    fields = algo.fields(spec)
    storage = STORAGES[algo.loop](seeds, 4 * settings.batch_size, fields, 1, spec.episode_limit)
    S, N = len(seeds), spec.n_agents
    obs = lambda: torch.randn(S, 1, N, spec.obs_dim)  # noqa: E731
    state = lambda: torch.randn(S, 1, spec.state_dim)  # noqa: E731
    avail = torch.ones(S, 1, N, spec.action_dim) if spec.discrete else None

    def opened() -> dict:
        """The row's observed part and what the learner holds per episode (MAVEN's z, s_0)."""
        given = {"obs": obs(), "state": state(), "avail": avail}
        for name in storage.opened:
            if name not in given:
                f = fields[name]
                given[name] = torch.randn(S, 1, *f.shape).to(f.dtype)
        return given

    storage.open(**opened())
    per_row = spec.episode_limit if algo.loop in ("episodes", "on_policy") else 1  # whole episodes
    for t in range(1, 4 * settings.batch_size * per_row):
        ended = t % spec.episode_limit == 0
        if spec.discrete:
            action = torch.randint(spec.action_dim, (S, 1, N))
        else:
            action = torch.rand(S, 1, N, spec.action_dim)
        final = {"obs": obs(), "state": state(), "avail": avail}
        storage.close(
            torch.full((S, 1), ended),
            final,
            action=action,
            reward=torch.randn(S, 1),
            rewards=torch.randn(S, 1, N),
            terminated=torch.zeros(S, 1, dtype=torch.bool),
        )
        storage.open(**opened())
    return algo.sample(storage, None)  # what the training loop hands the update (DOP: three draws)


def measure(run, n_seeds: int, steps: int, rounds: int) -> dict:
    """Medians over ``rounds`` of (``steps`` updates, then the same count of matmul replays),
    so that a noisy machine slows both sides of each round's ratio alike."""
    seeds = list(range(n_seeds))
    spec = envs.make_batched(run.task_id, 1, **run.task_kwargs).spec
    algo = learner(run.family)(spec, seeds, run.settings)
    batch = random_batch(algo, spec, seeds, run.settings)
    for _ in range(5):
        algo.update(batch, None)
    with FlopCounterMode(display=False) as counter:
        algo.update(batch, None)
    with RecordMatmuls() as recorder:
        algo.update(batch, None)
    start = time.perf_counter()
    algo.update(batch, None)
    steps = max(1, min(steps, round(1.0 / (time.perf_counter() - start))))  # rounds of about a second
    update, roof = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            algo.update(batch, None)
        update.append((time.perf_counter() - start) / steps)
        roof.append(replay_seconds(recorder.calls, steps))
    seconds, roof_seconds = statistics.median(update), statistics.median(roof)
    flops = counter.get_total_flops()
    return {
        "run": run.name,
        "ms": seconds * 1e3,
        "gflop": flops / 1e9,
        "gflops": flops / seconds / 1e9,
        "roofline": flops / roof_seconds / 1e9,
        "ratio": statistics.median(r / u for r, u in zip(roof, update)),
        "matmuls": len(recorder.calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", help="run names (default: one per algorithm)")
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20, help="timed updates per round (at most; rounds of ~1 s)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per learner (median)")
    parser.add_argument("--all", action="store_true", help="every run of params.yaml (the FLOP floor's input)")
    parser.add_argument("--save", type=Path, metavar="JSON",
                        help="merge each run's numbers into this table (benchmarks.paper_cost --floor reads "
                             "benchmarks/measured/update_efficiency.json)")
    args = parser.parse_args()
    _, runs = load_runs()
    chosen = args.runs or (list(runs) if args.all else list({r.algorithm: r.name for r in reversed(runs.values())}.values())[::-1])
    print(f"{args.seeds} seeds, torch threads {torch.get_num_threads()}")
    print(f"{'run':24} {'update ms':>9} {'GFLOP':>7} {'GFLOP/s':>8} {'roofline':>9} {'% roof':>7}")
    for name in chosen:
        m = measure(runs[name], args.seeds, args.steps, args.rounds)
        print(
            f"{m['run']:24} {m['ms']:9.1f} {m['gflop']:7.3f} {m['gflops']:8.1f} "
            f"{m['roofline']:9.1f} {100 * m['ratio']:6.0f}%",
            flush=True,
        )
        if args.save:
            row = {k: v for k, v in m.items() if k != "run"}
            measured.merge(args.save, m["run"], dict(row, seeds=args.seeds, threads=torch.get_num_threads()))


if __name__ == "__main__":
    main()
