"""SMAC's team reward on SMAX: sparse (VM3-AC §6, the default) or SMAX's own dense reward.

Sparse: paid only when a unit dies, plus a time penalty. The paper gives the shape ("rewards
when an ally or an enemy dies and a time penalty") but its values are in an appendix we do not
have, so every value is a setting of the task (see ``envs.smax_parallel.make`` for the
defaults and why).

Dense (``reward: smax``): SMAX's own reward, as JaxMARL's SMAX baselines learn from it (the
damage-shaped reward published SMAC results use, on SMAX's scale): each step pays the enemy
health lost, each unit's loss as a fraction of its type's full health, summed and divided by
the number of enemies, plus 1.0 on the step the battle is won (``SMAX.compute_reward``). A
whole won battle pays 2.0. It lets the SMAC learners be checked where published results exist
(issue 28) before they are judged on the sparse maps. ``scale`` multiplies it: JaxMARL's SMAX
Q-learning baselines use 10 ("REW_SCALE: 10, scale the reward to the original scale of SMAC",
whose returns are normalised to 20; FLAIROx/JaxMARL ``baselines/QLearning/config/alg/ql_rnn_smax.yaml``).

Both are computed on the host in float64 from the step's outputs (``envs.smax_dynamics``), with
the same expression for one copy (0-d arrays) and for a batch (arrays), so the ParallelEnv and
the vectorised batch give bit-identical rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REWARDS = ("sparse", "smax")  # the task setting `reward`


@dataclass(frozen=True)
class SparseReward:
    enemy_death: float  # paid for each enemy unit that dies during the step
    ally_death: float  # subtracted for each allied unit that dies during the step
    time_penalty: float  # subtracted on every step
    win: float  # paid once, on the step the last enemy dies while an ally lives

    def __call__(self, step):
        """Team reward of a step (``smax_dynamics.Transition`` or ``BatchedTransition`` on the
        host); works elementwise on NumPy arrays."""
        return (
            self.enemy_death * step.enemy_deaths
            - self.ally_death * step.ally_deaths
            - self.time_penalty
            + self.win * step.won
        )


@dataclass(frozen=True)
class SmaxReward:
    scale: float = 1.0  # 1: SMAX's own scale; 1.0 * x is x exactly, so scale 1 is the plain reward

    def __call__(self, step):
        """SMAX's own team reward of a step, times ``scale``, as float64."""
        return self.scale * np.asarray(step.smax_reward, np.float64)
