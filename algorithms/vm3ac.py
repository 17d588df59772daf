"""VM3-AC (Kim et al., AAMAS 2023, §5 and Algorithm 1), batched over seeds.

Per agent i: policy pi_phi_i(a | o_i, z), variational q_xi_i(a_j | a_i, o_i, o_j) =
N(mu_xi_i(a_i, o_i, o_j), sigma^2 I), state value V_psi_i(x), target V_psibar_i(x), and twin
action values Q_theta_i,1/2(x, a), where x is the global state and a the joint action.
MA-AC (§6) is this module with beta = 0 and z_dim = 0; "VM3-AC without latent" is z_dim = 0.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from algorithms.seeding import SeedStreams
from algorithms.settings import OffPolicySchedule, check, check_integer, check_positive
from algorithms.squashed_gaussian import SquashedGaussianActor
from algorithms.stacked_mlp import StackedMLP


@dataclass(frozen=True)
class VM3ACSettings(OffPolicySchedule):
    beta: float  # temperature beta = alpha N (eq. 11)
    z_dim: int  # dimension of the latent z ~ N(0, I); 0 removes the latent
    q_sigma: float  # fixed standard deviation of q_xi (§5)
    hidden: tuple[int, ...]  # hidden layer sizes of every network
    gamma: float
    tau: float  # target-V moving-average rate, applied once per update phase (Algorithm 1)
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
        check_integer(self, "z_dim")
        check(self.z_dim >= 0, "z_dim", "must be >= 0", self.z_dim)
        check_positive(self, "q_sigma", "lr_actor", "lr_critic", "tau")
        check(0 <= self.gamma < 1, "gamma", "must be in [0, 1)", self.gamma)
        check(self.tau <= 1, "tau", "must be in (0, 1]", self.tau)
        check(
            len(self.hidden) > 0 and all(isinstance(h, int) and h > 0 for h in self.hidden),
            "hidden",
            "must be a non-empty list of positive integers",
            self.hidden,
        )
        check(
            self.log_std_min < self.log_std_max,
            "log_std_min",
            "must be < log_std_max",
            self.log_std_min,
        )


class VM3AC(nn.Module):
    """All seeds of one run in lockstep: every parameter has a leading seed axis."""

    def __init__(self, spec, seeds: Sequence[int], settings: VM3ACSettings):
        super().__init__()
        if spec.discrete:
            raise ValueError("vm3ac: this module is the continuous-action algorithm of §5")
        self.settings, self.n_seeds = settings, len(seeds)
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
        self.q1 = StackedMLP(init, N, spec.state_dim + N * A, hidden, 1)
        self.q2 = StackedMLP(init, N, spec.state_dim + N * A, hidden, 1)
        self.v = StackedMLP(init, N, spec.state_dim, hidden, 1)
        self.v_target = copy.deepcopy(self.v).requires_grad_(False)
        # q_xi only matters through beta (eqs. 17, 20): MA-AC (beta = 0) has none.
        self.q_xi = StackedMLP(init, N, A + 2 * obs, hidden, A) if settings.beta > 0 else None
        actor_params = list(self.actor.parameters())
        if self.q_xi is not None:
            actor_params += list(self.q_xi.parameters())
        self.actor_opt = torch.optim.Adam(actor_params, lr=settings.lr_actor)
        critic_params = [*self.q1.parameters(), *self.q2.parameters(), *self.v.parameters()]
        self.critic_opt = torch.optim.Adam(critic_params, lr=settings.lr_critic)
        self.explore_noise = SeedStreams(seeds, "explore")
        self.update_noise = SeedStreams(seeds, "update")
        others = [[j for j in range(N) if j != i] for i in range(N)]
        self.register_buffer("others", torch.tensor(others, dtype=torch.long).reshape(N, N - 1))

    @property
    def latent_dim(self) -> int:
        """Size of z: evaluation compares execution modes of z only when there is one."""
        return self.settings.z_dim

    # ---- acting -------------------------------------------------------------------------
    @torch.no_grad()
    def act(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        explore: bool,
        latent: str = "zero",
        latent_noise: SeedStreams | None = None,
    ) -> torch.Tensor:
        """obs ``[S,E,N,obs]`` -> actions ``[S,E,N,A]`` for E env copies per seed.

        Training (explore): z ~ N(0, I) shared by the agents of a copy, a ~ pi(.|o, z).
        Evaluation: the mean action with z = E[z] = 0 (§5, decentralised execution), or with
        z drawn from ``latent_noise`` (latent="sampled", the communicating variant of Table 1).
        """
        S, E = obs.shape[:2]
        o = obs.transpose(1, 2)
        z = None
        if self.settings.z_dim:
            if explore:
                z = self.explore_noise.normal(E, self.settings.z_dim)
            elif latent == "sampled":
                z = latent_noise.normal(E, self.settings.z_dim)
            elif latent == "zero":
                z = torch.zeros(S, E, self.settings.z_dim)
            else:
                raise ValueError(f"vm3ac: unknown latent mode '{latent}'")
        eps = self.explore_noise.normal(self.n_agents, E, self.action_dim) if explore else None
        action, _ = self.actor(o, z, eps)
        return action.transpose(1, 2)

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
        a_i = a.unsqueeze(2).expand(-1, -1, N - 1, -1, -1)
        o_i = o.unsqueeze(2).expand(-1, -1, N - 1, -1, -1)
        o_j, a_j = o[:, idx], a.detach()[:, idx]
        mu = self.q_xi(torch.cat([a_i, o_i, o_j], -1).flatten(2, 3)).unflatten(2, (N - 1, B))
        sigma = self.settings.q_sigma
        term_b = -(a_j - mu).pow(2).sum(-1) / (2 * sigma**2) - 0.5 * self.action_dim * math.log(
            2 * math.pi * sigma**2
        )
        rows = torch.arange(N).unsqueeze(1).expand(N, N - 1)
        pair = term_b.new_zeros(S, N, N, B)
        pair[:, rows, idx] = term_b  # pair[:, i, j] = log q_xi_i(a_j | a_i, ...)
        return term_b, pair[:, idx, rows]  # term (a) for (i, j) is pair[:, j, i]

    def _values(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net(x).squeeze(-1)

    def _with_joint(self, x: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """Critic input (x, a) per agent: x ``[S,N,B,state]``, joint ``[S,B,N,A]`` or per agent."""
        if joint.dim() == 4:
            joint = joint.flatten(2).unsqueeze(1).expand(-1, self.n_agents, -1, -1)
        return torch.cat([x, joint], -1)

    def critic_losses(
        self,
        batch: dict[str, torch.Tensor],
        a_new: torch.Tensor,
        log_pi: torch.Tensor,
        term_a: torch.Tensor,
        term_b: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eqs. 16-19 per seed ``[S]``, given fresh actions ``a_new [S,N,B,A]`` from the current
        policies (one shared z per transition), their log-densities and the eq. 21 terms."""
        st, N = self.settings, self.n_agents
        x = batch["state"].unsqueeze(1).expand(-1, N, -1, -1)
        with torch.no_grad():
            x_new = self._with_joint(x, a_new.transpose(1, 2))
            q_min = torch.min(self._values(self.q1, x_new), self._values(self.q2, x_new))
            log_q_pairs = (term_a + term_b).sum(2)  # sum_j log q^(i,j), eq. 21
            v_hat = q_min - st.beta * log_pi + st.beta / N * log_q_pairs  # eq. 17
            x_next = batch["next_state"].unsqueeze(1).expand(-1, N, -1, -1)
            not_done = 1.0 - batch["terminated"].unsqueeze(1)
            q_hat = batch["reward"].unsqueeze(1) + st.gamma * not_done * self._values(
                self.v_target, x_next
            )  # eq. 19
        loss_v = 0.5 * (self._values(self.v, x) - v_hat).pow(2)  # eq. 16
        xa = self._with_joint(x, batch["action"])
        loss_q = 0.5 * (
            (self._values(self.q1, xa) - q_hat).pow(2) + (self._values(self.q2, xa) - q_hat).pow(2)
        )  # eq. 18, both Qs
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
        x = state.unsqueeze(1).expand(-1, N, -1, -1)
        own = torch.eye(N).view(1, N, 1, N, 1)
        a_t = a_new.transpose(1, 2).unsqueeze(1)  # [S,1,B,N,A]
        joint_i = (own * a_t + (1 - own) * a_t.detach()).flatten(3)  # [S,N(i),B,N*A]
        self.q1.requires_grad_(False)  # theta is not trained by eq. 20: skip its weight gradients
        q1_pi = self._values(self.q1, torch.cat([x, joint_i], -1))
        self.q1.requires_grad_(True)
        mi = (term_b + term_a.detach()).sum(2)
        return (-q1_pi + st.beta * log_pi - st.beta / N * mi).mean(2).sum(1)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step of Algorithm 1 on a batch of ``[S,B,...]`` tensors.

        Returns the per-seed losses ``[S]``. Seeds' losses are summed before backward, so each
        seed's parameters get exactly the gradient of its own loss.
        """
        st, N = self.settings, self.n_agents
        B = batch["reward"].shape[1]
        o = batch["obs"].transpose(1, 2)  # [S,N,B,obs]
        # Fresh actions a = f_phi(o; eps, z) with one z per transition (Algorithm 1). The critic
        # step does not touch phi, so the same sample serves eq. 17 and eq. 20.
        z = self.update_noise.normal(B, st.z_dim) if st.z_dim else None
        a_new, log_pi = self.actor(o, z, self.update_noise.normal(N, B, self.action_dim))
        term_b, term_a = self._log_q(o, a_new)

        loss_v, loss_q = self.critic_losses(
            batch, a_new.detach(), log_pi.detach(), term_a.detach(), term_b.detach()
        )
        self.critic_opt.zero_grad(set_to_none=True)
        (loss_v + loss_q).sum().backward()
        self.critic_opt.step()

        loss_pi = self.policy_loss(batch["state"], a_new, log_pi, term_a, term_b)  # updated Q
        self.actor_opt.zero_grad(set_to_none=True)
        loss_pi.sum().backward()
        self.actor_opt.step()
        return {"loss_v": loss_v.detach(), "loss_q": loss_q.detach(), "loss_pi": loss_pi.detach()}

    @torch.no_grad()
    def sync_targets(self) -> None:
        """psibar <- (1 - tau) psibar + tau psi, once per update phase (Algorithm 1)."""
        torch._foreach_lerp_(
            list(self.v_target.parameters()), list(self.v.parameters()), self.settings.tau
        )
