"""FOP (Zhang et al., ICML 2021, "FOP: Factorizing Optimal Joint Policy of Maximum-Entropy
Multi-Agent Reinforcement Learning"), batched over seeds, for discrete actions with masks.

Reference implementation: liyheng/FOP (PyMARL), ``learners/fop_learner.py``,
``modules/critics/fop.py``, ``modules/mixers/fop.py``, ``config/algs/fop.yaml``:

- actor: PyMARL's recurrent agent with softmax outputs (``RecurrentPolicy``), with the
  multinomial selector's epsilon floor pi_eps = (1 - eps) softmax + eps / A over all actions,
  then renormalised over the available ones (``mask_before_softmax: False``);
- critics: two MLPs Q_i(o_i, .) on [observation, agent id], each mixed by its own
  ``FOPMixer`` (eq. 6 in its IGO form), with target copies every ``target_update_interval``
  updates;
- soft values V_i = alpha log sum_u exp(Q_i(u) / alpha) (FOP eq. 5) over every action, the
  unavailable ones included, as the official code (``soft_value_actions: available`` sums
  over the legal ones only), with one temperature for all agents annealed as
  alpha = max(0.05, 0.5 - t / 200000) (the official code; FOP's paper allows alpha_i per
  agent, the code uses one);
- critic target: TD(lambda) on min_k Q_tot,k^-(tau', u') with u' ~ pi at every row, minus
  alpha times the agents' mean log pi(u'|tau') of the next step (the official code's soft
  term, added outside the lambda-recursion, kept on a terminal step as the official code
  keeps it; ``terminal_entropy: drop`` drops it there);
- policy loss per agent: sum_u pi_i(u) (alpha log pi_i(u) - min_k Q_i,k(u)) (FOP eq. 11, the
  discrete soft policy improvement), the actor stepped before the critics as in the code.

VM3-AC on FOP (``algorithms/learners/vm3ac_fop.py``) replaces the entropy term through the hooks
``extra_inputs`` and ``regulariser``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from algorithms.components.returns import td_lambda_targets
from algorithms.components.seed_optim import SeedRMSprop, count_and_copy
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import check, check_integer, check_positive, linear_schedule
from algorithms.components.storage import trim_episodes
from algorithms.learner import EXPLORE
from algorithms.learners.discrete_learner import (
    DiscreteLearner,
    RecurrentSettings,
    check_epsilon,
    check_rmsprop,
)
from algorithms.models import masked_categorical as mc
from algorithms.models.fop_mixer import FOPMixer
from algorithms.models.recurrent_policy import (
    AgentInputs,
    RecurrentPolicy,
    padded_available,
    step,
    unroll,
)
from algorithms.models.stacked_mlp import StackedMLP


@dataclass(frozen=True)
class FOPSettings(RecurrentSettings):
    critic_hidden: int  # critic MLP width (two layers): FOP modules/critics/fop.py
    mixing_embed_dim: int  # V(s) hidden units: fop.yaml
    heads: int  # attention heads of lambda: fop.yaml n_head
    critic_lr: float  # critics + mixers RMSprop: fop.yaml c_lr
    optim_alpha: float
    optim_eps: float
    target_update_interval: int  # updates (= episodes with one update per episode)
    epsilon_start: float  # the multinomial selector's epsilon: fop.yaml
    epsilon_finish: float
    epsilon_anneal_steps: int
    alpha_start: float  # entropy temperature, linear in env steps (fop_learner.py)
    alpha_finish: float
    alpha_anneal_steps: int
    # Where the official code and the FOP paper's reading differ (README deviations table):
    soft_value_actions: str  # "all" (official: logsumexp over every action) | "available"
    terminal_entropy: str  # "keep" (official: -alpha log pi of the slot after a termination stays) | "drop"

    def __post_init__(self):
        super().__post_init__()
        check(self.soft_value_actions in ("all", "available"), "soft_value_actions",
              "must be all or available", self.soft_value_actions)
        check(self.terminal_entropy in ("keep", "drop"), "terminal_entropy", "must be keep or drop",
              self.terminal_entropy)
        ints = ["critic_hidden", "mixing_embed_dim", "heads", "target_update_interval", "alpha_anneal_steps"]
        check_integer(self, *ints)
        check_positive(self, *ints, "critic_lr", "alpha_start", "alpha_finish")
        check_rmsprop(self)
        check_epsilon(self)
        check(self.alpha_finish <= self.alpha_start, "alpha_finish",
              f"must be <= alpha_start ({self.alpha_start})", self.alpha_finish)


class FOP(DiscreteLearner):
    """All seeds of one run in lockstep: every parameter and buffer has a leading seed axis."""

    Settings = FOPSettings
    loop = "episodes"  # off-policy replay of whole episodes (PyMARL's episode buffer)
    name = "fop"

    def __init__(self, spec, seeds: Sequence[int], settings: FOPSettings):
        super().__init__(spec, seeds, settings)
        st = settings
        S, N, A = len(seeds), spec.n_agents, spec.action_dim
        init = SeedStreams(seeds, "init")
        inputs = AgentInputs(N, A, st.obs_last_action, st.obs_agent_id)
        self.actor = RecurrentPolicy(init, inputs, inputs.size(spec.obs_dim) + self.extra_size(), st.hidden)
        critic_in = spec.obs_dim + N  # [o_i, one-hot i] (FOPCritic._build_inputs)
        hidden = [st.critic_hidden, st.critic_hidden]
        self.critics = torch.nn.ModuleList(StackedMLP(init, 1, critic_in, hidden, A) for _ in range(2))
        self.mixers = torch.nn.ModuleList(
            FOPMixer(init, N, A, spec.state_dim, st.mixing_embed_dim, st.heads) for _ in range(2)
        )
        self.build_parts(init, spec)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.target_mixers = copy.deepcopy(self.mixers).requires_grad_(False)
        rms = dict(alpha=st.optim_alpha, eps=st.optim_eps, clip=st.grad_norm_clip)
        self.actor_opt = SeedRMSprop(self.actor_parameters(), lr=st.lr, **rms)
        # one optimiser (and one clipping norm) per critic-mixer pair, as the official code
        self.critic_opts = [
            SeedRMSprop([*c.parameters(), *m.parameters()], lr=st.critic_lr, **rms)
            for c, m in zip(self.critics, self.mixers)
        ]
        self.explore = SeedStreams(seeds, "explore")
        self.update_noise = SeedStreams(seeds, "update")
        self.register_buffer("env_steps", torch.zeros(S, dtype=torch.long))
        self.register_buffer("updates", torch.zeros(S, dtype=torch.long))
        self.register_buffer("agent_ids", torch.eye(N), persistent=False)

    # ---- hooks for VM3-AC on FOP -------------------------------------------------------------
    def extra_size(self) -> int:
        """Input units the actor reads besides PyMARL's inputs (VM3-AC: the latent z)."""
        return 0

    def build_parts(self, init: SeedStreams, spec) -> None:
        """Networks a variant adds, built before the optimisers (VM3-AC: q_xi)."""

    def actor_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.actor.parameters())

    def extra_inputs(self, like: torch.Tensor, active) -> tuple[torch.Tensor, ...]:
        """The actor's extra inputs for every row of a batch ``like [S, B, T + 1, N, *]``."""
        return ()

    def regulariser(self, log_pi, action, obs, active) -> torch.Tensor:
        """The soft term each agent pays for its action ``action [S, ..., N]`` (log pi of it,
        ``[S, ..., N]``): FOP's log pi_i(u_i | tau_i)."""
        return log_pi.gather(-1, action.unsqueeze(-1)).squeeze(-1)

    def improvement_terms(self, log_pi, partners, obs) -> torch.Tensor:
        """Per action u of agent i, what the policy loss adds to alpha log pi_i(u): nothing."""
        return torch.zeros_like(log_pi)

    # ---- schedules ----
    def alpha(self) -> torch.Tensor:
        st = self.settings
        return linear_schedule(st.alpha_start, st.alpha_finish, st.alpha_anneal_steps, self.env_steps)

    @staticmethod
    def _per_seed(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(-1, *[1] * (like.dim() - 1))

    def floored(self, logits: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """log pi_eps ``[S, ..., A]``: (1 - eps) softmax(logits) + eps / A over all actions,
        zero on unavailable ones and renormalised (BasicMAC.forward with the selector's
        epsilon, then the learner's masking), -inf where unavailable."""
        return mc.epsilon_floored(logits, available, self.epsilon())

    # ---- acting ------------------------------------------------------------------------------
    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None):
        return self.actor.begin(memory, started, obs)

    def step_inputs(self, memory, mode, noise, drawing, like) -> tuple[torch.Tensor, ...]:
        """The actor's extra inputs for one step of every copy (VM3-AC: this step's z)."""
        return ()

    def policy_memory(self, memory):
        return memory

    def with_policy_memory(self, memory, policy_memory):
        return policy_memory

    @torch.no_grad()
    def act(self, obs, state, avail, memory, mode: str, noise=None, acting=None):
        """``explore``: the multinomial selector (with probability eps a uniform available
        action, else a draw from pi_eps); execution modes: the most probable available action."""
        if mode != EXPLORE and mode not in self.execution_modes(self.settings):
            raise ValueError(f"{self.name}: unknown mode '{mode}'")
        S, E = obs.shape[:2]
        available = avail.bool()
        mc.check_some_available(available)
        drawing = None if acting is None else acting.any(1)
        extra = self.step_inputs(memory, mode, noise, drawing, obs)
        own = self.policy_memory(memory)
        logits, hidden = self._step(obs, own, extra)
        if mode == EXPLORE:
            log_pi = self.floored(logits, available)
            action = mc.multinomial_select(self.explore, log_pi, available, self.epsilon(), drawing)
            self.env_steps += (torch.ones(S, E, dtype=torch.bool) if acting is None else acting).sum(1)
        else:
            action = mc.masked_argmax(logits, available)
        new = type(own)(hidden, F.one_hot(action, self.n_actions).to(obs.dtype))
        return action, self.with_policy_memory(memory, new)

    def _step(self, obs, memory, extra):
        return step(self.actor.agent, self.actor.inputs(obs, memory.last_action, *extra), memory)

    # ---- learning ----------------------------------------------------------------------------
    def _q(self, critics, obs: torch.Tensor) -> list[torch.Tensor]:
        """Q_i,k(o_i, .) ``[S, B, T + 1, N, A]`` of every critic k (FOPCritic: [o_i, id])."""
        S = obs.shape[0]
        x = torch.cat([obs, self.agent_ids.expand(*obs.shape[:-1], self.n_agents)], -1)
        flat = x.reshape(S, 1, -1, x.shape[-1])
        return [c(flat).view(*obs.shape[:-1], self.n_actions) for c in critics]

    def _soft_value(self, q, available, alpha):
        """V_i = alpha log sum_u exp(Q_i(u) / alpha) (FOP eq. 5): over every action as the
        official code (``fop_learner.py`` 153-154, 173-174), or over the available ones."""
        a = self._per_seed(alpha, q).squeeze(-1)
        scaled = q / a.unsqueeze(-1)
        if self.settings.soft_value_actions == "available":
            scaled = scaled.masked_fill(~available, -float("inf"))
        return torch.logsumexp(scaled, -1) * a

    def soft_targets(self, target_qs, u_next, soft, available, state, reward, terminated, mask, alpha):
        """The critics' target y ``[S, B, T]`` (``train_critic``): TD(lambda) on the smaller
        target Q_tot(tau', u') of the two critics, u' ~ pi drawn at every row, minus alpha times
        the next row's soft term (``soft [S, B, T + 1]``, FOP: the agents' mean log pi(u')),
        added after the lambda-recursion as the official code does; on a terminal step it stays
        (official) or is dropped (``terminal_entropy: drop``: no action follows a termination)."""
        st = self.settings
        one_hot = F.one_hot(u_next, self.n_actions).to(target_qs[0].dtype)
        q_tot = []
        for critic_q, mixer in zip(target_qs, self.target_mixers):
            q_u = critic_q.gather(-1, u_next.unsqueeze(-1)).squeeze(-1)
            q_tot.append(mixer(q_u, self._soft_value(critic_q, available, alpha), state, one_hot))
        g = td_lambda_targets(reward, terminated, mask, torch.min(*q_tot), st.gamma, st.td_lambda)
        a = self._per_seed(alpha, g)
        after = torch.ones_like(g) if st.terminal_entropy == "keep" else 1 - terminated.to(g.dtype)
        return g - a * after * soft[:, :, 1:]

    def policy_loss(self, batch, log_pi, partners) -> torch.Tensor:
        """sum_u pi_i(u) (alpha log pi_i(u) - extra(u) - min_k Q_i,k(u)) over rows and agents,
        masked mean per seed ``[S]`` (fop_learner.train_actor)."""
        T = batch["filled"].shape[-1]
        mask = batch["filled"].float().unsqueeze(-1).expand(-1, -1, -1, self.n_agents)
        with torch.no_grad():
            q = torch.min(*self._q(self.critics, batch["obs"][:, :, :T]))
        lp = log_pi[:, :, :T]
        alpha = self._per_seed(self.alpha(), lp)
        inner = alpha * (mc.zero_masked(lp) - self.improvement_terms(lp, partners, batch["obs"][:, :, :T])) - q
        per_agent = (mc.probabilities(lp) * inner).sum(-1)
        return (per_agent * mask).sum((1, 2, 3)) / mask.sum((1, 2, 3)).clamp(min=1)

    def critic_losses(self, batch, active=None) -> list[torch.Tensor]:
        """sum over filled rows of (Q_tot,k - y)^2 / rows, per critic k ``[S]`` (train_critic)."""
        T = batch["filled"].shape[-1]
        mask = batch["filled"].float()
        obs, state = batch["obs"], batch["state"]
        available = padded_available(batch["avail"])
        action = batch["action"][:, :, :T].long()
        reward, terminated = batch["reward"][:, :, :T].float(), batch["terminated"][:, :, :T]
        alpha = self.alpha()
        with torch.no_grad():
            extra = self.extra_inputs(obs, active)
            logits = self._unroll_logits(obs, action, extra)
            log_pi = self.floored(logits, available)  # the updated actor (stepped first)
            u_next = mc.sample(self.update_noise, log_pi, active)  # u' ~ pi at every row
            soft = self.regulariser(log_pi, u_next, obs, active).mean(-1)  # [S, B, T + 1]
            y = self.soft_targets(self._q(self.target_critics, obs), u_next, soft, available, state,
                                  reward, terminated, mask, alpha)
        one_hot = F.one_hot(action, self.n_actions).to(obs.dtype)
        out = []
        for critic_q, mixer in zip(self._q(self.critics, obs[:, :, :T]), self.mixers):
            q_u = critic_q.gather(-1, action.unsqueeze(-1)).squeeze(-1)
            v = self._soft_value(critic_q, available[:, :, :T], alpha)
            q_tot = mixer(q_u, v, state[:, :, :T], one_hot)
            out.append(((q_tot - y) * mask).pow(2).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1))
        return out

    def _unroll_logits(self, obs, action, extra):
        return unroll(self.actor.agent, self.actor.inputs.episode(obs, action, *extra))

    def partners(self, log_pi, active) -> torch.Tensor | None:
        """What agent i's improvement holds fixed of the others (VM3-AC: their sampled
        actions); FOP needs nothing."""
        return None

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One update (fop_learner.train): the actor's step on the current critics, then both
        critics' steps with targets from the updated actor; every ``target_update_interval``-th
        update of a seed copies its targets. Seeds outside ``active`` change nothing."""
        batch = trim_episodes(batch)
        T = batch["filled"].shape[-1]
        obs, action = batch["obs"], batch["action"][:, :, :T].long()
        available = padded_available(batch["avail"])
        extra = self.extra_inputs(obs, active)
        log_pi = self.floored(self._unroll_logits(obs, action, extra), available)
        loss_pi = self.policy_loss(batch, log_pi, self.partners(log_pi, active))
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        self.actor_opt.step(active)

        loss_q = self.critic_losses(batch, active)
        for loss, opt in zip(loss_q, self.critic_opts):
            opt.zero_grad()
        sum(loss_q).sum().backward()  # the two pairs share no parameter
        for opt in self.critic_opts:
            opt.step(active)
        self._update_targets(active)
        return {"loss_pi": loss_pi.detach(), "loss_q": loss_q[0].detach()}

    def _update_targets(self, active: torch.Tensor | None) -> None:
        pairs = (self.target_critics, self.critics), (self.target_mixers, self.mixers)
        count_and_copy(self.updates, self.settings.target_update_interval, active, *pairs)
