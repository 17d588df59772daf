"""Per-seed random streams: every seed owns its generators, so its numbers never depend on
which other seeds share the batch (ARCHITECTURE.md, "Runs, seeds and batching")."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch


def stream_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for (seed, purpose); distinct purposes give unrelated streams."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


class SeedStreams:
    """One torch.Generator per seed for one purpose (init, exploration, replay, ...).

    Draws have a leading seed axis; row k comes from seed k's generator alone. The generators
    live on the CPU and the numbers move to torch's default device (a GPU in a train stage that
    asks for one), so a seed draws the same numbers on every device. With ``active``
    (a ``[S]`` bool mask) only the active seeds draw: the others' generators do not move and
    their rows are zeros, so a seed's stream never depends on when other seeds were busy.
    """

    def __init__(self, seeds: Sequence[int], purpose: str):
        self.generators = [torch.Generator().manual_seed(stream_seed(s, purpose)) for s in seeds]

    def _draw(self, one: Callable, active) -> torch.Tensor:
        target = torch.get_default_device()
        # the meta device (pipeline/runtime/memory.py's estimate) takes shapes only: nothing to draw
        on = target if target.type == "meta" else torch.device("cpu")
        rows = [
            one(k, g, on) if active is None or bool(active[k]) else None
            for k, g in enumerate(self.generators)
        ]
        template = next(r for r in rows if r is not None)
        return torch.stack([torch.zeros_like(template) if r is None else r for r in rows]).to(target)

    def normal(self, *shape: int, active: torch.Tensor | None = None) -> torch.Tensor:
        return self._draw(lambda k, g, on: torch.randn(shape, generator=g, device=on), active)

    def uniform(
        self, low: float, high: float, *shape: int, active: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self._draw(
            lambda k, g, on: torch.empty(shape, device=on).uniform_(low, high, generator=g), active
        )

    def integers(
        self, high: int | torch.Tensor, *shape: int, active: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Uniform in [0, high) (``high`` per seed if a tensor)."""
        top = [int(high[k]) if torch.is_tensor(high) else int(high) for k in range(len(self))]
        return self._draw(lambda k, g, on: torch.randint(top[k], shape, generator=g, device=on), active)

    def __len__(self) -> int:
        return len(self.generators)
