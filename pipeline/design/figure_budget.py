"""What a figure below the papers' budget says on its face (pipeline/outputs/figure_files.py
draws it legibly along the bottom)."""

from __future__ import annotations

from pipeline.design.budget import PAPER_PROFILE, budget_of


def budget_line(params: dict, tasks) -> str | None:
    """What a figure below the papers' budget says on its face: the seeds and env steps its
    runs trained for on ``tasks`` (per task where the profile sets them), beside the papers'."""
    name = params["profile"]
    if name == PAPER_PROFILE:
        return None
    used, paper = params["profiles"][name], params["profiles"][PAPER_PROFILE]

    def steps(profile: dict) -> str:
        return " / ".join(f"{s:,}" for s in sorted({budget_of(profile, t).env_steps for t in tasks}))

    return f"Budget: {used['seeds']} seeds x {steps(used)} env steps per seed (profile '{name}'); the papers': {paper['seeds']} x {steps(paper)}"
