"""MAVEN (Mahajan et al., NeurIPS 2019, "MAVEN: Multi-Agent Variational Exploration") for
discrete actions, as VM3-AC §6 runs it on sparse SMAC: QMIX with a latent variable z that
conditions every agent for a whole episode, and a variational MI term.

Reference implementation: AnujMahajanOxf/MAVEN (PyMARL), ``learners/noise_q_learner.py``,
``modules/agents/noise_rnn_agent.py``, ``modules/mixers/noise_mix.py``,
``controllers/noise_controller.py``, ``runners/parallel_runner.py``,
``config/algs/noisemix_smac.yaml``:

- z: a one-hot of ``noise_dim`` classes drawn once per episode at its start. The SMAC config
  sets ``noise_bandit: False``, so the latent policy is the official ``Uniform`` sampler, in
  training and in test episodes alike (the hierarchical REINFORCE latent policy of the paper
  is the ``noise_bandit: True`` option, not used for SMAC);
- agents (``NoiseRNNAgent`` with ``hyper``): the GRU state h of PyMARL's agent, and
  Q_i(tau_i, . ; z) = W(z, i) h with W an (A x hidden) matrix from a linear hypernetwork of
  [z, one-hot i] (the agent's own fc2 is computed but unused there; it is not built here);
- mixer: QMIX's with the state and z as its input (``noise_mix``: single linear hypernetworks,
  a two-layer V);
- MI (eq. 7's variational bound with the per-step discriminator, ``rnn_discrim: False``): a
  3-layer MLP q_psi(z | s_t, softmax_a Q(tau_t, .)) over every agent's softmax of its masked
  Q-values, trained by cross-entropy on the episode's z, masked over filled rows;
- loss: QMIX's TD loss (double Q, hard target copy every ``target_update_interval``
  updates) + ``mi_loss`` x the cross-entropy, one RMSprop step over agent, mixer and
  discriminator (the gradient of the MI term reaches the agents through the softmax).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import check, check_integer, check_positive
from algorithms.components.storage import Field
from algorithms.learner import EXPLORE
from algorithms.learners.qmix import QMIX, QMIXSettings
from algorithms.models.recurrent_agent import RecurrentAgent
from algorithms.models.stacked_mlp import StackedMLP


@dataclass(frozen=True)
class MAVENQMIXSettings(QMIXSettings):
    noise_dim: int = 2  # z's classes: noisemix_smac.yaml
    discrim_size: int = 64  # noisemix_smac.yaml
    discrim_layers: int = 3  # noisemix_smac.yaml
    mi_loss: float = 1.0  # the MI term's weight: noisemix_smac.yaml

    def __post_init__(self):
        super().__post_init__()
        check_integer(self, "noise_dim", "discrim_size", "discrim_layers")
        check_positive(self, "noise_dim", "discrim_size", "discrim_layers")
        check(isinstance(self.mi_loss, (int, float)) and self.mi_loss >= 0, "mi_loss", "must be >= 0", self.mi_loss)
        check(not self.observe_other_actions, "observe_other_actions", "must be false for MAVEN",
              self.observe_other_actions)


class LatentMemory(NamedTuple):
    hidden: torch.Tensor  # [S, E, N, hidden]
    last_action: torch.Tensor  # [S, E, N, A]
    latent: torch.Tensor  # the episode's one-hot z [S, E, z]


class NoiseAgent(nn.Module):
    """PyMARL's recurrent agent with MAVEN's output layer: Q = W(z, i) h."""

    def __init__(self, init: SeedStreams, in_dim: int, hidden: int, n_agents: int, n_actions: int, z_dim: int):
        super().__init__()
        self.n_agents, self.n_actions, self.hidden = n_agents, n_actions, hidden
        # the body's fc2 is MAVEN's unused output layer: its rows are never read
        self.body = RecurrentAgent(init, in_dim, hidden, 1)
        self.hyper = StackedMLP(init, 1, z_dim + n_agents, [], n_actions * hidden)
        self.register_buffer("ids", torch.eye(n_agents), persistent=False)

    def initial_hidden(self, S: int, *batch: int) -> torch.Tensor:
        return self.body.initial_hidden(S, *batch)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor, latent: torch.Tensor):
        """``inputs [S, T, M, in]`` with M = copies x agents (agent-minor), ``latent [S, M / N,
        z]`` -> Q ``[S, T, M, A]`` and the last hidden state."""
        S, T, M, _ = inputs.shape
        states, h = self.body.hidden_states(inputs, h)
        z = latent.repeat_interleave(self.n_agents, 1)  # each copy's z for each of its agents
        ids = self.ids.repeat(M // self.n_agents, 1).expand(S, M, self.n_agents)
        W = self.hyper(torch.cat([z, ids], -1).unsqueeze(1)).view(S, M, self.n_actions, self.hidden)
        return torch.einsum("stmh,smah->stma", states, W), h


class MAVENQMIX(QMIX):
    Settings = MAVENQMIXSettings

    def __init__(self, spec, seeds: Sequence[int], settings: MAVENQMIXSettings):
        super().__init__(spec, seeds, settings)
        self.latents = SeedStreams(seeds, "latent")  # the Uniform sampler in training

    def _make_agent(self, init: SeedStreams, in_dim: int, spec):
        st = self.settings
        return NoiseAgent(init, in_dim, st.hidden, spec.n_agents, spec.action_dim, st.noise_dim)

    def latent_size(self) -> int:
        return self.settings.noise_dim  # noise_mix reads [s, z]

    def _make_extra(self, init: SeedStreams, spec) -> list[nn.Parameter]:
        st = self.settings
        in_dim = spec.state_dim + spec.n_agents * spec.action_dim
        self.discriminator = StackedMLP(init, 1, in_dim, [st.discrim_size] * st.discrim_layers, st.noise_dim)
        return list(self.discriminator.parameters())

    def fields(self, spec) -> dict[str, Field]:
        return {**super().fields(spec), "latent": Field((self.settings.noise_dim,))}

    # ---- the episode's latent ----------------------------------------------------------------
    def begin_episodes(self, memory, started, obs, state, mode=EXPLORE, noise=None):
        """A fresh z ~ Uniform(noise_dim) for each copy that starts (training: the seed's own
        latent stream, drawn only for seeds with a copy starting; evaluation: the execution
        stream), kept for the whole episode."""
        base = super().begin_episodes(None if memory is None else memory[:2], started, obs, state)
        S, E = started.shape
        streams = self.latents if mode == EXPLORE else noise
        if streams is None:
            raise ValueError("maven_qmix: an execution mode needs the evaluation's noise streams")
        drawn = F.one_hot(streams.integers(self.settings.noise_dim, E, active=started.any(1)),
                          self.settings.noise_dim).to(obs.dtype)
        latent = drawn if memory is None else torch.where(started.unsqueeze(-1), drawn, memory.latent)
        return LatentMemory(*base, latent)

    def record(self, memory) -> dict[str, torch.Tensor]:
        return {"latent": memory.latent}

    def _agent_step(self, agent, inputs, hidden, memory):
        return agent(inputs, hidden, memory.latent)

    def _carry(self, memory, hidden, last_action):
        return LatentMemory(hidden, last_action, memory.latent)

    def _unroll(self, agent, inputs, batch=None):
        S, B, T, N, _ = inputs.shape
        x = inputs.transpose(1, 2).reshape(S, T, B * N, -1)
        q, _ = agent(x, agent.initial_hidden(S, B * N), batch["latent"][:, :, 0])
        return q.view(S, T, B, N, -1).transpose(1, 2)

    # ---- learning ----------------------------------------------------------------------------
    def td_terms(self, batch: dict[str, torch.Tensor]):
        """QMIX's TD terms with the episode's z on every row. Storage writes only the observed
        fields into a truncated episode's final row, so its latent there is zero (or a stale
        z); the official learner reads the episode's z on every row (noise_q_learner.py:58,96),
        so the first row's, drawn at the episode's start, is used throughout."""
        latent = batch["latent"][:, :, :1].expand_as(batch["latent"])
        return super().td_terms({**batch, "latent": latent})

    def mi_terms(self, batch, q: torch.Tensor, T: int) -> torch.Tensor:
        """The discriminator's cross-entropy per seed ``[S]``: -log q_psi(z | s_t, softmax Q_t)
        over filled rows (masked mean), Q masked to the available actions first."""
        available = batch["avail"][:, :, :T].bool()
        soft = torch.softmax(q[:, :, :T].masked_fill(~available, -9999999.0), -1)
        x = torch.cat([soft.flatten(-2), batch["state"][:, :, :T]], -1)
        S = x.shape[0]
        logits = self.discriminator(x.reshape(S, 1, -1, x.shape[-1])).view(*x.shape[:-1], -1)
        z = batch["latent"][:, :, :1].argmax(-1).expand(-1, -1, T)  # the episode's class
        ce = F.cross_entropy(logits.flatten(0, 2), z.flatten(), reduction="none").view(z.shape)
        mask = batch["filled"][:, :, :T].float()
        return (ce * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        td, q, T = self.td_terms(batch)
        mi = self.mi_terms(batch, q, T)
        loss = td + self.settings.mi_loss * mi
        self.optimiser.zero_grad()
        loss.sum().backward()
        self.optimiser.step(active)
        self._update_targets(active)
        return {"loss_td": td.detach(), "loss_mi": mi.detach()}
