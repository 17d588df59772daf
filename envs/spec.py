"""What a learner may know about a task: sizes, bounds and limits, nothing else."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSpec:
    """Shapes and bounds of a task as seen through the batched wrapper.

    Every agent shares one observation size and one action space (the wrapper pads smaller
    observations with zeros), so learners can stack agents on one axis.
    """

    n_agents: int
    obs_dim: int
    state_dim: int
    discrete: bool
    action_dim: int  # continuous: dimensions per agent; discrete: number of actions
    action_low: tuple[float, ...]  # per dimension; empty for discrete tasks
    action_high: tuple[float, ...]
    episode_limit: int
    reports_wins: bool = False  # episodes end won or lost (SMAC's battle_won), see Step.won
