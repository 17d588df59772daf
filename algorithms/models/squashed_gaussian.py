"""Squashed Gaussian actor pi_phi(a | o, z), optionally conditioned on a latent z shared by
all agents (VM3-AC §5); with ``z_dim = 0`` it is an ordinary SAC-style actor."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedMLP

LOG_2PI = math.log(2 * math.pi)


class SquashedGaussianActor(nn.Module):
    """a = low + (tanh(u) + 1)(high - low)/2 with u ~ N(mu(o, z), sigma(o, z)^2), per agent."""

    def __init__(
        self,
        init: SeedStreams,
        n_agents: int,
        obs_dim: int,
        z_dim: int,
        action_low: Sequence[float],
        action_high: Sequence[float],
        hidden: Sequence[int],
        log_std_bounds: Sequence[float],
    ):
        super().__init__()
        self.z_dim = z_dim
        self.action_dim = len(action_low)
        self.net = StackedMLP(init, n_agents, obs_dim + z_dim, hidden, 2 * self.action_dim)
        low = torch.tensor(action_low, dtype=torch.float32)
        high = torch.tensor(action_high, dtype=torch.float32)
        # Constants of the task, not per-seed state: kept out of checkpoints.
        self.register_buffer("centre", (high + low) / 2, persistent=False)
        self.register_buffer("half_range", (high - low) / 2, persistent=False)
        self.log_std_min, self.log_std_max = log_std_bounds

    def forward(
        self, obs: torch.Tensor, z: torch.Tensor | None, eps: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """obs ``[S,N,B,obs]``, z ``[S,B,z]`` (one z for all agents) or ``[S,N,B,z]`` (each
        agent its own), eps ``[S,N,B,A]``.

        Returns the action ``[S,N,B,A]`` and its log-density ``[S,N,B]``; with ``eps=None``
        the action is the mean action tanh(mu) used for deterministic evaluation.
        """
        if self.z_dim:
            z = z if z.dim() == obs.dim() else z.unsqueeze(1).expand(-1, obs.shape[1], -1, -1)
            obs = torch.cat([obs, z], dim=-1)
        mu, log_std = self.net(obs).chunk(2, dim=-1)
        if eps is None:
            return self.centre + self.half_range * torch.tanh(mu), None
        log_std = log_std.clamp(self.log_std_min, self.log_std_max)
        u = mu + log_std.exp() * eps  # reparameterisation: a = f_phi(o; eps, z) (VM3-AC §5)
        # log N(u) - log|da/du|, with log(1 - tanh(u)^2) = 2(log 2 - u - softplus(-2u)).
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * LOG_2PI).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
        log_prob = log_prob - self.half_range.log().sum()
        return self.centre + self.half_range * torch.tanh(u), log_prob
