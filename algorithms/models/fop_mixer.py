"""FOP's mixing network (Zhang et al., ICML 2021, §4; official code liyheng/FOP,
``modules/mixers/fop.py``), for all seeds at once.

Q_tot(tau, u) = sum_i lambda_i(s, u) [Q_i(tau_i, u_i) - V_i(tau_i)] + V_tot(s): the
individual-global-optimal (IGO) form of FOP's eq. 6, with V_i = alpha log sum exp(Q_i / alpha)
the soft value of agent i and lambda_i > 0 built by multi-head attention on the state and the
joint action (eq. 8). As in the official code the advantage term is detached, its weights are
lambda_i - 1, and V_tot(s) = sum_i Q_i + V(s), so Q_tot = sum_i Q_i + V(s) +
sum_i (lambda_i - 1) (Q_i - V_i) with gradient into every Q_i through the first sum.
"""

from __future__ import annotations

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedMLP


class FOPMixer(nn.Module):
    """Mixes ``q, v [S, ..., N]`` with ``state [S, ..., state]`` and the one-hot joint action
    ``action [S, ..., N, A]`` into ``Q_tot [S, ...]``."""

    def __init__(self, init: SeedStreams, n_agents: int, n_actions: int, state_dim: int, embed: int, heads: int):
        super().__init__()
        self.n_agents, self.heads = n_agents, heads
        N = n_agents
        # Per head: a key |w_k s| (one scalar), agent weights sigma(W_a s) and action weights
        # sigma(W_u [s, u]) (N each); the heads' nn.Linear layers side by side in one layer
        # (torch.nn.Linear's initialisation is per output, so this is the same distribution).
        self.keys = StackedMLP(init, 1, state_dim, [], heads)
        self.agents = StackedMLP(init, 1, state_dim, [], heads * N)
        self.actions = StackedMLP(init, 1, state_dim + N * n_actions, [], heads * N)
        self.V = StackedMLP(init, 1, state_dim, [embed], 1)  # V(s): Linear-ReLU-Linear

    def lambdas(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """lambda_i(s, u) ``[S, M, N]`` > 0: sum over heads of |key| sigma(agent) sigma(action)."""
        S, N, H = state.shape[0], self.n_agents, self.heads
        s = state.reshape(S, 1, -1, state.shape[-1])
        su = torch.cat([s, action.reshape(S, 1, s.shape[2], -1)], -1)
        key = self.keys(s).abs().view(S, -1, H, 1) + 1e-10
        agents = torch.sigmoid(self.agents(s)).view(S, -1, H, N)
        actions = torch.sigmoid(self.actions(su)).view(S, -1, H, N)
        return (key * agents * actions).sum(2)

    def forward(self, q: torch.Tensor, v: torch.Tensor, state: torch.Tensor, action: torch.Tensor):
        lead, S, N = q.shape[:-1], q.shape[0], self.n_agents
        advantage = (q - v).detach().reshape(S, -1, N)  # detached (official code)
        weights = self.lambdas(state, action) - 1  # lambda_i - 1 (official code)
        v_s = self.V(state.reshape(S, 1, -1, state.shape[-1])).view(S, -1)
        q_tot = (advantage * weights).sum(-1) + q.reshape(S, -1, N).sum(-1) + v_s
        return q_tot.view(lead)
