"""IAC's Simple World (IAC §5.1, Figs. 2-3): two agents, one continuous action each, one step.

The joint action a = (a_1, a_2) is a point of the plane. IAC §5.1 calls the two Gaussians, with
means [4, 3] and [-6, -6] and variances 5 and 2, "the reward distributions in the task"; the
shared reward is their densities summed, times ``scale``:

    r(a) = scale * sum_k  N(a; mean_k, variance_k I) = scale * sum_k exp(-|a - mean_k|^2 /
           (2 variance_k)) / (2 pi variance_k)

Both areas reward. Normalised, the narrow one at [-6, -6] peaks higher (scale / (4 pi) against
scale / (10 pi) at [4, 3]), so [4, 3], wider and nearer the origin, is the local optimum an
individual explorer settles on and [-6, -6] the better area collaborative exploration should
find (IAC §5.3, Figs. 2-3). ``scale`` (100, harness choice) puts the peaks at about 8 and 3.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.one_step import OneStepGame


class SimpleWorld(OneStepGame):
    def __init__(self, means, variances, scale: float, action_bound: float):
        self.means = np.asarray(means, float)
        self.variances = np.asarray(variances, float)
        self.scale = float(scale)
        k = len(self.means)
        if self.means.shape != (k, 2) or self.variances.shape != (k,):
            raise ValueError("simple_world: give one 2-d mean and one variance per distribution")
        if np.any(self.variances <= 0):
            raise ValueError(f"simple_world: variances must be > 0, got {list(self.variances)}")
        box = spaces.Box(-action_bound, action_bound, (1,), np.float32)
        super().__init__(2, box, "simple_world")
        self._obs_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self._ids = {a: np.eye(2, dtype=np.float32)[i] for i, a in enumerate(self.possible_agents)}

    # The task "has no state" (IAC §5.1): each agent observes its own one-hot index, constant,
    # instead of the shared [1.0]. Per-agent networks read a constant either way; a network
    # shared by the agents, as the official IAC critic is (algorithms/models/attention_critic.py),
    # needs it to tell them apart, since the local optimum [4, 3] asks them for different actions
    # (PyMARL's agent id for shared networks; harness choice: the official code for this task
    # was not published). The state stays [1.0].
    def reset(self, seed: int | None = None, options: dict | None = None):
        _, infos = super().reset(seed, options)
        return {a: self._ids[a].copy() for a in self.agents}, infos

    def step(self, actions: dict):
        _, rewards, terminations, truncations, infos = super().step(actions)
        return {a: self._ids[a].copy() for a in rewards}, rewards, terminations, truncations, infos

    def payoff(self, actions) -> float:
        # Out-of-bounds actions are clipped, as mpe2/PettingZoo clip continuous actions.
        low, high = self._act_space.low[0], self._act_space.high[0]
        a = np.clip([float(np.asarray(x).ravel()[0]) for x in actions], low, high)
        sq = np.sum((a[None, :] - self.means) ** 2, axis=1)
        density = np.exp(-sq / (2.0 * self.variances)) / (2.0 * np.pi * self.variances)
        return float(self.scale * np.sum(density))


def make(
    means=((4.0, 3.0), (-6.0, -6.0)),  # IAC §5.1
    variances=(5.0, 2.0),  # IAC §5.1
    scale=100.0,  # harness choice: peaks of about 8 ([-6, -6]) and 3 ([4, 3])
    action_bound=10.0,  # harness choice: both areas and IAC Fig. 3's policies fit in [-10, 10]
) -> ParallelEnv:
    """Two agents, Box(-action_bound, action_bound, (1,)) actions, each observing its own index."""
    return SimpleWorld(means, variances, scale, action_bound)


def episode_limit(**_) -> int:
    return 1  # one-step game (IAC §5.1)
