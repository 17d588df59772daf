"""A run's training time from its row of the measured table (benchmarks/measured/paper_cost.json,
written by ``python -m benchmarks.paper_cost --save``), for the cost gate and the report."""

from __future__ import annotations

# a row's numbers per step: its mean (updates included) and, since 2026-12-06, its two parts
PRICED = ("seconds_per_env_step", "acting_seconds_per_env_step", "seconds_per_gradient_step",
          "gradient_steps_per_env_step")


def training_seconds(row: dict, env_steps: int, learning_starts: int, seeds: int) -> float:
    """Seconds on one core to train ``seeds`` seeds for ``env_steps`` env steps each: acting on
    every step, and the schedule's gradient steps from ``learning_starts`` on (rows measured since
    2026-12-06 give the two parts). Older rows give only their mean over the paper run, updates
    included, which prices a short run's steps before learning starts as if they updated.
    Scaled by the seeds against those measured: an upper bound, since batched seeds cost less."""
    scale = seeds / row["seeds"] * row["threads"]
    if "seconds_per_gradient_step" not in row:
        return row["seconds_per_env_step"] * env_steps * scale
    updates = row["gradient_steps_per_env_step"] * max(0, env_steps - learning_starts)
    return (row["acting_seconds_per_env_step"] * env_steps + row["seconds_per_gradient_step"] * updates) * scale
