"""Centralised critics: every agent's value network reads the same global input (x, a).

``CentralisedCritic`` holds ``heads x N`` member networks (twin Qs are two heads) for every
seed. Because all members read one input, the first layer is a single matmul of that input with
all members' weights stacked, ``[S, M * H, in] @ [S, in, B]``: no per-agent copy of the input,
and one large matmul instead of M small ones.

Activations are kept feature-major, ``[S * M, features, B]``: the first layer's output is then
already laid out member by member, so no layer ever transposes or copies an activation (in
backward either), which on a CPU costs as much as a small matmul.

A policy gradient needs agent i's critic to see agent i's *own* new action while the other
agents' actions stay as given (VM3-AC eq. 15, MADDPG eq. 6). The first layer is linear in the
action, so member i's pre-activation for the joint action with slot i replaced by ``own_i`` is
the shared pre-activation plus ``W_(a_i) (own_i - a_i)``: one small matmul per member, exact in
value and in gradient, instead of N different copies of the whole input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams


def _uniform_layer(init: SeedStreams, members: int, in_dim: int, out_dim: int):
    """Weights ``[S, M, out, in]`` and biases ``[S, M, out, 1]`` drawn as torch.nn.Linear
    draws them, U(-1/sqrt(in), 1/sqrt(in))."""
    bound = 1.0 / math.sqrt(in_dim)
    weight = init.uniform(-bound, bound, members, in_dim, out_dim).transpose(2, 3)
    bias = init.uniform(-bound, bound, members, 1, out_dim).transpose(2, 3)
    return nn.Parameter(weight.contiguous()), nn.Parameter(bias.contiguous())


class CentralisedCritic(nn.Module):
    """``heads`` value networks per agent on ``x`` and (optionally) the joint action."""

    def __init__(
        self,
        init: SeedStreams,
        n_agents: int,
        x_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        heads: int = 1,
    ):
        super().__init__()
        self.N, self.heads, self.A, self.x_dim = n_agents, heads, action_dim, x_dim
        M, in_dim = heads * n_agents, x_dim + n_agents * action_dim
        self.hidden = hidden[0]
        w, b = _uniform_layer(init, M, in_dim, hidden[0])
        # All members' first layers stacked: rows m * H .. (m + 1) * H belong to member m.
        self.w_in = nn.Parameter(w.detach().flatten(1, 2))  # [S, M * H, in]
        self.b_in = nn.Parameter(b.detach().flatten(1, 2))  # [S, M * H, 1]
        # Member m's first layer is its own variable to per-variable clipping (seed_optim).
        self.w_in.members = self.b_in.members = M
        sizes = [*hidden, 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for a, b_ in zip(sizes[:-1], sizes[1:]):
            w, b = _uniform_layer(init, M, a, b_)
            self.weights.append(w)
            self.biases.append(b)
        # Member m = head * N + i reads agent i's action from these columns of the first layer.
        agent = torch.arange(M) % n_agents
        own_cols = x_dim + agent[:, None] * action_dim + torch.arange(action_dim)
        self.register_buffer("own_cols", own_cols, persistent=False)  # [M, A]

    @property
    def members(self) -> int:
        return self.heads * self.N

    def forward(
        self,
        x: torch.Tensor,
        joint: torch.Tensor | None = None,
        own: torch.Tensor | None = None,
        head: int | None = None,
    ) -> torch.Tensor:
        """Values ``[S, heads, N, B]``, or ``[S, N, B]`` of one ``head`` only.

        x ``[S, B, x]``; joint ``[S, B, N, A]`` (None for a state-value critic built with
        ``action_dim = 0``); own ``[S, N, B, A]``: agent i's critics see the joint action with
        slot i replaced by ``own[:, i]`` (gradient reaches ``own`` only through slot i).
        """
        S, B = x.shape[:2]
        H = self.hidden
        lo, hi = (0, self.members) if head is None else (head * self.N, (head + 1) * self.N)
        m = hi - lo
        inp = x if joint is None else torch.cat([x, joint.flatten(2)], -1)
        w_in = self.w_in[:, lo * H : hi * H]
        pre = torch.baddbmm(self.b_in[:, lo * H : hi * H], w_in, inp.transpose(1, 2))
        pre = pre.view(S, m, H, B)
        if own is not None:
            w = w_in.view(S, m, H, -1)  # [S, m, H, in]
            cols = self.own_cols[lo:hi].view(1, m, 1, self.A).expand(S, m, H, self.A)
            delta = (own - joint.transpose(1, 2)).repeat(1, m // self.N, 1, 1)  # [S, m, B, A]
            pre = pre + torch.matmul(torch.gather(w, 3, cols), delta.transpose(2, 3))
        h = pre.relu_().view(S * m, H, B)  # in place: no second activation-sized buffer
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            weight, bias = weight[:, lo:hi].flatten(0, 1), bias[:, lo:hi].flatten(0, 1)
            h = torch.baddbmm(bias, weight, h)
            if k < len(self.weights) - 1:
                h = h.relu_()
        values = h.view(S, m, B)
        return values if head is not None else values.view(S, self.heads, self.N, B)
