"""Cooperative navigation (VM3-AC §6, Fig. 3h): mpe2's simple_spread with continuous actions.

Reward. The original MPE (which VM3-AC ran, citing MADDPG [16]) gives agent i
``r_i = -sum_l min_a |p_a - p_l| - #{agents a colliding with i}``, where the count includes i
itself (the loop over agents does not skip it, so -1 per step per agent), and with
``shared_reward`` every agent receives the sum over agents, sum_i r_i. That is ``reward:
original`` (default); the team reward both papers plot (the mean of the agents' rewards) is
then that sum. ``reward: mpe2`` keeps mpe2's reward: ``(1 - local_ratio)`` times the global
distance term plus ``local_ratio`` times the agent's own collisions (itself excluded).
"""

from __future__ import annotations

import numpy as np
from mpe2 import simple_spread_v3
from pettingzoo import ParallelEnv
from pettingzoo.utils import BaseParallelWrapper

from envs.particle_physics import check_physics, with_physics

REWARDS = ("original", "mpe2")


def original_reward(agent, world) -> float:
    """The original simple_spread ``reward(agent, world)``, self-collision included."""
    rew = 0.0
    for landmark in world.landmarks:
        rew -= min(
            np.sqrt(np.sum(np.square(a.state.p_pos - landmark.state.p_pos))) for a in world.agents
        )
    if agent.collide:
        for a in world.agents:
            dist = np.sqrt(np.sum(np.square(a.state.p_pos - agent.state.p_pos)))
            rew -= 1.0 * (dist < a.size + agent.size)
    return rew


class OriginalSpreadReward(BaseParallelWrapper):
    """Every agent receives the sum over agents of the original reward (``shared_reward``)."""

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        world = self.env.unwrapped.world
        total = sum(original_reward(a, world) for a in world.agents)
        return obs, {a: total for a in rewards}, terminated, truncated, infos


def make(
    N: int = 3,
    reward: str = "original",  # the original MPE's shared reward (VM3-AC ran it); or "mpe2"
    local_ratio: float | None = None,  # reward "mpe2" only: mpe2's default 0.5 when None
    max_cycles: int = 25,  # MPE / MADDPG episode length
    physics: str = "original",  # envs/particle_physics.py: the papers' MPE integration order
) -> ParallelEnv:
    """N agents cover N landmarks."""
    if N < 1:
        raise ValueError(f"cooperative_navigation: N must be >= 1 agent, got {N}")
    if reward not in REWARDS:
        raise ValueError(f"cooperative_navigation: reward must be one of {REWARDS}, got {reward!r}")
    if reward == "original" and local_ratio is not None:
        raise ValueError("cooperative_navigation: local_ratio applies to reward 'mpe2' only")
    check_physics("cooperative_navigation", physics)
    env = simple_spread_v3.parallel_env(
        N=N,
        local_ratio=0.5 if local_ratio is None else local_ratio,
        max_cycles=max_cycles,
        continuous_actions=True,
    )
    env = with_physics(env, physics)
    return OriginalSpreadReward(env) if reward == "original" else env


def episode_limit(max_cycles: int = 25, **_) -> int:
    return max_cycles
