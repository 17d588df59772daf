"""Where the pipeline's files live, in one place (ARCHITECTURE.md, "Data flow")."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path("results")
RUNS = RESULTS / "runs"
CURVE_PLOTS = RESULTS / "plots" / "curves"
FIGURES = Path("figures")


def run_dir(run: str) -> Path:
    return RUNS / run


def checkpoint(run: str, seed: int) -> Path:
    return RUNS / run / "checkpoints" / f"seed{seed}.pt"
