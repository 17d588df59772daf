"""PyMARL's recurrent agent (``RNNAgent``: fc - ReLU - GRUCell - fc) for all seeds at once.

One network is shared by the agents of a seed (PyMARL's parameter sharing; the agent id in the
input tells them apart), so its parameters carry only the seed axis and agents and env copies
fold into the batch. Every matmul is one ``baddbmm`` over the seeds (``StackedLinear`` with a
single "agent"): ``benchmarks/recurrent_batching.py`` times this against ``torch.func.vmap``
over per-seed modules.

Unrolling an episode, the input side of the GRU (fc1, ReLU and the input projection) does not
depend on the hidden state, so it runs for every row at once; only the hidden-to-hidden matmul
and the gates run once per step.
"""

from __future__ import annotations

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams
from algorithms.models.stacked_mlp import StackedLinear


class RecurrentAgent(nn.Module):
    """Q-values from (input, hidden): fc(hidden)-ReLU -> GRUCell(hidden) -> fc(n_actions).

    Shapes: inputs ``[S, T, M, in]`` (T steps of M sequences, e.g. M = episodes x agents),
    hidden ``[S, M, hidden]``.
    """

    def __init__(self, init: SeedStreams, in_dim: int, hidden: int, n_actions: int):
        super().__init__()
        self.hidden = hidden
        self.fc1 = StackedLinear(init, 1, in_dim, hidden)
        # torch.nn.GRUCell's weight_ih/bias_ih and weight_hh/bias_hh, gates in torch's order
        # (reset r, update z, new n); StackedLinear's U(-1/sqrt(hidden), 1/sqrt(hidden)) init is
        # GRUCell's own, since both matrices read a hidden-sized input.
        self.gru_input = StackedLinear(init, 1, hidden, 3 * hidden)
        self.gru_hidden = StackedLinear(init, 1, hidden, 3 * hidden)
        self.fc2 = StackedLinear(init, 1, hidden, n_actions)

    @staticmethod
    def _apply(layer: StackedLinear, x: torch.Tensor) -> torch.Tensor:
        """A seed-only layer on ``[S, ..., in]``: the middle axes become its batch."""
        flat = x.reshape(x.shape[0], 1, -1, x.shape[-1])
        return layer(flat).reshape(*x.shape[:-1], -1)

    def initial_hidden(self, S: int, *batch: int) -> torch.Tensor:
        """PyMARL's ``init_hidden``: zeros at the start of every episode."""
        return self.fc1.weight.new_zeros(S, *batch, self.hidden)

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q-values ``[S, T, M, n_actions]`` for every step, and the last hidden state."""
        states, h = self.hidden_states(inputs, h)
        return self._apply(self.fc2, states), h

    def hidden_states(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The GRU's state after every step ``[S, T, M, hidden]`` (what fc2 reads), and the last."""
        H = self.hidden
        gates_in = self._apply(self.gru_input, torch.relu(self._apply(self.fc1, inputs)))
        states = []
        # unbind, not gates_in[:, t]: the backward of one unbind is one stack, while each
        # indexed slice would write its gradient into a zero tensor the size of gates_in.
        for gates_t in gates_in.unbind(1):
            gates_h = self._apply(self.gru_hidden, h)
            i_r, i_z, i_n = gates_t.split(H, -1)
            h_r, h_z, h_n = gates_h.split(H, -1)
            r = torch.sigmoid(i_r + h_r)  # torch.nn.GRUCell's equations
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = n + z * (h - n)  # (1 - z) * n + z * h
            states.append(h)
        return torch.stack(states, 1), h
