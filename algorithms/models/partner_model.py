"""A Gaussian model of the other agents' actions given one's own, for every seed and agent.

Agent i holds one network mu_i that predicts each partner j != i's action from agent i's action
and both observations:

    p_i(a_j | a_i, o_i, o_j) = N(a_j; mu_i(a_i, o_i, o_j), diag(sigma_i^2)),

sigma fixed (VM3-AC's q_xi, §5) or learned with the mean by maximum likelihood, one value per
seed, agent and action dimension, floored (SI-MOA's model of other agents: Jaques et al. fit
the whole predictive distribution of the partners' actions).

One network serves all of agent i's partners (o_j tells them apart). Two learners use it:
VM3-AC's variational distribution q_xi_i (Kim et al. 2023 §5, term (b) of eq. 21) and SI-MOA's
model of other agents (Jaques et al. 2019, "influence via modeling other agents").

It is a ``StackedMLP`` on the input ``[a_i, o_i, o_j]`` (in that order), so its parameters and
checkpoint keys are those of the plain network it replaces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedMLP


def partners_of(n_agents: int) -> torch.Tensor:
    """``[N, N-1]``: row i lists the agents j != i in increasing order."""
    rows = [[j for j in range(n_agents) if j != i] for i in range(n_agents)]
    return torch.tensor(rows, dtype=torch.long).reshape(n_agents, n_agents - 1)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, sigma) -> torch.Tensor:
    """log N(x; mean, diag(sigma^2)), summed over the last (action) axis; ``sigma`` a float or
    a tensor that broadcasts against ``x``."""
    if not isinstance(sigma, torch.Tensor):
        dim = x.shape[-1]
        return -(x - mean).pow(2).sum(-1) / (2 * sigma**2) - 0.5 * dim * math.log(
            2 * math.pi * sigma**2
        )
    z = (x - mean) / sigma
    return (-0.5 * z.pow(2) - sigma.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


class PartnerModel(StackedMLP):
    """mu_i(a_i, o_i, o_j) for every seed, agent i and partner j != i, with a fixed sigma."""

    def __init__(
        self,
        init: SeedStreams,
        n_agents: int,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        sigma,
        sigma_min: float | None = None,
    ):
        """``sigma``: one value, or one per action dimension. ``sigma_min`` None: sigma fixed;
        else learned from ``sigma`` (one value), floored at ``sigma_min``."""
        super().__init__(init, n_agents, action_dim + 2 * obs_dim, hidden, action_dim)
        # A setting, not per-seed state: kept out of checkpoints.
        if isinstance(sigma, (int, float)):
            self.sigma = float(sigma)
        else:
            self.register_buffer("sigma", torch.as_tensor(sigma, dtype=torch.float32), persistent=False)
        self.sigma_min = sigma_min
        if sigma_min is not None:
            S = self.layers[0].weight.shape[0]
            self.log_sigma = torch.nn.Parameter(torch.full((S, n_agents, action_dim), math.log(float(sigma))))
        self.register_buffer("others", partners_of(n_agents), persistent=False)

    def scale(self, lead: int):
        """sigma: the fixed float, or the learned ``[S, N, 1 x lead, A]`` (floored), shaped to
        broadcast against ``[S, N, <lead axes>, A]``."""
        if self.sigma_min is None:
            return self.sigma
        sigma = self.log_sigma.exp().clamp(min=self.sigma_min)
        return sigma.view(*sigma.shape[:2], *[1] * lead, sigma.shape[-1])

    def partners(self, x: torch.Tensor) -> torch.Tensor:
        """Agent j's slice of ``x [S, N, ...]`` for every pair (i, j): ``[S, N, N-1, ...]``."""
        return x[:, self.others]

    def mean(self, o: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """Predicted partner actions for M candidate own actions per row.

        o ``[S, N, B, obs]``; own ``[S, N, M, B, A]`` (agent i's M candidates a_i for row b).
        Returns mu ``[S, N, N-1, M, B, A]``: entry (i, j, m, b) = mu_i(own[i, m, b], o_i, o_j).
        """
        S, N, M, B, A = own.shape
        P, obs = N - 1, o.shape[-1]
        # The first layer, W [a_i; o_i; o_j] + b = W_a a_i + (W_i o_i + b) + W_j o_j, in three
        # parts, each on the rows it varies over (a_i: M x B, o_i: B, o_j: P x B), summed by
        # broadcasting: the same function as the layer on the concatenated input, without
        # building P x M x B copies of it (SI-MOA's influence asks for 4 x 11 x B rows on
        # treasure collection N = 5; benchmarks/update_efficiency.py).
        first = self.layers[0]
        w_a, w_i, w_j = first.weight.split([A, obs, obs], dim=2)  # [S, N, in_part, H]
        h_a = torch.matmul(own.flatten(2, 3), w_a).unflatten(2, (M, B))  # [S, N, M, B, H]
        h_i = torch.baddbmm(first.bias.flatten(0, 1), o.flatten(0, 1), w_i.flatten(0, 1)).unflatten(0, (S, N))
        h_j = torch.matmul(self.partners(o).flatten(2, 3), w_j).unflatten(2, (P, B))  # [S, N, P, B, H]
        x = (h_a.unsqueeze(2) + (h_i.unsqueeze(2) + h_j).unsqueeze(3)).relu_()  # [S, N, P, M, B, H]
        x = x.flatten(2, 4)
        for layer in self.layers[1:-1]:
            x = layer(x).relu_()
        return self.layers[-1](x).unflatten(2, (P, M, B))

    def log_prob(self, o: torch.Tensor, own: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        """log p_i(a_j | a_i, o_i, o_j) ``[S, N, N-1, B]``.

        o ``[S, N, B, obs]``, own ``[S, N, B, A]`` (a_i), partner ``[S, N, N-1, B, A]`` (a_j for
        each pair, e.g. ``self.partners(a)``). Gradients reach the network and ``own``.
        """
        mu = self.mean(o, own.unsqueeze(2)).squeeze(3)  # [S, N, N-1, B, A]
        return gaussian_log_density(partner, mu, self.scale(2))
