"""QMIX (Rashid et al., ICML 2018) as a learner of the protocol, batched over seeds.

Reference implementation: PyMARL (oxwhirl/pymarl): ``RNNAgent`` shared by all agents, fed the
agent's observation, its last action and its id; epsilon-greedy over available actions; a
monotonic mixer (``algorithms/models/qmix_mixer.py``); the ``QLearner`` TD update on whole episodes
with double Q, RMSprop and a hard target copy every ``target_update_interval`` updates.

QMIXs (IAC, Ma et al. AAMAS 2021, §3) is the setting ``observe_other_actions``: "if each agent
knows the actions of other agents in advance and use them as part of the state", QMIX can
represent the matrix game's payoff (IAC Table 4). Each agent's input then carries the other
agents' one-hot actions of the same step and the mixer's state carries the joint action, so
Q_tot(s, u) is no longer tied to the monotone structure in u (eq. 5 still holds in every Q_i).
IAC's appendix with the details is not in the text we have; how the actions are known at
acting time and in the TD target are our choices, explained in ``_act_in_turn`` and
``td_loss``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.nn import functional as F

from algorithms.components.seed_optim import SeedRMSprop, count_and_copy
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import (
    Schedule,
    check,
    check_integer,
    check_positive,
    check_unit_interval,
    linear_schedule,
)
from algorithms.components.storage import Field
from algorithms.learner import EXPLORE, Learner
from algorithms.models.masked_categorical import masked_argmax
from algorithms.models.qmix_mixer import QMixer
from algorithms.models.recurrent_agent import RecurrentAgent
from algorithms.models.recurrent_policy import AgentInputs, Memory, unroll

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
    # ---- QMIXs (IAC §3) ------------------------------------------------------------------------
    # Agents see the other agents' actions of the same step, the mixer the joint action.
    # False is QMIX itself; the default keeps entries written before this setting valid.
    # (IAC's "uniform visitation" needs no setting: epsilon_start = epsilon_finish = 1.)
    observe_other_actions: bool = False

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
        for name in ("double_q", "obs_last_action", "obs_agent_id", "observe_other_actions"):
            value = getattr(self, name)
            check(isinstance(value, bool), name, "must be true or false", value)


class JointValues(NamedTuple):
    """Every joint action's values at an episode's first step (``QMIX.joint_values``)."""

    actions: torch.Tensor  # [J, N] the joint actions, agent 0's slowest (itertools.product)
    agent_q: torch.Tensor  # [S, J, N, A] Q_i(tau, .) of each agent given joint action j
    q_tot: torch.Tensor  # [S, J] Q_tot(s, u_j)


class QMIX(Learner):
    """All seeds of one run in lockstep: every parameter and buffer has a leading seed axis."""

    Settings = QMIXSettings
    loop = "episodes"  # recurrent agents: whole episodes are replayed
    discrete_actions = True

    def __init__(self, spec, seeds: Sequence[int], settings: QMIXSettings):
        super().__init__(settings)
        if not spec.discrete:
            raise ValueError("qmix: QMIX needs a discrete action space, this task's is continuous")
        st = settings
        S, N, A = len(seeds), spec.n_agents, spec.action_dim
        self.n_seeds, self.n_agents, self.n_actions = S, N, A
        observe = st.observe_other_actions
        # QMIXs: each agent also reads the N - 1 others' one-hot actions, the mixer all N.
        self.inputs = AgentInputs(N, A, st.obs_last_action, st.obs_agent_id)
        in_dim = self.inputs.size(spec.obs_dim) + (N - 1) * A * observe
        mixer_state_dim = spec.state_dim + N * A * observe
        init = SeedStreams(seeds, "init")
        self.agent = self._make_agent(init, in_dim, spec)
        self.mixer = QMixer(
            init, N, mixer_state_dim + self.latent_size(), st.mixing_embed_dim,
            st.hypernet_layers, st.hypernet_embed,
        )
        extra = self._make_extra(init, spec)  # trained with the agents and the mixer
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        self.optimiser = SeedRMSprop(
            [*self.agent.parameters(), *self.mixer.parameters(), *extra],
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
        if observe:
            # Row i: the agents other than i, in index order (what agent i is told).
            others = [[j for j in range(N) if j != i] for i in range(N)]
            self.register_buffer("others", torch.tensor(others).view(N, N - 1), persistent=False)

    # ---- hooks for MAVEN (algorithms/learners/maven_qmix.py) -----------------------------------------
    def _make_agent(self, init: SeedStreams, in_dim: int, spec):
        return RecurrentAgent(init, in_dim, self.settings.hidden, spec.action_dim)

    def latent_size(self) -> int:
        """Size of a per-episode latent the mixer reads with the state (none for QMIX)."""
        return 0

    def _make_extra(self, init: SeedStreams, spec) -> list[torch.nn.Parameter]:
        """Networks trained in the same step, built here; their parameters (none for QMIX)."""
        return []

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
    def _inputs(
        self, obs: torch.Tensor, last_action: torch.Tensor, joint: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[obs, one-hot last action, one-hot agent id] on the last axis of ``[..., N, *]``;
        QMIXs appends the other agents' one-hot actions of this step, taken from ``joint``
        ``[..., N, A]`` (a row of zeros: an action the agent does not know)."""
        if self.settings.observe_other_actions:  # [..., N, (N - 1) A]
            return self.inputs(obs, last_action, joint[..., self.others, :].flatten(-2))
        return self.inputs(obs, last_action)

    def _mixer_state(self, state: torch.Tensor, action: torch.Tensor, latent=None, rows=None) -> torch.Tensor:
        """The mixer's s: the task's state, and for QMIXs the joint action ``action [..., N]``
        one-hot (IAC §3: the actions "as part of the state"); with a per-episode ``latent``
        (MAVEN's z, ``[S, B, T + 1, z]``), its ``rows`` too (MAVEN's noise mixer reads [s, z])."""
        parts = [state]
        if self.settings.observe_other_actions:
            parts.append(F.one_hot(action, self.n_actions).flatten(-2).to(state.dtype))
        if latent is not None:
            parts.append(latent[:, :, rows].to(state.dtype))
        return torch.cat(parts, -1) if len(parts) > 1 else state

    # ---- acting ------------------------------------------------------------------------------
    def begin_episodes(
        self, memory: Memory | None, started: torch.Tensor, obs, state, mode=EXPLORE, noise=None
    ) -> Memory:
        """Zero hidden state and last action for the copies that start an episode."""
        return self.inputs.fresh(obs, self.settings.hidden, started, memory)

    def epsilon(self) -> torch.Tensor:
        """Per seed ``[S]``: PyMARL's DecayThenFlatSchedule (linear),
        max(finish, start - (start - finish) t / epsilon_anneal_steps), t the seed's env steps.
        (PyMARL's t_env moves at episode ends; this clock moves every step.)"""
        st = self.settings
        return linear_schedule(st.epsilon_start, st.epsilon_finish, st.epsilon_anneal_steps, self.env_steps)

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
        if self.settings.observe_other_actions:
            return self._act_in_turn(obs, avail, memory, mode, acting)
        S, E, N, _ = obs.shape
        inputs = self._inputs(obs, memory.last_action).reshape(S, 1, E * N, -1)  # one step
        q, hidden = self._agent_step(self.agent, inputs, memory.hidden.reshape(S, E * N, -1), memory)
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
        return action, self._carry(memory, hidden.view(S, E, N, -1), last_action)

    def _agent_step(self, agent, inputs: torch.Tensor, hidden: torch.Tensor, memory):
        """One step of ``agent`` on ``inputs [S, 1, M, in]`` (a hook: MAVEN conditions the
        agents on the episode's latent, which the memory holds)."""
        return agent(inputs, hidden)

    def _carry(self, memory, hidden: torch.Tensor, last_action: torch.Tensor):
        """The memory after a step (a hook: MAVEN's also carries the episode's latent)."""
        return Memory(hidden, last_action)

    def _act_in_turn(self, obs, avail, memory: Memory, mode: str, acting):
        """QMIXs acting (our choice; IAC's appendix is not available): the agents choose in
        index order and agent i is told the actions agents 0..i-1 have just chosen (after
        their exploration), with zeros for agents i+1..N-1, which have not chosen yet. Training
        tells every agent all the others' actions (``td_loss``), so this is the closest a
        sequential execution gets to "knowing the actions of other agents in advance" (IAC §3);
        the zeros are the same "unknown" that training feeds after an episode's last row.
        Exploration draws what ``act`` draws, in the same order, so a seed's stream is the
        same with or without this setting."""
        S, E, N, _ = obs.shape
        available = avail.bool()
        if mode == EXPLORE:
            acting = torch.ones(S, E, dtype=torch.bool) if acting is None else acting
            drawing = acting.any(1)
            pick = self.explore.uniform(0, 1, E, N, active=drawing) < self.epsilon().view(S, 1, 1)
            scores = self.explore.uniform(0, 1, E, N, self.n_actions, active=drawing)
            random_action = masked_argmax(scores, available)
        chosen = obs.new_zeros(S, E, N, self.n_actions)  # one-hot of the actions chosen so far
        action = torch.zeros(S, E, N, dtype=torch.long)
        hidden = torch.empty_like(memory.hidden)
        for i in range(N):
            inputs = self._inputs(obs, memory.last_action, chosen)[:, :, i]  # agent i only
            q, hidden_i = self.agent(inputs.unsqueeze(1), memory.hidden[:, :, i])  # one step
            action_i = masked_argmax(q[:, 0], available[:, :, i])
            if mode == EXPLORE:
                action_i = torch.where(pick[:, :, i], random_action[:, :, i], action_i)
            action[:, :, i], hidden[:, :, i] = action_i, hidden_i
            chosen[:, :, i] = F.one_hot(action_i, self.n_actions).to(obs.dtype)
        if mode == EXPLORE:
            self.env_steps += acting.sum(1)
        return action, Memory(hidden, chosen)

    @torch.no_grad()
    def joint_values(self, obs: torch.Tensor, state: torch.Tensor) -> JointValues:
        """Q_i and Q_tot for every joint action at an episode's first step (zero hidden state
        and last action), from ``obs [S, N, obs]`` and ``state [S, state]``: what IAC Tables 2-4
        read off a one-step game. Without ``observe_other_actions`` agent i's Q-values are the
        same for every joint action; with it, Q_i(u_i | u_-i) and Q_tot see the joint action."""
        S, N, A = obs.shape[0], self.n_agents, self.n_actions
        actions = torch.tensor(list(itertools.product(range(A), repeat=N))).view(-1, N)
        J = len(actions)
        joint = F.one_hot(actions, A).to(obs.dtype).expand(S, J, N, A)
        inputs = self._inputs(obs.unsqueeze(1).expand(S, J, N, -1), torch.zeros_like(joint), joint)
        q, _ = self.agent(inputs.reshape(S, 1, J * N, -1), self.agent.initial_hidden(S, J * N))
        agent_q = q.view(S, J, N, A)
        every = actions.expand(S, J, N)
        taken = agent_q.gather(-1, every.unsqueeze(-1)).squeeze(-1)
        state = state.unsqueeze(1).expand(S, J, -1)
        return JointValues(actions, agent_q, self.mixer(taken, self._mixer_state(state, every)))

    # ---- learning ----------------------------------------------------------------------------
    def _unroll(self, agent: RecurrentAgent, inputs: torch.Tensor, batch=None) -> torch.Tensor:
        """Q_i(tau_t, .) ``[S, B, T, N, A]`` for every row of ``inputs [S, B, T, N, in]``, the
        hidden state starting from zeros at each episode's first row (PyMARL init_hidden);
        ``batch`` is the episode batch (a hook: MAVEN reads the episodes' latents)."""
        return unroll(agent, inputs)

    def td_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The QMIX loss per seed ``[S]`` (§4, eq. 6; PyMARL QLearner.train) on episodes
        ``[S, B, limit + 1, ...]``: sum over filled rows of (Q_tot - y)^2 / filled rows."""
        return self.td_terms(batch)[0]

    def td_terms(self, batch: dict[str, torch.Tensor]):
        """The TD loss per seed ``[S]``, the online Q_i(tau_t, .) of rows 0..T
        ``[S, B, T + 1, N, A]`` and T (the batch's longest episode)."""
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
        joint = None
        if st.observe_other_actions:
            # QMIXs: each row's own joint action, told to every agent (IAC §3). Where no action
            # was taken (the row after an episode's last, kept for the bootstrap, and padding)
            # the others' actions are unknown: zeros, as in acting for agents yet to choose.
            known = batch["filled"][:, :, :T, None, None]
            joint = torch.cat([one_hot * known, torch.zeros_like(one_hot[:, :, :1])], 2)
        inputs = self._inputs(batch["obs"][:, :, : T + 1], last_action, joint)

        # A per-episode latent the mixer also reads (MAVEN: z with the state), else None
        latent = batch["latent"][:, :, : T + 1] if "latent" in batch else None
        q = self._unroll(self.agent, inputs, batch)  # [S, B, T + 1, N, A]
        q_taken = q[:, :, :T].gather(-1, action.unsqueeze(-1)).squeeze(-1)  # Q_i(tau_t, u_t)
        # Q_tot(tau, u, s; theta); QMIXs's s includes u
        q_tot = self.mixer(q_taken, self._mixer_state(state[:, :, :T], action, latent, slice(0, T)))
        with torch.no_grad():
            q_target = self._unroll(self.target_agent, inputs, batch)[:, :, 1:]  # theta^- at t + 1
            # max over available next actions u'; double Q picks u' by the online network.
            chooser = q.detach()[:, :, 1:] if st.double_q else q_target
            next_action = masked_argmax(chooser, avail[:, :, 1:])
            q_next = q_target.gather(-1, next_action.unsqueeze(-1)).squeeze(-1)
            # y_tot = r + gamma max_u' Q_tot(tau', u', s'; theta^-), no bootstrap at termination
            # QMIXs: each agent's max is taken given the others' actions the batch holds for
            # row t + 1 (zeros where unknown), and the target mixer's state carries the joint
            # action u' the maxes picked (our choice; one-step games never bootstrap).
            s_next = self._mixer_state(state[:, :, 1:], next_action, latent, slice(1, T + 1))
            y = reward + st.gamma * (1 - terminated) * self.target_mixer(q_next, s_next)
        td = (q_tot - y) * mask  # unfilled rows (padding) count nothing
        return td.pow(2).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1), q, T

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
        pairs = (self.target_agent, self.agent), (self.target_mixer, self.mixer)
        count_and_copy(self.updates, self.settings.target_update_interval, active, *pairs)
