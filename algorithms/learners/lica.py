"""LICA (Zhou et al., NeurIPS 2020, "Learning Implicit Credit Assignment for Cooperative
Multi-Agent Reinforcement Learning"), batched over seeds, for discrete actions with masks.

Reference implementation: mzho7212/LICA (PyMARL), ``learners/lica_learner.py``,
``modules/critics/lica.py``, ``config/algs/lica.yaml``, ``config/default.yaml``:

- actor: PyMARL's recurrent agent (``RecurrentPolicy``), logits of unavailable actions masked
  before the softmax (``mask_before_softmax: True``); exploration draws from pi itself (the
  ``gumbel`` selector: argmax of logits + Gumbel noise; its epsilon is never read), evaluation
  takes the most probable available action;
- critic Q(s, pi_1, ..., pi_N): a hypernetwork mixer whose weights come from the state and
  whose input is the agents' concatenated action distributions (``LICACritic``: a ReLU
  hidden layer, unconstrained weights, a two-layer state bias);
- critic loss: on the one-hot actions taken, TD(lambda) targets from a target critic copied
  every ``target_update_interval`` critic steps (``train_critic_td``);
- actor loss: -Q(s, pi(tau)) at the policies' probabilities (the paper's implicit credit
  assignment: the gradient reaches each pi_i through the critic's state-dependent weights)
  minus the paper's adaptive entropy regulariser: the mean entropy H scaled by
  ``entropy_coef / H`` with H detached (``entropy_ratio = coef / entropy.item()``), so its
  gradient is ``entropy_coef * grad log H`` whatever the entropy's magnitude;
- the critic is trained first, then the actor on the updated critic (PyMARL ``run.py``:
  ``train_critic_td`` before ``train``), each with its own Adam and gradient clipping.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from algorithms.components.returns import td_lambda_targets
from algorithms.components.seed_optim import SeedAdam, count_and_copy
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import check, check_integer, check_positive
from algorithms.learner import EXPLORE
from algorithms.learners.discrete_learner import (
    GREEDY,
    DiscreteLearner,
    RecurrentSettings,
)
from algorithms.learners.on_policy import (
    Episodes,
    check_on_policy,
    episodes,
    final_actions,
    masked_mean,
)
from algorithms.models import masked_categorical as mc
from algorithms.models.recurrent_policy import AgentInputs, Memory, RecurrentPolicy
from algorithms.models.stacked_mlp import StackedMLP


@dataclass(frozen=True)
class LICASettings(RecurrentSettings):
    """The official configuration (``config/default.yaml`` + ``config/algs/lica.yaml``); the
    actor's optimiser is Adam (``lr``)."""

    mixing_embed_dim: int  # critic hidden units: lica.yaml
    hypernet_layers: int  # lica.yaml: 2 (1: single linear hypernetworks for w1 and w_final)
    critic_lr: float  # critic Adam: default.yaml critic_lr
    entropy_coef: float  # lica.yaml (its comment: 0.06 on SMAC maps, 0.03 on 3s5z_vs_3s6z)
    target_update_interval: int  # critic steps between target copies: lica.yaml

    def __post_init__(self):
        super().__post_init__()
        check_on_policy(self)
        ints = ["mixing_embed_dim", "target_update_interval"]
        check_integer(self, *ints, "hypernet_layers")
        check_positive(self, *ints, "critic_lr")
        layers = self.hypernet_layers
        check(layers in (1, 2), "hypernet_layers", "must be 1 or 2", layers)
        check(isinstance(self.entropy_coef, (int, float)) and self.entropy_coef >= 0,
              "entropy_coef", "must be >= 0", self.entropy_coef)


