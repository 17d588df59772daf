"""A run's budget: how long it trains and how often its curve is drawn (a profile of
params.yaml, per task where the profile says so), which environment seeds its copies play, and
what a figure made below the papers' budget says on its face."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

PAPER_PROFILE = "paper"  # the profile at the papers' scale



def budget_note(params: dict) -> str | None:
    """What a reduced-budget figure says on its face (None at the papers' scale)."""
    name = params["profile"]
    if name == PAPER_PROFILE:
        return None
    used, paper = params["profiles"][name], params["profiles"][PAPER_PROFILE]
    return (
        f"Reduced budget (profile '{name}'): {used['seeds']} seeds, {used['env_steps']:,} env steps "
        f"per seed, {used['eval_episodes']} evaluation episodes; the papers' scale is "
        f"'{PAPER_PROFILE}' ({paper['seeds']} seeds, {paper['env_steps']:,} steps"
        f"{', more for the tasks it lists' if paper.get('tasks') else ''})"
    )


@dataclass(frozen=True)
class Budget:
    """A profile of params.yaml: how long to train and how often to draw the learning curve."""

    env_steps: int  # environment steps per seed
    curve_interval: int  # env steps between learning-curve points
    curve_episodes: int  # deterministic episodes per learning-curve point


def budget_of(profile: dict, task: str | None = None) -> Budget:
    """A profile's budget for runs on ``task``: the profile's own, with what its ``tasks``
    section sets for that task (a paper's own budget and curve interval for its tasks)."""
    own = (profile.get("tasks") or {}).get(task, {}) if task is not None else {}
    return Budget(**{f.name: own.get(f.name, profile[f.name]) for f in fields(Budget)})


def training_env_seeds(seeds: Sequence[int], copies: int) -> list[int]:
    """Copy e of seed k plays env seed ``k * copies + e`` (seed k itself with one copy)."""
    return [s * copies + e for s in seeds for e in range(copies)]
