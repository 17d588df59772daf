"""VM3-AC (Kim et al., AAMAS 2023, §5 and Algorithm 1), batched over seeds.

Per agent i: policy pi_phi_i(a | o_i, z), variational q_xi_i(a_j | a_i, o_i, o_j) =
N(mu_xi_i(a_i, o_i, o_j), sigma^2 I), state value V_psi_i(x), target V_psibar_i(x), and twin
action values Q_theta_i,1/2(x, a), where x is the global state and a the joint action.
MA-AC (§6) is this module with beta = 0 and z_dim = 0; "VM3-AC without latent" is z_dim = 0;
MA-SAC (§6.1: SAC extended to agents with a centralised critic) is z_dim = 0 with the
mutual-information term off, so beta weighs the entropy alone (term (a) of eq. 11).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from algorithms.components.execution_latents import DRAWING, LATENT_MODES, EpisodeLatents
from algorithms.components.seed_optim import SeedAdam, polyak
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import (
    Schedule,
    check,
    check_hidden,
    check_integer,
    check_positive,
)
from algorithms.components.storage import Field
from algorithms.learner import EXPLORE, Learner
from algorithms.models.centralised_critic import CentralisedCritic
from algorithms.models.partner_model import PartnerModel
from algorithms.models.squashed_gaussian import SquashedGaussianActor


@dataclass(frozen=True)
class VM3ACSettings(Schedule):
    beta: float  # temperature beta = alpha N (eq. 11)
    mutual_information: bool  # term (b) of eq. 11 (q_xi); off: maximum entropy only (MA-SAC)
    z_dim: int  # dimension of the latent z ~ N(0, I); 0 removes the latent
    q_sigma: float  # fixed standard deviation of q_xi (§5), in half action ranges
    hidden: tuple[int, ...]  # hidden layer sizes of every network
    gamma: float
    tau: float  # target-V moving-average rate per gradient step, compounded once per phase
    lr_actor: float  # Adam, policy and q_xi (eq. 20)
    lr_critic: float  # Adam, Q and V (eqs. 16, 18)
    log_std_min: float
    log_std_max: float

    def __post_init__(self):
        super().__post_init__()
        check(
            isinstance(self.beta, (int, float)) and self.beta >= 0,
            "beta",
            "must be >= 0",
            self.beta,
        )
        check(
            isinstance(self.mutual_information, bool),
            "mutual_information",
            "must be true or false",
            self.mutual_information,
        )
        check_integer(self, "z_dim")
        check(self.z_dim >= 0, "z_dim", "must be >= 0", self.z_dim)
        check_positive(self, "q_sigma", "lr_actor", "lr_critic", "tau")
        check(0 <= self.gamma < 1, "gamma", "must be in [0, 1)", self.gamma)
        check(self.tau <= 1, "tau", "must be in (0, 1]", self.tau)
        check_hidden(self)
        check(
            self.log_std_min < self.log_std_max,
            "log_std_min",
            "must be < log_std_max",
            self.log_std_min,
        )


class VM3AC(Learner):
    """All seeds of one run in lockstep: every parameter has a leading seed axis."""

    Settings = VM3ACSettings
    loop = "transitions"

    def __init__(self, spec, seeds: Sequence[int], settings: VM3ACSettings):
        super().__init__(settings)
        if spec.discrete:
            raise ValueError("vm3ac: this module is the continuous-action algorithm of §5")
        self.n_seeds = len(seeds)
        N, A, obs, hidden = spec.n_agents, spec.action_dim, spec.obs_dim, settings.hidden
        self.n_agents, self.action_dim = N, A
        init = SeedStreams(seeds, "init")
        self.actor = SquashedGaussianActor(
            init,
            N,
            obs,
            settings.z_dim,
            spec.action_low,
            spec.action_high,
            hidden,
            (settings.log_std_min, settings.log_std_max),
        )
        # Q_theta_i,1 and Q_theta_i,2 as two heads of one centralised critic on (x, a); V_psi_i(x)
        self.q = CentralisedCritic(init, N, spec.state_dim, A, hidden, heads=2)
        self.v = CentralisedCritic(init, N, spec.state_dim, 0, hidden)
        self.v_target = copy.deepcopy(self.v).requires_grad_(False)
        # q_xi only matters through beta (eqs. 17, 20): MA-AC (beta = 0) and MA-SAC have none.
        with_q = settings.beta > 0 and settings.mutual_information
        # sigma in half action ranges, so one value means the same on [0, 1] and [-10, 10] actions
        half_range = [(h - l) / 2 for l, h in zip(spec.action_low, spec.action_high)]
        sigma = [settings.q_sigma * r for r in half_range]
        self.q_xi = PartnerModel(init, N, obs, A, hidden, sigma) if with_q else None
        actor_params = list(self.actor.parameters())
        if self.q_xi is not None:
            actor_params += list(self.q_xi.parameters())
        self.actor_opt = SeedAdam(actor_params, lr=settings.lr_actor)
        critic_params = [*self.q.parameters(), *self.v.parameters()]
        self.critic_opt = SeedAdam(critic_params, lr=settings.lr_critic)
        self.explore_noise = SeedStreams(seeds, "explore")
        self.update_noise = SeedStreams(seeds, "update")
        others = [[j for j in range(N) if j != i] for i in range(N)]
        others = torch.tensor(others, dtype=torch.long).reshape(N, N - 1)
        self.register_buffer("others", others, persistent=False)
        # Gradient steps per seed since the last target-V update (end_phase resets it).
        self.register_buffer("phase_steps", torch.zeros(self.n_seeds), persistent=False)

    @classmethod
    def execution_modes(cls, settings: VM3ACSettings) -> tuple[str, ...]:
        """z at execution (§5, Table 1; algorithms/components/execution_latents.py): z = E[z] = 0 (the
        headline), then z drawn each step centrally, by shared seeds, or by each agent alone."""
        return LATENT_MODES if settings.z_dim else ("deterministic",)

    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None):
        """Evaluation episodes in a drawing mode get their z generators; training needs none
        (z is drawn afresh each step from the exploration stream, Algorithm 1)."""
        if mode in DRAWING and self.settings.z_dim:
            return EpisodeLatents(mode, noise, started.shape[1], self.n_agents, self.settings.z_dim)
        return None

    def fields(self, spec) -> dict[str, Field]:
        N, A = spec.n_agents, spec.action_dim
        return {
            "obs": Field((N, spec.obs_dim)),
            "state": Field((spec.state_dim,)),
            "action": Field((N, A)),
            "reward": Field(()),  # the team reward r_t (§4)
            "terminated": Field((), torch.bool),
        }

    # ---- acting -------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs, state, avail, memory, mode: str, noise=None, acting=None):
        """obs ``[S,E,N,obs]`` -> actions ``[S,E,N,A]`` for E env copies per seed.

        Training (explore): z ~ N(0, I) shared by the agents of a copy, a ~ pi(.|o, z).
        Evaluation: the mean action with z = E[z] = 0 (§5, decentralised execution), or with
        z drawn each step as the mode says (``memory``: the episodes' EpisodeLatents).
        """
        S, E = obs.shape[:2]
        o = obs.transpose(1, 2)
        z, explore = None, mode == EXPLORE
        drawing = None if acting is None else acting.any(1)  # seeds whose copies step
        if self.settings.z_dim:
            if explore:
                z = self.explore_noise.normal(E, self.settings.z_dim, active=drawing)
            elif mode in DRAWING:
                z = memory.draw().transpose(1, 2)  # [S,N,E,z]: each agent's own z
            elif mode == "zero":
                z = torch.zeros(S, E, self.settings.z_dim)
            else:
                raise ValueError(f"vm3ac: unknown execution mode '{mode}' (modes: {', '.join(LATENT_MODES)})")
        eps = None
        if explore:
            eps = self.explore_noise.normal(self.n_agents, E, self.action_dim, active=drawing)
        action, _ = self.actor(o, z, eps)
        return action.transpose(1, 2), memory

    # ---- learning -----------------------------------------------------------------------
    def _log_q(self, o: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Terms (b) and (a) of eq. 21 for every agent i and partner j != i, ``[S,N,N-1,B]``.

        (b) log q_xi_i(a_j | a_i, o_i, o_j): gradient reaches phi_i through a_i and xi_i;
            a_j is another agent's action and stays fixed in agent i's update (eq. 15).
        (a) log q(a_i | a_j, o_i, o_j): the paper writes xi_i for both factors, but one network
            cannot tell which direction it predicts, so (a) is xi_j's prediction of a_i from a_j,
            i.e. agent j's term (b). §5 propagates no gradient through (a), so it is detached
            where it enters a loss.
        """
        S, N, B, _ = o.shape
        if self.q_xi is None or N == 1:
            zeros = o.new_zeros(S, N, N - 1, B)
            return zeros, zeros
        idx = self.others  # [N, N-1]
        term_b = self.q_xi.log_prob(o, a, a.detach()[:, idx])  # [S,N,N-1,B]
        rows = torch.arange(N).unsqueeze(1).expand(N, N - 1)
        pair = term_b.new_zeros(S, N, N, B)
        pair[:, rows, idx] = term_b  # pair[:, i, j] = log q_xi_i(a_j | a_i, ...)
        return term_b, pair[:, idx, rows]  # term (a) for (i, j) is pair[:, j, i]

    def critic_losses(
        self,
        batch: dict[str, torch.Tensor],
        a_new: torch.Tensor,
        log_pi: torch.Tensor,
        term_a: torch.Tensor,
        term_b: torch.Tensor,
        reward: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eqs. 16-19 per seed ``[S]``, given fresh actions ``a_new [S,N,B,A]`` from the current
        policies (one shared z per transition), their log-densities and the eq. 21 terms.
        ``reward``: the team reward ``[S,1,B]`` by default, or agent i's own ``[S,N,B]``
        (SI-MOA's r + w c_i)."""
        st, N = self.settings, self.n_agents
        x = batch["state"]
        with torch.no_grad():
            q1_new, q2_new = self.q(x, a_new.transpose(1, 2)).unbind(1)  # [S,N,B] each
            log_q_pairs = (term_a + term_b).sum(2)  # sum_j log q^(i,j), eq. 21
            v_hat = torch.min(q1_new, q2_new) - st.beta * log_pi + st.beta / N * log_q_pairs  # eq. 17
            not_done = ~batch["terminated"].unsqueeze(1)
            reward = batch["reward"].unsqueeze(1) if reward is None else reward
            q_hat = reward + st.gamma * not_done * self.v_target(
                batch["next_state"], head=0
            )  # eq. 19
        loss_v = 0.5 * (self.v(x, head=0) - v_hat).pow(2)  # eq. 16
        q1, q2 = self.q(x, batch["action"]).unbind(1)
        loss_q = 0.5 * ((q1 - q_hat).pow(2) + (q2 - q_hat).pow(2))  # eq. 18, both Qs
        return loss_v.mean(2).sum(1), loss_q.mean(2).sum(1)

    def policy_loss(
        self,
        state: torch.Tensor,
        a_new: torch.Tensor,
        log_pi: torch.Tensor,
        term_a: torch.Tensor,
        term_b: torch.Tensor,
    ) -> torch.Tensor:
        """Eq. 20 per seed ``[S]`` with Q_theta_i,1 (not the minimum, as written in §5).

        Agent i's joint action carries a gradient only through its own a_i: the other policies
        are held fixed in agent i's improvement (eq. 15). Term (a) of eq. 21 is detached: §5
        propagates the gradient through term (b) only.
        """
        st, N = self.settings, self.n_agents
        self.q.requires_grad_(False)  # theta is not trained by eq. 20: skip its weight gradients
        q1_pi = self.q(state, a_new.detach().transpose(1, 2), own=a_new, head=0)
        self.q.requires_grad_(True)
        mi = (term_b + term_a.detach()).sum(2)
        return (-q1_pi + st.beta * log_pi - st.beta / N * mi).mean(2).sum(1)

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One gradient step of Algorithm 1 on a batch of ``[S,B,...]`` tensors.

        Returns the per-seed losses ``[S]``. Seeds' losses are summed before backward, so each
        seed's parameters get exactly the gradient of its own loss; seeds outside ``active``
        draw no noise and do not step.
        """
        st, N = self.settings, self.n_agents
        B = batch["reward"].shape[1]
        o = batch["obs"].transpose(1, 2)  # [S,N,B,obs]
        # Fresh actions a = f_phi(o; eps, z) with one z per transition (Algorithm 1). The critic
        # step does not touch phi, so the same sample serves eq. 17 and eq. 20.
        z = self.update_noise.normal(B, st.z_dim, active=active) if st.z_dim else None
        eps = self.update_noise.normal(N, B, self.action_dim, active=active)
        a_new, log_pi = self.actor(o, z, eps)
        term_b, term_a = self._log_q(o, a_new)

        loss_v, loss_q = self.critic_losses(
            batch, a_new.detach(), log_pi.detach(), term_a.detach(), term_b.detach()
        )
        self.critic_opt.zero_grad()
        (loss_v + loss_q).sum().backward()
        self.critic_opt.step(active)

        loss_pi = self.policy_loss(batch["state"], a_new, log_pi, term_a, term_b)  # updated Q
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        self.actor_opt.step(active)
        self.count_step(active)
        return {"loss_v": loss_v.detach(), "loss_q": loss_q.detach(), "loss_pi": loss_pi.detach()}

    def count_step(self, active: torch.Tensor | None) -> None:
        self.phase_steps += 1.0 if active is None else active.float()

    def end_phase(self, active: torch.Tensor | None = None) -> None:
        """psibar <- (1 - w) psibar + w psi once per update phase (Algorithm 1), with
        w = 1 - (1 - tau)^k after k gradient steps: exactly k per-step averages at rate tau
        towards the phase's final psi. So tau means the same whatever the episode length
        (SAC's 0.005 per step; a fixed rate per phase would lag 4x more on 100-step episodes
        than on 25-step ones)."""
        w = 1.0 - (1.0 - self.settings.tau) ** self.phase_steps
        polyak(self.v_target, self.v, w, active)
        self.phase_steps.zero_()
