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

from algorithms.components.seeding import SeedStreams

# What the loop offers; a learner picks among these by name.
OBSERVED = ("obs", "state", "avail")  # known when a copy is about to act
PRODUCED = ("action", "reward", "rewards", "terminated")  # known after the step
# What the learner holds for the episode (``Learner.record``: MAVEN's per-episode latent z and
# the state it was drawn from), written with the observation part of each row; no next_ value.
HELD = ("latent", "initial_state")
# What a learner may ask of the row that follows, kept in no ring of its own: ``next_action``
# is row t+1's joint action (SI-MOA's model predicts the partners' next actions, Jaques et al.
# 2019), sampled with ``has_next_action``, true only where the episode goes on after row t and
# row t+1 is already closed.
FOLLOWING = ("next_action",)


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
    unknown = set(fields) - set(OBSERVED) - set(PRODUCED) - set(HELD) - set(FOLLOWING)
    if unknown:
        raise ValueError(f"storage: unknown fields {sorted(unknown)}")
    if "next_action" in fields and "action" not in fields:
        raise ValueError("storage: next_action needs the action field")


class _Storage:
    """What both storages share: the declared fields, the seeds' samplers, and writing the
    observation part of the row each active copy acts on next (``_at`` says where)."""

    def __init__(self, seeds: Sequence[int], fields: dict[str, Field], copies: int):
        _check_fields(fields)
        self.following = [k for k in fields if k in FOLLOWING]
        fields = {k: f for k, f in fields.items() if k not in FOLLOWING}  # nothing stored
        self.S, self.E, self.fields = len(seeds), copies, fields
        self.observed = {k: f for k, f in fields.items() if k in OBSERVED}
        self.opened = {k: f for k, f in fields.items() if k in OBSERVED or k in HELD}
        self.sampler = SeedStreams(seeds, "replay")

    def _at(self, active: torch.Tensor | None):
        raise NotImplementedError

    # Rows are filled in order along RING_DIM of ``data`` and of the RING attributes (with the
    # value an unwritten row holds); ``_rows_used`` is how far any copy has got.
    RING_DIM: int
    RING: dict[str, float | bool]

    def _ring_size(self) -> int:
        raise NotImplementedError

    def _rows_used(self) -> int:
        raise NotImplementedError

    def __getstate__(self) -> dict:
        """Pickled (a resume point, pipeline/runtime/resume.py) without the rows no copy has reached:
        at the default profile most of a replay is still empty. Unwritten rows are never
        sampled, so what they hold does not matter."""
        state, used = dict(self.__dict__), self._rows_used()
        state["data"] = {k: v.narrow(self.RING_DIM, 0, used).clone() for k, v in self.data.items()}
        for name in self.RING:
            state[name] = getattr(self, name).narrow(self.RING_DIM, 0, used).clone()
        state["ring_size"] = self._ring_size()
        return state

    def __setstate__(self, state: dict) -> None:
        full, dim = state.pop("ring_size"), self.RING_DIM

        def grow(part: torch.Tensor, fill) -> torch.Tensor:
            whole = torch.full((*part.shape[:dim], full, *part.shape[dim + 1 :]), fill, dtype=part.dtype)
            whole.narrow(dim, 0, part.shape[dim]).copy_(part)
            return whole

        state["data"] = {k: grow(v, 0) for k, v in state["data"].items()}
        for name, fill in self.RING.items():
            state[name] = grow(state[name], fill)
        self.__dict__.update(state)

    def open(self, active: torch.Tensor | None = None, **given: torch.Tensor) -> None:
        """The observation part ``[S,E,...]`` of the row every (active) copy acts on next,
        with what the learner holds for the episode (``HELD``)."""
        *where, mask = self._at(active)
        for name in self.opened:
            self.data[name][tuple(where)] = given[name][mask].to(self.data[name].dtype)


