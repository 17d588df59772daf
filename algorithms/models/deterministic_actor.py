"""Deterministic actor mu_theta_i(o_i) squashed into the action bounds (DDPG, MADDPG, DDPG-MIX)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedMLP


class DeterministicActor(nn.Module):
    """a = low + (tanh(u(o)) + 1)(high - low)/2 per agent; also returns the pre-tanh u."""

    def __init__(
        self,
        init: SeedStreams,
        n_agents: int,
        obs_dim: int,
        action_low: Sequence[float],
        action_high: Sequence[float],
        hidden: Sequence[int],
    ):
        super().__init__()
        self.net = StackedMLP(init, n_agents, obs_dim, hidden, len(action_low))
        low = torch.tensor(action_low, dtype=torch.float32)
        high = torch.tensor(action_high, dtype=torch.float32)
        # Constants of the task, not per-seed state: kept out of checkpoints.
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs ``[S,N,B,obs]`` -> (action ``[S,N,B,A]``, pre-activation u ``[S,N,B,A]``)."""
        u = self.net(obs)
        return self.low + (torch.tanh(u) + 1) * (self.high - self.low) / 2, u
