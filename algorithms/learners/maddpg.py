"""MADDPG (Lowe et al., NeurIPS 2017, Algorithm 1), batched over seeds.

Per agent i: a deterministic policy mu_theta_i(o_i), a centralised critic
Q_i(x, a_1, ..., a_N) on all observations x = (o_1, ..., o_N) and all actions, trained on
agent i's own reward, and target copies mu', Q' updated by polyak averaging after every update.
Exploration adds Gaussian noise to mu(o) (the paper: "a random process N"). Gradients are
clipped per variable at 0.5, as the reference code (openai/maddpg) does.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from algorithms.components.seed_optim import SeedAdam, polyak
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import Schedule, check, check_hidden, check_positive
from algorithms.components.storage import Field
from algorithms.learner import EXPLORE, Learner
from algorithms.models.centralised_critic import CentralisedCritic
from algorithms.models.deterministic_actor import DeterministicActor


@dataclass(frozen=True)
class MADDPGSettings(Schedule):
    hidden: tuple[int, ...]  # hidden layer sizes of actors and critics
    gamma: float
    tau: float  # polyak rate of the target networks, every update
    lr_actor: float
    lr_critic: float
    noise_std: float  # std of the Gaussian exploration noise, in units of half the action range
    grad_clip: float  # gradient norm bound, per variable
    action_reg: float  # weight of mean(u^2) on the actor's pre-activation (reference code)

    def __post_init__(self):
        super().__post_init__()
        check_hidden(self)
        check_positive(self, "tau", "lr_actor", "lr_critic", "grad_clip")
        check(0 <= self.gamma < 1, "gamma", "must be in [0, 1)", self.gamma)
        check(self.tau <= 1, "tau", "must be in (0, 1]", self.tau)
        check(self.noise_std >= 0, "noise_std", "must be >= 0", self.noise_std)
        check(self.action_reg >= 0, "action_reg", "must be >= 0", self.action_reg)


class MADDPG(Learner):
    Settings = MADDPGSettings
    loop = "transitions"

    def __init__(self, spec, seeds: Sequence[int], settings: MADDPGSettings):
        super().__init__(settings)
        if spec.discrete:
            raise ValueError("maddpg: this module is the continuous-action MADDPG")
        N, A, obs, hidden = spec.n_agents, spec.action_dim, spec.obs_dim, settings.hidden
        self.n_agents, self.action_dim = N, A
        init = SeedStreams(seeds, "init")
        self.actor = DeterministicActor(init, N, obs, spec.action_low, spec.action_high, hidden)
        self.critic = CentralisedCritic(init, N, N * obs, A, hidden)  # Q_i(x, a), x = all o
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        clip = dict(clip=settings.grad_clip, clip_scope="variable")
        self.actor_opt = SeedAdam(self.actor.parameters(), lr=settings.lr_actor, **clip)
        self.critic_opt = SeedAdam(self.critic.parameters(), lr=settings.lr_critic, **clip)
        self.explore_noise = SeedStreams(seeds, "explore")
        half_range = (torch.tensor(spec.action_high) - torch.tensor(spec.action_low)) / 2
        self.register_buffer("noise_scale", settings.noise_std * half_range, persistent=False)

    def fields(self, spec) -> dict[str, Field]:
        N = spec.n_agents
        return {
            "obs": Field((N, spec.obs_dim)),
            "action": Field((N, spec.action_dim)),
            "rewards": Field((N,)),  # each agent learns from its own reward r_i
            "terminated": Field((), torch.bool),
        }

    @torch.no_grad()
    def act(self, obs, state, avail, memory, mode: str, noise=None, acting=None):
        """a_i = mu_i(o_i) (+ exploration noise, clipped to the bounds, in training)."""
        E = obs.shape[1]
        action, _ = self.actor(obs.transpose(1, 2))
        if mode == EXPLORE:
            drawing = None if acting is None else acting.any(1)
            eps = self.explore_noise.normal(self.n_agents, E, self.action_dim, active=drawing)
            action = torch.max(torch.min(action + self.noise_scale * eps, self.actor.high), self.actor.low)
        return action.transpose(1, 2), None

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One step of Algorithm 1's inner loop for every agent (per seed ``[S]`` losses)."""
        st = self.settings
        x, x_next = batch["obs"].flatten(2), batch["next_obs"].flatten(2)  # [S,B,N*obs]
        with torch.no_grad():  # y_i = r_i + gamma Q'_i(x', a'_1..a'_N), a'_k = mu'_k(o'_k)
            a_next, _ = self.actor_target(batch["next_obs"].transpose(1, 2))
            q_next = self.critic_target(x_next, a_next.transpose(1, 2), head=0)
            not_done = ~batch["terminated"].unsqueeze(1)
            y = batch["rewards"].transpose(1, 2) + st.gamma * not_done * q_next
        q = self.critic(x, batch["action"], head=0)
        loss_q = (q - y).pow(2).mean(2).sum(1)  # the critic loss L(theta_i), summed over i
        self.critic_opt.zero_grad()
        loss_q.sum().backward()
        self.critic_opt.step(active)

        # Policy gradient: Q_i(x, a_1, .., mu_i(o_i), .., a_N), the others' actions from D.
        mu, u = self.actor(batch["obs"].transpose(1, 2))
        self.critic.requires_grad_(False)
        q_pi = self.critic(x, batch["action"], own=mu, head=0)
        self.critic.requires_grad_(True)
        loss_pi = (-q_pi + st.action_reg * u.pow(2).mean(-1)).mean(2).sum(1)
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        self.actor_opt.step(active)

        polyak(self.actor_target, self.actor, st.tau, active)  # theta'_i <- tau theta_i + ...
        polyak(self.critic_target, self.critic, st.tau, active)
        return {"loss_q": loss_q.detach(), "loss_pi": loss_pi.detach()}
