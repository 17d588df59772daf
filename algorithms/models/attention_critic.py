"""The attention critic of MAAC (Iqbal & Sha, ICML 2019, §3.2) and IAC (eqs. 19-21), for all
seeds at once.

    e_i = g(o_i, u_i)                                     (encoder, one layer + ReLU)
    alpha_ij ∝ exp((W_k e_j)^T W_q s_i / sqrt(d)),  j != i (eq. 21; MAAC scales by sqrt(d))
    x_i = sum_{j != i} alpha_ij h(V e_j)                  (eq. 20; W_k, W_q, V shared by agents)
    Q_i = f(e_i, x_i)                                     (eq. 19: the head reads i's own e_i)

with several heads, each attending with its own W_k, W_q, V on ``hidden / heads`` features
(MAAC's multi-head attention; IAC §4.2 "we adopt a multi-head attention mechanism"). Keys and
queries have no bias and values are a linear layer and a ReLU, as MAAC's code (and IAC's, which
builds on it) has them.

Two layouts, both from official code:
- ``query``: the query's input s_i. ``"obs"``: an encoding of o_i alone, s_i = g_s(o_i) (one
  layer + ReLU), as both official critics build their selectors (YiqinYang/IAC IAC/critics.py
  line 65; shariqiqbal2810/MAAC utils/critics.py lines 112-119), so agent i's attention does not
  move with its own action. ``"obs_action"``: the query reads e_i, as eqs. 20-21 can be read.
- ``shared``: one g, one g_s and one head f for every agent, as the IAC code has them (the
  ``# share`` lines 60, 62 and 93 of IAC/critics.py; the per-agent lines are commented out); or
  one of each per agent, g_i, g_s,i and f_i, as MAAC's code. W_k, W_q and V are shared in both.

The heads read the (o_i, u_i) encoding in both official codes' continuous reading: IAC's code
does so (``critic_in = cat(sa_encodings[i], ...)``); MAAC's discrete head reads g_s(o_i) and
outputs Q_i per action, which continuous actions cannot, so Q_i reads e_i as eq. 19 writes.

``attend=False`` keeps the encoder and head only, Q_i = f(g(o_i, u_i)): the individual critic
of DDPG-MIX, SQ and SIQ (IAC §5.2), which differ from IAC and SIAQ by the attention alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedLinear, StackedMLP

QUERIES = ("obs", "obs_action")


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
        shared: bool = False,
        query: str = "obs_action",
    ):
        super().__init__()
        if attend and n_agents < 2:
            raise ValueError("attention critic: needs at least two agents to attend to")
        if hidden % heads:
            raise ValueError(f"attention critic: hidden {hidden} is not a multiple of heads {heads}")
        if query not in QUERIES:
            raise ValueError(f"attention critic: query must be one of {', '.join(QUERIES)}, not {query!r}")
        self.attend, self.heads, self.d = attend, heads, hidden // heads
        self.shared, self.query = shared, query
        stacks = 1 if shared else n_agents
        self.encoder = StackedLinear(init, stacks, obs_dim + action_dim, hidden)  # g (or g_i)
        if attend:
            if query == "obs":
                self.query_encoder = StackedLinear(init, stacks, obs_dim, hidden)  # g_s (or g_s,i)
            bound = 1.0 / math.sqrt(hidden)  # torch.nn.Linear's initialisation, no bias
            self.W_k = nn.Parameter(init.uniform(-bound, bound, hidden, hidden))
            self.W_q = nn.Parameter(init.uniform(-bound, bound, hidden, hidden))
            self.V = StackedLinear(init, 1, hidden, hidden)  # h(V e_j): Linear, then ReLU
        self.head = StackedMLP(init, stacks, 2 * hidden if attend else hidden, [hidden], 1)  # f (or f_i)

    def _per_agent(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``module`` on ``x [S, N, B, in]``: a shared module sees every agent's rows as one batch."""
        if not self.shared:
            return module(x)
        S, N, B, _ = x.shape
        return module(x.reshape(S, 1, N * B, -1)).view(S, N, B, -1)

    def forward(
        self, obs: torch.Tensor, act: torch.Tensor, own_gradient_only: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Q ``[S, N, B]``, attention logits ``[S, heads, B, N, N]`` or None).

        The logits are returned for MAAC's regulariser on their magnitude; the diagonal (an
        agent attending to itself) is excluded from the softmax. ``own_gradient_only``: the
        gradient of Q_i reaches agent i's own (o_i, u_i) only, the other agents' encodings
        entering Q_i as constants (MAAC's policy gradient, eq. 8): Q_i reads its own inputs
        through the query and the head and every other e_j through keys and values, so
        detaching the keys' and values' input separates the agents in one pass."""
        e = self._per_agent(self.encoder, torch.cat([obs, act], -1)).relu()  # e_i = g(o_i, u_i)  [S,N,B,H]
        if not self.attend:
            return self._per_agent(self.head, e).squeeze(-1), None
        S, N, B, H = e.shape
        s = self._per_agent(self.query_encoder, obs).relu() if self.query == "obs" else e  # s_i

        def rows(x: torch.Tensor) -> torch.Tensor:  # [S, N, B, H] -> [S, B*N, H]: rows (b, agent)
            return x.transpose(1, 2).reshape(S, B * N, H)

        def per_head(x: torch.Tensor) -> torch.Tensor:  # [S, B*N, H] -> [S, heads, B, N, d]
            return x.view(S, B, N, self.heads, self.d).permute(0, 3, 1, 2, 4)

        others = rows(e.detach() if own_gradient_only else e)
        keys = per_head(others @ self.W_k)
        queries = per_head(rows(s) @ self.W_q)
        values = per_head(self.V(others.unsqueeze(1)).squeeze(1).relu())
        logits = queries @ keys.transpose(-1, -2) / math.sqrt(self.d)  # [S, heads, B, N_i, N_j]
        mask = torch.eye(N, dtype=torch.bool, device=e.device)
        alpha = logits.masked_fill(mask, float("-inf")).softmax(-1)  # eq. 21, j != i
        x = (alpha @ values).permute(0, 3, 2, 1, 4).reshape(S, N, B, H)  # eq. 20, heads concatenated
        q = self._per_agent(self.head, torch.cat([e, x], -1)).squeeze(-1)  # eq. 19
        return q, logits.masked_fill(mask, 0.0)
