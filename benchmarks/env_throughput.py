"""Environment steps per second of every task through the batched wrapper (random actions).

Usage, from the repository root:
    python -m benchmarks.env_throughput [--copies 1 64] [--env-steps 1500] [--tasks ...]

Each measurement runs B copies in lockstep for max(20, env_steps // B) steps (automatic resets
included) after one warm-up step, and reports env steps (B x lockstep steps) per wall second.
A measurement, not a test: no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from envs.registry import TASKS, make_batched


def random_actions(spec, n_copies: int, rng: np.random.Generator) -> np.ndarray:
    shape = (n_copies, spec.n_agents)
    if spec.discrete:
        return rng.integers(spec.action_dim, size=shape)
    low, high = np.array(spec.action_low), np.array(spec.action_high)
    return rng.uniform(low, high, shape + (spec.action_dim,)).astype(np.float32)


def throughput(task: str, n_copies: int, env_steps: int) -> float:
    env = make_batched(task, n_copies)
    rng = np.random.default_rng(0)
    env.reset(list(range(n_copies)))
    env.step(random_actions(env.spec, n_copies, rng))  # warm-up
    steps = max(20, env_steps // n_copies)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(random_actions(env.spec, n_copies, rng))
    return n_copies * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--env-steps", type=int, default=1500)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    args = parser.parse_args()
    print(f"{'task':<24}" + "".join(f"{f'B={b} steps/s':>16}" for b in args.copies))
    for task in args.tasks:
        rates = [throughput(task, b, args.env_steps) for b in args.copies]
        print(f"{task:<24}" + "".join(f"{r:>16,.0f}" for r in rates), flush=True)


if __name__ == "__main__":
    main()
