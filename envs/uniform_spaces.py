"""For ParallelEnvs whose agents all share one observation space and one action space."""

from __future__ import annotations

from gymnasium import spaces


class UniformSpaces:
    """``observation_space(agent)`` and ``action_space(agent)`` return the same object for
    every agent (PettingZoo's API test asks for the same object on each call)."""

    _obs_space: spaces.Space
    _act_space: spaces.Space

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space
