"""Stochastic DOP (Wang et al., ICLR 2021, "DOP: Off-Policy Multi-Agent Decomposed Policy
Gradients"), batched over seeds, for discrete actions with masks.

Reference implementation: TonghanWang/DOP (PyMARL), ``learners/offpg_learner.py``,
``modules/critics/offpg.py``, ``modules/mixers/qmix.py``, ``config/algs/offpg_smac.yaml``,
``config/default.yaml``, ``run.py``:

- actor: PyMARL's recurrent agent with softmax outputs and the controller's epsilon floor
  (``mask_before_softmax: False``, as FOP); the behaviour policy is that pi_eps alone (the
  multinomial selector's uniform pick is commented out in the official code); evaluation
  takes the most probable available action;
- critic: one MLP Q_i(s, o_i, .) for all agents on [state, o_i, agent id] (256-256, a dueling
  head q = a + v), mixed linearly: Q_tot(s, u) = sum_i k_i(s) Q_i(s, o_i, u_i) with
  k_i(s) >= 0 from the QMIX hypernetworks, k = |W1(s)| |w_final(s)| normalised over agents
  (DOP eq. 4, the official ``QMixer.k``/``forward``);
- critic: TD(lambda) targets from the target critic and mixer on the actions of the batch
  (the final row's action drawn from pi, as PyMARL's runner picks one), one RMSprop step per
  time step of the batch (``critic_train_mode: seq``), targets copied every
  ``target_update_interval`` critic steps;
- actor (DOP's stochastic policy gradient, eq. 8): -sum_i k_i(s) A_i log pi_i(u_i | tau_i),
  A_i = Q_i(u_i) - sum_u pi_i(u) Q_i(u) from the updated critic, masked mean over rows and
  agents; the critic is trained first, then the actor (``run.py``).

Where this differs from the official code (said in params.yaml too): the official critic
also learns off-policy from a 5000-episode buffer with tree-backup targets (``off_buffer``,
``train_critic_best``); here the critic learns from the on-policy batch only (the batch of the
latest ``batch_size`` episodes also feeds the actor, where the official critic samples 16 of
the latest 32).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from algorithms import masked_categorical as mc
from algorithms.discrete_learner import (
    GREEDY,
    DiscreteLearner,
    RecurrentSettings,
    check_epsilon,
    check_rmsprop,
)
from algorithms.learner import EXPLORE
from algorithms.on_policy import Episodes, episodes, final_actions, masked_mean
from algorithms.recurrent_policy import AgentInputs, Memory, RecurrentPolicy, step, unroll
from algorithms.returns import td_lambda_targets
from algorithms.seed_optim import SeedRMSprop, count_and_copy
from algorithms.seeding import SeedStreams
from algorithms.settings import check, check_integer, check_positive
from algorithms.stacked_mlp import StackedLinear, StackedMLP


@dataclass(frozen=True)
class DOPSettings(RecurrentSettings):
    critic_hidden: int  # critic MLP width (two layers): modules/critics/offpg.py
    mixing_embed_dim: int  # offpg_smac.yaml
    critic_lr: float  # critic and mixer RMSprop
    optim_alpha: float
    optim_eps: float
    target_update_interval: int  # critic steps (one per time step of a batch)
    epsilon_start: float
    epsilon_finish: float
    epsilon_anneal_steps: int

    def __post_init__(self):
        super().__post_init__()
        ints = ["critic_hidden", "mixing_embed_dim", "target_update_interval"]
        check_integer(self, *ints)
        check_positive(self, *ints, "critic_lr")
        check_rmsprop(self)
        check_epsilon(self)
        check(self.update_unit == "episode", "update_unit", "must be 'episode' (DOP updates after its episodes)",
              self.update_unit)
        check(self.replay_size >= self.batch_size, "replay_size",
              f"must be >= batch_size ({self.batch_size})", self.replay_size)


class DOPMixer(nn.Module):
    """k_i(s) ``[S, ..., N]`` >= 0, summing to 1: |W1(s)| (N x E) times |w_final(s)| (E),
    normalised (QMixer.k of the official code; single linear hypernetworks)."""

    def __init__(self, init: SeedStreams, n_agents: int, state_dim: int, embed: int):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.hyper_w1 = StackedMLP(init, 1, state_dim, [], embed * n_agents)
        self.hyper_w_final = StackedMLP(init, 1, state_dim, [], embed)

    def k(self, state: torch.Tensor) -> torch.Tensor:
        lead, S = state.shape[:-1], state.shape[0]
        s = state.reshape(S, 1, -1, state.shape[-1])
        w1 = self.hyper_w1(s).abs().view(S, -1, self.n_agents, self.embed)
        w_final = self.hyper_w_final(s).abs().view(S, -1, 1, self.embed)
        k = (w1 * w_final).sum(-1)
        return (k / k.sum(-1, keepdim=True)).view(*lead, self.n_agents)

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Q_tot = sum_i k_i(s) Q_i (the official forward: no bias)."""
        return (self.k(state) * q).sum(-1)


