"""IAC (Ma et al., AAMAS 2021, §4 and Algorithm 1) and its ablations (§5.2), batched over seeds.

One learner, three parts, each chosen by a setting:
- the policy (``exploration``):
    ``joint``          IAC's collaborative exploration, a joint Gaussian with covariance
                       L L^T + D (eqs. 12-14; ``algorithms/models/joint_gaussian.py``), trained on the
                       joint entropy (eqs. 8, 15): IAC and SQ;
    ``individual``     independent Gaussian policies, each with its own entropy inside the
                       mixer (the soft individual Q of eqs. 25-26): SIQ and SIAQ;
    ``deterministic``  mu_i(o_i) with Gaussian exploration noise, no entropy: DDPG-MIX and
                       Attn-QMIX;
- the per-agent critic Q_i (``attention``): the attention critic (eqs. 19-21: IAC, SIAQ,
  Attn-QMIX) or Q_i(o_i, u_i) alone (SQ, SIQ, DDPG-MIX), one network for all agents with
  queries from o_i alone as the official code builds it (``critic_shared``, ``critic_query``);
- always QMIX's monotonic mixer, Q_tot = MIX(Q_1..Q_N, s) (eq. 22).

Targets as the IAC repository: a target copy of every network (the joint policy included,
Algorithm 1 line 15), hard-copied every ``target_update_interval`` updates (line 20), and
y = r + gamma (Q_tot'(s', u') - alpha log pi'(u' | o', s')) with u' ~ pi' (eq. 24 plus the
entropy term of soft policy iteration, eq. 5-6). alpha decays linearly per update to a floor.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from algorithms.components.seed_optim import SeedAdam, count_and_copy
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
from algorithms.models.attention_critic import QUERIES, AttentionCritic
from algorithms.models.deterministic_actor import DeterministicActor
from algorithms.models.joint_gaussian import JointGaussianPolicy
from algorithms.models.qmix_mixer import QMixer

EXPLORATIONS = ("joint", "individual", "deterministic")
OBJECTIVES = ("q_tot", "mean_q_i")


@dataclass(frozen=True)
class IACSettings(Schedule):
    exploration: str  # "joint" | "individual" | "deterministic" (module docstring)
    rank: int  # m, columns of the collaborative exploration matrix L (eq. 12); joint only
    attention: bool  # the attention critic (eqs. 19-21), else Q_i(o_i, u_i)
    # The critic's layout (algorithms/models/attention_critic.py): one encoder, query encoder
    # and head for every agent (the official code) or one per agent (MAAC's), and the query's input
    critic_shared: bool
    critic_query: str  # "obs" (the official code) | "obs_action"
    # The policy's objective: "q_tot" is eq. 15 (the KL to exp(Q_tot / alpha)); the IAC
    # repository's actor loss uses the mean of the individual Q_i instead ("mean_q_i").
    actor_objective: str
    hidden: tuple[int, ...]  # actor and joint-encoder hidden layers
    critic_hidden: int  # attention critic width (its heads split it)
    heads: int  # attention heads
    mixing_embed_dim: int
    hypernet_layers: int
    hypernet_embed: int
    gamma: float
    lr_actor: float
    lr_critic: float
    alpha_start: float  # entropy temperature at the first update
    alpha_decay: float  # subtracted after every update ...
    alpha_min: float  # ... down to this floor
    target_update_interval: int  # updates between hard target copies (Algorithm 1 line 19)
    noise_std: float  # deterministic policies' Gaussian exploration, in half action ranges
    # D of eq. 12 for joint exploration: a constant variance (the official code: 1e-6), or
    # None for eq. 14's learned sigma_i (algorithms/models/joint_gaussian.py); individual exploration
    # always learns sigma_i.
    fixed_variance: float | None
    # The official code's biased jitter of the Gaussian's mean, loc = mu + mean_jitter U[0, 1)
    # per action component at every draw (not at execution), in half action ranges; 0: none.
    mean_jitter: float
    log_std_min: float
    log_std_max: float

    def __post_init__(self):
        super().__post_init__()
        check(self.exploration in EXPLORATIONS, "exploration", f"must be one of {', '.join(EXPLORATIONS)}", self.exploration)
        check(self.actor_objective in OBJECTIVES, "actor_objective", f"must be one of {', '.join(OBJECTIVES)}", self.actor_objective)
        check_integer(self, "rank", "critic_hidden", "heads", "mixing_embed_dim", "hypernet_layers", "hypernet_embed", "target_update_interval")
        check(
            self.rank >= 1 if self.exploration == "joint" else self.rank == 0,
            "rank",
            "must be >= 1 for joint exploration and 0 otherwise",
            self.rank,
        )
        check(isinstance(self.attention, bool), "attention", "must be true or false", self.attention)
        check(isinstance(self.critic_shared, bool), "critic_shared", "must be true or false", self.critic_shared)
        check(self.critic_query in QUERIES, "critic_query", f"must be one of {', '.join(QUERIES)}", self.critic_query)
        check_hidden(self)
        check_positive(self, "critic_hidden", "heads", "mixing_embed_dim", "hypernet_layers", "hypernet_embed")
        check_positive(self, "lr_actor", "lr_critic", "target_update_interval")
        check(self.critic_hidden % self.heads == 0, "heads", f"must divide critic_hidden {self.critic_hidden}", self.heads)
        check(0 <= self.gamma < 1, "gamma", "must be in [0, 1)", self.gamma)
        check(0 <= self.alpha_min <= self.alpha_start, "alpha_min", "must be in [0, alpha_start]", self.alpha_min)
        check(self.alpha_decay >= 0, "alpha_decay", "must be >= 0", self.alpha_decay)
        check(self.noise_std >= 0, "noise_std", "must be >= 0", self.noise_std)
        check(self.log_std_min < self.log_std_max, "log_std_min", "must be < log_std_max", self.log_std_min)
        check(isinstance(self.mean_jitter, (int, float)) and self.mean_jitter >= 0, "mean_jitter", "must be >= 0",
              self.mean_jitter)
        check(
            self.fixed_variance is None or (isinstance(self.fixed_variance, (int, float)) and self.fixed_variance > 0),
            "fixed_variance", "must be > 0, or null for a learned sigma (eq. 14)", self.fixed_variance,
        )
        check(
            self.fixed_variance is None or self.exploration == "joint", "fixed_variance",
            "must be null unless exploration is joint (SIQ and SIAQ learn their sigma_i)", self.fixed_variance,
        )


class IAC(Learner):
    Settings = IACSettings
    loop = "transitions"

    def __init__(self, spec, seeds: Sequence[int], settings: IACSettings):
        super().__init__(settings)
        if spec.discrete:
            raise ValueError("iac: this module is the continuous-action algorithm of §4")
        st = settings
        N, A = spec.n_agents, spec.action_dim
        self.n_agents, self.action_dim = N, A
        init = SeedStreams(seeds, "init")
        if st.exploration == "deterministic":
            self.actor = DeterministicActor(init, N, spec.obs_dim, spec.action_low, spec.action_high, st.hidden)
        else:
            self.actor = JointGaussianPolicy(
                init,
                N,
                spec.obs_dim,
                spec.state_dim,
                spec.action_low,
                spec.action_high,
                st.hidden,
                st.rank,
                (st.log_std_min, st.log_std_max),
                st.fixed_variance,
            )
        self.critic = AttentionCritic(
            init, N, spec.obs_dim, A, st.critic_hidden, st.heads, st.attention, st.critic_shared, st.critic_query
        )
        self.mixer = QMixer(init, N, spec.state_dim, st.mixing_embed_dim, st.hypernet_layers, st.hypernet_embed)
        self.targets = torch.nn.ModuleDict(
            {
                "actor": copy.deepcopy(self.actor).requires_grad_(False),
                "critic": copy.deepcopy(self.critic).requires_grad_(False),
                "mixer": copy.deepcopy(self.mixer).requires_grad_(False),
            }
        )
        self.actor_opt = SeedAdam(self.actor.parameters(), lr=st.lr_actor)
        self.critic_opt = SeedAdam([*self.critic.parameters(), *self.mixer.parameters()], lr=st.lr_critic)
        self.explore_noise = SeedStreams(seeds, "explore")
        self.update_noise = SeedStreams(seeds, "update")
        S = len(seeds)
        self.register_buffer("updates", torch.zeros(S, dtype=torch.long))  # per seed: alpha, targets
        low, high = torch.tensor(spec.action_low), torch.tensor(spec.action_high)
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)
        self.register_buffer("noise_scale", st.noise_std * (high - low) / 2, persistent=False)

    def fields(self, spec) -> dict[str, Field]:
        N = spec.n_agents
        return {
            "obs": Field((N, spec.obs_dim)),
            "state": Field((spec.state_dim,)),
            "action": Field((N, spec.action_dim)),
            "reward": Field(()),  # the shared team reward (IAC §2.1)
            "terminated": Field((), torch.bool),
        }

    def alpha(self) -> torch.Tensor:
        """The temperature of each seed ``[S]``: alpha_start - alpha_decay x updates, floored."""
        st = self.settings
        return (st.alpha_start - st.alpha_decay * self.updates.float()).clamp(min=st.alpha_min)

    # ---- acting -------------------------------------------------------------------------
    def _noise(self, streams: SeedStreams, B: int, active=None):
        st = self.settings
        eps_N = streams.normal(self.n_agents, B, self.action_dim, active=active)
        eps_M = streams.normal(B, st.rank, active=active) if st.rank else None
        jitter = None
        if st.mean_jitter:
            jitter = st.mean_jitter * streams.uniform(0, 1, self.n_agents, B, self.action_dim, active=active)
        return eps_N, eps_M, jitter

    def _policy(self, actor, o, s, streams, active=None):
        """Sampled joint action ``[S,N,B,A]``, joint log pi ``[S,B]``, individual log pi_i
        ``[S,N,B]`` (rank 0 only); deterministic policies give mu(o) and no densities."""
        if self.settings.exploration == "deterministic":
            return actor(o)[0], None, None
        return actor.sample(o, s, *self._noise(streams, o.shape[2], active))

    @torch.no_grad()
    def act(self, obs, state, avail, memory, mode: str, noise=None, acting=None):
        """Training: u ~ pi(. | o, s) (eq. 14) or mu(o) + noise; execution: mu(o), each agent
        from its own observation (§4.1: eps_N = eps_M = 0). Played actions are clipped to the
        task's bounds, as the IAC repository clips them."""
        o = obs.transpose(1, 2)  # [S,N,E,obs]
        drawing = None if acting is None else acting.any(1)
        if mode != EXPLORE:
            u = self.actor(o)[0] if self.settings.exploration == "deterministic" else self.actor.mean(o)
        elif self.settings.exploration == "deterministic":
            eps = self.explore_noise.normal(self.n_agents, o.shape[2], self.action_dim, active=drawing)
            u = self.actor(o)[0] + self.noise_scale * eps
        else:
            u = self._policy(self.actor, o, state, self.explore_noise, drawing)[0]
        return torch.max(torch.min(u, self.high), self.low).transpose(1, 2), None

    # ---- learning -----------------------------------------------------------------------
    def _soft_q_tot(self, critic, mixer, o, s, u, log_pi, log_pi_i, alpha) -> torch.Tensor:
        """The soft joint value ``[S, B]`` the policy maximises and the target bootstraps:
        joint:         Q_tot(o, u, s) - alpha log pi(u | o, s)        (eqs. 15, 24)
        individual:    MIX(Q_i(o, u) - alpha log pi_i(u_i | o_i), s)  (eq. 26)
        deterministic: Q_tot(o, u, s)                                 (DDPG-MIX)"""
        q_i, _ = critic(o, u)  # [S,N,B]
        a = alpha.view(-1, 1, 1)
        if self.settings.exploration == "individual":
            return mixer((q_i - a * log_pi_i).transpose(1, 2), s)
        q_tot = mixer(q_i.transpose(1, 2), s)
        return q_tot if log_pi is None else q_tot - a[:, 0] * log_pi

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """Algorithm 1 lines 10-21 for every seed in ``active``; per-seed losses ``[S]``. As the
        official code (``agent.py`` 110-116) the policy steps first, on the critics before
        their step, then the critics."""
        st, t = self.settings, self.targets
        alpha = self.alpha()
        o, o_next = batch["obs"].transpose(1, 2), batch["next_obs"].transpose(1, 2)
        s, s_next = batch["state"], batch["next_state"]

        with torch.no_grad():  # lines 15-16: u' ~ pi^-(o', s'), y = r + gamma V'(s')   (eq. 24)
            u_next, log_pi, log_pi_i = self._policy(t["actor"], o_next, s_next, self.update_noise, active)
            v_next = self._soft_q_tot(t["critic"], t["mixer"], o_next, s_next, u_next, log_pi, log_pi_i, alpha)
            y = batch["reward"] + st.gamma * (~batch["terminated"]) * v_next

        # Lines 11-13: the policy's loss (eq. 15, times alpha), the critics held fixed.
        u, log_pi, log_pi_i = self._policy(self.actor, o, s, self.update_noise, active)
        self.critic.requires_grad_(False)
        self.mixer.requires_grad_(False)
        if st.actor_objective == "mean_q_i" and st.exploration != "individual":
            value = self.critic(o, u)[0].mean(1) - (0 if log_pi is None else alpha.view(-1, 1) * log_pi)
        else:
            value = self._soft_q_tot(self.critic, self.mixer, o, s, u, log_pi, log_pi_i, alpha)
        self.critic.requires_grad_(True)
        self.mixer.requires_grad_(True)
        loss_pi = -value.mean(1)
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        self.actor_opt.step(active)

        q_i, _ = self.critic(o, batch["action"].transpose(1, 2))  # line 14
        q_tot = self.mixer(q_i.transpose(1, 2), s)  # eq. 22
        loss_q = (y - q_tot).pow(2).mean(1)  # eq. 23
        self.critic_opt.zero_grad()
        loss_q.sum().backward()
        self.critic_opt.step(active)  # line 17

        pairs = [(t[name], getattr(self, name)) for name in ("actor", "critic", "mixer")]
        count_and_copy(self.updates, st.target_update_interval, active, *pairs)  # lines 19-20
        return {"loss_q": loss_q.detach(), "loss_pi": loss_pi.detach(), "alpha": alpha}

    @classmethod
    def has_covariance(cls, settings: IACSettings) -> bool:
        """Whether ``covariance`` has something to show (a Gaussian policy)."""
        return settings.exploration != "deterministic"

    def covariance(self, obs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The joint policy's covariance Sigma(o, s) ``[S, E, N*A, N*A]`` (eq. 12) for
        observations ``[S, E, N, obs]``: what IAC Fig. 5 draws."""
        if self.settings.exploration == "deterministic":
            raise ValueError("iac: a deterministic policy has no covariance")
        with torch.no_grad():
            return self.actor.covariance(obs.transpose(1, 2), state)
