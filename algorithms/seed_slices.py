"""Cut a seed-batched module into one parameter set per seed, and stack them back.

A checkpoint per seed keeps seed k's run independent of the batch it was trained in: a run
with ``seeds: [3]`` can load it, and so can one with all seven.
"""

from __future__ import annotations

import torch
from torch import nn


def seed_slice(module: nn.Module, k: int) -> dict[str, torch.Tensor]:
    """Seed k's parameters (every parameter has the seed axis first)."""
    return {name: p.detach()[k].clone() for name, p in module.named_parameters()}


@torch.no_grad()
def load_seed_slices(module: nn.Module, slices: list[dict[str, torch.Tensor]]) -> None:
    """Overwrite every parameter with the per-seed slices stacked in order."""
    for name, p in module.named_parameters():
        stacked = torch.stack([s[name] for s in slices])
        if stacked.shape != p.shape:
            raise ValueError(
                f"checkpoint: parameter '{name}' has shape {tuple(stacked.shape)}, "
                f"the module expects {tuple(p.shape)}"
            )
        p.copy_(stacked)
