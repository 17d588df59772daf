"""VM3-AC on FOP (Kim et al., AAMAS 2023, §6, "Experiment on discrete action task"): "we
implemented VM3-AC on the top of FOP by introducing the latent variable and replacing the
entropy term in [FOP] with the MI".

What changes from ``algorithms/learners/fop.py``:

- the latent z ~ N(0, I) is drawn each step, shared by the agents of an env copy, and every
  policy reads it: pi_i(u_i | tau_i, z) (eq. 5); at execution z = E[z] = 0 by default, or any
  mode of ``algorithms/components/execution_latents.py`` (Table 1's modes);
- the variational distribution q_xi_i(u_j | u_i, o_i, o_j), categorical here (the discrete
  counterpart of §5's Gaussian q_xi): one MLP per agent i from [one-hot u_i, o_i, o_j] to the
  logits of partner j's action;
- FOP's entropy term alpha log pi_i(u_i) becomes eq. 11's per-agent MI term with FOP's
  temperature alpha in the role of beta:
      alpha [log pi_i(u_i) - 1/N sum_{j != i} (log q(u_i | u_j) + log q(u_j | u_i))],
  in the critic target (the next step's sampled actions) and in the policy improvement, where
  agent i's expectation runs over its own action u while the partners' actions u_j are drawn
  from their current policies with the same z and held fixed (eq. 15). Term (b)
  log q_xi_i(u_j | u) trains xi_i with the actor (eq. 20); term (a) log q_xi_j(u | u_j) is agent
  j's network and is detached (§5), as in ``algorithms/learners/vm3ac.py``.

The temperature keeps FOP's annealed schedule, so FOP and this learner differ in the latent and
the MI term only (the paper's appendix with its values is not available).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from algorithms.components.execution_latents import DRAWING, LATENT_MODES, EpisodeLatents
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import check, check_hidden, check_integer
from algorithms.learner import EXPLORE
from algorithms.learners.fop import FOP, FOPSettings
from algorithms.models import masked_categorical as mc
from algorithms.models.partner_model import partners_of
from algorithms.models.stacked_mlp import StackedMLP


@dataclass(frozen=True)
class VM3ACFOPSettings(FOPSettings):
    z_dim: int  # dimension of the latent z ~ N(0, I)
    q_hidden: tuple[int, ...]  # hidden layers of q_xi_i

    def __post_init__(self):
        super().__post_init__()
        check_integer(self, "z_dim")
        check(self.z_dim > 0, "z_dim", "must be > 0 (FOP itself is the learner without z)", self.z_dim)
        check_hidden(self, "q_hidden")


class VM3ACFOP(FOP):
    Settings = VM3ACFOPSettings
    name = "vm3ac_fop"

    def __init__(self, spec, seeds: Sequence[int], settings: VM3ACFOPSettings):
        super().__init__(spec, seeds, settings)
        self.register_buffer("others", partners_of(spec.n_agents), persistent=False)

    # ---- FOP's hooks -------------------------------------------------------------------------
    def extra_size(self) -> int:
        return self.settings.z_dim

    def build_parts(self, init: SeedStreams, spec) -> None:
        N, A = spec.n_agents, spec.action_dim
        self.q_xi = StackedMLP(init, N, A + 2 * spec.obs_dim, list(self.settings.q_hidden), A)

    def actor_parameters(self) -> list[torch.nn.Parameter]:
        return [*self.actor.parameters(), *self.q_xi.parameters()]

    @classmethod
    def execution_modes(cls, settings) -> tuple[str, ...]:
        return LATENT_MODES  # z = 0 first: the headline (§5)

    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None):
        own = self.actor.begin(None if memory is None else memory[0], started, obs)
        latents = memory[1] if memory is not None else None
        if mode in DRAWING:  # evaluation starts every copy at once
            latents = EpisodeLatents(mode, noise, started.shape[1], self.n_agents, self.settings.z_dim)
        return own, latents

    def policy_memory(self, memory):
        return memory[0]

    def with_policy_memory(self, memory, policy_memory):
        return policy_memory, memory[1]

    def step_inputs(self, memory, mode, noise, drawing, like):
        S, E, N = like.shape[:3]
        if mode == EXPLORE:  # one z per copy and step, shared by its agents (Algorithm 1)
            z = self.explore.normal(E, 1, self.settings.z_dim, active=drawing).expand(S, E, N, self.settings.z_dim)
        elif mode == "zero":
            z = like.new_zeros(S, E, N, self.settings.z_dim)
        elif mode in DRAWING:
            z = memory[1].draw()
        else:
            raise ValueError(f"{self.name}: unknown mode '{mode}' (modes: {', '.join(LATENT_MODES)})")
        return (z,)

    def extra_inputs(self, like, active):
        """A fresh z per row of every episode, shared by the agents (as the continuous VM3-AC
        draws z afresh for each sampled transition)."""
        S, B, T1, N = like.shape[:4]
        z = self.update_noise.normal(B, T1, 1, self.settings.z_dim, active=active)
        return (z.expand(S, B, T1, N, self.settings.z_dim),)

    # ---- q_xi --------------------------------------------------------------------------------
    def partner_log_probs(self, obs: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """log q_xi_i(. | u_i, o_i, o_j) for every predictor i and partner j != i.

        ``obs [S, R, N, obs]``, ``own [S, R, C, N, A]`` (C candidate one-hot actions of each
        predictor) -> ``[S, R, C, N (i), N (j), A]``, zeros where j = i.
        """
        S, R, C, N, A = own.shape
        o_i, o_j = self._observation_pairs(obs)  # [S, N, R, N-1, obs] each
        u_i = own.permute(0, 3, 1, 2, 4)[:, :, :, :, None].expand(S, N, R, C, N - 1, A)
        rows = lambda x: x[:, :, :, None].expand(S, N, R, C, N - 1, x.shape[-1])  # noqa: E731
        x = torch.cat([u_i, rows(o_i), rows(o_j)], -1).reshape(S, N, R * C * (N - 1), -1)
        return self._spread(self.q_xi(x).view(S, N, R, C, N - 1, A))

    def every_own_action_log_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """``partner_log_probs`` for every own action u_i = 0..A-1 (C = A), computed once per
        observation pair: the first layer is linear, so its observation part is shared by the
        A candidates and each one-hot candidate only adds its row of the layer's weights."""
        S, R, N = obs.shape[:3]
        A = self.n_actions
        o_i, o_j = self._observation_pairs(obs)
        first, *rest = self.q_xi.layers
        weight_u, weight_o = first.weight[:, :, :A], first.weight[:, :, A:]  # [S, N, A | 2 obs, H]
        x = torch.cat([o_i, o_j], -1).reshape(S, N, R * (N - 1), -1)
        base = torch.baddbmm(first.bias.flatten(0, 1), x.flatten(0, 1), weight_o.flatten(0, 1))
        base = base.view(S, N, R, 1, N - 1, -1)
        h = (base + weight_u.view(S, N, 1, A, 1, -1)).relu().reshape(S, N, R * A * (N - 1), -1)
        for layer in rest[:-1]:
            h = layer(h).relu()
        return self._spread(rest[-1](h).view(S, N, R, A, N - 1, A))

    def _observation_pairs(self, obs: torch.Tensor):
        """o_i and o_j ``[S, N, R, N-1, obs]`` for every predictor i and partner j != i."""
        S, R, N = obs.shape[:3]
        o_i = obs.transpose(1, 2)[:, :, :, None].expand(S, N, R, N - 1, obs.shape[-1])
        o_j = obs[:, :, self.others].permute(0, 2, 1, 3, 4)
        return o_i, o_j

    def _spread(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``[S, N (i), R, C, N-1, A]`` over partners ``others[i]`` -> log-probabilities
        ``[S, R, C, N (i), N (j), A]`` with zeros where j = i."""
        S, N, R, C, _, A = logits.shape
        logq = torch.log_softmax(logits, -1)
        full = logq.new_zeros(S, N, N, R, C, A)
        full[:, torch.arange(N).unsqueeze(1), self.others] = logq.permute(0, 1, 4, 2, 3, 5)
        return full.permute(0, 3, 4, 1, 2, 5)  # [S, R, C, i, j, A]

    def _pairs(self, obs, u):
        """For sampled joint actions ``u [S, ..., N]``: L[i, j, .] = log q_xi_i(. | u_i, o_i, o_j)
        ``[S, R, N, N, A]`` and the rows' lead shape."""
        lead = u.shape[:-1]
        S, N = u.shape[0], self.n_agents
        o = obs.reshape(S, -1, N, obs.shape[-1])
        own = F.one_hot(u.reshape(S, -1, 1, N), self.n_actions).to(obs.dtype)
        return self.partner_log_probs(o, own)[:, :, 0], lead

    def regulariser(self, log_pi, action, obs, active):
        """alpha's term in the critic target: log pi_i(u_i) - 1/N sum_j [log q(u_i | u_j) +
        log q(u_j | u_i)] (eq. 11 with beta = alpha; the caller scales by alpha)."""
        own = super().regulariser(log_pi, action, obs, active)
        L, lead = self._pairs(obs, action)
        S, N = action.shape[0], self.n_agents
        u = action.reshape(S, -1, N)
        # G[p, q] = log q_xi_p(u_q | u_p, o_p, o_q): agent p's term (b), agent q's term (a)
        G = L.gather(-1, u[:, :, None, :, None].expand(-1, -1, N, N, 1)).squeeze(-1)
        term_b, term_a = G.sum(3), G.sum(2)
        return own - ((term_a + term_b) / N).view(*lead, N)

    def partners(self, log_pi, active):
        """The partners' actions u ~ pi(. | tau, z) at every row (detached), drawn with the
        same z the policy loss's pi read (eq. 15: the others are held fixed)."""
        return mc.sample(self.update_noise, log_pi.detach(), active)

    def improvement_terms(self, log_pi, partners, obs):
        """For each action u of agent i: 1/N sum_{j != i} [log q_xi_i(u_j | u) +
        log q_xi_j(u | u_j)], the second detached (§5)."""
        S, B, T, N, A = log_pi.shape
        u = partners[:, :, :T].reshape(S, -1, N)
        o = obs.reshape(S, -1, N, obs.shape[-1])
        # term (a): agent j's q at its own sampled u_j, over every action of agent i
        with torch.no_grad():
            L = self.partner_log_probs(o, F.one_hot(u.unsqueeze(2), A).to(o.dtype))[:, :, 0]
            term_a = L.sum(2)  # [S, R, i, A]: sum_j log q_j(. of i | u_j)
        # term (b): agent i's q for every candidate u of its own, at each partner's u_j
        Lc = self.every_own_action_log_probs(o)  # [S, R, C, i, j, A]
        u_j = u[:, :, None, None, :].expand(-1, -1, A, N, N).unsqueeze(-1)
        term_b = Lc.gather(-1, u_j).squeeze(-1).sum(-1).transpose(2, 3)  # [S, R, i, C]
        return ((term_a + term_b) / N).view(S, B, T, N, A)
