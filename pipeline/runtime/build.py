"""Build a run's learner and its task batch, shared by the train and evaluate stages."""

from __future__ import annotations

import envs
from algorithms import learner
from pipeline.design.params import Run
from pipeline.runtime import memory


def build(run: Run, n_copies: int, train_steps: int | None = None):
    """The run's learner (all seeds) and a batch of ``n_copies`` copies of its task; a learner
    that cannot play the task (continuous against discrete) stops with one line. With
    ``train_steps``, a run whose networks and replay storage would not fit in the memory
    available now raises ``memory.TooLarge`` before the learner is allocated."""
    env = envs.make_batched(run.task_id, n_copies, **run.task_kwargs)
    cls = learner(run.family)
    try:
        if train_steps is not None:
            memory.check_fits(cls, env.spec, run.seeds, run.settings, train_steps)
        return cls(env.spec, run.seeds, run.settings), env
    except ValueError as err:
        raise SystemExit(f"params.yaml: run {run.name} ({run.algorithm} on {run.task}): {err}") from None
