"""VDAC-mix (Su, Adams, Beling, AAAI 2021, "Value-Decomposition Multi-Agent Actor-Critics"),
batched over seeds, for discrete actions with masks.

Reference implementation: hahayonghuming/VDACs (PyMARL), ``learners/policy_gradient_v2.py``,
``controllers/ppo_controller.py``, ``modules/agents/rnn_agent.py`` (``RNNPPOAgent``),
``modules/mixers/qmix.py``, ``config/algs/vmix_a2c.yaml``, ``config/default.yaml``:

- one recurrent network shared by the agents (fc - ReLU - GRUCell) with two heads on the
  GRU state: the policy logits (fc2) and the agent's value V_i(tau_i) (fc3). Both heads read
  the same hidden state, so they are one linear layer of A + 1 outputs here (logits first);
- V_tot(s) = QMIX mixer(V_1, ..., V_N; s), monotone in every V_i (the paper's VDAC-mix;
  ``algorithms/models/qmix_mixer.py``);
- the "multinomial" selector with ``mask_before_softmax: False``: pi_eps = (1 - eps)
  softmax(logits) + eps / A over all actions, zeroed on unavailable ones and renormalised,
  eps linear from ``epsilon_start`` to ``epsilon_finish``; evaluation (test mode) takes the
  most probable available action. The learner reads the same pi_eps (the controller's
  training forward adds the floor);
- advantage A_t = G_t - V_tot(s_t), G the TD(lambda) return on the online V_tot (``td_lambda``;
  no target network: ``target_mac`` is built but never read), detached in the policy loss;
- one loss, one RMSprop step over the agent and the mixer (the paper's policy gradient with
  the mixed value as baseline, plus its value loss):
  -mean_(t, i) A_t log pi_i(u_i | tau_i) + vf_coef mean_t (V_tot - G)^2 - ent_coef H.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from algorithms.components.returns import td_lambda_targets
from algorithms.components.seed_optim import SeedRMSprop
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
from algorithms.learners.on_policy import Episodes, check_on_policy, episodes, masked_mean
from algorithms.models import masked_categorical as mc
from algorithms.models.qmix_mixer import QMixer
from algorithms.models.recurrent_agent import RecurrentAgent
from algorithms.models.recurrent_policy import AgentInputs, Memory, step, unroll


@dataclass(frozen=True)
class VDACSettings(RecurrentSettings):
    """The official configuration (``config/default.yaml`` + ``config/algs/vmix_a2c.yaml``);
    ``lr`` is the one RMSprop's over agent and mixer."""

    mixing_embed_dim: int  # QMIX mixer hidden units: vmix_a2c.yaml
    hypernet_layers: int  # vmix_a2c.yaml
    hypernet_embed: int  # vmix_a2c.yaml: hidden units of the two-layer hypernetworks
    optim_alpha: float  # default.yaml
    optim_eps: float  # default.yaml
    vf_coef: float  # value loss weight: vmix_a2c.yaml
    ent_coef: float  # entropy bonus: vmix_a2c.yaml leaves it empty, so the official adds none
    epsilon_start: float  # the multinomial selector's floor: vmix_a2c.yaml
    epsilon_finish: float
    epsilon_anneal_steps: int  # env steps per seed: vmix_a2c.yaml epsilon_anneal_time

    def __post_init__(self):
        super().__post_init__()
        check_on_policy(self)
        ints = ["mixing_embed_dim", "hypernet_embed"]
        check_integer(self, *ints, "hypernet_layers")
        check_positive(self, *ints)
        layers = self.hypernet_layers
        check(layers in (1, 2), "hypernet_layers", "must be 1 or 2", layers)
        check_rmsprop(self)
        check_epsilon(self)
        for name in ("vf_coef", "ent_coef"):
            value = getattr(self, name)
            check(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0,
                  name, "must be >= 0", value)


