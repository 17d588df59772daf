"""How far a training run is, for a person and for the record: a tqdm bar on stderr (quiet
when stderr is not a terminal, as in CI logs), the same numbers as Sacred metrics, and, when
``HARNESS_PROGRESS_FILE`` names a file (the Dask build sets it: pipeline/runtime/parallel_repro.py),
the same numbers as one JSON object there, rewritten about once a second."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from pipeline.outputs.staging import write_json

PROGRESS_FILE_ENV = "HARNESS_PROGRESS_FILE"


class Meter:
    """Env steps (of the slowest seed), steps per second, the latest evaluation return and the
    time left, from ``start`` (the env step a resumed run goes on from) to ``total``."""

    def __init__(self, name: str, total: int, start: int, log_scalar=None):
        self.bar = tqdm(
            total=total, initial=start, desc=name, unit="step", disable=None, file=sys.__stderr__,
            dynamic_ncols=True, smoothing=0.1,
        )  # fmt: skip  (the process's own stderr: Sacred's capture would make it look like no terminal)
        self.total, self.start, self.steps = total, start, start
        self.log_scalar, self.eval_return = log_scalar, None
        self.began = self.written = time.monotonic()
        self.file = Path(os.environ[PROGRESS_FILE_ENV]) if os.environ.get(PROGRESS_FILE_ENV) else None

    def rate(self) -> float | None:
        """Env steps per second since this process started (None before the first)."""
        elapsed, done = time.monotonic() - self.began, self.steps - self.start
        return done / elapsed if done > 0 and elapsed > 0 else None

    def advance(self, steps: int) -> None:
        if steps > self.steps:
            self.bar.update(steps - self.steps)
            self.steps = steps
            if self.file and time.monotonic() - self.written >= 1.0:
                self.write()

    def curve_point(self, step: int, mean_return: float) -> None:
        """At a learning-curve point: show its return; record speed and time left (this
        process's own, so they are not part of what a resume point replays)."""
        self.eval_return = mean_return
        self.bar.set_postfix(eval_return=f"{mean_return:.3g}", refresh=False)
        rate = self.rate()
        if self.log_scalar and rate:
            self.log_scalar("progress.env_steps", self.steps, step)
            self.log_scalar("progress.env_steps_per_second", rate, step)
            self.log_scalar("progress.seconds_left", (self.total - self.steps) / rate, step)
            self.log_scalar("progress.eval_return", mean_return, step)

    def write(self) -> None:
        rate = self.rate()
        status = {"steps": self.steps, "total": self.total, "steps_per_second": rate, "eval_return": self.eval_return}
        write_json(self.file, status)  # through a temporary file: a reader never sees half of it
        self.written = time.monotonic()

    def close(self) -> None:
        self.bar.close()
        if self.file:
            self.write()
