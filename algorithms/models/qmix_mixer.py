"""QMIX's monotonic mixing network (Rashid et al. 2018, §4; PyMARL ``modules/mixers/qmix.py``),
for all seeds at once.

Q_tot = ELU(q . |W1(s)| + b1(s)) . |w_final(s)| + V(s): hypernetworks read the state s and emit
the mixing weights, made non-negative by an absolute value, so dQ_tot/dQ_i >= 0 for every
agent i (the monotonicity constraint, eq. 5) and the joint argmax is every agent's own argmax.
The biases b1 and V are unconstrained (they do not multiply any Q_i).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedMLP


class QMixer(nn.Module):
    """Mixes ``q [S, ..., N]`` with ``state [S, ..., state]`` into ``Q_tot [S, ...]``.

    ``hypernet_layers`` 1 is the paper's single linear hypernetwork per weight matrix (and
    PyMARL's default when the key is absent); 2 puts a ReLU layer of ``hypernet_embed`` units in
    front (PyMARL's later ``qmix.yaml``).
    """

    def __init__(
        self,
        init: SeedStreams,
        n_agents: int,
        state_dim: int,
        embed: int,
        hypernet_layers: int,
        hypernet_embed: int,
    ):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        hyper_hidden = [hypernet_embed] * (hypernet_layers - 1)
        self.hyper_w1 = StackedMLP(init, 1, state_dim, hyper_hidden, embed * n_agents)
        self.hyper_w_final = StackedMLP(init, 1, state_dim, hyper_hidden, embed)
        self.hyper_b1 = StackedMLP(init, 1, state_dim, [], embed)  # state-dependent bias
        self.V = StackedMLP(init, 1, state_dim, [embed], 1)  # V(s) in place of a final bias

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        lead = q.shape[:-1]
        S, N, E = q.shape[0], self.n_agents, self.embed
        s = state.reshape(S, 1, -1, state.shape[-1])  # [S, 1, M, state]: the hypernets' batch
        q = q.reshape(S, -1, 1, N)  # [S, M, 1, N]
        w1 = self.hyper_w1(s).abs().view(S, -1, N, E)  # |W1(s)| >= 0 (monotonicity, eq. 5)
        b1 = self.hyper_b1(s).view(S, -1, 1, E)
        # q @ w1 and hidden @ w_final as broadcast products and sums: one (1 x N)(N x E) product
        # per transition is far too small for a batched matmul (2.5x slower on a CPU).
        hidden = F.elu((q.transpose(-1, -2) * w1).sum(-2, keepdim=True) + b1)  # [S, M, 1, E]
        w_final = self.hyper_w_final(s).abs().view(S, -1, 1, E)  # |w_final(s)| >= 0
        v = self.V(s).view(S, -1, 1, 1)
        return ((hidden * w_final).sum(-1, keepdim=True) + v).view(lead)