class DOPCritic(nn.Module):
    """Q_i(s, o_i, .) for every agent: [s, o_i, id] -> 256 -> 256 -> a (A) + v (1)."""

    def __init__(self, init: SeedStreams, in_dim: int, hidden: int, n_actions: int):
        super().__init__()
        self.body = StackedMLP(init, 1, in_dim, [hidden], hidden)
        self.head = StackedLinear(init, 1, hidden, n_actions + 1)  # fc3 and fc_v side by side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = x.shape[0]
        out = self.head(self.body(x.reshape(S, 1, -1, x.shape[-1])).relu())
        out = out.view(*x.shape[:-1], -1)
        return out[..., :-1] + out[..., -1:]


class DOP(DiscreteLearner):
    """All seeds of one run in lockstep: every parameter and buffer has a leading seed axis."""

    Settings = DOPSettings
    loop = "on_policy"  # the latest episodes (PyMARL's parallel runner and sample_latest)
    name = "dop"

    def __init__(self, spec, seeds: Sequence[int], settings: DOPSettings):
        super().__init__(spec, seeds, settings)
        st = settings
        S, N, A = len(seeds), spec.n_agents, spec.action_dim
        init = SeedStreams(seeds, "init")
        inputs = AgentInputs(N, A, st.obs_last_action, st.obs_agent_id)
        self.actor = RecurrentPolicy(init, inputs, inputs.size(spec.obs_dim), st.hidden)
        self.critic = DOPCritic(init, spec.state_dim + spec.obs_dim + N, st.critic_hidden, A)
        self.mixer = DOPMixer(init, N, spec.state_dim, st.mixing_embed_dim)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        rms = dict(alpha=st.optim_alpha, eps=st.optim_eps, clip=st.grad_norm_clip)
        self.actor_opt = SeedRMSprop(self.actor.parameters(), lr=st.lr, **rms)
        # critic_optimiser and mixer_optimiser share lr and one clipping norm (c_params)
        self.critic_opt = SeedRMSprop([*self.critic.parameters(), *self.mixer.parameters()],
                                      lr=st.critic_lr, **rms)
        self.explore = SeedStreams(seeds, "explore")
        self.update_noise = SeedStreams(seeds, "update")
        self.register_buffer("env_steps", torch.zeros(S, dtype=torch.long))
        self.register_buffer("updates", torch.zeros(S, dtype=torch.long))  # critic steps
        self.register_buffer("agent_ids", torch.eye(N), persistent=False)

    # ---- acting ------------------------------------------------------------------------------
    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None) -> Memory:
        return self.actor.begin(memory, started, obs)

    @torch.no_grad()
    def act(self, obs, state, avail, memory: Memory, mode: str, noise=None, acting=None):
        """``explore``: a draw from pi_eps; ``greedy``: the most probable available action."""
        if mode not in (EXPLORE, GREEDY):
            raise ValueError(f"{self.name}: unknown mode '{mode}' (known: {EXPLORE}, {GREEDY})")
        if mode == GREEDY:
            return self.actor.act(obs, avail, memory, None)
        S, E = obs.shape[:2]
        available = avail.bool()
        mc.check_some_available(available)
        acting = torch.ones(S, E, dtype=torch.bool) if acting is None else acting
        logits, hidden = step(self.actor.agent, self.actor.inputs(obs, memory.last_action), memory)
        log_pi = mc.epsilon_floored(logits, available, self.epsilon())
        # The behaviour policy is pi_eps alone: the official selector's extra uniform pick is
        # commented out (src/components/action_selectors.py), unlike FOP's.
        action = mc.sample(self.explore, log_pi, acting.any(1))
        self.env_steps += acting.sum(1)
        return action, Memory(hidden, F.one_hot(action, self.n_actions).to(obs.dtype))

    # ---- learning ----------------------------------------------------------------------------
    def log_pi(self, b: Episodes) -> torch.Tensor:
        """log pi_eps(. | tau_t) ``[S, B, T + 1, N, A]`` (the controller's training forward)."""
        logits = unroll(self.actor.agent, self.actor.inputs.episode(b.obs, b.taken))
        return mc.epsilon_floored(logits, b.available, self.epsilon())

    def _q(self, critic, b: Episodes) -> torch.Tensor:
        """Q_i(s, o_i, .) ``[S, B, T + 1, N, A]`` (OffPGCritic._build_inputs: [s, o_i, id])."""
        N = self.n_agents
        s = b.state.unsqueeze(-2).expand(*b.obs.shape[:-1], b.state.shape[-1])
        ids = self.agent_ids.expand(*b.obs.shape[:-1], N)
        return critic(torch.cat([s, b.obs, ids], -1))

    def critic_losses(self, b: Episodes, action: torch.Tensor, active) -> torch.Tensor:
        """One RMSprop step per time step t of the batch on sum_(filled b) (Q_tot(s_t, u_t) -
        G_t)^2 / filled rows at t (``train_critic``, seq mode); the mean of the steps' losses
        per seed ``[S]``."""
        st = self.settings
        T = b.mask.shape[-1]
        with torch.no_grad():
            q_target = self._q(self.target_critic, b).gather(-1, action.unsqueeze(-1)).squeeze(-1)
            g = td_lambda_targets(b.reward, b.terminated, b.mask,
                                  self.target_mixer(q_target, b.state), st.gamma, st.td_lambda)
        S = b.mask.shape[0]
        everyone = torch.ones(S, dtype=torch.bool) if active is None else active
        total, steps = torch.zeros(S), torch.zeros(S)
        for t in range(T):
            mask_t = b.mask[:, :, t]
            stepping = everyone & (mask_t.sum(1) > 0)  # a seed with no row at t takes no step
            if not stepping.any():
                continue
            row = Episodes(*(x[:, :, t : t + 1] if x.dim() > 2 else x for x in b))
            q = self._q(self.critic, row)[:, :, 0].gather(-1, action[:, :, t, :, None]).squeeze(-1)
            q_tot = self.mixer(q, b.state[:, :, t])
            loss = ((q_tot - g[:, :, t]) * mask_t).pow(2).sum(1) / mask_t.sum(1).clamp(min=1)
            self.critic_opt.zero_grad()
            loss.sum().backward()
            self.critic_opt.step(stepping)
            pairs = (self.target_critic, self.critic), (self.target_mixer, self.mixer)
            count_and_copy(self.updates, st.target_update_interval, stepping, *pairs)
            total += loss.detach() * stepping
            steps += stepping
        return total / steps.clamp(min=1)

    def actor_loss(self, b: Episodes, log_pi: torch.Tensor) -> torch.Tensor:
        """-sum k_i(s) (Q_i(u_i) - sum_u pi_i(u) Q_i(u)) log pi_i(u_i), masked mean over rows and
        agents per seed ``[S]`` (``OffPGLearner.train``)."""
        T = b.mask.shape[-1]
        lp = log_pi[:, :, :T]
        with torch.no_grad():
            q = self._q(self.critic, b)[:, :, :T]  # the updated critic
            baseline = (mc.probabilities(lp) * q).sum(-1)
            advantage = q.gather(-1, b.taken.unsqueeze(-1)).squeeze(-1) - baseline
            k = self.mixer.k(b.state[:, :, :T])
        taken = lp.gather(-1, b.taken.unsqueeze(-1)).squeeze(-1)
        return -masked_mean(k * advantage * taken, b.mask.unsqueeze(-1))

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """The critic's steps on the batch, then the actor's step on the updated critic. Seeds
        outside ``active`` change nothing."""
        b = episodes(batch)
        log_pi = self.log_pi(b)
        loss_q = self.critic_losses(b, final_actions(b, log_pi, self.update_noise, active), active)
        loss_pi = self.actor_loss(b, log_pi)
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        self.actor_opt.step(active)
        return {"loss_pi": loss_pi.detach(), "loss_q": loss_q}
