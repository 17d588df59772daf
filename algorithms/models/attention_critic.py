"""The shared attention critic of MAAC (Iqbal & Sha, ICML 2019, §3.2) and IAC (eqs. 19-21),
for all seeds at once.

    e_i = g_i(o_i, u_i)                                   (per-agent encoder, one layer + ReLU)
    alpha_ij ∝ exp(e_j^T W_k^T W_q e_i / sqrt(d)),  j != i (eq. 21; MAAC scales by sqrt(d))
    x_i = sum_{j != i} alpha_ij h(V e_j)                  (eq. 20; W_k, W_q, V shared by agents)
    Q_i = f_i(e_i, x_i)                                   (eq. 19; per-agent head)

with several heads, each attending with its own W_k, W_q, V on ``hidden / heads`` features
(MAAC's multi-head attention; IAC §4.2 "we adopt a multi-head attention mechanism"). Keys and
queries have no bias and values are a linear layer and a ReLU, as MAAC's code (and IAC's, which
builds on it) has them.

Q_i reads its own encoding e_i = g_i(o_i, u_i), as eq. 19 writes. (The IAC repository feeds its
head an encoding of o_i alone, MAAC's discrete-action layout, where Q_i is output per action;
with continuous actions that leaves Q_i blind to u_i, so the paper's eq. 19 is followed.)

``attend=False`` keeps the encoder and head only, Q_i = f_i(g_i(o_i, u_i)): the individual
critic of DDPG-MIX, SQ and SIQ (IAC §5.2), which differ from IAC and SIAQ by the attention alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedLinear, StackedMLP


class AttentionCritic(nn.Module):
    """Q_i(o, u) for every agent: inputs ``obs [S, N, B, obs]`` and ``act [S, N, B, A]``."""

    def __init__(
        self,
        init: SeedStreams,
        n_agents: int,
        obs_dim: int,
        action_dim: int,
        hidden: int,
        heads: int,
        attend: bool = True,
    ):
        super().__init__()
        if attend and n_agents < 2:
            raise ValueError("attention critic: needs at least two agents to attend to")
        if hidden % heads:
            raise ValueError(f"attention critic: hidden {hidden} is not a multiple of heads {heads}")
        self.attend, self.heads, self.d = attend, heads, hidden // heads
        self.encoder = StackedLinear(init, n_agents, obs_dim + action_dim, hidden)  # g_i
        if attend:
            bound = 1.0 / math.sqrt(hidden)  # torch.nn.Linear's initialisation, no bias
            self.W_k = nn.Parameter(init.uniform(-bound, bound, hidden, hidden))
            self.W_q = nn.Parameter(init.uniform(-bound, bound, hidden, hidden))
            self.V = StackedLinear(init, 1, hidden, hidden)  # h(V e_j): Linear, then ReLU
        self.head = StackedMLP(init, n_agents, 2 * hidden if attend else hidden, [hidden], 1)  # f_i

    def forward(
        self, obs: torch.Tensor, act: torch.Tensor, own_gradient_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Q ``[S, N, B]``, attention logits ``[S, heads, B, N, N]`` or None).

        The logits are returned for MAAC's regulariser on their magnitude; the diagonal (an
        agent attending to itself) is excluded from the softmax. ``own_gradient_only``: the
        gradient of Q_i reaches agent i's own (o_i, u_i) only, the other agents' encodings
        entering Q_i as constants (MAAC's policy gradient, eq. 8): Q_i reads its own e_i
        through the query and the head and every other e_j through keys and values, so
        detaching the keys' and values' input separates the agents in one pass."""
        e = self.encoder(torch.cat([obs, act], -1)).relu()  # e_i = g_i(o_i, u_i)  [S,N,B,H]
        if not self.attend:
            return self.head(e).squeeze(-1), None
        S, N, B, H = e.shape
        flat = e.transpose(1, 2).reshape(S, B * N, H)  # [S, B*N, H]: rows (b, agent)
        others = flat.detach() if own_gradient_only else flat

        def per_head(x: torch.Tensor) -> torch.Tensor:  # [S, B*N, H] -> [S, heads, B, N, d]
            return x.view(S, B, N, self.heads, self.d).permute(0, 3, 1, 2, 4)

        keys = per_head(others @ self.W_k)
        queries = per_head(flat @ self.W_q)
        values = per_head(self.V(others.unsqueeze(1)).squeeze(1).relu())
        logits = queries @ keys.transpose(-1, -2) / math.sqrt(self.d)  # [S, heads, B, N_i, N_j]
        mask = torch.eye(N, dtype=torch.bool, device=e.device)
        alpha = logits.masked_fill(mask, float("-inf")).softmax(-1)  # eq. 21, j != i
        x = (alpha @ values).permute(0, 3, 2, 1, 4).reshape(S, N, B, H)  # eq. 20, heads concatenated
        q = self.head(torch.cat([e, x], -1)).squeeze(-1)  # eq. 19
        return q, logits.masked_fill(mask, 0.0)
