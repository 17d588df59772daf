"""IAC's 3x3 cooperative matrix game (IAC §3, Table 1): one step, two agents, three actions.

The optimum (A, A) pays 8 but any miscoordination with A costs -12, so an individual-value
learner such as QMIX settles on the safe (B/C, B/C) block paying 0 (IAC Tables 2-3).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.one_step import OneStepGame

# IAC Table 1: rows are agent 1's action (A, B, C), columns agent 2's.
PAYOFF = ((8.0, -12.0, -12.0), (-12.0, 0.0, 0.0), (-12.0, 0.0, 0.0))


class MatrixGame(OneStepGame):
    def __init__(self, payoff):
        table = np.asarray(payoff, float)
        if table.ndim != 2 or table.shape[0] != table.shape[1]:
            raise ValueError(f"matrix_game: payoff must be a square table, got shape {table.shape}")
        super().__init__(2, spaces.Discrete(table.shape[0]), "matrix_game")
        self.table = table

    def payoff(self, actions) -> float:
        return self.table[int(actions[0]), int(actions[1])]


def make(payoff=PAYOFF) -> ParallelEnv:
    """Two agents, Discrete(3) actions, constant observation [1.0]; payoff from IAC Table 1."""
    return MatrixGame(payoff)


def episode_limit(**_) -> int:
    return 1  # one-step game (IAC §3)
