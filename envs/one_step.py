"""A stateless one-step cooperative game as a ParallelEnv (IAC's matrix game, Simple World).

Both IAC tasks (§3 Table 1, §5.1 Simple World) are one-shot games with "no state": every agent
sees the same constant observation, all act once, all receive the same payoff and the episode
ends. The constant observation (and state) is ``[1.0]``, the one-hot index of the only time
step (harness choice): a learner's networks get a non-zero input without any information.
The episode ends by termination, not truncation: there is no next state to bootstrap from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.uniform_spaces import UniformSpaces

_CONSTANT = np.ones(1, np.float32)  # one-hot of the single time step (harness choice)


class OneStepGame(UniformSpaces, ParallelEnv):
    """Two-or-more agents act once; ``payoff(actions)`` is every agent's (shared) reward."""

    metadata = {"render_modes": [], "is_parallelizable": True}

    def __init__(self, n_agents: int, action_space: spaces.Space, name: str):
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self._act_space = action_space
        self._obs_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.state_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.metadata = {**self.metadata, "name": name}

    def payoff(self, actions: list[Any]) -> float:
        raise NotImplementedError

    def reset(self, seed: int | None = None, options: dict | None = None):
        # Nothing is random in these games, so the seed only seeds the action spaces' samplers.
        if seed is not None:
            for i, a in enumerate(self.possible_agents):
                self.action_space(a).seed(seed + i)
        self.agents = self.possible_agents[:]
        return {a: _CONSTANT.copy() for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict):
        reward = float(self.payoff([actions[a] for a in self.possible_agents]))
        done = self.agents
        self.agents = []
        return (
            {a: _CONSTANT.copy() for a in done},
            {a: reward for a in done},
            {a: True for a in done},
            {a: False for a in done},
            {a: {} for a in done},
        )

    def state(self) -> np.ndarray:
        return _CONSTANT.copy()

    def render(self) -> None:
        return None
