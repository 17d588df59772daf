"""Replay buffer with a seed axis: each seed stores its own transitions and samples its own
minibatches with its own generator."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from algorithms.seeding import SeedStreams


class SeedReplay:
    """Ring buffer ``[S, capacity, ...]`` per field; one transition per seed per ``add``."""

    def __init__(self, seeds: Sequence[int], capacity: int, fields: dict[str, tuple[int, ...]]):
        self.capacity, self.size, self.cursor = capacity, 0, 0
        # empty, not zeros: pages of a large buffer are only touched when written.
        self.data = {k: torch.empty(len(seeds), capacity, *shape) for k, shape in fields.items()}
        self.sampler = SeedStreams(seeds, "replay")

    def add(self, **transition: torch.Tensor) -> None:
        """Each field ``[S, ...]``: this step's transition of every seed."""
        for name, storage in self.data.items():
            storage[:, self.cursor] = transition[name]
        self.cursor = (self.cursor + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Uniform minibatch per seed: fields ``[S, B, ...]``."""
        idx = self.sampler.integers(self.size, batch_size)  # [S, B]
        rows = torch.arange(idx.shape[0]).unsqueeze(1)
        return {name: storage[rows, idx] for name, storage in self.data.items()}
