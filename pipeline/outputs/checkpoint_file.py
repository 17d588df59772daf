"""Reading policy files (a run's final checkpoints or a kept snapshot): tensors only, and one
line naming the file when it is missing, stale, corrupt or truncated."""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import asdict
from pathlib import Path

import torch

from pipeline.outputs import layout


def read_policy(path: Path, run: str) -> dict:
    """``torch.load(..., weights_only=True)``: a checkpoint is never a way to run pickled code.
    A file that cannot be read so stops the stage in one line naming it."""
    try:
        return torch.load(path, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        problem = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SystemExit(
            f"{path}: not a readable checkpoint ({problem}); retrain the run (dvc repro train-{run})"
        ) from None


def load_checkpoints(run) -> list[dict]:
    """Every seed's checkpoint of ``run`` (pipeline.design.params.Run), or SystemExit naming the one that is missing or stale."""
    checkpoints = []
    for seed in run.seeds:
        path = layout.checkpoint(run.name, seed)
        if not path.exists():
            raise SystemExit(
                f"evaluate: {path} is missing: train the run first (dvc repro train-{run.name})"
            )
        ckpt = read_policy(path, run.name)
        if ckpt["family"] != run.family or ckpt["settings"] != asdict(run.settings):
            raise SystemExit(
                f"evaluate: {path} was trained with other settings than params.yaml "
                f"says: retrain it (dvc repro train-{run.name})"
            )
        checkpoints.append(ckpt)
    return checkpoints
