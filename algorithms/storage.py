"""Experience storage with a seed axis: per-step transitions (off-policy learners) and whole
episodes (recurrent learners), each seed sampling its own data with its own generator.

A learner declares the fields it reads (``Field``: shape and dtype), so nothing it does not need
is kept, and nothing is kept twice: the observation that follows a step is the next row's own
observation. Only where an episode was cut by its time limit (the one end a learner bootstraps
from) is the final observation kept apart, in a small ring of its own.

Rows are written as the loop learns them: ``open`` writes the observation part of the row a
copy acts on next, ``close`` writes what the step produced (action, rewards, ends). A row is
sampled only once it is closed, so every sampled row has its successor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from algorithms.seeding import SeedStreams

# What the loop offers; a learner picks among these by name.
OBSERVED = ("obs", "state", "avail")  # known when a copy is about to act
PRODUCED = ("action", "reward", "rewards", "terminated")  # known after the step


@dataclass(frozen=True)
class Field:
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32


def _allocate(fields: dict[str, Field], *lead: int, zero: bool = False) -> dict[str, torch.Tensor]:
    # empty, not zeros, for the big rings: pages of a large buffer are only touched when written.
    new = torch.zeros if zero else torch.empty
    return {k: new(*lead, *f.shape, dtype=f.dtype) for k, f in fields.items()}


def nbytes(fields: dict[str, Field]) -> int:
    """Bytes of one row of ``fields``."""
    return sum(
        math.prod(f.shape) * torch.empty((), dtype=f.dtype).element_size() for f in fields.values()
    )


def _check_fields(fields: dict[str, Field]) -> None:
    unknown = set(fields) - set(OBSERVED) - set(PRODUCED)
    if unknown:
        raise ValueError(f"storage: unknown fields {sorted(unknown)}")


class TransitionReplay:
    """One ring of rows per (seed, env copy): ``[S, E, rows, ...]``, uniform sampling per seed.

    ``sample`` returns every declared field of the sampled rows and ``next_<f>`` for each
    observed field: row t+1's value, or the kept final value where the episode was truncated at
    t. At a true termination ``next_<f>`` is the next episode's first row (finite, and unused:
    learners do not bootstrap there).
    """

    def __init__(
        self,
        seeds: Sequence[int],
        capacity: int,
        fields: dict[str, Field],
        copies: int,
        episode_limit: int,
    ):
        _check_fields(fields)
        self.S, self.E, self.limit = len(seeds), copies, episode_limit
        self.rows = math.ceil(capacity / copies) + 1  # + the open row
        self.fields = fields
        self.observed = {k: f for k, f in fields.items() if k in OBSERVED}
        self.data = _allocate(fields, self.S, self.E, self.rows)
        # Truncations come only at the time limit, so at most rows/limit + 1 of them are live.
        self.finals = self.rows // episode_limit + 2
        self.final = _allocate(self.observed, self.S, self.E, self.finals)
        self.final_slot = torch.full((self.S, self.E, self.rows), -1, dtype=torch.int32)
        self.final_cursor = 0
        self.cursor, self.closed = 0, 0  # open row of every copy; closed rows per copy
        self.length = torch.zeros(self.S, self.E, dtype=torch.long)  # steps into the episode
        self.sampler = SeedStreams(seeds, "replay")

    @property
    def bytes_per_seed(self) -> int:
        per_row = nbytes(self.fields) + 4  # + final_slot
        return self.E * (self.rows * per_row + self.finals * nbytes(self.observed))

    def ready(self, batch_size: int) -> torch.Tensor:
        """Seeds ``[S]`` that hold at least one batch of closed rows."""
        return torch.full((self.S,), self.E * self.closed >= batch_size)

    def open(self, **observed: torch.Tensor) -> None:
        """The observation part ``[S,E,...]`` of the row every copy acts on next."""
        for name in self.observed:
            self.data[name][:, :, self.cursor] = observed[name]

    def close(self, truncated: torch.Tensor, final: dict[str, torch.Tensor], **produced) -> None:
        """The step's results ``[S,E,...]``; ``final`` holds the observation after the step
        (needed only where ``truncated``). Advances every copy to a new open row."""
        for name in self.fields.keys() - self.observed.keys():
            self.data[name][:, :, self.cursor] = produced[name]
        self.length += 1
        self.final_slot[:, :, self.cursor] = -1
        if truncated.any():
            if bool((self.length[truncated] != self.limit).any()):
                raise RuntimeError(
                    f"storage: an episode was truncated before the time limit {self.limit}"
                )
            slot = self.final_cursor
            self.final_cursor = (slot + 1) % self.finals
            self.final_slot[:, :, self.cursor][truncated] = slot
            for name in self.observed:
                self.final[name][:, :, slot][truncated] = final[name][truncated].to(self.final[name].dtype)
        ended = produced["terminated"].bool() | truncated
        self.length[ended] = 0
        self.cursor = (self.cursor + 1) % self.rows
        self.closed = min(self.closed + 1, self.rows - 1)

    def sample(self, batch_size: int, active: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``batch_size`` closed rows per seed, fields ``[S, batch, ...]``; a seed not in
        ``active`` draws nothing (its generator does not advance) and gets row 0."""
        u = self.sampler.integers(self.E * self.closed, batch_size, active=active)  # [S, B]
        copy, age = u % self.E, u // self.E
        row = (self.cursor - 1 - age) % self.rows
        seed = torch.arange(self.S).unsqueeze(1)
        batch = {k: v[seed, copy, row] for k, v in self.data.items()}
        nxt = (row + 1) % self.rows
        slot = self.final_slot[seed, copy, row].long()
        cut = slot >= 0
        for name in self.observed:
            value = self.data[name][seed, copy, nxt]
            if cut.any():
                value[cut] = self.final[name][seed, copy, slot.clamp(min=0)][cut]
            batch[f"next_{name}"] = value
        return batch


