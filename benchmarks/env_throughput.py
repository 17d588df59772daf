"""Environment steps per second of every task through the batched wrapper (random actions).

Usage, from the repository root:
    python -m benchmarks.env_throughput [--copies 1 64] [--env-steps 1500] [--min-seconds 1]
                                        [--tasks ...]

Every task is measured with its default settings, and sparse SMAC once per map. Each
measurement resets B copies and takes one warm-up step (for SMAX these compile the jitted
reset and step: their time is reported apart, as "warm-up s"), then runs the copies in
lockstep for at least max(20, env_steps // B) steps and ``min_seconds`` (automatic resets
included), and reports env steps (B x lockstep steps) per wall second. Discrete tasks take
uniformly random *available* actions. A measurement, not a test: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from envs.registry import TASKS, make_batched
from envs.smax_maps import MAPS

# (label, task id, kwargs): every task as registered, sparse SMAC on each map of VM3-AC Fig. 4.
CASES = [(task, task, {}) for task in TASKS if task != "sparse_smac"] + [
    (f"sparse_smac {m}", "sparse_smac", {"map_name": m}) for m in MAPS
]


def random_actions(spec, avail, n_copies: int, rng: np.random.Generator) -> np.ndarray:
    shape = (n_copies, spec.n_agents)
    if spec.discrete:
        if avail is None:
            return rng.integers(spec.action_dim, size=shape)
        return np.argmax(rng.random(avail.shape) * avail, axis=-1)  # uniform over available
    low, high = np.array(spec.action_low), np.array(spec.action_high)
    return rng.uniform(low, high, shape + (spec.action_dim,)).astype(np.float32)


def throughput(
    task: str, kwargs: dict, n_copies: int, env_steps: int, min_seconds: float
) -> tuple[float, float]:
    """(env steps per second, warm-up seconds: construction, reset and the first step)."""
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    env = make_batched(task, n_copies, **kwargs)
    _, _, avail = env.reset(list(range(n_copies)))
    avail = env.step(random_actions(env.spec, avail, n_copies, rng)).avail
    warm_up = time.perf_counter() - start
    steps, least = 0, max(20, env_steps // n_copies)
    start = time.perf_counter()
    while steps < least or time.perf_counter() - start < min_seconds:
        avail = env.step(random_actions(env.spec, avail, n_copies, rng)).avail
        steps += 1
    return n_copies * steps / (time.perf_counter() - start), warm_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--env-steps", type=int, default=1500)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="task ids")
    args = parser.parse_args()
    print(
        f"{'task':<24}"
        + "".join(f"{f'B={b} steps/s':>16}" for b in args.copies)
        + "".join(f"{f'B={b} warm-up s':>16}" for b in args.copies)
    )
    for label, task, kwargs in CASES:
        if task not in args.tasks:
            continue
        rates, warm_ups = zip(
            *(throughput(task, kwargs, b, args.env_steps, args.min_seconds) for b in args.copies)
        )
        print(
            f"{label:<24}"
            + "".join(f"{r:>16,.0f}" for r in rates)
            + "".join(f"{w:>16.1f}" for w in warm_ups),
            flush=True,
        )


if __name__ == "__main__":
    main()
