"""QMIX (Rashid et al., ICML 2018) as a learner of the protocol, batched over seeds.

Reference implementation: PyMARL (oxwhirl/pymarl): ``RNNAgent`` shared by all agents, fed the
agent's observation, its last action and its id; epsilon-greedy over available actions; a
monotonic mixer (``algorithms/qmix_mixer.py``); the ``QLearner`` TD update on whole episodes
with double Q, RMSprop and a hard target copy every ``target_update_interval`` updates.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.nn import functional as F

from algorithms.learner import EXPLORE, Learner
from algorithms.qmix_mixer import QMixer
from algorithms.recurrent_agent import RecurrentAgent
from algorithms.seed_optim import SeedRMSprop, hard_copy
from algorithms.seeding import SeedStreams
from algorithms.settings import (
    Schedule,
    check,
    check_integer,
    check_positive,
    check_unit_interval,
)
from algorithms.storage import Field

GREEDY = "greedy"  # the one execution mode: PyMARL's test_mode (epsilon = 0)


@dataclass(frozen=True)
class QMIXSettings(Schedule):
    """PyMARL's QMIX configuration (``config/default.yaml`` + ``config/algs/qmix.yaml``)."""

    # The schedule (Schedule's fields) is PyMARL's: one update of batch_size episodes after
    # every episode, once the buffer can sample a batch (EpisodeReplay.ready), buffer_size 5000.
    # ---- networks ----------------------------------------------------------------------------
    hidden: int  # GRU and agent hidden size: PyMARL default.yaml rnn_hidden_dim
    mixing_embed_dim: int  # mixer hidden units: PyMARL qmix.yaml; QMIX paper (32 ELU units)
    # Hypernetwork depth: 1 = the QMIX paper's single linear layer (PyMARL QMixer's default
    # when the key is absent); PyMARL's later qmix.yaml sets 2.
    hypernet_layers: int
    hypernet_embed: int  # hypernetwork hidden units if hypernet_layers = 2: PyMARL qmix.yaml
    obs_last_action: bool  # agent input includes its last action: PyMARL default.yaml
    obs_agent_id: bool  # agent input includes its one-hot id: PyMARL default.yaml
    # ---- learning ----------------------------------------------------------------------------
    gamma: float  # PyMARL default.yaml
    lr: float  # RMSprop learning rate: PyMARL default.yaml
    optim_alpha: float  # RMSprop alpha: PyMARL default.yaml
    optim_eps: float  # RMSprop epsilon: PyMARL default.yaml
    grad_norm_clip: float  # per-seed gradient norm bound: PyMARL default.yaml
    double_q: bool  # next action by the online net, value by the target: PyMARL qmix.yaml
    # Target networks are copied every this many updates per seed. PyMARL qmix.yaml counts 200
    # episodes; with its episode runner QMIX does one update per episode, so the two agree.
    target_update_interval: int
    # ---- exploration (PyMARL qmix.yaml, "epsilon_greedy" with a linear schedule) ------------
    epsilon_start: float
    epsilon_finish: float
    epsilon_anneal_steps: int  # env steps per seed: PyMARL qmix.yaml epsilon_anneal_time

    def __post_init__(self):
        super().__post_init__()
        check_integer(
            self,
            "hidden",
            "mixing_embed_dim",
            "hypernet_layers",
            "hypernet_embed",
            "target_update_interval",
            "epsilon_anneal_steps",
        )
        check_positive(
            self,
            "hidden",
            "mixing_embed_dim",
            "hypernet_embed",
            "target_update_interval",
            "epsilon_anneal_steps",
            "lr",
            "optim_eps",
            "grad_norm_clip",
        )
        check(
            self.hypernet_layers in (1, 2),
            "hypernet_layers",
            "must be 1 or 2",
            self.hypernet_layers,
        )
        check(
            isinstance(self.gamma, (int, float)) and 0 <= self.gamma < 1,
            "gamma",
            "must be in [0, 1)",
            self.gamma,
        )
        check(
            isinstance(self.optim_alpha, (int, float)) and 0 <= self.optim_alpha < 1,
            "optim_alpha",
            "must be in [0, 1)",
            self.optim_alpha,
        )
        check_unit_interval(self, "epsilon_start", "epsilon_finish")
        check(
            self.epsilon_finish <= self.epsilon_start,
            "epsilon_finish",
            f"must be <= epsilon_start ({self.epsilon_start})",
            self.epsilon_finish,
        )
        for name in ("double_q", "obs_last_action", "obs_agent_id"):
            value = getattr(self, name)
            check(isinstance(value, bool), name, "must be true or false", value)


class Memory(NamedTuple):
    """What an agent carries between the steps of an episode, per copy ``[S, E, N, ...]``."""

    hidden: torch.Tensor  # GRU hidden state [S, E, N, hidden]
    last_action: torch.Tensor  # one-hot of the previous action [S, E, N, A], zeros at the start


