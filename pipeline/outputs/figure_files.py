"""A figure written as files: its notes along the bottom, a PNG and a byte-stable PDF."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

NOTE_SIZE = 7.5  # points: legible at the report page's width (5 was not: issue 28)
# Notes are wrapped here, not by matplotlib: its wrap=True let a note that ran to two lines
# cover the note drawn above it (issue 28, chunk 11). DejaVu Sans's widest text runs near 0.6 em a
# character, so a line of width / (0.6 em) characters fits; each line takes 1.2 ems (linespacing).
CHAR_EMS, LINE_EMS = 0.6, 1.2


def note_lines(notes: list[str], width_inches: float) -> list[str]:
    """The notes wrapped to lines that fit the figure's width, in order."""
    per_line = int(width_inches * 72 / (NOTE_SIZE * CHAR_EMS))
    return [line for note in notes for line in textwrap.wrap(note, per_line)]


def save(fig, notes: list[str], folder, paper: str, stem: str, dpi: float) -> None:
    """Notes (the budget, what the axis means) along the bottom, legibly; PNG and byte-stable PDF."""
    width, height = fig.get_size_inches()
    lines = note_lines(notes, 0.98 * width)
    bottom = 0.0
    if lines:
        fig.text(0.01, 0.005, "\n".join(lines), fontsize=NOTE_SIZE, ha="left", va="bottom", linespacing=LINE_EMS)
        bottom = 0.01 + len(lines) * NOTE_SIZE * LINE_EMS / (72 * height)  # the lines' height, as a fraction
    fig.tight_layout(rect=(0, bottom, 1, 1))
    out = folder / paper
    out.mkdir(exist_ok=True)
    fig.savefig(out / f"{stem}.png", dpi=dpi)
    fig.savefig(out / f"{stem}.pdf", metadata={"CreationDate": None})
    plt.close(fig)
