"""The loops that join a learner to a batched environment: training all seeds in lockstep and
deterministic evaluation episodes. They speak only the learner protocol
(``algorithms/learner.py``) and never ask which algorithm they hold.

Shapes: the environment holds ``S * E`` copies, seed-major (copy ``k * E + e`` is seed k's
e-th); learners see ``[S, E, ...]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from algorithms.learner import EXPLORE, Learner
from algorithms.seeding import SeedStreams
from algorithms.storage import STORAGES


@dataclass(frozen=True)
class Budget:
    """A profile of params.yaml: how long to train and how often to draw the learning curve."""

    env_steps: int  # environment steps per seed
    curve_interval: int  # env steps between learning-curve points
    curve_episodes: int  # deterministic episodes per learning-curve point


@dataclass(frozen=True)
class Episodes:
    """One finished episode per (seed, evaluation env seed)."""

    returns: np.ndarray  # [S, E]
    won: np.ndarray  # [S, E] bool (all False on tasks without wins)


def training_env_seeds(seeds: Sequence[int], copies: int) -> list[int]:
    """Copy e of seed k plays env seed ``k * copies + e`` (seed k itself with one copy)."""
    return [s * copies + e for s in seeds for e in range(copies)]


class _View:
    """The environment's arrays as ``[S, E, ...]`` tensors."""

    def __init__(self, S: int):
        self.S = S

    def __call__(self, array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(array).unflatten(0, (self.S, -1))


def evaluate(algo: Learner, env, seeds: Sequence[int], env_seeds: Sequence[int], mode: str):
    """Seed k's policy plays one episode on each of ``env_seeds`` in execution ``mode``.

    ``env`` holds ``S * E`` copies; copy ``k * E + e`` plays ``env_seeds[e]``, so every seed
    meets the same episodes. A mode that draws (VM3-AC's sampled z) draws from a per-seed
    stream that starts afresh for every evaluation.
    """
    S, E = len(seeds), len(env_seeds)
    if env.n_copies != S * E:
        raise ValueError(f"evaluation: {env.n_copies} copies for {S} seeds x {E} episodes")
    view = _View(S)
    noise = SeedStreams(seeds, f"execution-{mode}")
    obs, state, avail = env.reset([int(s) for _ in range(S) for s in env_seeds])
    obs, state, avail = view(obs), view(state), view(avail)
    memory = algo.begin_episodes(None, torch.ones(S, E, dtype=torch.bool), obs, state)
    returns, won = np.full(S * E, np.nan), np.zeros(S * E, bool)
    for _ in range(env.spec.episode_limit):
        action, memory = algo.act(obs, state, avail, memory, mode, noise)
        step = env.step(action.flatten(0, 1).numpy())
        ended = np.isnan(returns) & ~np.isnan(step.episode_return)
        returns[ended], won[ended] = step.episode_return[ended], step.won[ended]
        if not np.isnan(returns).any():
            return Episodes(returns.reshape(S, E), won.reshape(S, E))
        obs, state, avail = view(step.obs), view(step.state), view(step.avail)
    raise RuntimeError(f"evaluation: an episode outlasted the episode limit {env.spec.episode_limit}")


class _Phases:
    """When each seed's update phase is due (``Schedule``), counted per seed so a seed's
    schedule never depends on the other seeds' episodes."""

    def __init__(self, schedule, S: int):
        self.sched = schedule
        self.steps = torch.zeros(S, dtype=torch.long)  # env steps since the seed's last phase
        self.episodes = torch.zeros(S, dtype=torch.long)  # episodes ended since then

    def gradient_steps(
        self, t_env: int, E: int, ended: torch.Tensor, ready: torch.Tensor
    ) -> torch.Tensor | None:
        """Gradient steps per seed ``[S]`` if a phase is due now, else None; a seed whose
        storage does not hold a batch yet (``ready``) keeps counting instead."""
        sched = self.sched
        if t_env <= sched.learning_starts:
            return None  # only experience gathered after learning starts counts
        self.steps += E
        self.episodes += ended.sum(1)
        if sched.update_unit == "step":
            crossed = t_env // sched.update_every > (t_env - E) // sched.update_every
            due = torch.full_like(self.episodes, crossed, dtype=torch.bool)
        else:
            due = self.episodes >= sched.update_every
        due &= ready
        if not due.any():
            return None
        per = self.steps if sched.gradient_steps_per == "env_step" else torch.ones_like(self.steps)
        n = sched.gradient_steps * per * due
        self.steps[due], self.episodes[due] = 0, 0
        return n


def train(
    algo: Learner,
    env,
    seeds: Sequence[int],
    budget: Budget,
    on_curve: Callable[[int, dict[str, np.ndarray]], None],
) -> dict:
    """Train all seeds at once; returns what the storage kept (for the record).

    ``on_curve(step, mean losses per seed since the last point)`` is called at step 0 and every
    ``budget.curve_interval`` env steps per seed; the caller evaluates the policy there.
    """
    sched, spec, S, E = algo.settings, env.spec, len(seeds), algo.settings.env_copies
    capacity = min(sched.replay_size, budget.env_steps)
    storage = STORAGES[algo.loop](seeds, capacity, algo.fields(spec), E, spec.episode_limit)
    view, phases = _View(S), _Phases(sched, S)
    losses: dict[str, list[torch.Tensor]] = {}

    def curve_point(step: int) -> None:
        means = {k: torch.stack(v).nanmean(0).numpy() for k, v in losses.items()}
        losses.clear()
        on_curve(step, means)

    obs, state, avail = env.reset(training_env_seeds(seeds, E))
    obs, state, avail = view(obs), view(state), view(avail)
    memory = algo.begin_episodes(None, torch.ones(S, E, dtype=torch.bool), obs, state)
    storage.open(obs=obs, state=state, avail=avail)
    curve_point(0)
    for t_env in range(E, E * math.ceil(budget.env_steps / E) + 1, E):
        action, memory = algo.act(obs, state, avail, memory, EXPLORE)
        out = env.step(action.flatten(0, 1).numpy())
        terminated, truncated = view(out.terminated), view(out.truncated)
        final = {"obs": view(out.next_obs), "state": view(out.next_state)}
        final["avail"] = view(out.next_avail)
        storage.close(
            truncated,
            final,
            action=action,
            reward=view(out.reward),
            rewards=view(out.rewards),
            terminated=terminated,
        )
        obs, state, avail = view(out.obs), view(out.state), view(out.avail)
        storage.open(obs=obs, state=state, avail=avail)
        ended = terminated | truncated
        if ended.any():
            memory = algo.begin_episodes(memory, ended, obs, state)
        n = phases.gradient_steps(t_env, E, ended, storage.ready(sched.batch_size))
        if n is not None:
            for g in range(int(n.max())):
                active = n > g
                mask = None if bool(active.all()) else active
                for name, value in algo.update(storage.sample(sched.batch_size, mask), mask).items():
                    losses.setdefault(name, []).append(torch.where(active, value, torch.nan))
            algo.end_phase(None if bool((n > 0).all()) else n > 0)
        crossed = t_env // budget.curve_interval > (t_env - E) // budget.curve_interval
        if crossed:
            curve_point(t_env // budget.curve_interval * budget.curve_interval)
    return {"storage": type(storage).__name__, "bytes_per_seed": storage.bytes_per_seed}
