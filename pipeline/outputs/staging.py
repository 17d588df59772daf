"""Outputs appear whole or not at all: a stage writes into a staging folder and moves each
finished output into place only after everything succeeded."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from pipeline.outputs import layout


@contextlib.contextmanager
def staging(name: str) -> Iterator[Path]:
    """An empty folder for one stage's outputs, removed afterwards whatever happens."""
    folder = layout.STAGING / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            layout.STAGING.rmdir()  # only if no other stage is staging
            layout.RESULTS.rmdir()  # only if the stage failed before anything was published


def publish(staged: Path, destination: Path) -> None:
    """Move a finished file or folder to its final place, replacing what was there."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.is_dir():
        shutil.rmtree(destination)
    os.replace(staged, destination)


def _no_nan(value):
    """NaN is not JSON: an undefined number (a CI over one seed) is written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def write_json(path: Path, data) -> None:
    """Write JSON through a temporary file in the same folder, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_no_nan(data), indent=2, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)
