"""MAVEN (Mahajan et al., NeurIPS 2019) for continuous actions, built on MA-AC, batched over seeds.

VM3-AC §6: "Both MAVEN and SI-MOA are implemented on top of MA-AC since we consider continuous
action-space environments". MA-AC is ``algorithms/learners/vm3ac.py`` with beta = 0 and no Gaussian latent;
MAVEN adds to it, as MAVEN §4 does to QMIX:

1. a latent z, one of K classes (one-hot; MAVEN's code: ``noise_dim`` classes), drawn ONCE per
   episode by a hierarchical policy p_psi(z | s_0) on the episode's initial state, and shared by
   all agents for the whole episode ("committed exploration");
2. agents' policies pi_phi_i(a | o_i, z) and centralised critics Q_theta_i(s, z, a), V_psi_i(s, z)
   that read z (MAVEN's agents and mixer read z);
3. a variational discriminator q_omega(z | s_t, a_t): MAVEN's J_V, the variational lower bound of
   the mutual information MI(trajectory, z), is E[log q(z | ...)] + H(z) (MAVEN §4); its
   log-likelihood, weighted by lambda_MI, is maximised jointly by the discriminator and by the
   agents, through their reparameterised actions;
4. the hierarchical policy trained to maximise the return of the z it picks plus an entropy bonus
   (MAVEN's J_RL with its code's entropy regularisation).

Per step (``update``), as in the algorithm box:
    a_new = f_phi(o; eps, z) with the batch's own episode z                     (VM3-AC §5)
    critics: eqs. 16-19 of VM3-AC with beta = 0, on x = [s, z]                   (MA-AC)
    actors and q_omega: eq. 20 (beta = 0) - lambda_MI log q_omega(z | s, a_new)  (MAVEN J_V)
    p_psi: - sum_z p_psi(z | s_0) V(s_0, z) - entropy_weight H(p_psi(. | s_0))  (MAVEN J_RL)

Choices where per-transition replay differs from MAVEN's episode replay (write-ups must say so):
- The discriminator reads one step, q(z | s_t, a_t) with all agents' actions, not the whole
  trajectory: MAVEN's code offers this (``rnn_discrim: False``: per step, on the state and the
  agents' current policy outputs, softmax(Q)); its camera-ready runs used a GRU over the episode,
  which transition replay cannot feed. As in MAVEN's code, the discriminator reads the CURRENT
  policies' outputs at replayed states (here the reparameterised action, the continuous
  counterpart of softmax(Q)), and the MI term is a loss (MAVEN's ``mi_loss``; its
  ``mi_intrinsic`` reward variant is off by default and in every published config).
- The hierarchical policy's return is the z-conditioned critic's estimate mean_i V_psi_i(s_0, z),
  not a Monte-Carlo episode return (the learner never sees whole episodes), and the expectation
  over the K classes is taken exactly (an all-actions policy gradient: REINFORCE with the
  critic's return, without sampling variance). MAVEN's code uses REINFORCE on sampled episode
  returns plus ``entropy_scaling`` times a sampled entropy estimate; here the categorical's
  exact entropy.
- Execution (``sampled``): as MAVEN's test episodes, z ~ p_psi(z | s_0) once per episode (from
  the evaluation's execution stream, so evaluations are reproducible per seed), and the agents'
  mean actions (VM3-AC §6.1's deterministic evaluation).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from algorithms.components.seed_optim import SeedAdam
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import check, check_hidden, check_positive
from algorithms.components.storage import Field
from algorithms.learner import EXPLORE
from algorithms.learners.vm3ac import VM3AC, VM3ACSettings
from algorithms.models.stacked_mlp import StackedMLP

SAMPLED = "sampled"  # execution: z ~ p_psi(z | s_0) once per episode, mean actions
# MAVEN's official test phase (AnujMahajanOxf/MAVEN run.py:182-198, parallel_runner.py:118-119):
# the reported test_* runs draw z from p_psi(z | s_0) (the runner passes test_uniform, False,
# as the sampler's test_mode), and an equal number of extra test_uni_* runs draw z uniformly.
UNIFORM = "uniform_latent"  # execution: z uniform over the classes once per episode


@dataclass(frozen=True)
class MAVENSettings(VM3ACSettings):
    """MA-AC's settings (beta = 0) with ``z_dim`` the number K of latent classes, plus MAVEN's."""

    lambda_mi: float  # weight of the MI lower bound J_V (MAVEN's code: mi_loss)
    entropy_weight: float  # entropy bonus of p_psi (MAVEN's code: entropy_scaling)
    lr_latent: float  # Adam, p_psi (MAVEN's code: the hierarchical policy's lr)
    latent_hidden: tuple[int, ...]  # p_psi's hidden layers
    discriminator_hidden: tuple[int, ...]  # q_omega's hidden layers

    def __post_init__(self):
        super().__post_init__()
        check(self.beta == 0, "beta", "must be 0: MAVEN is built on MA-AC (VM3-AC §6)", self.beta)
        check(self.z_dim >= 2, "z_dim", "must be >= 2 (MAVEN's latent classes)", self.z_dim)
        for name in ("lambda_mi", "entropy_weight"):
            value = getattr(self, name)
            check(
                isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0,
                name,
                "must be >= 0",
                value,
            )
        check_positive(self, "lr_latent")
        check_hidden(self, "latent_hidden")
        check_hidden(self, "discriminator_hidden")


def _with_critic_input(spec, z_dim: int):
    """The task's spec as MA-AC's constructor should see it: its critics read x = [s, z]
    (MAVEN's mixer reads the state with z appended), so the critics' state is K wider."""
    view = copy.copy(spec)
    object.__setattr__(view, "state_dim", spec.state_dim + z_dim)  # spec may be a frozen dataclass
    return view


class MAVEN(VM3AC):
    """MA-AC (VM3AC with beta = 0) whose actors and critics read a per-episode latent z."""

    Settings = MAVENSettings
    loop = "transitions"

    def __init__(self, spec, seeds: Sequence[int], settings: MAVENSettings):
        K = settings.z_dim
        # Actor pi_phi_i(a | o_i, z) (z input of size K), twin Q_theta_i(x, a), V_psi_i(x) and its
        # target on x = [s, z]; MA-AC's optimisers. No q_xi: beta = 0.
        super().__init__(_with_critic_input(spec, K), seeds, settings)
        init = SeedStreams(seeds, "init-maven")
        # p_psi(z | s_0): a categorical over K classes (one member per seed)
        self.latent_policy = StackedMLP(init, 1, spec.state_dim, settings.latent_hidden, K)
        # q_omega(z | s_t, a_t): a categorical over K classes from the state and joint action
        joint = spec.state_dim + self.n_agents * self.action_dim
        self.discriminator = StackedMLP(init, 1, joint, settings.discriminator_hidden, K)
        # The MI bound is maximised by phi and omega together (MAVEN's code: one optimiser for
        # agents, mixer and discriminator), as VM3-AC's actor optimiser holds phi and xi.
        self.actor_opt = SeedAdam(
            [*self.actor.parameters(), *self.discriminator.parameters()], lr=settings.lr_actor
        )
        self.latent_opt = SeedAdam(self.latent_policy.parameters(), lr=settings.lr_latent)
        self.register_buffer("classes", torch.eye(K), persistent=False)

    @classmethod
    def execution_modes(cls, settings: MAVENSettings) -> tuple[str, ...]:
        return (SAMPLED, UNIFORM)

    def fields(self, spec) -> dict[str, Field]:
        return {
            **super().fields(spec),
            "latent": Field((self.settings.z_dim,)),  # the episode's one-hot z
            "initial_state": Field((spec.state_dim,)),  # s_0, p_psi's input
        }

    # ---- 1. the episode's latent: z ~ p_psi(z | s_0), once per episode ----------------------
    def latent_log_probs(self, s0: torch.Tensor) -> torch.Tensor:
        """log p_psi(z | s_0) ``[S, B, K]`` for initial states ``[S, B, state]``."""
        return F.log_softmax(self.latent_policy(s0.unsqueeze(1)).squeeze(1), dim=-1)

    @torch.no_grad()
    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None):
        """Draw z for the copies in ``started`` ``[S, E]`` from p_psi(z | s_0) by inverting its
        CDF at a uniform draw: from the exploration stream in training, from the evaluation's
        execution stream at evaluation (MAVEN's reported test episodes sample z too; the mode
        ``uniform_latent`` draws it uniformly, as its extra test_uni_* episodes). Only seeds with a
        started copy draw. The others keep their z and s_0."""
        if mode == EXPLORE:
            stream = self.explore_noise
        elif mode in (SAMPLED, UNIFORM):
            stream = noise
        else:
            raise ValueError(f"maven: unknown execution mode '{mode}' (modes: {SAMPLED}, {UNIFORM})")
        S, E = started.shape
        K = self.settings.z_dim
        s0 = state.to(torch.float32, copy=True)  # memory must not alias the env's arrays
        if mode == UNIFORM:
            cdf = torch.arange(1, K + 1, dtype=torch.float32).div(K).expand(S, E, K)
        else:
            cdf = self.latent_log_probs(s0).exp().cumsum(-1)  # [S, E, K]
        u = stream.uniform(0.0, 1.0, E, active=started.any(1))  # [S, E]
        index = (cdf < u.unsqueeze(-1)).sum(-1).clamp(max=K - 1)
        z = self.classes[index]  # one-hot [S, E, K]
        if memory is not None:
            keep = ~started.unsqueeze(-1)
            z = torch.where(keep, memory["latent"], z)
            s0 = torch.where(keep, memory["initial_state"], s0)
        return {"latent": z, "initial_state": s0}

    def record(self, memory) -> dict[str, torch.Tensor]:
        """Every row carries its episode's z and s_0 (storage HELD fields)."""
        return {"latent": memory["latent"], "initial_state": memory["initial_state"]}

    # ---- 2. acting with the episode's z -------------------------------------------------
    @torch.no_grad()
    def act(self, obs, state, avail, memory, mode: str, noise=None, acting=None):
        """obs ``[S,E,N,obs]`` -> actions ``[S,E,N,A]``: a ~ pi(. | o, z) in training, the mean
        action at evaluation, z the episode's (``memory`` from ``begin_episodes``)."""
        if memory is None:
            raise ValueError("maven: act needs the episodes' z: call begin_episodes first")
        if mode not in (EXPLORE, SAMPLED, UNIFORM):
            raise ValueError(f"maven: unknown execution mode '{mode}' (modes: {SAMPLED}, {UNIFORM})")
        E = obs.shape[1]
        eps = None
        if mode == EXPLORE:
            drawing = None if acting is None else acting.any(1)  # seeds whose copies step
            eps = self.explore_noise.normal(self.n_agents, E, self.action_dim, active=drawing)
        action, _ = self.actor(obs.transpose(1, 2), memory["latent"], eps)  # z [S,E,K] shared
        return action.transpose(1, 2), memory

    # ---- learning -----------------------------------------------------------------------
    @staticmethod
    def with_latent(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch with the critics' input x = [s, z] in place of s (and of s', whose episode,
        and so z, is the same: at a termination s' is not bootstrapped from)."""
        z = batch["latent"]
        return {
            **batch,
            "state": torch.cat([batch["state"], z], -1),
            "next_state": torch.cat([batch["next_state"], z], -1),
        }

    def mi_loss(self, state: torch.Tensor, a_new: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log q_omega(z | s_t, a_t) per seed ``[S]``, averaged over the batch: minus the
        per-step estimate of MAVEN's J_V (up to the constant H(z)). a_new ``[S,N,B,A]`` keeps its
        gradient, so the agents' policies are pushed to make z identifiable."""
        joint = a_new.transpose(1, 2).flatten(2)  # [S, B, N*A]
        logits = self.discriminator(torch.cat([state, joint], -1).unsqueeze(1)).squeeze(1)
        return -(F.log_softmax(logits, -1) * z).sum(-1).mean(1)

    def latent_policy_loss(self, s0: torch.Tensor) -> torch.Tensor:
        """MAVEN's J_RL for p_psi, per seed ``[S]``: -E_{z~p}[V(s_0, z)] - w H(p(. | s_0)),
        with V(s_0, z) = mean_i V_psi_i([s_0, z]) (every agent's V learns the team reward) and
        the expectation over the K classes taken exactly."""
        S, B, _ = s0.shape
        K = self.settings.z_dim
        log_p = self.latent_log_probs(s0)  # [S, B, K]
        p = log_p.exp()
        with torch.no_grad():
            x = torch.cat(
                [s0.unsqueeze(2).expand(S, B, K, -1), self.classes.expand(S, B, K, K)], -1
            )
            values = self.v(x.flatten(1, 2), head=0).mean(1).view(S, B, K)
        entropy = -(p * log_p).sum(-1)
        return (-(p * values).sum(-1) - self.settings.entropy_weight * entropy).mean(1)

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One gradient step on ``[S,B,...]`` tensors; per-seed losses ``[S]``. Seeds' losses are
        summed before backward (each seed's parameters get its own loss's gradient); seeds outside
        ``active`` draw no noise and do not step."""
        st, N = self.settings, self.n_agents
        B = batch["reward"].shape[1]
        z = batch["latent"]  # [S, B, K]: the z of each transition's episode
        o = batch["obs"].transpose(1, 2)  # [S,N,B,obs]
        wide = self.with_latent(batch)
        # a = f_phi(o; eps, z) with the episode's z (not a fresh draw, as VM3-AC's z ~ N(0, I)).
        eps = self.update_noise.normal(N, B, self.action_dim, active=active)
        a_new, log_pi = self.actor(o, z, eps)
        no_mi = o.new_zeros(o.shape[0], N, N - 1, B)  # VM3-AC's eq. 21 terms: none in MA-AC

        # Critics: VM3-AC eqs. 16-19 with beta = 0 on x = [s, z].
        loss_v, loss_q = self.critic_losses(wide, a_new.detach(), log_pi.detach(), no_mi, no_mi)
        self.critic_opt.zero_grad()
        (loss_v + loss_q).sum().backward()
        self.critic_opt.step(active)

        # Actors and discriminator: eq. 20 (beta = 0) on the updated Q, minus lambda_MI J_V.
        loss_pi = self.policy_loss(wide["state"], a_new, log_pi, no_mi, no_mi)
        loss_mi = self.mi_loss(batch["state"], a_new, z)
        self.actor_opt.zero_grad()
        (loss_pi + st.lambda_mi * loss_mi).sum().backward()
        self.actor_opt.step(active)

        # Hierarchical policy: J_RL on the batch's initial states, with the updated V.
        loss_latent = self.latent_policy_loss(batch["initial_state"])
        self.latent_opt.zero_grad()
        loss_latent.sum().backward()
        self.latent_opt.step(active)
        self.count_step(active)  # the target V's rate (VM3AC.end_phase)
        return {
            "loss_v": loss_v.detach(),
            "loss_q": loss_q.detach(),
            "loss_pi": loss_pi.detach(),
            "loss_mi": loss_mi.detach(),
            "loss_latent": loss_latent.detach(),
        }
