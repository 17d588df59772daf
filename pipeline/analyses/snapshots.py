"""Policies the train stage kept at given training steps (``snapshots`` in params.yaml), loaded
back for the stages that draw them (pipeline/analyses/vm3ac/positions.py, covariance.py, landscape.py)."""

from __future__ import annotations

import torch

from pipeline.outputs import layout
from pipeline.outputs.checkpoint_file import read_policy
from pipeline.outputs.staging import publish
from pipeline.runtime.build import build


def load_snapshots(run, step: int) -> list[dict]:
    """Every seed's policy at ``step``, or SystemExit naming the missing file."""
    found = []
    for seed in run.seeds:
        path = layout.snapshot(run.name, step, seed)
        if not path.exists():
            raise SystemExit(f"snapshot: {path} is missing: retrain the run (dvc repro train-{run.name})")
        found.append(read_policy(path, run.name))
    return found


def policy_at(run, step: int):
    """The run's learner holding every seed's policy of ``step``, and a batch of one task copy
    per seed."""
    algo, env = build(run, len(run.seeds))
    algo.load_seed_states([c["tensors"] for c in load_snapshots(run, step)])
    return algo, env


def first_evaluation_start(run, env):
    """obs ``[S, 1, N, obs]``, state ``[S, 1, state]``, avail: every seed's copy reset on the
    first evaluation env seed (what every snapshot figure looks at)."""
    start = run.evaluation.env_seeds(1)[0]
    reset = env.reset([start] * len(run.seeds))
    return tuple(None if a is None else torch.from_numpy(a).unsqueeze(1) for a in reset)


def publish_drawn(folder, name: str, paper: str) -> None:
    """Move a snapshot stage's staged data (``<name>.csv``) and figure into place."""
    publish(folder / f"{name}.csv", layout.SNAPSHOT_DATA / f"{name}.csv")
    for ext in ("png", "pdf"):
        publish(folder / paper / f"{name}.{ext}", layout.FIGURES / paper / f"{name}.{ext}")
