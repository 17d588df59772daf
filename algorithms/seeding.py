"""Per-seed random streams: every seed owns its generators, so its numbers never depend on
which other seeds share the batch (ARCHITECTURE.md, "Runs, seeds and batching")."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch


def stream_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for (seed, purpose); distinct purposes give unrelated streams."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


class SeedStreams:
    """One torch.Generator per seed for one purpose (init, exploration, replay, ...).

    Draws have a leading seed axis; row k comes from seed k's generator alone.
    """

    def __init__(self, seeds: Sequence[int], purpose: str):
        self.generators = [torch.Generator().manual_seed(stream_seed(s, purpose)) for s in seeds]

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators])

    def uniform(self, low: float, high: float, *shape: int) -> torch.Tensor:
        return torch.stack(
            [torch.empty(shape).uniform_(low, high, generator=g) for g in self.generators]
        )

    def integers(self, high: int, *shape: int) -> torch.Tensor:
        return torch.stack([torch.randint(high, shape, generator=g) for g in self.generators])
