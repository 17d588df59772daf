"""The loops that join a learner to a batched environment: training all seeds in lockstep and
deterministic evaluation episodes. They speak only the learner protocol
(``algorithms/learner.py``) and never ask which algorithm they hold.

Shapes: the environment holds ``S * E`` copies, seed-major (copy ``k * E + e`` is seed k's
e-th); learners see ``[S, E, ...]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils._pytree import tree_map

from algorithms.components.seeding import SeedStreams
from algorithms.components.storage import STORAGES, capacity
from algorithms.learner import EXPLORE, Learner
from pipeline.design.budget import Budget, training_env_seeds


@dataclass(frozen=True)
class Episodes:
    """One finished episode per (seed, evaluation env seed)."""

    returns: np.ndarray  # [S, E]
    won: np.ndarray  # [S, E] bool (all False on tasks without wins)


class _View:
    """The environment's arrays as ``[S, E, ...]`` tensors, on torch's default device (a GPU
    in a train stage that asks for one, pipeline/runtime/devices.py)."""

    def __init__(self, S: int):
        self.S = S

    def __call__(self, array: np.ndarray | None) -> torch.Tensor | None:
        if array is None:
            return None
        return torch.from_numpy(array).to(torch.get_default_device()).unflatten(0, (self.S, -1))


def evaluate(algo: Learner, env, seeds: Sequence[int], env_seeds: Sequence[int], mode: str):
    """Seed k's policy plays one episode on each of ``env_seeds`` in execution ``mode``.

    ``env`` holds ``S * E`` copies; copy ``k * E + e`` plays ``env_seeds[e]``, so every seed
    meets the same episodes. A mode that draws (VM3-AC's sampled z) draws from a per-seed
    stream that starts afresh for every evaluation and is the same for every mode, so modes
    that differ only in who draws (VM3-AC's ``sampled`` and ``shared_seed``) draw alike.
    """
    S, E = len(seeds), len(env_seeds)
    if env.n_copies != S * E:
        raise ValueError(f"evaluation: {env.n_copies} copies for {S} seeds x {E} episodes")
    view = _View(S)
    noise = SeedStreams(seeds, "execution")
    obs, state, avail = env.reset([int(s) for _ in range(S) for s in env_seeds])
    obs, state, avail = view(obs), view(state), view(avail)
    started = torch.ones(S, E, dtype=torch.bool)
    memory = algo.begin_episodes(None, started, obs, state, mode, noise)
    returns, won = np.full(S * E, np.nan), np.zeros(S * E, bool)
    for _ in range(env.spec.episode_limit):
        action, memory = algo.act(obs, state, avail, memory, mode, noise)
        step = env.step(action.flatten(0, 1).cpu().numpy())
        ended = np.isnan(returns) & ~np.isnan(step.episode_return)
        returns[ended], won[ended] = step.episode_return[ended], step.won[ended]
        if not np.isnan(returns).any():
            return Episodes(returns.reshape(S, E), won.reshape(S, E))
        obs, state, avail = view(step.obs), view(step.state), view(step.avail)
    raise RuntimeError(f"evaluation: an episode outlasted the episode limit {env.spec.episode_limit}")


def _keep(acting: torch.Tensor, new, old):
    """The learner's memory (any tree of ``[S, E, ...]`` tensors) with waiting copies' entries
    left as they were."""
    if old is None or bool(acting.all()):  # nobody waits: the common case, no copy to make
        return new

    def keep(n, o):  # leaves that are not tensors (an absent latent) pass through
        if not torch.is_tensor(n):
            return n
        return torch.where(acting.view(*acting.shape, *[1] * (n.dim() - 2)), n, o)

    return tree_map(keep, new, old)


class _Schedule:
    """When each seed updates (``Schedule`` in algorithms/components/settings.py), counted per seed.

    ``update_unit: step``: every seed updates every ``update_every`` of its env steps, all in
    lockstep. ``update_unit: episode`` (VM3-AC's Algorithm 1, PyMARL): an env copy that has
    finished ``update_every`` episodes since its seed's last update waits (takes no step)
    until every copy of every seed waits or has spent its budget; then all of them update in
    one batched call. Waiting changes nothing for a seed (no step, no draw), so each seed's
    run is exactly what it would be alone, while the updates stay batched over seeds.
    """

    def __init__(self, schedule, S: int, E: int):
        self.sched = schedule
        self.steps = torch.zeros(S, dtype=torch.long)  # env steps since the seed's last phase
        self.episodes = torch.zeros(S, E, dtype=torch.long)  # episodes ended since then
        self.waiting = torch.zeros(S, E, dtype=torch.bool)

    def record(self, t: torch.Tensor, stepped: torch.Tensor, ended: torch.Tensor, ready) -> None:
        """After a step: ``t`` the seeds' env steps so far, ``stepped`` [S, E] the copies that
        stepped, ``ended`` [S, E] those whose episode ended, ``ready`` [S] seeds whose storage
        holds a batch. Only experience gathered after learning starts counts."""
        warm = t > self.sched.learning_starts
        self.steps += stepped.sum(1) * warm
        self.episodes += ended & warm[:, None]
        if self.sched.update_unit == "episode":
            due = (self.episodes >= self.sched.update_every) & (warm & ready)[:, None]
            self.waiting |= due

    def gradient_steps(self, t_before, t, done, ready) -> torch.Tensor | None:
        """Gradient steps per seed ``[S]`` if a phase is due now, else None."""
        sched = self.sched
        if sched.update_unit == "step":
            every = sched.update_every
            due = (t // every > t_before // every) & (t > sched.learning_starts) & ready
        else:
            if bool((~self.waiting & ~done[:, None]).any()):
                return None  # some copy still plays its episode
            due = self.waiting.any(1) & ~done
        if not due.any():
            return None
        per = self.steps if sched.gradient_steps_per == "env_step" else torch.ones_like(self.steps)
        n = sched.gradient_steps * per * due
        self.steps[due], self.episodes[due], self.waiting[due] = 0, 0, False
        return n


class _Losses:
    """Each seed's mean losses since its last learning-curve point."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, losses: dict[str, torch.Tensor], active: torch.Tensor) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0) + torch.where(active, value, 0.0)
            self.counts[name] = self.counts.get(name, 0) + active.long()

    def take(self, k: int) -> dict[str, float]:
        """Seed k's means (NaN before its first update), then start its next window."""
        out = {}
        for name in self.sums:
            count = int(self.counts[name][k])
            out[name] = float(self.sums[name][k]) / count if count else float("nan")
            self.sums[name][k], self.counts[name][k] = 0.0, 0
        return out


class _ActionLog:
    """Every (actions, acting) pair the environment was given, in order, kept in chunks of
    preallocated arrays: a million small arrays would cost more as Python objects than as
    numbers, and would pickle slowly."""

    CHUNK = 4096

    def __init__(self):
        self.chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self.n = 0

    def append(self, actions: np.ndarray, active: np.ndarray) -> None:
        row = self.n % self.CHUNK
        if row == 0:
            self.chunks.append(
                (np.empty((self.CHUNK, *actions.shape), actions.dtype), np.empty((self.CHUNK, *active.shape), bool))
            )
        chunk_actions, chunk_active = self.chunks[-1]
        chunk_actions[row], chunk_active[row] = actions, active
        self.n += 1

    def __iter__(self):
        for c, (actions, active) in enumerate(self.chunks):
            for row in range(min(self.CHUNK, self.n - c * self.CHUNK)):
                yield actions[row], active[row]


class Training:
    """Every seed of a run training in lockstep: the whole loop's state in one object.

    ``advance`` runs one pass of the loop (the acting copies take a step, then an update phase
    if one is due). A resume point (pipeline/runtime/resume.py) is this object pickled whole: learner
    with optimisers and generators, storage, schedule, loss sums, pending curve points and the
    learner's memory. The environment is the one part not pickled (Box2D's multiwalker and the
    jitted SMAX batch cannot be): the object keeps every action it gave the environment, and
    ``attach`` replays them on a fresh copy of the task, which ends in the same state because
    the tasks are deterministic given their seeds and actions.

    Learning-curve points: ``on_curve(points, losses)`` with ``points[k]`` the curve steps
    (multiples of ``budget.curve_interval``, 0 included) that seed k reached, and ``losses[k]``
    its mean losses since its previous point. A point is reported before the policy next
    changes (before an update phase, or at the end), so the policy the caller evaluates is the
    one that acted at that step.
    """

    def __init__(self, algo: Learner, env, seeds: Sequence[int], budget: Budget):
        sched, spec, S, E = algo.settings, env.spec, len(seeds), algo.settings.env_copies
        kind, fields = STORAGES[algo.loop], algo.fields(spec)
        self.algo, self.env, self.budget = algo, env, budget
        self.storage = kind(seeds, capacity(sched, budget.env_steps), fields, E, spec.episode_limit)
        self.view, self.schedule, self.losses = _View(S), _Schedule(sched, S, E), _Losses()
        self.pending: dict[int, list[int]] = {k: [0] for k in range(S)}
        self.reset_seeds = training_env_seeds(seeds, E)
        self.played = _ActionLog()
        view = self.view
        obs, state, avail = env.reset(self.reset_seeds)
        self.obs, self.state, self.avail = view(obs), view(state), view(avail)
        self.memory = algo.begin_episodes(None, torch.ones(S, E, dtype=torch.bool), self.obs, self.state)
        self.storage.open(obs=self.obs, state=self.state, avail=self.avail, **algo.record(self.memory))
        self.t = torch.zeros(S, dtype=torch.long)  # each seed's env steps
        self.done = torch.zeros(S, dtype=torch.bool)
        self.ready = algo.ready(self.storage)

    @property
    def finished(self) -> bool:
        return bool(self.done.all())

    def _report(self, on_curve) -> None:
        if self.pending:
            on_curve(dict(self.pending), {k: self.losses.take(k) for k in self.pending})
            self.pending.clear()

    def advance(self, on_curve) -> None:
        """One pass of the loop; after the last (``finished``), the final curve points."""
        algo, env, storage, view, schedule = self.algo, self.env, self.storage, self.view, self.schedule
        interval = self.budget.curve_interval
        acting = ~schedule.waiting & ~self.done[:, None]
        t, t_before = self.t, self.t.clone()
        if acting.any():
            action, new_memory = algo.act(self.obs, self.state, self.avail, self.memory, EXPLORE, acting=acting)
            memory = _keep(acting, new_memory, self.memory)
            actions, active = action.flatten(0, 1).cpu().numpy(), acting.flatten().cpu().numpy()
            self.played.append(actions, active)
            out = env.step(actions, active)
            terminated, truncated = view(out.terminated), view(out.truncated)
            final = {"obs": view(out.next_obs), "state": view(out.next_state)}
            final["avail"] = view(out.next_avail)
            storage.close(
                truncated,
                final,
                acting,
                action=action,
                reward=view(out.reward),
                rewards=view(out.rewards),
                terminated=terminated,
            )
            fresh = {"obs": view(out.obs), "state": view(out.state), "avail": view(out.avail)}
            keep = {"obs": self.obs, "state": self.state, "avail": self.avail}
            self.obs, self.state, self.avail = (_keep(acting, fresh[k], keep[k]) for k in ("obs", "state", "avail"))
            ended = (terminated | truncated) & acting
            if ended.any():
                memory = algo.begin_episodes(memory, ended, self.obs, self.state)
            self.memory = memory
            storage.open(acting, **fresh, **algo.record(memory))
            t += acting.sum(1)
            for k in (t // interval > t_before // interval).nonzero().flatten().tolist():
                self.pending.setdefault(k, []).extend(
                    range((int(t_before[k]) // interval + 1) * interval, int(t[k]) + 1, interval)
                )
            self.done = t >= self.budget.env_steps
            self.ready = algo.ready(storage)  # unchanged while every copy waits
            schedule.record(t, acting, ended, self.ready)
        n = schedule.gradient_steps(t_before, t, self.done, self.ready)
        if n is not None:
            self._report(on_curve)
            for g in range(int(n.max())):
                active = n > g
                mask = None if bool(active.all()) else active
                step_losses = algo.update(algo.sample(storage, mask), mask)
                self.losses.add(step_losses, active)
            algo.end_phase(None if bool((n > 0).all()) else n > 0)
        if self.finished:
            self._report(on_curve)

    def record(self) -> dict:
        """What the storage kept (for the record)."""
        return {"storage": type(self.storage).__name__, "bytes_per_seed": self.storage.bytes_per_seed}

    def __getstate__(self) -> dict:
        return dict(self.__dict__, env=None)  # attach() gives it back

    def attach(self, env) -> None:
        """Give an unpickled Training a fresh copy of its task, brought to the state the
        original was in by replaying every step it took."""
        env.reset(self.reset_seeds)
        for actions, active in self.played:
            env.step(actions, active)
        self.env = env


def train(
    algo: Learner,
    env,
    seeds: Sequence[int],
    budget: Budget,
    on_curve: Callable[[dict[int, list[int]], dict[int, dict[str, float]]], None],
) -> dict:
    """Train every seed for ``budget.env_steps`` of its own env steps (``Training``, without
    resume points); returns what the storage kept (for the record)."""
    training = Training(algo, env, seeds, budget)
    while not training.finished:
        training.advance(on_curve)
    return training.record()
