"""IAC's Simple World (IAC §5.1, Figs. 2-3): two agents, one continuous action each, one step.

The joint action a = (a_1, a_2) is a point of the plane and the shared reward is a landscape of
two isotropic Gaussian bumps (IAC §5.1 gives only their means and variances):

    r(a) = sum_k  height_k * exp(-|a - mean_k|^2 / (2 * variance_k))

The bumps are unnormalised, so height_k is the reward exactly at mean_k. The paper's figures
show one bright (rewarding) area; we make the bump at [4, 3] reward and the one at [-6, -6]
punish (heights +10 / -10, harness choice), so an explorer that wanders toward [-6, -6] pays.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.one_step import OneStepGame


class SimpleWorld(OneStepGame):
    def __init__(self, means, variances, heights, action_bound: float):
        self.means = np.asarray(means, float)
        self.variances = np.asarray(variances, float)
        self.heights = np.asarray(heights, float)
        k = len(self.means)
        if self.means.shape != (k, 2) or self.variances.shape != (k,) or self.heights.shape != (k,):
            raise ValueError("simple_world: give one 2-d mean, one variance, one height per bump")
        if np.any(self.variances <= 0):
            raise ValueError(f"simple_world: variances must be > 0, got {list(self.variances)}")
        box = spaces.Box(-action_bound, action_bound, (1,), np.float32)
        super().__init__(2, box, "simple_world")

    def payoff(self, actions) -> float:
        # Out-of-bounds actions are clipped, as mpe2/PettingZoo clip continuous actions.
        low, high = self._act_space.low[0], self._act_space.high[0]
        a = np.clip([float(np.asarray(x).ravel()[0]) for x in actions], low, high)
        sq = np.sum((a[None, :] - self.means) ** 2, axis=1)
        return float(np.sum(self.heights * np.exp(-sq / (2.0 * self.variances))))


def make(
    means=((4.0, 3.0), (-6.0, -6.0)),  # IAC §5.1
    variances=(5.0, 2.0),  # IAC §5.1
    heights=(10.0, -10.0),  # harness choice: [4,3] rewards, [-6,-6] punishes (IAC Figs. 2-3)
    action_bound=10.0,  # harness choice: both bumps and IAC Fig. 3's policies fit in [-10, 10]
) -> ParallelEnv:
    """Two agents, Box(-action_bound, action_bound, (1,)) actions, constant observation [1.0]."""
    return SimpleWorld(means, variances, heights, action_bound)


def episode_limit(**_) -> int:
    return 1  # one-step game (IAC §5.1)
