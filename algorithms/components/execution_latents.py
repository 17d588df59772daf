"""The latent z at execution (VM3-AC §5 and Table 1): who draws it, and from what.

- ``zero``: z = E[z] = 0, no draw: fully decentralised (the paper's headline execution).
- ``sampled``: z ~ N(0, I) drawn each step by one central generator per episode and given to
  every agent ("assuming communication", Table 1's first row).
- ``shared_seed``: no communication: each agent draws z from its own generator, seeded with a
  per-episode seed the agents share (agreed in advance). Every agent then draws the numbers the
  central generator of ``sampled`` draws, so the two modes act alike, exactly.
- ``independent``: each agent draws its own z from a generator seeded apart from the others':
  what sharing the latent buys, by its absence.

The per-episode seeds come from the evaluation's execution stream (``pipeline/runtime/loops.py``), the
same for every mode, so ``sampled`` and ``shared_seed`` meet the same seeds.
"""

from __future__ import annotations

import torch

from algorithms.components.seeding import SeedStreams, stream_seed

LATENT_MODES = ("zero", "sampled", "shared_seed", "independent")
DRAWING = ("sampled", "shared_seed", "independent")


class EpisodeLatents:
    """The generators of one batch of evaluation episodes ``[S, E]`` for one drawing mode."""

    def __init__(self, mode: str, noise: SeedStreams, copies: int, n_agents: int, z_dim: int):
        if mode not in DRAWING:
            raise ValueError(f"latent mode: '{mode}' is not one of {', '.join(DRAWING)}")
        self.mode, self.n_agents, self.z_dim = mode, n_agents, z_dim
        episode_seeds = noise.integers(2**62, copies).tolist()  # [S][E]: one seed per episode

        def generator(seed: int, purpose: str) -> torch.Generator:
            return torch.Generator().manual_seed(stream_seed(seed, purpose))

        if mode == "sampled":  # one central generator per episode
            self.generators = [[generator(s, "latent")] for row in episode_seeds for s in row]
        else:  # one generator per agent: the same seed for all (shared_seed) or its own
            purposes = ["latent" if mode == "shared_seed" else f"latent-agent{i}" for i in range(n_agents)]
            self.generators = [
                [generator(s, p) for p in purposes] for row in episode_seeds for s in row
            ]
        self.shape = (len(episode_seeds), copies)

    def draw(self) -> torch.Tensor:
        """This step's z for every agent ``[S, E, N, z]``."""
        # CPU generators, numbers moved to the default device (as in algorithms/components/seeding.py)
        rows = [torch.stack([torch.randn(self.z_dim, generator=g, device="cpu") for g in gens]) for gens in self.generators]
        z = torch.stack(rows).to(torch.get_default_device())
        z = z.expand(-1, self.n_agents, -1)  # a central draw reaches every agent
        return z.reshape(*self.shape, self.n_agents, self.z_dim)
