"""Seed batching for the recurrent agent: stacked parameters versus ``torch.func.vmap``.

    python -m benchmarks.recurrent_batching [--seeds 7] [--repeats 5]

One QMIX-sized forward and backward of the GRU agent (PyMARL's RNNAgent) over a batch of whole
episodes for every seed, timed two ways:

(a) stacked: ``algorithms.models.recurrent_agent.RecurrentAgent``, parameters ``[S, ...]`` and one
    ``baddbmm`` per layer for all seeds (what QMIX uses);
(b) vmap: S single-seed ``nn.Module`` agents (``nn.Linear`` + ``nn.GRUCell``, PyMARL's layers)
    stacked with ``torch.func.stack_module_state`` and run with
    ``torch.func.vmap(torch.func.functional_call)`` (torch has no vmap batching rule for
    ``aten::gru_cell``: it warns and loops over the seeds inside).

Both unroll the same episodes (batch x steps x agents) and sum the Q-values into a scalar to
backpropagate; the time is the median of ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from algorithms.components.seeding import SeedStreams
from algorithms.models.recurrent_agent import RecurrentAgent


class PyMARLAgent(nn.Module):
    """One seed's agent as PyMARL writes it: fc1 - ReLU - GRUCell - fc2, one step at a time."""

    def __init__(self, in_dim: int, hidden: int, n_actions: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.rnn = nn.GRUCell(hidden, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[T, M, in]`` -> Q ``[T, M, n_actions]``, hidden state from zeros."""
        h = x.new_zeros(x.shape[1], self.rnn.hidden_size)
        qs = []
        for t in range(x.shape[0]):
            h = self.rnn(torch.relu(self.fc1(x[t])), h)
            qs.append(self.fc2(h))
        return torch.stack(qs)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--episodes", type=int, default=32)  # PyMARL batch_size
    parser.add_argument("--steps", type=int, default=60)  # SMAC 3m's episode limit
    parser.add_argument("--agents", type=int, default=3)  # 3m
    parser.add_argument("--obs", type=int, default=30)  # 3m's observation size
    parser.add_argument("--actions", type=int, default=9)  # 3m: no-op, stop, 4 moves, 3 targets
    parser.add_argument("--hidden", type=int, default=64)  # PyMARL rnn_hidden_dim
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    S, T, M = args.seeds, args.steps + 1, args.episodes * args.agents
    in_dim = args.obs + args.actions + args.agents  # obs + last action + agent id (PyMARL)
    x = torch.randn(S, T, M, in_dim)

    stacked = RecurrentAgent(SeedStreams(range(S), "init"), in_dim, args.hidden, args.actions)

    def run_stacked() -> None:
        stacked.zero_grad()
        q, _ = stacked(x, stacked.initial_hidden(S, M))
        q.sum().backward()

    base = PyMARLAgent(in_dim, args.hidden, args.actions)
    agents = [PyMARLAgent(in_dim, args.hidden, args.actions) for _ in range(S)]
    params, buffers = torch.func.stack_module_state(agents)
    template = copy.deepcopy(base).to("meta")

    def one_seed(p, b, xs):
        return torch.func.functional_call(template, (p, b), (xs,))

    batched = torch.func.vmap(one_seed)

    def run_vmap() -> None:
        for p in params.values():
            p.grad = None
        batched(params, buffers, x).sum().backward()

    t_stacked = timed(run_stacked, args.repeats)
    t_vmap = timed(run_vmap, args.repeats)
    print(
        f"{S} seeds, {args.episodes} episodes x {T} rows x {args.agents} agents, obs {args.obs}, "
        f"{args.actions} actions, hidden {args.hidden}, torch threads {torch.get_num_threads()}"
    )
    print(f"  (a) stacked baddbmm  {t_stacked * 1e3:8.1f} ms per forward+backward")
    print(f"  (b) vmap over seeds  {t_vmap * 1e3:8.1f} ms per forward+backward")
    print(f"  vmap / stacked time: {t_vmap / t_stacked:.2f}x")


if __name__ == "__main__":
    main()
