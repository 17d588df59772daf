"""Where the pipeline's files live, in one place (ARCHITECTURE.md, "Data flow")."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path("results")
RUNS = RESULTS / "runs"
CURVE_PLOTS = RESULTS / "plots" / "curves"
STAGING = RESULTS / ".staging"  # stages build outputs here, then move them into place
FIGURES = Path("figures")


def run_dir(run: str) -> Path:
    return RUNS / run


def checkpoint_name(seed: int) -> str:
    return f"seed{seed}.pt"


def checkpoint(run: str, seed: int) -> Path:
    return RUNS / run / "checkpoints" / checkpoint_name(seed)
