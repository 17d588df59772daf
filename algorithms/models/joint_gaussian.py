"""IAC's collaborative exploration module (Ma et al., AAMAS 2021, §4.1): a joint Gaussian
policy over all agents' actions, for all seeds at once.

    u = mu(o) + sigma(o) eps_N + L(s) eps_M                                         (eq. 14)
    Sigma = L L^T + D,  L = f_psi(s) of size (N A) x m,  D = diag(sigma^2)         (eqs. 12-13)

mu_i and sigma_i are the outputs of agent i's individual policy pi_i(o_i; theta_i); the
collaborative exploration matrix L comes from a shared network on the global state. The joint
log-density is eq. 10's multivariate normal, computed with torch's LowRankMultivariateNormal
(Woodbury identity, no (NA)^2 inverse). At execution eps_N = eps_M = 0: each agent plays its
own mean mu_i(o_i), so execution stays decentralised (§4.1).

Rank ``m = 0`` removes L: the agents' Gaussians are independent, the joint log-density is the
sum of the individual ones (eq. 11), the exploration of SIQ and SIAQ (§5.2).

D, the independent part. The official code (YiqinYang/IAC, ``IAC/actor.py``) fixes
D = 1e-6 I, so practically all exploration noise comes from L and is perfectly correlated across
agents (rank 1): that is the default (``fixed_variance``). Eq. 14's reading, a sigma_i(o_i)
learned by each agent's policy, is the setting ``fixed_variance: None`` (the rank-0 SIQ and
SIAQ always learn theirs: without L they would not explore at all).

Scale (harness choice, following the IAC repository where actions lie in [-1, 1]): the mean is
``centre + half_range * tanh(.)``, L is ``half_range * tanh(.)`` per action dimension and sigma
is ``half_range * exp(log_std)`` (or ``half_range * sqrt(fixed_variance)``), so the policy
lives in the task's action units. Samples are not squashed (eq. 10 is a plain Gaussian); the
loop clips the played action to the bounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import LowRankMultivariateNormal, Normal

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedMLP


class JointGaussianPolicy(nn.Module):
    def __init__(
        self,
        init: SeedStreams,
        n_agents: int,
        obs_dim: int,
        state_dim: int,
        action_low: Sequence[float],
        action_high: Sequence[float],
        hidden: Sequence[int],
        rank: int,
        log_std_bounds: Sequence[float],
        fixed_variance: float | None = None,
    ):
        super().__init__()
        self.N, self.A, self.rank = n_agents, len(action_low), rank
        self.fixed_variance = fixed_variance  # D = fixed_variance I (official), None: learned sigma_i
        outputs = self.A if fixed_variance is not None else 2 * self.A  # mu_i (and log sigma_i)
        self.individual = StackedMLP(init, n_agents, obs_dim, hidden, outputs)  # pi_i
        if rank:
            self.collaborative = StackedMLP(init, 1, state_dim, hidden, n_agents * self.A * rank)  # f_psi (eq. 13)
        low = torch.tensor(action_low, dtype=torch.float32)
        high = torch.tensor(action_high, dtype=torch.float32)
        # Constants of the task, not per-seed state: kept out of checkpoints.
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)
        self.register_buffer("centre", (high + low) / 2, persistent=False)
        self.register_buffer("half_range", (high - low) / 2, persistent=False)
        self.log_std_min, self.log_std_max = log_std_bounds

    def parts(self, obs: torch.Tensor, state: torch.Tensor | None):
        """mu, sigma ``[S, N, B, A]`` (eq. 14's individual outputs) and L ``[S, B, N*A, m]``
        (None at rank 0). obs ``[S, N, B, obs]``, state ``[S, B, state]``."""
        out = self.individual(obs)
        mu = self.centre + self.half_range * torch.tanh(out[..., : self.A])
        if self.fixed_variance is not None:
            sigma = (self.half_range * self.fixed_variance**0.5).expand(mu.shape)
        else:
            log_std = out[..., self.A :]
            sigma = self.half_range * log_std.clamp(self.log_std_min, self.log_std_max).exp()
        if not self.rank:
            return mu, sigma, None
        S, B = state.shape[:2]
        L = torch.tanh(self.collaborative(state.unsqueeze(1))).view(S, B, self.N * self.A, self.rank)
        return mu, sigma, L * self.half_range.repeat(self.N).unsqueeze(-1)

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The execution action mu(o) ``[S, N, B, A]`` (eps_N = eps_M = 0, §4.1)."""
        mu = self.individual(obs)[..., : self.A]
        return self.centre + self.half_range * torch.tanh(mu)

    def sample(self, obs, state, eps_N: torch.Tensor, eps_M: torch.Tensor | None, jitter=None):
        """Reparameterised joint action (eq. 14) and log-densities.

        eps_N ``[S, N, B, A]``, eps_M ``[S, B, m]``; ``jitter [S, N, B, A]`` (in half action
        ranges), if given, shifts the mean before sampling and in the density: the official
        code's ``loc = mu + 0.05 U[0, 1)`` (``IAC/actor.py`` lines 46-47), in neither paper.
        Returns u ``[S, N, B, A]``, the joint log pi(u | o, s) ``[S, B]`` (eq. 10) and, at rank
        0, the individual log pi_i(u_i | o_i) ``[S, N, B]`` (None otherwise: with L the agents'
        actions are not independent)."""
        mu, sigma, L = self.parts(obs, state)
        if jitter is not None:
            mu = mu + self.half_range * jitter
        u = mu + sigma * eps_N
        if L is None:
            log_pi_i = Normal(mu, sigma, validate_args=False).log_prob(u).sum(-1)
            return u, log_pi_i.sum(1), log_pi_i
        S, N, B, A = u.shape
        u = u + (L @ eps_M.unsqueeze(-1)).view(S, B, N, A).transpose(1, 2)  # + L eps_M
        flat = lambda x: x.transpose(1, 2).reshape(S, B, N * A)  # noqa: E731: agent-major joint vector
        joint = LowRankMultivariateNormal(flat(mu), L, flat(sigma).pow(2), validate_args=False)
        return u, joint.log_prob(flat(u)), None

    def covariance(self, obs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Sigma = L L^T + D ``[S, B, N*A, N*A]`` (eq. 12), agent-major: what IAC Fig. 5 draws."""
        _, sigma, L = self.parts(obs, state)
        S, N, B, A = sigma.shape
        D = torch.diag_embed(sigma.transpose(1, 2).reshape(S, B, N * A).pow(2))
        return D if L is None else D + L @ L.transpose(-1, -2)

