"""Cooperative treasure collection (VM3-AC §6, Fig. 3f-g): mpe2's collect_treasure, continuous.

VM3-AC runs N = 4 and N = 5 agents without giving the collector/deposit split. MAAC's original
task has 6 collectors + 2 deposits (two treasure types) and as many treasures as collectors; we
keep MAAC's two deposits (so both treasure types and the collector-deposit hand-over survive)
and make the other N - 2 agents collectors: N=4 -> 2+2, N=5 -> 3+2 (harness choice).

Collectors observe 2 more numbers than deposits (the one-hot of what they hold), so the batched
wrapper zero-pads the deposits' observations at the end.
"""

from __future__ import annotations

from mpe2 import collect_treasure_v1
from pettingzoo import ParallelEnv

from envs.particle_physics import check_physics, with_physics


def make(
    N: int = 4,  # VM3-AC §6: N = 4 and N = 5
    num_deposits: int = 2,  # MAAC's 2 deposits; collectors = N - num_deposits (harness choice)
    num_treasures: int | None = None,  # None: one per collector, as MAAC (6 for 6 collectors)
    max_cycles: int = 100,  # MAAC's episode length
    physics: str = "original",  # envs/particle_physics.py: the papers' MPE integration order
) -> ParallelEnv:
    """N agents: N - num_deposits collectors then num_deposits deposits, Box(0, 1, (5,)) actions."""
    if N < num_deposits + 1 or num_deposits < 1:
        raise ValueError(
            f"treasure_collection: N={N} agents cannot hold {num_deposits} deposit(s) and at least "
            "one collector"
        )
    check_physics("treasure_collection", physics)
    collectors = N - num_deposits
    env = collect_treasure_v1.parallel_env(
        num_collectors=collectors,
        num_deposits=num_deposits,
        num_treasures=collectors if num_treasures is None else num_treasures,
        max_cycles=max_cycles,
        continuous_actions=True,
    )
    return with_physics(env, physics)


def episode_limit(max_cycles: int = 100, **_) -> int:
    return max_cycles
