"""A figure written as files: its notes along the bottom, a PNG and a byte-stable PDF."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

from pipeline.design.budget import PAPER_PROFILE, budget_of  # noqa: E402

NOTE_SIZE = 7.5  # points: legible at the report page's width (5 was not: issue 28)


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


def save(fig, notes: list[str], folder, paper: str, stem: str, dpi: float) -> None:
    """Notes (the budget, what the axis means) along the bottom, legibly; PNG and byte-stable PDF."""
    for i, note in enumerate(reversed(notes)):
        fig.text(0.01, 0.005 + 0.045 * i, note, fontsize=NOTE_SIZE, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05 * len(notes), 1, 1))
    out = folder / paper
    out.mkdir(exist_ok=True)
    fig.savefig(out / f"{stem}.png", dpi=dpi)
    fig.savefig(out / f"{stem}.pdf", metadata={"CreationDate": None})
    plt.close(fig)
