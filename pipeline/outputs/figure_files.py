"""A figure written as files: its notes along the bottom, a PNG and a byte-stable PDF."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

NOTE_SIZE = 7.5  # points: legible at the report page's width (5 was not: issue 28)


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
