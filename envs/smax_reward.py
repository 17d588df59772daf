"""Sparse SMAC reward (VM3-AC §6): paid only when a unit dies, plus a time penalty.

The paper gives the shape ("rewards when an ally or an enemy dies and a time penalty") but its
values are in an appendix we do not have, so every value is a setting of the task
(see ``envs.smax_parallel.make`` for the defaults and why).

The reward is computed on the host in float64 from the step's death counts, with the same
expression for one copy (Python numbers) and for a batch (NumPy arrays), so the ParallelEnv
and the vectorised batch give bit-identical rewards.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SparseReward:
    enemy_death: float  # paid for each enemy unit that dies during the step
    ally_death: float  # subtracted for each allied unit that dies during the step
    time_penalty: float  # subtracted on every step
    win: float  # paid once, on the step the last enemy dies while an ally lives

    def __call__(self, enemy_deaths, ally_deaths, won):
        """Team reward of one step; works elementwise on NumPy arrays."""
        return (
            self.enemy_death * enemy_deaths
            - self.ally_death * ally_deaths
            - self.time_penalty
            + self.win * won
        )
