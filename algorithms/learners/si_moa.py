"""SI-MOA on MA-AC: social influence with a model of other agents (Jaques et al. 2019), the
continuous-action baseline of VM3-AC §6 ("Both MAVEN and SI-MOA are implemented on top of
MA-AC"), batched over seeds.

Everything is MA-AC (``VM3AC`` with beta = 0 and no latent: per-agent squashed Gaussian
policies pi_phi_i(a_i | o_i), centralised V_psi_i(x), twin Q_theta_i(x, a), target V) plus, per
agent i, a model of other agents (MOA) that predicts every partner's NEXT action from agent i's
action now (``algorithms/models/partner_model.py``, the network VM3-AC uses as q_xi):

    p_i(a_j^{t+1} | a_i^t, o_i^t, o_j^t) = N(mu_i(a_i^t, o_i^t, o_j^t), diag(sigma_i^2)),

and an intrinsic reward. One gradient step on a replayed batch of transitions (x, o, a, r, x')
with the next row's joint action a^{t+1}:

1. Influence reward (VM3-AC §3 and eqs. 3-4; Jaques et al.'s causal influence reward c^k with
   a model of other agents, a sum of KLs over the other agents). With a_i^t the replayed action
   and a_i^1..a_i^K ~ pi_i(. | o_i^t) counterfactual actions of agent i,

       c_i = sum_{j != i} D_KL( p_i(a_j^{t+1} | a_i^t, o^t) || (1/K) sum_k p_i(a_j^{t+1} | a_i^k, o^t) ),

   the mixture being the counterfactual marginal p(a_j^{t+1} | o^t). A Gaussian's KL to a
   Gaussian mixture has no closed form: ``mixture_kl`` estimates it by Monte Carlo with L draws
   from the conditional: unbiased for the KL to the K-component mixture, which itself
   overestimates the KL to the true marginal on average (KL is convex in its second argument;
   the excess vanishes as K grows).
2. Critics: VM3-AC eqs. 16-19 with beta = 0 (MA-AC), agent i's critics learning from its own
   reward r + w c_i (Jaques et al.: r^k = alpha e^k + beta c^k, here alpha = 1, beta = w, with
   e the team reward r).
3. Policies: eq. 20 with beta = 0 (MA-AC): agent i ascends Q_theta_i,1 through its own a_i.
4. MOA: maximum likelihood on the partners' replayed next actions (Jaques et al. train the MOA
   by supervised learning on the actions the other agents took at the next step), on the rows
   whose episode goes on (the storage's ``has_next_action``).

Why the next action: given o, the policies pi_j(a_j | o_j) are independent, so a_i^t cannot
change a_j^t; the influence of a_i^t on the partners' future runs through the environment
(a_i^t moves o_j^{t+1}, hence a_j^{t+1}). The same-step form measures only model error.

Choices a reviewer should know:
- c_i is computed at update time on the sampled batch, with the current policies and MOA
  (natural with replay; Jaques et al. compute it as the agents act). It is a reward: no
  gradient flows through it; a policy gains influence through its critic Q_i, which sees a_i.
- The action that influences is the replayed a_i^t, the one that produced the stored outcome.
- The MOA reads (a_i^t, o_i^t, o_j^t), as VM3-AC's q_xi (centralised training); Jaques et al.'s
  MOA is an LSTM on agent i's own view and all agents' actions of step t.
- Scale. Jaques et al.'s actions are discrete, so their KL between two predicted categorical
  distributions does not depend on a hand-set width. A Gaussian MOA's KL grows as 1/sigma^2:
  with a fixed sigma the bonus's size would be our choice, not theirs. By default sigma_i is
  learned with the mean (maximum likelihood, as their MOA fits its whole predictive
  distribution), floored at ``moa_sigma_min``; ``moa_sigma_learned: false`` keeps it fixed at
  ``moa_sigma``. Each agent's c_i is clipped at ``influence_clip`` nats.
- The MOA has its own Adam at ``lr_actor`` (VM3-AC trains q_xi with the policy's rate,
  eq. 20) and its own initialisation stream; the influence draws have their own stream too.
  So with w = 0 the policies and critics follow MA-AC's numbers exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from algorithms.components.seed_optim import SeedAdam
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import check, check_integer, check_positive
from algorithms.components.storage import Field
from algorithms.learners.vm3ac import VM3AC, VM3ACSettings
from algorithms.models.partner_model import PartnerModel


@dataclass(frozen=True)
class SIMOASettings(VM3ACSettings):
    influence_weight: float  # w: agent i's critics learn r + w c_i (Jaques et al.'s beta)
    counterfactuals: int  # K: a_i^k ~ pi_i(. | o_i) forming the marginal p(a_j | o)
    influence_samples: int  # L: Monte Carlo draws a_j ~ p(a_j | a_i, o) per KL estimate
    moa_sigma: float  # the MOA's standard deviation: fixed, or where learning starts
    moa_sigma_learned: bool  # learn sigma_i by maximum likelihood (module docstring: Scale)
    moa_sigma_min: float  # floor of a learned sigma_i
    influence_clip: float  # c_i is clipped at this many nats

    def __post_init__(self):
        super().__post_init__()
        on_ma_ac = "must be 0: SI-MOA is built on MA-AC (VM3-AC §6)"
        check(self.beta == 0, "beta", on_ma_ac, self.beta)
        check(self.z_dim == 0, "z_dim", on_ma_ac, self.z_dim)
        check(
            isinstance(self.influence_weight, (int, float))
            and not isinstance(self.influence_weight, bool)
            and self.influence_weight >= 0,
            "influence_weight",
            "must be >= 0",
            self.influence_weight,
        )
        check_integer(self, "counterfactuals", "influence_samples")
        check_positive(self, "counterfactuals", "influence_samples", "moa_sigma", "moa_sigma_min",
                       "influence_clip")
        check(isinstance(self.moa_sigma_learned, bool), "moa_sigma_learned", "must be true or false",
              self.moa_sigma_learned)


def mixture_kl(mean: torch.Tensor, components: torch.Tensor, sigma, eps: torch.Tensor) -> torch.Tensor:
    """Monte Carlo D_KL( N(mean, diag s^2) || (1/K) sum_k N(components_k, diag s^2) ), s = sigma.

    mean ``[..., A]``, components ``[..., K, A]``, eps ``[..., L, A]`` standard normal draws,
    sigma a float or a tensor broadcasting against ``[..., 1, A]``; returns ``[...]``, the mean
    over l of log N(x_l; mean) - log (1/K) sum_k N(x_l; c_k) at x_l = mean + s eps_l. With
    d_k = (mean - c_k) / s the log-ratio to component k is g_lk = |d_k|^2 / 2 + eps_l . d_k, so
    each draw gives log K - logsumexp_k(-g_lk): exactly 0 where every d_k = 0, and |d|^2 / 2 in
    expectation for K = 1.
    """
    d = (mean.unsqueeze(-2) - components) / sigma  # [..., K, A]
    g = d.pow(2).sum(-1).unsqueeze(-2) / 2 + eps @ d.transpose(-1, -2)  # [..., L, K]
    return (math.log(components.shape[-2]) - torch.logsumexp(-g, -1)).mean(-1)  # [...]


class SIMOA(VM3AC):
    """MA-AC with a model of other agents and the social influence reward, all seeds at once."""

    Settings = SIMOASettings

    def __init__(self, spec, seeds: Sequence[int], settings: SIMOASettings):
        if spec.n_agents < 2:
            raise ValueError("si_moa: social influence needs at least two agents")
        super().__init__(spec, seeds, settings)  # MA-AC: actor, Q, V, target V, their Adams
        self.moa = PartnerModel(
            SeedStreams(seeds, "moa-init"),
            spec.n_agents,
            spec.obs_dim,
            spec.action_dim,
            settings.hidden,
            settings.moa_sigma,
            settings.moa_sigma_min if settings.moa_sigma_learned else None,
        )
        self.moa_opt = SeedAdam(self.moa.parameters(), lr=settings.lr_actor)
        self.influence_noise = SeedStreams(seeds, "influence")

    # Acting and execution modes are MA-AC's (``VM3AC`` with z_dim = 0).
    def fields(self, spec):
        """MA-AC's, and the next row's joint action: the MOA's target (4.)."""
        return {**super().fields(spec), "next_action": Field((spec.n_agents, spec.action_dim))}

    # ---- 1. the influence reward ----------------------------------------------------------
    @torch.no_grad()
    def influence(self, o: torch.Tensor, a: torch.Tensor, active=None) -> torch.Tensor:
        """c_i ``[S, N, B]`` for observations o ``[S,N,B,obs]`` and replayed actions a
        ``[S,N,B,A]`` of step t: sum over j != i of D_KL(p_i(a_j^{t+1} | a_i^t, o^t) ||
        (1/K) sum_k p_i(a_j^{t+1} | a_i^k, o^t)) (VM3-AC eq. 4's social influence, with the
        marginal from K counterfactual a_i^k), clipped at ``influence_clip``."""
        st = self.settings
        S, N, B, A = a.shape
        K, L = st.counterfactuals, st.influence_samples
        eps = self.influence_noise.normal(N, K * B, A, active=active)
        counterfactual, _ = self.actor(o.repeat(1, 1, K, 1), None, eps)  # a_i^k ~ pi_i(.|o_i)
        own = torch.cat([a.unsqueeze(2), counterfactual.unflatten(2, (K, B))], 2)  # [S,N,1+K,B,A]
        mu = self.moa.mean(o, own)  # [S, N, N-1, 1+K, B, A]
        conditional = mu[:, :, :, 0]  # p_i(a_j | a_i, o): [S, N, N-1, B, A]
        marginal = mu[:, :, :, 1:].transpose(3, 4)  # components of p(a_j | o): [S,N,N-1,B,K,A]
        draws = self.influence_noise.normal(N, N - 1, B, L, A, active=active)
        kl = mixture_kl(conditional, marginal, self.moa.scale(3), draws)  # [S, N, N-1, B]
        return kl.sum(2).clamp(max=st.influence_clip)

    # ---- 2. the critics -------------------------------------------------------------------
    # ---- 4. the model of other agents -----------------------------------------------------
    def moa_loss(self, o: torch.Tensor, a: torch.Tensor, a_next: torch.Tensor, has_next: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the partners' next actions per seed ``[S]``:
        -sum_i sum_{j != i} mean_b log p_i(a_j^{t+1} | a_i^t, o_i^t, o_j^t) over the rows b
        whose episode goes on (``has_next [S, B]``); 0 for a seed without such a row."""
        log_p = self.moa.log_prob(o, a, self.moa.partners(a_next))  # [S, N, N-1, B]
        keep = has_next[:, None, None].expand_as(log_p)
        kept = torch.where(keep, log_p, torch.zeros((), dtype=log_p.dtype))  # not 0 x: a row past the end counts nothing
        return -(kept.sum(3) / keep.sum(3).clamp(min=1)).sum((1, 2))

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One gradient step on a batch of ``[S,B,...]`` tensors; per-seed losses ``[S]`` and
        the mean influence reward. Seeds outside ``active`` draw no noise and do not step."""
        st, N = self.settings, self.n_agents
        B = batch["reward"].shape[1]
        o = batch["obs"].transpose(1, 2)  # [S,N,B,obs]
        a = batch["action"].transpose(1, 2)  # replayed joint action [S,N,B,A]
        # Fresh actions a = f_phi(o; eps) of the current policies, drawn as MA-AC draws them.
        eps = self.update_noise.normal(N, B, self.action_dim, active=active)
        a_new, log_pi = self.actor(o, None, eps)

        c = self.influence(o, a, active)  # 1.
        reward = batch["reward"].unsqueeze(1) + st.influence_weight * c  # [S,N,B]

        term_b, term_a = self._log_q(o, a_new)  # zeros: MA-AC has no q_xi
        loss_v, loss_q = self.critic_losses(  # 2. eqs. 16-19, agent i's Q target on r + w c_i
            batch, a_new.detach(), log_pi.detach(), term_a, term_b, reward=reward
        )
        self.critic_opt.zero_grad()
        (loss_v + loss_q).sum().backward()
        self.critic_opt.step(active)

        loss_pi = self.policy_loss(batch["state"], a_new, log_pi, term_a, term_b)  # 3.
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        self.actor_opt.step(active)

        a_next = batch["next_action"].transpose(1, 2)
        loss_moa = self.moa_loss(o, a, a_next, batch["has_next_action"])  # 4.
        self.moa_opt.zero_grad()
        loss_moa.sum().backward()
        self.moa_opt.step(active)
        self.count_step(active)  # the target V's rate (VM3AC.end_phase)
        return {
            "loss_v": loss_v.detach(),
            "loss_q": loss_q.detach(),
            "loss_pi": loss_pi.detach(),
            "loss_moa": loss_moa.detach(),
            "influence": c.mean((1, 2)),
        }
