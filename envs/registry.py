"""One registry of every task: ``TASKS`` lists the ids, ``make`` builds a ParallelEnv."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pettingzoo import ParallelEnv

from envs import (
    cooperative_navigation,
    iac_predator_prey,
    matrix_game,
    multi_pendulum,
    multiwalker,
    simple_world,
    smax_parallel,
    smax_vectorised,
    treasure_collection,
    vm3ac_predator_prey,
)
from envs.batched import BatchedEnv


@dataclass(frozen=True)
class Task:
    """A task module's constructor and its episode limit, both taking the same kwargs.

    ``batched(n_copies, **kwargs)``, where a task has one, builds a natively vectorised batch
    with BatchedEnv's interface and numbers; without it, B copies of ``make`` are wrapped.
    ``light_check(**kwargs)``, where a task has one, checks the settings without building the
    task (SMAX: building imports JAX, which only the stages that run SMAC should pay for).
    """

    make: Callable[..., ParallelEnv]
    episode_limit: Callable[..., int]
    batched: Callable[..., Any] | None = None
    light_check: Callable[..., None] | None = None
    discrete: bool = False  # Discrete action spaces (else Box): which learners can run it


def is_discrete(task_id: str) -> bool:
    """Whether task ``task_id`` has discrete actions, known without building it."""
    check(task_id, {})
    return TASKS[task_id].discrete


def _task(module: ModuleType) -> Task:
    return Task(module.make, module.episode_limit)


TASKS: dict[str, Task] = {
    # VM3-AC (AAMAS 2023) §6
    "multiwalker": _task(multiwalker),
    "vm3ac_predator_prey": _task(vm3ac_predator_prey),
    "treasure_collection": _task(treasure_collection),
    "cooperative_navigation": _task(cooperative_navigation),
    # IAC (AAMAS 2021) §3 and §5.1
    "matrix_game": Task(matrix_game.make, matrix_game.episode_limit, discrete=True),
    "simple_world": _task(simple_world),
    "multi_pendulum": _task(multi_pendulum),
    "iac_predator_prey": _task(iac_predator_prey),
    "iac_po_predator_prey": Task(iac_predator_prey.make_po, iac_predator_prey.episode_limit),
    # VM3-AC (AAMAS 2023) §6: sparse SMAC on SMAX, maps 3m, 2s3z, 3s_vs_3z
    "sparse_smac": Task(
        smax_parallel.make,
        smax_parallel.episode_limit,
        smax_vectorised.make_batched,
        smax_parallel.check,
        discrete=True,
    ),
}


def check(task_id: str, kwargs: dict) -> None:
    """Raise ValueError naming the problem if task_id or one of kwargs is not known."""
    if task_id not in TASKS:
        raise ValueError(f"unknown task '{task_id}' (known: {', '.join(sorted(TASKS))})")
    accepted = inspect.signature(TASKS[task_id].make).parameters
    for key in kwargs:
        if key not in accepted:
            raise ValueError(
                f"task '{task_id}' has no setting '{key}' (has: {', '.join(accepted)})"
            )


def validate(task_id: str, kwargs: dict) -> None:
    """Raise ValueError or TypeError naming the problem if the task cannot be built."""
    check(task_id, kwargs)
    task = TASKS[task_id]
    if task.light_check is not None:
        task.light_check(**kwargs)
    else:
        task.make(**kwargs).close()


def make(task_id: str, **kwargs) -> ParallelEnv:
    """Build task ``task_id`` as a PettingZoo ParallelEnv."""
    check(task_id, kwargs)
    return TASKS[task_id].make(**kwargs)


def make_batched(
    task_id: str, n_copies: int, **kwargs
) -> BatchedEnv | smax_vectorised.SparseSMACBatch:
    """``n_copies`` copies of a task behind the batched array interface (natively vectorised
    where the task has its own batch, e.g. SMAX)."""
    check(task_id, kwargs)
    task = TASKS[task_id]
    if task.batched is not None:
        return task.batched(n_copies, **kwargs)
    return BatchedEnv(lambda: task.make(**kwargs), n_copies, task.episode_limit(**kwargs))
