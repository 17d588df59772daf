"""Reading a policy file (a final checkpoint or a kept snapshot): tensors only, and one line
naming the file when it is corrupt or truncated."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch


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