class EpisodeReplay:
    """Whole episodes per seed: ``[S, episodes, limit + 1, ...]`` with a ``filled`` mask.

    Row t of an episode holds what was observed before step t and what step t produced; row
    ``length`` holds the final observation. Each env copy fills its own slot; a slot becomes
    sampleable when its episode ends (``committed``).
    """

    def __init__(
        self,
        seeds: Sequence[int],
        capacity: int,
        fields: dict[str, Field],
        copies: int,
        episode_limit: int,
    ):
        _check_fields(fields)
        # capacity finished episodes are kept, plus one slot per copy for the episode under way
        self.S, self.E, self.capacity = len(seeds), copies, capacity + copies
        capacity = self.capacity
        self.fields = fields
        self.observed = {k: f for k, f in fields.items() if k in OBSERVED}
        self.data = _allocate(fields, self.S, capacity, episode_limit + 1, zero=True)
        self.filled = torch.zeros(self.S, capacity, episode_limit, dtype=torch.bool)
        self.committed = torch.zeros(self.S, capacity, dtype=torch.bool)
        seed = torch.arange(self.S).unsqueeze(1)
        self._seed = seed
        self.slot = torch.arange(copies).expand(self.S, copies).clone()  # slot of every copy
        self.next_slot = torch.full((self.S,), copies, dtype=torch.long)  # per seed's ring
        self.t = torch.zeros(self.S, copies, dtype=torch.long)  # row every copy writes next
        self.sampler = SeedStreams(seeds, "replay")

    @property
    def bytes_per_seed(self) -> int:
        rows = self.data[next(iter(self.data))].shape[2]
        return self.capacity * (rows * nbytes(self.fields) + (rows - 1) + 1)

    def episodes(self) -> torch.Tensor:
        """Committed episodes per seed ``[S]``."""
        return self.committed.sum(1)

    def ready(self, batch_size: int) -> torch.Tensor:
        """Seeds ``[S]`` that hold at least one batch of episodes (PyMARL's ``can_sample``)."""
        return self.episodes() >= batch_size

    def open(self, **observed: torch.Tensor) -> None:
        for name in self.observed:
            self.data[name][self._seed, self.slot, self.t] = observed[name].to(self.data[name].dtype)

    def close(self, truncated: torch.Tensor, final: dict[str, torch.Tensor], **produced) -> None:
        """The step's results; episodes that ended get their final row and are committed, and
        their copies move on to the oldest slot of their seed's ring."""
        for name in self.fields.keys() - self.observed.keys():
            self.data[name][self._seed, self.slot, self.t] = produced[name].to(self.data[name].dtype)
        self.filled[self._seed, self.slot, self.t] = True
        self.t += 1
        ended = produced["terminated"].bool() | truncated
        if not ended.any():
            return
        for name in self.observed:  # the final observation (bootstrapped only if truncated)
            self.data[name][self._seed, self.slot, self.t] = final[name].to(self.data[name].dtype)
        for k, e in ended.nonzero().tolist():
            self.committed[k, self.slot[k, e]] = True
            new = int(self.next_slot[k])
            while new in self.slot[k].tolist():  # another copy's episode is still being written
                new = (new + 1) % self.capacity
            self.next_slot[k] = (new + 1) % self.capacity
            self.slot[k, e] = new
            self.committed[k, new] = False
            self.filled[k, new] = False
            self.t[k, e] = 0

    def sample(self, batch_size: int, active: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``batch_size`` committed episodes per seed (uniform, with replacement): every field
        ``[S, batch, limit + 1, ...]`` plus ``filled [S, batch, limit]``."""
        counts = self.episodes()
        u = self.sampler.integers(counts, batch_size, active=active)  # [S, B] among committed
        order = torch.argsort((~self.committed).to(torch.uint8), dim=1, stable=True)
        slots = torch.gather(order, 1, u)
        batch = {k: v[self._seed, slots] for k, v in self.data.items()}
        batch["filled"] = self.filled[self._seed, slots]
        return batch


STORAGES = {"transitions": TransitionReplay, "episodes": EpisodeReplay}
