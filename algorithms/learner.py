"""The learner protocol: what every algorithm offers the training and evaluation loops.

The loops (``pipeline/runtime/loops.py``) never ask which algorithm they hold. A learner is an
``nn.Module`` whose every parameter and persistent buffer carries a leading seed axis, with:

- ``Settings``: its settings dataclass (checks itself; includes a ``Schedule``);
- ``loop``: ``"transitions"`` (per-step replay), ``"episodes"`` (whole-episode replay, for
  recurrent agents) or ``"on_policy"`` (the latest episodes, for on-policy learners); the
  storage it gets is chosen by this;
- ``discrete_actions``: whether it acts in Discrete (masked) or Box action spaces; params
  validation refuses a run whose task has the other kind;
- ``execution_modes(settings)``: how it acts at evaluation, the first being the headline
  (VM3-AC: z = 0, then sampled z; most learners: one deterministic mode);
- ``fields(spec)``: what the storage keeps for it (names from ``algorithms.components.storage``);
- ``begin_episodes(memory, started, obs, state, mode, noise)``: the episode-start hook, which
  resets the recurrent memory (a GRU's hidden state, a per-episode latent) of the copies in
  ``started``; ``mode`` and ``noise`` as for ``act`` (a per-episode z is drawn here);
- ``act(obs, state, avail, memory, mode, noise, acting)``: actions for ``[S, E]`` copies and
  the new memory; ``mode`` is ``"explore"`` in training or one of the execution modes, ``noise``
  the per-seed stream an execution mode may draw from, ``acting`` (``[S, E]`` bool, all if None)
  the copies that will really step: a seed with no acting copy draws nothing and counts no
  step (its copies wait for the other seeds' episodes, see ``pipeline/runtime/loops.py``);
- ``record(memory)``: what of the memory the storage keeps with each row (``HELD`` fields in
  ``algorithms.components.storage``: MAVEN's per-episode z); nothing by default;
- ``ready(storage)`` and ``sample(storage, active)``: whether each seed's storage can give a
  batch, and the batch; by default one ``batch_size`` draw (DOP mixes on- and off-policy
  episodes);
- ``update(batch, active)``: one gradient step for the seeds in ``active``, returning per-seed
  losses ``[S]``; the learner owns its target networks and their updates;
- ``end_phase(active)``: called after each update phase (VM3-AC's target-V average).
"""

from __future__ import annotations

import torch
from torch import nn

from algorithms.components.settings import Schedule
from algorithms.components.storage import Field

EXPLORE = "explore"  # the mode the training loop acts in


class Learner(nn.Module):
    Settings: type = Schedule
    loop: str = "transitions"
    discrete_actions: bool = False  # the action spaces it acts in: Discrete, else Box

    def __init__(self, settings: Schedule):
        super().__init__()
        self.settings = settings

    @classmethod
    def execution_modes(cls, settings) -> tuple[str, ...]:
        return ("deterministic",)

    def fields(self, spec) -> dict[str, Field]:
        raise NotImplementedError

    def begin_episodes(self, memory, started: torch.Tensor, obs, state, mode=EXPLORE, noise=None):
        """Memory for the copies whose episode starts (``started [S, E]``); none by default."""
        return None

    def act(self, obs, state, avail, memory, mode: str, noise=None, acting=None):
        raise NotImplementedError

    def record(self, memory) -> dict[str, torch.Tensor]:
        """``[S, E, ...]`` tensors the storage writes with the row each copy acts on next."""
        return {}

    def ready(self, storage) -> torch.Tensor:
        """Seeds ``[S]`` whose storage holds what one update reads."""
        return storage.ready(self.settings.batch_size)

    def sample(self, storage, active: torch.Tensor | None) -> dict:
        """One update's batch from ``storage`` for the seeds in ``active``."""
        return storage.sample(self.settings.batch_size, active)

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None):
        raise NotImplementedError

    def end_phase(self, active: torch.Tensor | None) -> None:
        return None

    # ---- checkpoints: one slice per seed ----------------------------------------------------
    def seed_state(self, k: int) -> dict[str, torch.Tensor]:
        """Seed k's slice of every parameter and persistent buffer."""
        return {name: t.detach()[k].clone() for name, t in self.state_dict().items()}

    @torch.no_grad()
    def load_seed_states(self, slices: list[dict[str, torch.Tensor]]) -> None:
        """Stack per-seed slices (in seed order) into every parameter and persistent buffer."""
        own = self.state_dict()
        if slices and set(slices[0]) != set(own):
            missing, extra = set(own) - set(slices[0]), set(slices[0]) - set(own)
            raise ValueError(
                f"checkpoint: tensors differ from the module's (missing {sorted(missing)}, "
                f"unexpected {sorted(extra)})"
            )
        for name, tensor in own.items():
            stacked = torch.stack([s[name] for s in slices])
            if stacked.shape != tensor.shape:
                raise ValueError(
                    f"checkpoint: '{name}' has shape {tuple(stacked.shape)}, the module "
                    f"expects {tuple(tensor.shape)}"
                )
            tensor.copy_(stacked)
