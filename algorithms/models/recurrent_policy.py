"""PyMARL's agent inputs and a recurrent categorical policy shared by the discrete learners.

``AgentInputs`` builds what a recurrent agent reads each step (PyMARL ``BasicMAC._build_inputs``:
the observation, the one-hot last action, the one-hot agent id) for acting (one step of every
env copy) and for learning (whole episodes). ``RecurrentPolicy`` is the actor of the discrete
actor-critics (FOP, DOP, LICA, VDAC, VM3-AC on FOP): a ``RecurrentAgent`` whose outputs are
logits, masked by the task's available actions (``algorithms/models/masked_categorical.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from algorithms.components.seeding import SeedStreams
from algorithms.models import masked_categorical as mc
from algorithms.models.recurrent_agent import RecurrentAgent


class Memory(NamedTuple):
    """What an agent carries between the steps of an episode, per copy ``[S, E, N, ...]``."""

    hidden: torch.Tensor  # GRU hidden state [S, E, N, hidden]
    last_action: torch.Tensor  # one-hot of the previous action [S, E, N, A], zeros at the start


class AgentInputs(nn.Module):
    """[obs, one-hot last action, one-hot agent id, extra] on the last axis of ``[..., N, *]``."""

    def __init__(self, n_agents: int, n_actions: int, last_action: bool, agent_id: bool):
        super().__init__()
        self.n_agents, self.n_actions = n_agents, n_actions
        self.last_action, self.agent_id = last_action, agent_id
        self.register_buffer("ids", torch.eye(n_agents), persistent=False)

    def size(self, obs_dim: int) -> int:
        return obs_dim + self.n_actions * self.last_action + self.n_agents * self.agent_id

    def forward(self, obs: torch.Tensor, last_action: torch.Tensor, *extra: torch.Tensor):
        parts = [obs]
        if self.last_action:
            parts.append(last_action)
        if self.agent_id:
            parts.append(self.ids.expand(*obs.shape[:-1], self.n_agents))
        return torch.cat([*parts, *extra], -1)

    def episode(self, obs: torch.Tensor, action: torch.Tensor, *extra: torch.Tensor):
        """Inputs of rows 0..T from ``obs [S, B, T + 1, N, obs]`` and ``action [S, B, T, N]``:
        the last action of row t is the action of row t - 1 (zeros at row 0)."""
        one_hot = F.one_hot(action, self.n_actions).to(obs.dtype)
        last = torch.cat([torch.zeros_like(one_hot[:, :, :1]), one_hot], 2)
        return self(obs, last, *extra)

    def fresh(self, like: torch.Tensor, hidden: int, started: torch.Tensor, memory: Memory | None):
        """Zero hidden state and last action for the copies in ``started [S, E]``."""
        S, E = started.shape
        new = Memory(
            like.new_zeros(S, E, self.n_agents, hidden),
            like.new_zeros(S, E, self.n_agents, self.n_actions),
        )
        if memory is None:
            return new
        start = started.view(S, E, 1, 1)
        return Memory(*(torch.where(start, f, m) for f, m in zip(new, memory)))


def unroll(agent: RecurrentAgent, inputs: torch.Tensor) -> torch.Tensor:
    """Outputs ``[S, B, T, N, out]`` for every row of ``inputs [S, B, T, N, in]``, the hidden
    state starting from zeros at each episode's first row (PyMARL ``init_hidden``)."""
    S, B, T, N, _ = inputs.shape
    x = inputs.transpose(1, 2).reshape(S, T, B * N, -1)  # time-major for the unroll
    out, _ = agent(x, agent.initial_hidden(S, B * N))
    return out.view(S, T, B, N, -1).transpose(1, 2)


def step(agent: RecurrentAgent, inputs: torch.Tensor, memory: Memory):
    """One step of every copy: outputs ``[S, E, N, out]`` and the new hidden ``[S, E, N, H]``."""
    S, E, N, _ = inputs.shape
    out, hidden = agent(inputs.reshape(S, 1, E * N, -1), memory.hidden.reshape(S, E * N, -1))
    return out.view(S, E, N, -1), hidden.view(S, E, N, -1)


class RecurrentPolicy(nn.Module):
    """pi_i(u_i | tau_i) for every agent of every seed: one GRU network shared by the agents
    (PyMARL's parameter sharing), logits masked by the available actions."""

    def __init__(self, init: SeedStreams, inputs: AgentInputs, in_dim: int, hidden: int):
        super().__init__()
        self.inputs = inputs
        self.hidden = hidden
        self.agent = RecurrentAgent(init, in_dim, hidden, inputs.n_actions)

    def begin(self, memory: Memory | None, started: torch.Tensor, obs: torch.Tensor) -> Memory:
        return self.inputs.fresh(obs, self.hidden, started, memory)

    def act(self, obs, avail, memory: Memory, explore: SeedStreams | None, active=None, *extra):
        """Actions ``[S, E, N]`` and the new memory: a draw from pi with ``explore`` (a
        per-seed stream), the most probable available action without (PyMARL's test mode)."""
        available = avail.bool()
        mc.check_some_available(available)
        logits, hidden = step(self.agent, self.inputs(obs, memory.last_action, *extra), memory)
        log_pi = mc.masked_log_softmax(logits, available)
        action = mc.masked_argmax(log_pi, available) if explore is None else mc.sample(explore, log_pi, active)
        return action, Memory(hidden, F.one_hot(action, self.inputs.n_actions).to(obs.dtype))

    def log_probs(self, obs, action, avail, *extra) -> torch.Tensor:
        """log pi(. | tau_t) ``[S, B, T + 1, N, A]`` of every row of an episode batch."""
        logits = unroll(self.agent, self.inputs.episode(obs, action, *extra))
        return mc.masked_log_softmax(logits, padded_available(avail))


def padded_available(avail: torch.Tensor) -> torch.Tensor:
    """The masks of an episode batch, with every action available on padding rows (past an
    episode's end the stored mask is zeros; those rows count nothing, but must not be NaN)."""
    available = avail.bool()
    return available | ~available.any(-1, keepdim=True)
