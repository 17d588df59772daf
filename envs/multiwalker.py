"""Multi-walker (VM3-AC §6, Fig. 3a-b): PettingZoo SISL's multiwalker_v9, continuous actions.

VM3-AC runs N = 3 and N = 4 walkers; everything else is the package default (its Appendix F,
which would say otherwise, is not available).
"""

from __future__ import annotations

import numpy as np
from pettingzoo import ParallelEnv
from pettingzoo.sisl import multiwalker_v9
from pettingzoo.utils.wrappers import BaseParallelWrapper


class Multiwalker(BaseParallelWrapper):
    """multiwalker_v9 with two package quirks fixed, everything else passed through.

    1. The package reports its time limit (max_cycles) as a termination; a learner must
       bootstrap there, so a step that ends the episode only by the limit (no fall, package not
       dropped or delivered: the package's own done flags are all False) becomes a truncation.
    2. The package removes a fallen walker's body (remove_on_fall) and its ``state()`` then fails
       on the missing body, i.e. on the last step of every episode that ends in a fall. Our
       state is the package's own (each walker's 24 body/lidar numbers, then the package's x, y,
       angle) with zeros for a removed walker, as the package already does for its observation.
    """

    def step(self, actions: dict):
        obs, rew, term, trunc, info = self.env.step(actions)
        base = self.env.unwrapped.env  # the package's MultiWalkerEnv
        if base.frames >= base.max_cycles:
            for i, agent in enumerate(self.env.possible_agents):
                if term.get(agent) and not base.last_dones[i]:
                    term[agent], trunc[agent] = False, True
        return obs, rew, term, trunc, info

    def state(self) -> np.ndarray:
        base = self.env.unwrapped.env
        width = (self.env.state_space.shape[0] - 3) // base.n_walkers
        walkers = [
            np.asarray(w.get_observation(), float) if w.hull is not None else np.zeros(width)
            for w in base.walkers
        ]
        package = [base.package.position.x, base.package.position.y, base.package.angle]
        return np.concatenate(walkers + [np.asarray(package, float)]).astype(np.float32)


def make(
    N: int = 3,  # VM3-AC §6: N = 3 and N = 4
    position_noise: float = 1e-3,  # pettingzoo default
    angle_noise: float = 1e-3,  # pettingzoo default
    forward_reward: float = 1.0,  # pettingzoo default
    terminate_reward: float = -100.0,  # pettingzoo default
    fall_reward: float = -10.0,  # pettingzoo default
    shared_reward: bool = True,  # pettingzoo default
    terminate_on_fall: bool = True,  # pettingzoo default
    remove_on_fall: bool = True,  # pettingzoo default
    terrain_length: int = 200,  # pettingzoo default
    max_cycles: int = 500,  # pettingzoo default
) -> ParallelEnv:
    """N walkers carry a package: obs (31,), action Box(-1, 1, (4,)) per walker."""
    if N < 2:
        raise ValueError(f"multiwalker: N must be >= 2 walkers to share the package, got {N}")
    return Multiwalker(
        multiwalker_v9.parallel_env(
            n_walkers=N,
            position_noise=position_noise,
            angle_noise=angle_noise,
            forward_reward=forward_reward,
            terminate_reward=terminate_reward,
            fall_reward=fall_reward,
            shared_reward=shared_reward,
            terminate_on_fall=terminate_on_fall,
            remove_on_fall=remove_on_fall,
            terrain_length=terrain_length,
            max_cycles=max_cycles,
        )
    )


def episode_limit(max_cycles: int = 500, **_) -> int:
    return max_cycles
