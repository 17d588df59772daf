"""Build a run's learner and its task batch, shared by the train and evaluate stages."""

from __future__ import annotations

import envs
from algorithms import learner
from pipeline.params import Run


def build(run: Run, n_copies: int):
    """The run's learner (all seeds) and a batch of ``n_copies`` copies of its task; a learner
    that cannot play the task (continuous against discrete) stops with one line."""
    env = envs.make_batched(run.task_id, n_copies, **run.task_kwargs)
    try:
        return learner(run.family)(env.spec, run.seeds, run.settings), env
    except ValueError as err:
        raise SystemExit(f"params.yaml: run {run.name} ({run.algorithm} on {run.task}): {err}") from None
