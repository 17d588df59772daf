"""Cooperative navigation (VM3-AC §6, Fig. 3h): mpe2's simple_spread with continuous actions."""

from __future__ import annotations

from mpe2 import simple_spread_v3
from pettingzoo import ParallelEnv

from envs.particle_physics import check_physics, with_physics


def make(
    N: int = 3,
    local_ratio: float = 0.5,
    max_cycles: int = 25,
    physics: str = "original",  # envs/particle_physics.py: the papers' MPE integration order
) -> ParallelEnv:
    """N agents cover N landmarks; defaults are mpe2's (and MADDPG's) values."""
    if N < 1:
        raise ValueError(f"cooperative_navigation: N must be >= 1 agent, got {N}")
    check_physics("cooperative_navigation", physics)
    env = simple_spread_v3.parallel_env(
        N=N, local_ratio=local_ratio, max_cycles=max_cycles, continuous_actions=True
    )
    return with_physics(env, physics)


def episode_limit(max_cycles: int = 25, **_) -> int:
    return max_cycles
