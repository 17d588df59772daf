"""Resume points: a training run saved whole every few environment steps, so that after a
crash or ``kill -9`` the next ``dvc repro`` goes on from the last one and writes exactly the
bytes an uninterrupted run writes (``tests/test_resume.py``).

A point is ``.resume/<run>/<key>.pkl``: outside DVC's outputs, and keyed by everything that
defines the run (its resolved settings, task, seeds, budget and snapshot steps, the source of
every module its train stage imports, and the torch, NumPy and Python versions), so a changed
param or changed code never resumes from a stale point. It holds ``loops.Training`` pickled
whole plus the caller's progress (curve rows, snapshot policies, Sacred metrics so far).

It is written atomically (a temporary file, fsync, rename) behind a header with the sha256 of
its payload. A point is unpickled only when its digest matches, so a torn or damaged file is
reported in one line and ignored, never trusted. Points are this machine's own scratch files
and never leave it: published checkpoints stay ``weights_only`` tensors (pipeline/stages/train.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import time

import numpy as np
import torch

from pipeline.design.code_files import ROOT
from pipeline.outputs import layout

MAGIC = b"marl-repro resume point 1 sha256="


def run_key(config: dict, code: list[str]) -> str:
    """A digest of what defines a run: its Sacred config, its code files and the versions that
    compute with them."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in sorted(code):
        digest.update(path.encode() + b"\0" + (ROOT / path).read_bytes())
    digest.update(f"torch {torch.__version__} numpy {np.__version__} python {sys.version}".encode())
    return digest.hexdigest()[:20]


def warn(message: str) -> None:
    print(f"resume: {message}", file=sys.stderr, flush=True)


class ResumePoints:
    """The resume point of one run, saved every ``every`` env steps (of its furthest seed)."""

    def __init__(self, run_name: str, key: str, every: int):
        self.folder = layout.RESUME / run_name
        self.path = self.folder / f"{key}.pkl"
        self.every = every
        self.saved_at = 0  # env steps at the last point written or loaded
        self.written = {"points": 0, "seconds": 0.0, "last_bytes": 0}  # what saving cost (Sacred info)

    def due(self, t: torch.Tensor) -> bool:
        return int(t.max()) // self.every > self.saved_at // self.every

    def save(self, payload, at: int) -> None:
        """Write ``payload`` as the run's point (replacing the previous one whole) and count
        what it cost in ``written``."""
        began = time.monotonic()
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{self.path.name}.tmp"
        with open(tmp, "wb") as f:
            f.write(MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n")
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)  # a kill before this line leaves the previous point whole
        for other in self.folder.glob("*.pkl"):
            if other != self.path:  # saved under other params or code: never to be used
                other.unlink()
        self.saved_at = at
        self.written["points"] += 1
        self.written["seconds"] += time.monotonic() - began
        self.written["last_bytes"] = self.path.stat().st_size

    def load(self):
        """The run's last point, or None if there is none or it cannot be trusted (warned)."""
        for other in sorted(self.folder.glob("*.pkl")):
            if other != self.path:
                warn(f"{other} was saved with other params or code; not used")
        if not self.path.is_file():
            return None
        raw = self.path.read_bytes()
        header, _, data = raw.partition(b"\n")
        if not header.startswith(MAGIC) or header[len(MAGIC) :].decode(errors="replace") != hashlib.sha256(data).hexdigest():
            warn(f"{self.path} is damaged or incomplete (its digest does not match); training from step 0")
            return None
        try:
            payload = pickle.loads(data)
        except Exception as err:  # a whole file this code cannot read back: never trusted
            warn(f"{self.path} cannot be read ({type(err).__name__}: {err}); training from step 0")
            return None
        return payload

    def discard(self) -> None:
        """Once the run's outputs are published, its point is no longer needed."""
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            layout.RESUME.rmdir()  # only if no other run keeps a point
        except OSError:
            pass
