"""Centralised critics: every agent's value network reads the same global input (x, a).

``CentralisedCritic`` holds ``heads x N`` member networks (twin Qs are two heads) for every
seed. Because all members read one input, the first layer is a single matmul of that input with
all members' weights side by side, ``[S, B, in] @ [S, in, M * H]``: no per-agent copy of the
input, and one large matmul instead of M small ones.

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

from algorithms.seeding import SeedStreams
from algorithms.stacked_mlp import StackedMLP


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
        M, H, in_dim = heads * n_agents, hidden[0], x_dim + n_agents * action_dim
        # Drawn per member as torch.nn.Linear would (U(-1/sqrt(in), 1/sqrt(in))), then laid out
        # side by side for the shared matmul.
        bound = 1.0 / math.sqrt(in_dim)
        w = init.uniform(-bound, bound, M, in_dim, H)  # [S, M, in, H]
        b = init.uniform(-bound, bound, M, 1, H)
        self.w_in = nn.Parameter(w.permute(0, 2, 1, 3).reshape(w.shape[0], in_dim, M * H))
        self.b_in = nn.Parameter(b.permute(0, 2, 1, 3).reshape(w.shape[0], 1, M * H))
        self.rest = StackedMLP(init, M, H, hidden[1:], 1)
        # Member m = head * N + i reads agent i's action from these rows of the first layer.
        agent = torch.arange(M) % n_agents
        own_rows = x_dim + agent[:, None] * action_dim + torch.arange(action_dim)
        self.register_buffer("own_rows", own_rows, persistent=False)  # [M, A]
        self.register_buffer("member", torch.arange(M)[:, None], persistent=False)

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
        M, H = self.members, self.w_in.shape[-1] // self.members
        members = slice(None) if head is None else slice(head * self.N, (head + 1) * self.N)
        m = M if head is None else self.N
        cols = slice(members.start * H, members.stop * H) if head is not None else slice(None)
        inp = x if joint is None else torch.cat([x, joint.flatten(2)], -1)
        pre = torch.baddbmm(self.b_in[..., cols], inp, self.w_in[..., cols])
        pre = pre.view(S, B, m, H).transpose(1, 2)
        if own is not None:
            w = self.w_in.view(S, -1, M, H)[:, self.own_rows[members], self.member[members]]
            delta = (own - joint.transpose(1, 2)).repeat(1, m // self.N, 1, 1)  # [S, m, B, A]
            pre = pre + torch.matmul(delta, w)  # w: [S, m, A, H]
        values = self.rest(torch.relu(pre), members).squeeze(-1)
        return values if head is not None else values.view(S, self.heads, self.N, B)
