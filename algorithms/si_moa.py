"""SI-MOA on MA-AC: social influence with a model of other agents (Jaques et al. 2019), the
continuous-action baseline of VM3-AC §6 ("Both MAVEN and SI-MOA are implemented on top of
MA-AC"), batched over seeds.

Everything is MA-AC (``VM3AC`` with beta = 0 and no latent: per-agent squashed Gaussian
policies pi_phi_i(a_i | o_i), centralised V_psi_i(x), twin Q_theta_i(x, a), target V) plus, per
agent i, a model of other agents (MOA) p_i(a_j | a_i, o) = N(mu_i(a_i, o_i, o_j), sigma^2 I) for
every partner j != i (``algorithms/partner_model.py``: the network VM3-AC uses as q_xi), and
an intrinsic reward. One gradient step on a replayed batch of transitions (x, o, a, r, x'):

1. Influence reward (VM3-AC eqs. 3-4: the social influence of agent i on agent j; Jaques et
   al.'s causal influence reward c^k, a sum of KLs over the other agents). With a_i the
   replayed action and a_i^1..a_i^K ~ pi_i(. | o_i) counterfactual actions of agent i,

       c_i = sum_{j != i} D_KL( p_i(a_j | a_i, o)  ||  (1/K) sum_k p_i(a_j | a_i^k, o) ),

   the mixture being the counterfactual marginal p(a_j | o). A Gaussian's KL to a Gaussian
   mixture has no closed form: ``mixture_kl`` estimates it by Monte Carlo with L draws
   a_j ~ p_i(a_j | a_i, o): unbiased for the KL to the K-component mixture, which itself
   overestimates the KL to the true marginal on average (KL is convex in its second argument;
   the excess vanishes as K grows).
2. Critics: VM3-AC eqs. 16-19 with beta = 0 (MA-AC), agent i's critics learning from its own
   reward r + w c_i (Jaques et al.: r^k = alpha e^k + beta c^k, here alpha = 1, beta = w, with
   e the team reward r).
3. Policies: eq. 20 with beta = 0 (MA-AC): agent i ascends Q_theta_i,1 through its own a_i.
4. MOA: maximum likelihood on the replayed joint actions (Jaques et al. train the MOA by
   supervised learning on the actions the other agents took).

Choices a reviewer should know:
- c_i is computed at update time on the sampled batch, with the current policies and MOA
  (natural with replay; Jaques et al. compute it as the agents act). It is a reward: no
  gradient flows through it; a policy gains influence through its critic Q_i, which sees a_i.
- The action that influences is the replayed a_i, the one that produced the stored outcome.
- Same step. The harness issue asks for the divergence between p(a_j | a_i, o) and the
  counterfactual marginal at one time step. Jaques et al.'s MOA variant, as VM3-AC §3 and
  Fig. 1(b) describe it, measures the influence of a_i^t on a_j^{t+1} instead (the MOA
  predicts the partners' next actions). Note: with independent policies pi_j(a_j | o_j),
  a_j^t is independent of a_i^t given (o_i, o_j), so the true same-step influence is zero;
  what the MOA learns comes from the replay mixing older policies and from its own error.
  The next-step form would need the next row's joint action, which the transition storage
  does not return (only next_<observed field>).
- The MOA reads (a_i, o_i, o_j), as VM3-AC's q_xi (centralised training); Jaques et al.'s MOA
  reads agent i's own view and all agents' actions of step t. Its sigma is fixed (a setting).
- The MOA has its own Adam at ``lr_actor`` (VM3-AC trains q_xi with the policy's rate,
  eq. 20) and its own initialisation stream; the influence draws have their own stream too.
  So with w = 0 the policies and critics follow MA-AC's numbers exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from algorithms.partner_model import PartnerModel
from algorithms.seed_optim import SeedAdam
from algorithms.seeding import SeedStreams
from algorithms.settings import check, check_integer, check_positive
from algorithms.vm3ac import VM3AC, VM3ACSettings


@dataclass(frozen=True)
class SIMOASettings(VM3ACSettings):
    influence_weight: float  # w: agent i's critics learn r + w c_i (Jaques et al.'s beta)
    counterfactuals: int  # K: a_i^k ~ pi_i(. | o_i) forming the marginal p(a_j | o)
    influence_samples: int  # L: Monte Carlo draws a_j ~ p(a_j | a_i, o) per KL estimate
    moa_sigma: float  # fixed standard deviation of the MOA's Gaussian

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
        check_positive(self, "counterfactuals", "influence_samples", "moa_sigma")


def mixture_kl(
    mean: torch.Tensor, components: torch.Tensor, sigma: float, eps: torch.Tensor
) -> torch.Tensor:
    """Monte Carlo D_KL( N(mean, s^2 I) || (1/K) sum_k N(components_k, s^2 I) ), s = sigma.

    mean ``[..., A]``, components ``[..., K, A]``, eps ``[..., L, A]`` standard normal draws;
    returns ``[...]``, the mean over l of log N(x_l; mean) - log (1/K) sum_k N(x_l; c_k) at
    x_l = mean + s eps_l ~ N(mean, s^2 I). With d_k = mean - c_k the log-ratio to component k is
    g_lk = (|d_k|^2 + 2 s eps_l . d_k) / (2 s^2), so each draw gives log K - logsumexp_k(-g_lk):
    exactly 0 where every d_k = 0, and |d|^2 / (2 s^2) in expectation for K = 1.
    """
    d = mean.unsqueeze(-2) - components  # [..., K, A]
    g = (d.pow(2).sum(-1).unsqueeze(-2) + 2 * sigma * eps @ d.transpose(-1, -2)) / (2 * sigma**2)
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
        )
        self.moa_opt = SeedAdam(self.moa.parameters(), lr=settings.lr_actor)
        self.influence_noise = SeedStreams(seeds, "influence")

    # Acting, execution modes and stored fields are MA-AC's (``VM3AC`` with z_dim = 0).

    # ---- 1. the influence reward ----------------------------------------------------------
    @torch.no_grad()
    def influence(self, o: torch.Tensor, a: torch.Tensor, active=None) -> torch.Tensor:
        """c_i ``[S, N, B]`` for observations o ``[S,N,B,obs]`` and replayed actions a
        ``[S,N,B,A]``: sum over j != i of D_KL(p_i(a_j | a_i, o) || (1/K) sum_k p_i(a_j | a_i^k, o))
        (VM3-AC eq. 4's social influence, with the marginal from K counterfactual a_i^k)."""
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
        return mixture_kl(conditional, marginal, st.moa_sigma, draws).sum(2)

    # ---- 2. the critics -------------------------------------------------------------------
    # ---- 4. the model of other agents -----------------------------------------------------
    def moa_loss(self, o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the replayed joint action per seed ``[S]``:
        -sum_i sum_{j != i} mean_b log p_i(a_j | a_i, o_i, o_j)."""
        log_p = self.moa.log_prob(o, a, self.moa.partners(a))  # [S, N, N-1, B]
        return -log_p.mean(3).sum((1, 2))

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

        loss_moa = self.moa_loss(o, a)  # 4.
        self.moa_opt.zero_grad()
        loss_moa.sum().backward()
        self.moa_opt.step(active)
        return {
            "loss_v": loss_v.detach(),
            "loss_q": loss_q.detach(),
            "loss_pi": loss_pi.detach(),
            "loss_moa": loss_moa.detach(),
            "influence": c.mean((1, 2)),
        }