class VDAC(DiscreteLearner):
    """All seeds of one run in lockstep: every parameter and buffer has a leading seed axis."""

    Settings = VDACSettings
    loop = "on_policy"  # PyMARL's parallel runner: each update reads the episodes just played
    name = "vdac"

    def __init__(self, spec, seeds: Sequence[int], settings: VDACSettings):
        super().__init__(spec, seeds, settings)
        st = settings
        S, N, A = len(seeds), spec.n_agents, spec.action_dim
        init = SeedStreams(seeds, "init")
        self.inputs = AgentInputs(N, A, st.obs_last_action, st.obs_agent_id)
        # RNNPPOAgent: fc2 (logits) and fc3 (V_i) on the GRU state, as one layer of A + 1 units
        self.agent = RecurrentAgent(init, self.inputs.size(spec.obs_dim), st.hidden, A + 1)
        self.mixer = QMixer(init, N, spec.state_dim, st.mixing_embed_dim, st.hypernet_layers,
                            st.hypernet_embed)
        self.optimiser = SeedRMSprop(
            [*self.agent.parameters(), *self.mixer.parameters()],
            lr=st.lr, alpha=st.optim_alpha, eps=st.optim_eps, clip=st.grad_norm_clip,
        )
        self.explore = SeedStreams(seeds, "explore")
        # The epsilon schedule's clock (PyMARL's t_env) per seed, kept in checkpoints.
        self.register_buffer("env_steps", torch.zeros(S, dtype=torch.long))

    # ---- acting ------------------------------------------------------------------------------
    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None) -> Memory:
        """Zero hidden state and last action for the copies that start an episode."""
        return self.inputs.fresh(obs, self.settings.hidden, started, memory)

    @torch.no_grad()
    def act(self, obs, state, avail, memory: Memory, mode: str, noise=None, acting=None):
        """``explore``: a draw from pi_eps (the multinomial selector), advancing each seed's
        epsilon clock by its acting copies; ``greedy``: the most probable available action."""
        if mode not in (EXPLORE, GREEDY):
            raise ValueError(f"{self.name}: unknown mode '{mode}' (known: {EXPLORE}, {GREEDY})")
        S, E = obs.shape[:2]
        available = avail.bool()
        mc.check_some_available(available)
        out, hidden = step(self.agent, self.inputs(obs, memory.last_action), memory)
        logits = out[..., : self.n_actions]
        if mode == EXPLORE:
            acting = torch.ones(S, E, dtype=torch.bool) if acting is None else acting
            drawing = acting.any(1)  # a seed whose copies all wait draws nothing
            log_pi = mc.epsilon_floored(logits, available, self.epsilon())
            action = mc.sample(self.explore, log_pi, drawing)
            self.env_steps += acting.sum(1)
        else:
            action = mc.masked_argmax(logits, available)
        return action, Memory(hidden, F.one_hot(action, self.n_actions).to(obs.dtype))

    # ---- learning ----------------------------------------------------------------------------
    def losses(self, b: Episodes) -> dict[str, torch.Tensor]:
        """The three terms per seed ``[S]`` (``PGLearner_v2.train`` and ``_calculate_advs``)."""
        st = self.settings
        T, A = b.mask.shape[-1], self.n_actions
        out = unroll(self.agent, self.inputs.episode(b.obs, b.taken))  # [S, B, T + 1, N, A + 1]
        log_pi = mc.epsilon_floored(out[..., :A], b.available, self.epsilon())[:, :, :T]
        v_tot = self.mixer(out[..., A], b.state)  # V_tot(s_t) of rows 0..T, [S, B, T + 1]
        with torch.no_grad():
            g = td_lambda_targets(b.reward, b.terminated, b.mask, v_tot, st.gamma, st.td_lambda)
            advantage = g - v_tot[:, :, :T]
        log_pi_taken = log_pi.gather(-1, b.taken.unsqueeze(-1)).squeeze(-1)  # [S, B, T, N]
        per_agent = b.mask.unsqueeze(-1)  # every agent of a filled row counts once
        return {
            "loss_pg": -masked_mean(advantage.unsqueeze(-1) * log_pi_taken, per_agent),
            "loss_v": masked_mean((v_tot[:, :, :T] - g).pow(2), b.mask),
            # H(pi_eps) over the available actions (the official categorical_entropy is fed
            # the probabilities as if they were logits; it is unread there: ent_coef is empty)
            "entropy": masked_mean(mc.entropy(log_pi), per_agent),
        }

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One RMSprop step on pg + vf_coef v - ent_coef H for the seeds in ``active``."""
        st = self.settings
        terms = self.losses(episodes(batch))
        loss = terms["loss_pg"] + st.vf_coef * terms["loss_v"] - st.ent_coef * terms["entropy"]
        self.optimiser.zero_grad()
        loss.sum().backward()  # summed over seeds: each seed's parameters get its own gradient
        self.optimiser.step(active)  # clip_grad_norm_ per seed, then RMSprop
        return {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}