def masked_argmax(values: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Argmax over the last axis among ``available`` entries (PyMARL masks with -inf)."""
    return values.masked_fill(~available, -float("inf")).argmax(-1)


class QMIX(Learner):
    """All seeds of one run in lockstep: every parameter and buffer has a leading seed axis."""

    Settings = QMIXSettings
    loop = "episodes"  # recurrent agents: whole episodes are replayed

    def __init__(self, spec, seeds: Sequence[int], settings: QMIXSettings):
        super().__init__(settings)
        if not spec.discrete:
            raise ValueError("qmix: QMIX needs a discrete action space, this task's is continuous")
        st = settings
        S, N, A = len(seeds), spec.n_agents, spec.action_dim
        self.n_seeds, self.n_agents, self.n_actions = S, N, A
        in_dim = spec.obs_dim + A * st.obs_last_action + N * st.obs_agent_id
        init = SeedStreams(seeds, "init")
        self.agent = RecurrentAgent(init, in_dim, st.hidden, A)
        self.mixer = QMixer(
            init, N, spec.state_dim, st.mixing_embed_dim, st.hypernet_layers, st.hypernet_embed
        )
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.optimiser = SeedRMSprop(
            [*self.agent.parameters(), *self.mixer.parameters()],
            lr=st.lr,
            alpha=st.optim_alpha,
            eps=st.optim_eps,
            clip=st.grad_norm_clip,  # clip_grad_norm_ over all parameters, per seed (PyMARL)
        )
        self.explore = SeedStreams(seeds, "explore")
        # The epsilon schedule's clock (PyMARL's t_env) and the update count that times the
        # target copies, per seed, kept in checkpoints.
        self.register_buffer("env_steps", torch.zeros(S, dtype=torch.long))
        self.register_buffer("updates", torch.zeros(S, dtype=torch.long))
        self.register_buffer("agent_ids", torch.eye(N), persistent=False)

    @classmethod
    def execution_modes(cls, settings: QMIXSettings) -> tuple[str, ...]:
        return (GREEDY,)

    def fields(self, spec) -> dict[str, Field]:
        N, A = spec.n_agents, spec.action_dim
        return {
            "obs": Field((N, spec.obs_dim)),
            "state": Field((spec.state_dim,)),  # the mixer's input s
            "avail": Field((N, A), torch.bool),  # masks the max over next actions
            "action": Field((N,), torch.int64),
            "reward": Field(()),  # the team reward
            "terminated": Field((), torch.bool),
        }

    # ---- agent inputs (PyMARL BasicMAC._build_inputs) ---------------------------------------
    def _inputs(self, obs: torch.Tensor, last_action: torch.Tensor) -> torch.Tensor:
        """[obs, one-hot last action, one-hot agent id] on the last axis of ``[..., N, *]``."""
        parts = [obs]
        if self.settings.obs_last_action:
            parts.append(last_action)
        if self.settings.obs_agent_id:
            parts.append(self.agent_ids.expand(*obs.shape[:-1], self.n_agents))
        return torch.cat(parts, -1)

    # ---- acting ------------------------------------------------------------------------------
    def begin_episodes(
        self, memory: Memory | None, started: torch.Tensor, obs, state, mode=EXPLORE, noise=None
    ) -> Memory:
        """Zero hidden state and last action for the copies that start an episode."""
        S, E = started.shape
        N, A, H = self.n_agents, self.n_actions, self.settings.hidden
        fresh = Memory(obs.new_zeros(S, E, N, H), obs.new_zeros(S, E, N, A))
        if memory is None:
            return fresh
        start = started.view(S, E, 1, 1)
        return Memory(*(torch.where(start, f, m) for f, m in zip(fresh, memory)))

    def epsilon(self) -> torch.Tensor:
        """Per seed ``[S]``: PyMARL's DecayThenFlatSchedule (linear),
        max(finish, start - (start - finish) t / epsilon_anneal_steps), t the seed's env steps.
        (PyMARL's t_env moves at episode ends; this clock moves every step.)"""
        st = self.settings
        progress = self.env_steps.double() / st.epsilon_anneal_steps
        eps = st.epsilon_start - (st.epsilon_start - st.epsilon_finish) * progress
        return eps.clamp(min=st.epsilon_finish).float()

    @torch.no_grad()
    def act(self, obs, state, avail, memory: Memory, mode: str, noise=None, acting=None):
        """Actions ``[S, E, N]`` among the available ones, and the new memory.

        ``explore``: epsilon-greedy (PyMARL EpsilonGreedyActionSelector): with probability
        epsilon an action uniform over the available ones, else the greedy one; each call
        advances the seed's epsilon clock by its acting copies' env steps. ``greedy``: the
        masked argmax.
        """
        if mode not in (EXPLORE, GREEDY):
            raise ValueError(f"qmix: unknown mode '{mode}' (known: {EXPLORE}, {GREEDY})")
        S, E, N, _ = obs.shape
        inputs = self._inputs(obs, memory.last_action).reshape(S, 1, E * N, -1)  # one step
        q, hidden = self.agent(inputs, memory.hidden.reshape(S, E * N, -1))
        available = avail.bool()
        action = masked_argmax(q.view(S, E, N, -1), available)
        if mode == EXPLORE:
            acting = torch.ones(S, E, dtype=torch.bool) if acting is None else acting
            drawing = acting.any(1)  # a seed whose copies all wait draws nothing
            # Both draws happen every step, so a seed's stream never depends on its epsilon.
            pick = self.explore.uniform(0, 1, E, N, active=drawing) < self.epsilon().view(S, 1, 1)
            # The available action with the largest of i.i.d. uniform scores is uniform among
            # the available ones (PyMARL: Categorical(avail_actions).sample()).
            scores = self.explore.uniform(0, 1, E, N, self.n_actions, active=drawing)
            random_action = masked_argmax(scores, available)
            action = torch.where(pick, random_action, action)
            self.env_steps += acting.sum(1)
        last_action = F.one_hot(action, self.n_actions).to(obs.dtype)
        return action, Memory(hidden.view(S, E, N, -1), last_action)

    # ---- learning ----------------------------------------------------------------------------
    def _unroll(self, agent: RecurrentAgent, inputs: torch.Tensor) -> torch.Tensor:
        """Q_i(tau_t, .) ``[S, B, T, N, A]`` for every row of ``inputs [S, B, T, N, in]``, the
        hidden state starting from zeros at each episode's first row (PyMARL init_hidden)."""
        S, B, T, N, _ = inputs.shape
        x = inputs.transpose(1, 2).reshape(S, T, B * N, -1)  # time-major for the unroll
        q, _ = agent(x, agent.initial_hidden(S, B * N))
        return q.view(S, T, B, N, -1).transpose(1, 2)

    def td_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The QMIX loss per seed ``[S]`` (§4, eq. 6; PyMARL QLearner.train) on episodes
        ``[S, B, limit + 1, ...]``: sum over filled rows of (Q_tot - y)^2 / filled rows."""
        st = self.settings
        # Rows past the batch's longest episode are padding for every seed; dropping them
        # (PyMARL's max_t_filled) changes nothing: the GRU is causal and padding is masked.
        T = int(batch["filled"].sum(-1).max())
        mask = batch["filled"][:, :, :T].float()  # [S, B, T]
        action = batch["action"][:, :, :T].long()  # [S, B, T, N]
        reward = batch["reward"][:, :, :T].float()
        terminated = batch["terminated"][:, :, :T].float()
        state, avail = batch["state"][:, :, : T + 1], batch["avail"][:, :, : T + 1].bool()

        # Agent inputs for rows 0..T: the last action of row t is the action of row t - 1.
        one_hot = F.one_hot(action, self.n_actions).to(batch["obs"].dtype)
        last_action = torch.cat([torch.zeros_like(one_hot[:, :, :1]), one_hot], 2)
        inputs = self._inputs(batch["obs"][:, :, : T + 1], last_action)

        q = self._unroll(self.agent, inputs)  # [S, B, T + 1, N, A]
        q_taken = q[:, :, :T].gather(-1, action.unsqueeze(-1)).squeeze(-1)  # Q_i(tau_t, u_t)
        q_tot = self.mixer(q_taken, state[:, :, :T])  # Q_tot(tau, u, s; theta)
        with torch.no_grad():
            q_target = self._unroll(self.target_agent, inputs)[:, :, 1:]  # theta^- at t + 1
            # max over available next actions u'; double Q picks u' by the online network.
            chooser = q.detach()[:, :, 1:] if st.double_q else q_target
            next_action = masked_argmax(chooser, avail[:, :, 1:])
            q_next = q_target.gather(-1, next_action.unsqueeze(-1)).squeeze(-1)
            # y_tot = r + gamma max_u' Q_tot(tau', u', s'; theta^-), no bootstrap at termination
            y = reward + st.gamma * (1 - terminated) * self.target_mixer(q_next, state[:, :, 1:])
        td = (q_tot - y) * mask  # unfilled rows (padding) count nothing
        return td.pow(2).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One RMSprop step on the TD loss for the seeds in ``active`` (all if None); every
        ``target_update_interval``-th update of a seed copies its targets. Seeds outside
        ``active`` keep parameters, optimiser state, counters and targets."""
        loss = self.td_loss(batch)
        self.optimiser.zero_grad()
        loss.sum().backward()  # summed over seeds: each seed's parameters get its own gradient
        self.optimiser.step(active)  # clip_grad_norm_ per seed, then RMSprop
        self._update_targets(active)
        return {"loss_td": loss.detach()}

    @torch.no_grad()
    def _update_targets(self, active: torch.Tensor | None) -> None:
        """PyMARL QLearner._update_targets, timed by each seed's own update count."""
        stepped = torch.ones_like(self.updates, dtype=torch.bool) if active is None else active
        self.updates += stepped.long()
        due = stepped & (self.updates % self.settings.target_update_interval == 0)
        if due.any():
            hard_copy(self.target_agent, self.agent, due)
            hard_copy(self.target_mixer, self.mixer, due)
