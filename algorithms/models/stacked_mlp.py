"""MLPs whose parameters carry a leading seed axis and an agent axis.

One batched matmul serves every seed and agent: on a CPU, small MLPs are dominated by per-call
overhead, on a GPU this is what fills the device. Inputs are ``[S, N, B, in]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams


class StackedLinear(nn.Module):
    """``S x N`` independent linear layers; seed k's weights come from seed k's generator."""

    def __init__(self, init: SeedStreams, n_agents: int, in_dim: int, out_dim: int):
        super().__init__()
        # torch.nn.Linear's default initialisation: U(-1/sqrt(in), 1/sqrt(in)) for both.
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(init.uniform(-bound, bound, n_agents, in_dim, out_dim))
        self.bias = nn.Parameter(init.uniform(-bound, bound, n_agents, 1, out_dim))

    def forward(self, x: torch.Tensor, members: slice = slice(None)) -> torch.Tensor:
        """x ``[S, N', B, in]`` -> ``[S, N', B, out]``, N' the agents (members) selected."""
        weight, bias = self.weight[:, members], self.bias[:, members]
        return torch.baddbmm(
            bias.flatten(0, 1), x.flatten(0, 1), weight.flatten(0, 1)
        ).unflatten(0, weight.shape[:2])


class StackedMLP(nn.Module):
    """ReLU MLP ``in -> hidden... -> out`` for every seed and agent at once."""

    def __init__(
        self, init: SeedStreams, n_agents: int, in_dim: int, hidden: Sequence[int], out_dim: int
    ):
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(
            StackedLinear(init, n_agents, a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, x: torch.Tensor, members: slice = slice(None)) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = layer(x, members).relu_()  # in place: the matmul's output is not needed again
        return self.layers[-1](x, members)
