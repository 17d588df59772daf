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
- critic, trained on- and off-policy at once (DOP §4.1, ``train_critic`` and
  ``train_critic_best``): every update reads ``batch_size`` (16) episodes drawn uniformly
  without replacement from the newest ``on_buffer_size`` (32) and ``off_batch_size`` (32)
  drawn likewise from the whole ``replay_size`` (5000) buffer, cut to one length and stacked.
  The on-policy episodes get TD(lambda) targets (``td_lambda``) from the target critic and
  mixer on the batch's actions (the final row's action drawn from pi, as PyMARL's runner picks
  one); the off-policy ones get tree-backup targets (``tb_lambda``, ``tree_backup_steps``,
  ``algorithms.components.returns.tree_backup_targets``) with the expectation of the target Q_tot under
  the current pi_eps and its probability of the replayed joint action as the trace. Then one
  RMSprop step per time step of the stacked batch (the official per-step loop); after the loop,
  the targets are copied once ``target_update_interval`` critic steps have passed since the last
  copy (the official check, so a copy can come later than the interval). Updates start once the buffer can give both
  batches (``run.py``: 32 episodes);
- actor (DOP's stochastic policy gradient, eq. 8): -sum_i k_i(s) A_i log pi_i(u_i | tau_i),
  A_i = Q_i(u_i) - sum_u pi_i(u) Q_i(u) from the updated critic, masked mean over rows and
  agents, on the latest ``batch_size`` episodes (``sample_latest``); the critic is trained
  first, then the actor (``run.py``). ``actor_batch: official`` keeps the official
  ``sample_latest``'s fallback: when the on-policy ring's insertion index is below batch_size
  (half the updates with 4 copies), it returns a uniform draw of batch_size among the newest
  ``on_buffer_size`` instead (``episode_buffer.py:246-253``); ``latest`` always takes the newest.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from algorithms.components.returns import td_lambda_targets, tree_backup_targets
from algorithms.components.seed_optim import SeedRMSprop, hard_copy
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import check, check_integer, check_positive
from algorithms.learner import EXPLORE
from algorithms.learners.discrete_learner import (
    GREEDY,
    DiscreteLearner,
    RecurrentSettings,
    check_epsilon,
    check_rmsprop,
)
from algorithms.learners.on_policy import Episodes, episodes, final_actions, masked_mean
from algorithms.models import masked_categorical as mc
from algorithms.models.recurrent_policy import AgentInputs, Memory, RecurrentPolicy, step, unroll
from algorithms.models.stacked_mlp import StackedLinear, StackedMLP


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
    on_buffer_size: int  # the on-policy ring: the critic's batch_size episodes are drawn from it
    off_batch_size: int  # episodes per critic update drawn from the whole replay (off-policy)
    tb_lambda: float  # tree-backup lambda of the off-policy targets
    tree_backup_steps: int  # n of the tree-backup sum
    actor_batch: str  # "official" (sample_latest with its fallback) | "latest"

    def __post_init__(self):
        super().__post_init__()
        ints = ["critic_hidden", "mixing_embed_dim", "target_update_interval", "on_buffer_size",
                "off_batch_size", "tree_backup_steps"]
        check_integer(self, *ints)
        check_positive(self, *ints, "critic_lr")
        check(0 <= self.tb_lambda <= 1, "tb_lambda", "must be in [0, 1]", self.tb_lambda)
        check(self.actor_batch in ("official", "latest"), "actor_batch", "must be official or latest",
              self.actor_batch)
        check(self.on_buffer_size >= self.batch_size, "on_buffer_size",
              f"must be >= batch_size ({self.batch_size})", self.on_buffer_size)
        check(self.replay_size >= max(self.off_batch_size, self.on_buffer_size), "replay_size",
              "must be >= off_batch_size and on_buffer_size", self.replay_size)
        check_rmsprop(self)
        check_epsilon(self)
        check(self.update_unit == "episode", "update_unit", "must be 'episode' (DOP updates after its episodes)",
              self.update_unit)


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
        self.register_buffer("last_target_update", torch.zeros(S, dtype=torch.long))
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

    # ---- the critic: on-policy TD(lambda) and off-policy tree-backup targets ---------------
    def ready(self, storage) -> torch.Tensor:
        """Both draws possible (``run.py``: ``buffer.can_sample(16) and off_buffer.can_sample(32)``)."""
        st = self.settings
        return storage.episodes() >= max(st.batch_size, st.off_batch_size)

    def sample(self, storage, active) -> dict:
        """The critic's on-policy draw (batch_size of the newest on_buffer_size, ``uni_sample``)
        and off-policy draw (off_batch_size of the whole replay), and the actor's batch
        (``sample_latest``), each ``[S, n, limit + 1, ...]`` (storage.LatestEpisodes)."""
        st = self.settings
        count = storage.episodes()  # [S]
        recent = storage.newest(st.on_buffer_size)
        recent_valid = torch.arange(st.on_buffer_size) >= (st.on_buffer_size - count).unsqueeze(1)
        on = storage.choose(recent, st.batch_size, active, recent_valid)
        every, _ = storage.committed_slots()
        off = storage.choose(every, st.off_batch_size, active, torch.arange(every.shape[1]) < count.unsqueeze(1))
        actor = storage.newest(st.batch_size)
        if st.actor_batch == "official":  # the ring index below batch_size: a uniform draw instead
            # drawn at every update, used or not: each seed's replay stream then advances the same
            # whatever the other seeds' ring indices (seed k alone equals seed k among seven)
            fallback = storage.choose(recent, st.batch_size, active, recent_valid)
            wraps = storage.count % st.on_buffer_size < st.batch_size  # episodes ever finished
            actor = torch.where(wraps.unsqueeze(1), fallback, actor)
        return {"on": storage.take(on), "off": storage.take(off), "actor": storage.take(actor)}

    def targets(self, b: Episodes, action: torch.Tensor, log_pi: torch.Tensor, n_on: int) -> torch.Tensor:
        """Targets ``[S, B, T]`` of the stacked batch: TD(lambda) for its first n_on episodes
        (``train_critic``), tree backup for the rest (``train_critic_best``), both from the
        target critic and mixer; pi is the current pi_eps (``log_pi``, no gradient)."""
        st = self.settings
        q_target = self._q(self.target_critic, b)  # [S, B, T + 1, N, A]
        q_taken = self.target_mixer(q_target.gather(-1, action.unsqueeze(-1)).squeeze(-1), b.state)
        on, off = slice(None, n_on), slice(n_on, None)
        g_on = td_lambda_targets(b.reward[:, on], b.terminated[:, on], b.mask[:, on], q_taken[:, on],
                                 st.gamma, st.td_lambda)
        pi = mc.probabilities(log_pi[:, off])
        expected = self.target_mixer((pi * q_target[:, off]).sum(-1), b.state[:, off])  # build_exp_q
        trace = pi.gather(-1, action[:, off].unsqueeze(-1)).squeeze(-1).prod(-1)  # pi(u_t | tau_t)
        g_off = tree_backup_targets(b.reward[:, off], b.terminated[:, off], b.mask[:, off], q_taken[:, off],
                                    expected, trace, st.gamma, st.tb_lambda, st.tree_backup_steps)
        return torch.cat([g_on, g_off], 1)

    def critic_losses(self, b: Episodes, action: torch.Tensor, g: torch.Tensor, active) -> torch.Tensor:
        """One RMSprop step per time step t of the batch on sum_(filled b) (Q_tot(s_t, u_t) -
        G_t)^2 / filled rows at t (``train_critic``'s loop); the mean of the steps' losses per
        seed ``[S]``. The targets are copied at the end, once ``target_update_interval`` critic
        steps have passed since the last copy (the official check after the loop)."""
        st = self.settings
        T = b.mask.shape[-1]
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
            self.updates += stepping.long()
            total += loss.detach() * stepping
            steps += stepping
        due = everyone & (self.updates - self.last_target_update >= st.target_update_interval)
        if due.any():
            for target, source in ((self.target_critic, self.critic), (self.target_mixer, self.mixer)):
                hard_copy(target, source, due)
            self.last_target_update[due] = self.updates[due]
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

    def update(self, batch: dict, active: torch.Tensor | None = None):
        """The critic's steps on the stacked on- and off-policy episodes (``batch["off"]`` may
        be None: on-policy targets only), then the actor's step on the updated critic, on
        ``batch["actor"]``. Seeds outside ``active`` change nothing."""
        on, off = batch["on"], batch.get("off")
        n_on = on["filled"].shape[1]
        stacked = on if off is None else {k: torch.cat([on[k], off[k]], 1) for k in on}
        b = episodes(stacked)  # cut to the longer of the two batches (run.py:198-200)
        with torch.no_grad():
            log_pi = self.log_pi(b)
            action = final_actions(b, log_pi, self.update_noise, active)
            g = self.targets(b, action, log_pi, n_on)
        loss_q = self.critic_losses(b, action, g, active)
        b_actor = episodes(batch["actor"])
        loss_pi = self.actor_loss(b_actor, self.log_pi(b_actor))
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        self.actor_opt.step(active)
        return {"loss_pi": loss_pi.detach(), "loss_q": loss_q}