class TransitionReplay(_Storage):
    """One ring of rows per (seed, env copy): ``[S, E, rows, ...]``, uniform sampling per seed.

    ``sample`` returns every declared field of the sampled rows and ``next_<f>`` for each
    observed field: row t+1's value, or the kept final value where the episode was truncated at
    t. At a true termination ``next_<f>`` is the next episode's first row (finite, and unused:
    learners do not bootstrap there).
    """

    RING_DIM, RING = 2, {"final_slot": -1}

    def __init__(
        self,
        seeds: Sequence[int],
        capacity: int,
        fields: dict[str, Field],
        copies: int,
        episode_limit: int,
    ):
        super().__init__(seeds, fields, copies)
        self.request = capacity, copies, episode_limit
        self.limit = episode_limit
        self.rows = math.ceil(capacity / copies) + 1  # + the open row
        self.data = _allocate(fields, self.S, self.E, self.rows)
        # Truncations come only at the time limit, so at most rows/limit + 1 of them are live.
        self.finals = self.rows // episode_limit + 2
        self.final = _allocate(self.observed, self.S, self.E, self.finals)
        self.final_slot = torch.full((self.S, self.E, self.rows), -1, dtype=torch.int32)
        # Per copy: the open row, the closed rows, the next final slot, steps into the episode.
        # Copies advance on their own: a copy that waits (pipeline/runtime/loops.py) writes nothing.
        self.cursor = torch.zeros(self.S, self.E, dtype=torch.long)
        self.closed = torch.zeros(self.S, self.E, dtype=torch.long)
        self.final_cursor = torch.zeros(self.S, self.E, dtype=torch.long)
        self.length = torch.zeros(self.S, self.E, dtype=torch.long)
        self._seed = torch.arange(self.S)[:, None].expand(self.S, self.E)
        self._copy = torch.arange(self.E)[None, :].expand(self.S, self.E)

    @staticmethod
    def bytes_needed(capacity: int, fields: dict[str, Field], copies: int, episode_limit: int) -> int:
        """Bytes one seed's storage takes, known before it is allocated (the rings, the kept
        final observations and final_slot; the per-copy counters are negligible)."""
        rows = math.ceil(capacity / copies) + 1
        finals = rows // episode_limit + 2
        fields = {k: f for k, f in fields.items() if k not in FOLLOWING}
        observed = {k: f for k, f in fields.items() if k in OBSERVED}
        return copies * (rows * (nbytes(fields) + 4) + finals * nbytes(observed))

    @property
    def bytes_per_seed(self) -> int:
        return self.bytes_needed(self.request[0], self.fields, *self.request[1:])

    def _ring_size(self) -> int:
        return self.rows

    def _rows_used(self) -> int:
        return min(self.rows, int(self.closed.max()) + 1)  # the closed rows and the open one

    def ready(self, batch_size: int) -> torch.Tensor:
        """Seeds ``[S]`` that hold at least one batch of closed rows."""
        return self.closed.sum(1) >= batch_size

    def _at(self, active: torch.Tensor | None):
        """Index of the open row of every copy in ``active`` (all if None)."""
        mask = torch.ones(self.S, self.E, dtype=torch.bool) if active is None else active
        return self._seed[mask], self._copy[mask], self.cursor[mask], mask

    def close(
        self,
        truncated: torch.Tensor,
        final: dict[str, torch.Tensor],
        active: torch.Tensor | None = None,
        **produced,
    ) -> None:
        """The step's results ``[S,E,...]`` for the active copies; ``final`` holds the
        observation after the step (needed only where ``truncated``). Advances those copies to
        a new open row."""
        seed, copy, row, mask = self._at(active)
        for name in self.fields.keys() - self.opened.keys():
            self.data[name][seed, copy, row] = produced[name][mask].to(self.data[name].dtype)
        self.length[mask] += 1
        self.final_slot[seed, copy, row] = -1
        cut = truncated & mask
        if cut.any():
            if bool((self.length[cut] != self.limit).any()):
                raise RuntimeError(
                    f"storage: an episode was truncated before the time limit {self.limit}"
                )
            slot = self.final_cursor[cut]
            self.final_cursor[cut] = (slot + 1) % self.finals
            self.final_slot[self._seed[cut], self._copy[cut], self.cursor[cut]] = slot.int()
            for name in self.observed:
                value = final[name][cut].to(self.final[name].dtype)
                self.final[name][self._seed[cut], self._copy[cut], slot] = value
        ended = (produced["terminated"].bool() | truncated) & mask
        self.length[ended] = 0
        self.cursor[mask] = (self.cursor[mask] + 1) % self.rows
        self.closed[mask] = (self.closed[mask] + 1).clamp(max=self.rows - 1)

    def sample(self, batch_size: int, active: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``batch_size`` closed rows per seed, uniform over all its copies' closed rows, fields
        ``[S, batch, ...]``; a seed not in ``active`` draws nothing (its generator does not
        advance) and gets copy 0's newest row."""
        u = self.sampler.integers(self.closed.sum(1), batch_size, active=active)  # [S, B]
        ends = self.closed.cumsum(1)  # [S, E]: copy e holds draws in [ends[e-1], ends[e])
        copy = (u.unsqueeze(-1) >= ends.unsqueeze(1)).sum(-1).clamp(max=self.E - 1)
        seed = torch.arange(self.S).unsqueeze(1)
        age = u - (ends - self.closed)[seed, copy]  # 0 is the copy's newest closed row
        row = (self.cursor[seed, copy] - 1 - age) % self.rows
        batch = {k: v[seed, copy, row] for k, v in self.data.items()}
        nxt = (row + 1) % self.rows
        slot = self.final_slot[seed, copy, row].long()
        cut = slot >= 0
        for name in self.observed:
            value = self.data[name][seed, copy, nxt]
            if cut.any():
                value[cut] = self.final[name][seed, copy, slot.clamp(min=0)][cut]
            batch[f"next_{name}"] = value
        if self.following:
            ends = self.data["terminated"][seed, copy, row].bool() | cut
            valid = ~ends & (age > 0)  # age 0: row t+1 is still open (never written: any bits)
            value = self.data["action"][seed, copy, nxt]
            shape = valid.view(*valid.shape, *[1] * (value.dim() - valid.dim()))
            batch["next_action"] = torch.where(shape, value, torch.zeros((), dtype=value.dtype))
            batch["has_next_action"] = valid
        return batch


class EpisodeReplay(_Storage):
    """Whole episodes per seed: ``[S, episodes, limit + 1, ...]`` with a ``filled`` mask.

    Row t of an episode holds what was observed before step t and what step t produced; row
    ``length`` holds the final observation. Each env copy fills its own slot; a slot becomes
    sampleable when its episode ends (``committed``).
    """

    RING_DIM, RING = 1, {"filled": False, "committed": False}

    def __init__(
        self,
        seeds: Sequence[int],
        capacity: int,
        fields: dict[str, Field],
        copies: int,
        episode_limit: int,
    ):
        super().__init__(seeds, fields, copies)
        if self.following:
            raise ValueError(f"storage: {self.following} exist only in transition storage")
        self.request = capacity, copies, episode_limit
        # capacity finished episodes are kept, plus one slot per copy for the episode under way
        self.capacity = capacity = capacity + copies
        self.data = _allocate(fields, self.S, capacity, episode_limit + 1, zero=True)
        self.filled = torch.zeros(self.S, capacity, episode_limit, dtype=torch.bool)
        self.committed = torch.zeros(self.S, capacity, dtype=torch.bool)
        seed = torch.arange(self.S).unsqueeze(1)
        self._seed = seed
        self.slot = torch.arange(copies).expand(self.S, copies).clone()  # slot of every copy
        self.next_slot = torch.full((self.S,), copies, dtype=torch.long)  # per seed's ring
        self.t = torch.zeros(self.S, copies, dtype=torch.long)  # row every copy writes next
        self.slots_used = copies  # slots below it have been written (a resume point keeps those)

    @staticmethod
    def bytes_needed(capacity: int, fields: dict[str, Field], copies: int, episode_limit: int) -> int:
        """Bytes one seed's storage takes, known before it is allocated (the episodes, the
        filled mask and the committed flag)."""
        rows = episode_limit + 1
        return (capacity + copies) * (rows * nbytes(fields) + (rows - 1) + 1)

    @property
    def bytes_per_seed(self) -> int:
        return self.bytes_needed(self.request[0], self.fields, *self.request[1:])

    def _ring_size(self) -> int:
        return self.capacity

    def _rows_used(self) -> int:
        return self.slots_used

    def episodes(self) -> torch.Tensor:
        """Committed episodes per seed ``[S]``."""
        return self.committed.sum(1)

    def ready(self, batch_size: int) -> torch.Tensor:
        """Seeds ``[S]`` that hold at least one batch of episodes (PyMARL's ``can_sample``)."""
        return self.episodes() >= batch_size

    def _at(self, active: torch.Tensor | None):
        """Index of the row every copy in ``active`` (all if None) writes next."""
        mask = torch.ones(self.S, self.E, dtype=torch.bool) if active is None else active
        seed = self._seed.expand(self.S, self.E)[mask]
        return seed, self.slot[mask], self.t[mask], mask

    def close(
        self,
        truncated: torch.Tensor,
        final: dict[str, torch.Tensor],
        active: torch.Tensor | None = None,
        **produced,
    ) -> None:
        """The step's results for the active copies; episodes that ended get their final row
        and are committed, and their copies move on to the oldest slot of their seed's ring."""
        seed, slot, t, mask = self._at(active)
        for name in self.fields.keys() - self.opened.keys():
            self.data[name][seed, slot, t] = produced[name][mask].to(self.data[name].dtype)
        self.filled[seed, slot, t] = True
        self.t[mask] += 1
        ended = (produced["terminated"].bool() | truncated) & mask
        if not ended.any():
            return
        seed, slot, t = self._seed.expand(self.S, self.E)[ended], self.slot[ended], self.t[ended]
        for name in self.observed:  # the final observation (bootstrapped only if truncated)
            self.data[name][seed, slot, t] = final[name][ended].to(self.data[name].dtype)
        for k, e in ended.nonzero().tolist():
            self.committed[k, self.slot[k, e]] = True
            new = int(self.next_slot[k])
            while new in self.slot[k].tolist():  # another copy's episode is still being written
                new = (new + 1) % self.capacity
            self.next_slot[k] = (new + 1) % self.capacity
            self.slot[k, e] = new
            self.slots_used = max(self.slots_used, new + 1)
            self.committed[k, new] = False
            self.filled[k, new] = False
            self.t[k, e] = 0

    def committed_slots(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every slot ``[S, C]`` with the committed ones first (per seed), and their count."""
        order = torch.argsort((~self.committed).to(torch.uint8), dim=1, stable=True)
        return order, self.episodes()

    def take(self, slots: torch.Tensor) -> dict[str, torch.Tensor]:
        """The episodes in ``slots [S, n]``: every field ``[S, n, limit + 1, ...]`` plus
        ``filled [S, n, limit]``."""
        batch = {k: v[self._seed, slots] for k, v in self.data.items()}
        batch["filled"] = self.filled[self._seed, slots]
        return batch

    def sample(self, batch_size: int, active: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``batch_size`` committed episodes per seed (uniform, with replacement)."""
        order, counts = self.committed_slots()
        u = self.sampler.integers(counts, batch_size, active=active)  # [S, B] among committed
        return self.take(torch.gather(order, 1, u))


def trim_episodes(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An episode batch cut after the longest episode's final row (PyMARL's max_t_filled):
    rows past it are padding for every seed, so a causal learner loses nothing."""
    T = int(batch["filled"].sum(-1).max())
    out = {k: v[:, :, : T + 1] for k, v in batch.items() if k != "filled"}
    out["filled"] = batch["filled"][:, :, :T]
    return out


class LatestEpisodes(EpisodeReplay):
    """Episode storage for on-policy learners (LICA, VDAC, DOP's on-policy critic): ``sample``
    returns each seed's ``batch_size`` most recently finished episodes, oldest first, with no
    random draw. With ``replay_size = batch_size = env_copies`` and one episode per copy per
    update (``update_every: 1``, ``update_unit: episode``), that is exactly the batch the
    current policy has just played (PyMARL's parallel runner and its on-policy buffer)."""

    RING = {**EpisodeReplay.RING, "finished": 0}

    def __init__(self, seeds, capacity, fields, copies, episode_limit):
        super().__init__(seeds, capacity, fields, copies, episode_limit)
        self.finished = torch.zeros(self.S, self.capacity, dtype=torch.long)  # commit order
        self.count = torch.zeros(self.S, dtype=torch.long)

    def close(self, truncated, final, active=None, **produced) -> None:
        before = self.committed.clone()
        super().close(truncated, final, active, **produced)
        for k, slot in (self.committed & ~before).nonzero().tolist():
            self.count[k] += 1
            self.finished[k, slot] = self.count[k]

    def newest(self, n: int) -> torch.Tensor:
        """Slots ``[S, n]`` of each seed's n most recently finished episodes, oldest first."""
        order = torch.where(self.committed, self.finished, -1)
        return order.topk(n, dim=1).indices.flip(1)

    def choose(self, slots: torch.Tensor, n: int, active: torch.Tensor | None = None,
               valid: torch.Tensor | None = None) -> torch.Tensor:
        """n of ``slots [S, C]`` (those where ``valid``, all if None) per seed, uniform without
        replacement (PyMARL's ``uni_sample``: numpy's ``choice(replace=False)``): the n largest
        of C i.i.d. uniform scores, drawn from the seed's replay stream; a seed outside
        ``active`` draws nothing."""
        scores = self.sampler.uniform(0, 1, slots.shape[1], active=active)
        if valid is not None:
            scores = scores.masked_fill(~valid, -1.0)
        return torch.gather(slots, 1, scores.topk(n, dim=1).indices)

    def sample(self, batch_size: int, active: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.take(self.newest(batch_size))


STORAGES = {"transitions": TransitionReplay, "episodes": EpisodeReplay, "on_policy": LatestEpisodes}


def capacity(settings, env_steps: int) -> int:
    """What a run's storage holds: ``replay_size`` (in its storage's unit), never more than the
    run's env steps per seed, which bound what it can ever record."""
    return min(settings.replay_size, env_steps)