class LICACritic(nn.Module):
    """Q(s, p) ``[S, ...]`` from the agents' action distributions (or one-hot actions) ``p [S,
    ..., N, A]`` and the state ``[S, ..., state]`` (``modules/critics/lica.py``):

        h = ReLU(p W1(s) + b1(s)),   Q = h . w_final(s) + b2(s),

    with W1(s) an (N A) x embed matrix, all from hypernetworks of the state. Unlike QMIX's
    mixer nothing is made non-negative: Q need not be monotone in any agent's probabilities.
    """

    def __init__(self, init: SeedStreams, n_agents: int, n_actions: int, state_dim: int, embed: int,
                 hypernet_layers: int):
        super().__init__()
        self.embed = embed
        w1_size = embed * n_agents * n_actions
        two = hypernet_layers == 2
        # Two-layer hypernetworks as the official code: W1's hidden layer is as wide as W1 itself,
        # w_final's as wide as the critic (one layer each with hypernet_layers 1; the official
        # one-layer w_final has W1's width, which its forward cannot use, so it is embed here).
        self.hyper_w1 = StackedMLP(init, 1, state_dim, [w1_size] * two, w1_size)
        self.hyper_w_final = StackedMLP(init, 1, state_dim, [embed] * two, embed)
        self.hyper_b1 = StackedMLP(init, 1, state_dim, [], embed)
        self.hyper_b2 = StackedMLP(init, 1, state_dim, [embed], 1)

    def forward(self, p: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        lead = p.shape[:-2]
        S, E = p.shape[0], self.embed
        s = state.reshape(S, 1, -1, state.shape[-1])  # [S, 1, M, state]: the hypernets' batch
        joint = p.reshape(S, -1, 1, p.shape[-2] * p.shape[-1])  # [S, M, 1, N A]
        w1 = self.hyper_w1(s).view(S, -1, joint.shape[-1], E)
        b1 = self.hyper_b1(s).view(S, -1, 1, E)
        h = torch.relu(joint @ w1 + b1)  # [S, M, 1, E]
        w_final = self.hyper_w_final(s).view(S, -1, E, 1)
        return (h @ w_final).view(lead) + self.hyper_b2(s).view(lead)


class LICA(DiscreteLearner):
    """All seeds of one run in lockstep: every parameter and buffer has a leading seed axis."""

    Settings = LICASettings
    loop = "on_policy"  # PyMARL's parallel runner: each update reads the episodes just played
    name = "lica"

    def __init__(self, spec, seeds: Sequence[int], settings: LICASettings):
        super().__init__(spec, seeds, settings)
        st = settings
        S, N, A = len(seeds), spec.n_agents, spec.action_dim
        init = SeedStreams(seeds, "init")
        inputs = AgentInputs(N, A, st.obs_last_action, st.obs_agent_id)
        self.actor = RecurrentPolicy(init, inputs, inputs.size(spec.obs_dim), st.hidden)
        self.critic = LICACritic(
            init, N, A, spec.state_dim, st.mixing_embed_dim, st.hypernet_layers
        )
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        # Adam with torch's defaults (lica_learner.py), clipped per seed and optimiser
        clip = st.grad_norm_clip
        self.actor_opt = SeedAdam(self.actor.parameters(), lr=st.lr, clip=clip)
        self.critic_opt = SeedAdam(self.critic.parameters(), lr=st.critic_lr, clip=clip)
        self.explore = SeedStreams(seeds, "explore")
        self.update_noise = SeedStreams(seeds, "update")  # the final row's action, see below
        # Critic steps per seed: times the target copies (PyMARL critic_training_steps).
        self.register_buffer("updates", torch.zeros(S, dtype=torch.long))

    # ---- acting ------------------------------------------------------------------------------
    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None) -> Memory:
        return self.actor.begin(memory, started, obs)

    @torch.no_grad()
    def act(self, obs, state, avail, memory: Memory, mode: str, noise=None, acting=None):
        """``explore``: a draw from pi (the gumbel selector); ``greedy``: the most probable
        available action (test mode)."""
        if mode not in (EXPLORE, GREEDY):
            raise ValueError(f"{self.name}: unknown mode '{mode}' (known: {EXPLORE}, {GREEDY})")
        drawing = None if acting is None else acting.any(1)  # all copies waiting: no draw
        explore = self.explore if mode == EXPLORE else None
        return self.actor.act(obs, avail, memory, explore, drawing)

    # ---- learning ----------------------------------------------------------------------------
    def log_pi(self, b: Episodes) -> torch.Tensor:
        """log pi(. | tau_t) ``[S, B, T + 1, N, A]`` of every row, -inf where unavailable."""
        return self.actor.log_probs(b.obs, b.taken, b.available)

    def final_actions(self, b: Episodes, log_pi: torch.Tensor, active) -> torch.Tensor:
        return final_actions(b, log_pi, self.update_noise, active)

    def critic_loss(self, b: Episodes, action: torch.Tensor) -> torch.Tensor:
        """sum over filled rows of (Q(s_t, u_t) - G_t)^2 / rows per seed ``[S]``, G the
        TD(lambda) return of the target critic's Q(s, u) (``train_critic_td``)."""
        st = self.settings
        T = b.mask.shape[-1]
        one_hot = F.one_hot(action, self.n_actions).to(b.obs.dtype)  # [S, B, T + 1, N, A]
        with torch.no_grad():
            q_target = self.target_critic(one_hot, b.state)  # [S, B, T + 1]
            g = td_lambda_targets(b.reward, b.terminated, b.mask, q_target, st.gamma, st.td_lambda)
        q = self.critic(one_hot[:, :, :T], b.state[:, :, :T])
        return masked_mean((q - g).pow(2), b.mask)

    def actor_loss(self, b: Episodes, log_pi: torch.Tensor) -> torch.Tensor:
        """-Q(s, pi) - entropy_coef H / sg(H) per seed ``[S]`` (``LICALearner.train``): Q at
        the agents' probabilities (zero on unavailable actions), H the entropy of each agent's
        masked pi, averaged over agents, then over filled rows (sg: stop-gradient)."""
        T = b.mask.shape[-1]
        lp = log_pi[:, :, :T]
        q = self.critic(mc.probabilities(lp), b.state[:, :, :T])  # [S, B, T]
        q_mean = masked_mean(q, b.mask)
        entropy = masked_mean(mc.entropy(lp).mean(-1), b.mask)
        # Adaptive entropy regularisation: the detached magnitude rescales the term (official
        # entropy_ratio = coef / entropy.item()); the floor only keeps a seed whose policy is
        # deterministic everywhere (H = 0, no entropy gradient left) from dividing by zero.
        magnitude = entropy.detach().clamp(min=torch.finfo(entropy.dtype).tiny)
        ratio = self.settings.entropy_coef / magnitude
        return -q_mean - ratio * entropy

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One update: the critic's Adam step on the TD(lambda) loss (the target copied every
        ``target_update_interval``-th critic step), then the actor's on the updated critic.
        Seeds outside ``active`` change nothing."""
        b = episodes(batch)
        log_pi = self.log_pi(b)  # the critic's step changes nothing the actor reads
        loss_q = self.critic_loss(b, self.final_actions(b, log_pi, active))
        self.critic_opt.zero_grad()
        loss_q.sum().backward()  # summed over seeds: each seed's parameters get its own gradient
        self.critic_opt.step(active)
        # PyMARL _update_targets, timed by each seed's own critic steps
        count_and_copy(self.updates, self.settings.target_update_interval, active,
                       (self.target_critic, self.critic))

        self.critic.requires_grad_(False)  # the actor's loss steps the actor only
        try:
            loss_pi = self.actor_loss(b, log_pi)
            self.actor_opt.zero_grad()
            loss_pi.sum().backward()
            self.actor_opt.step(active)
        finally:
            self.critic.requires_grad_(True)
        return {"loss_pi": loss_pi.detach(), "loss_q": loss_q.detach()}
