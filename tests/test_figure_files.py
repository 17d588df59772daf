"""Figure notes (the budget, what the axis means) are legible: inside the figure's width, clear of
the axes and of each other, however long they run (issue 28: a budget note that wrapped covered
the note above it)."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pipeline.outputs.figure_files import note_lines, save

# The cn3_learners figure's two notes at the evidence budget: the first ran to two lines
NOTES = [
    "Budget: 3 seeds x 100,000 env steps per seed (profile 'evidence'); the papers': 7 x 1,000,000",
    "Original MPE reward: each agent gets the sum over agents of -(landmark distances) - collisions (self included)",
]


def test_long_notes_wrap_inside_the_width_clear_of_the_axes_and_of_each_other(tmp_path):
    fig, ax = plt.subplots(figsize=(4.8, 3.6))  # params.yaml figure_style
    ax.plot([0, 100000], [-230, -150])
    ax.set_xlabel("Environment steps")
    save(fig, NOTES, tmp_path, "harness", "notes", 150)
    assert (tmp_path / "harness" / "notes.png").is_file() and (tmp_path / "harness" / "notes.pdf").is_file()
    renderer = FigureCanvasAgg(fig).get_renderer()  # save() closed the figure's own canvas
    boxes = [t.get_window_extent(renderer) for t in fig.texts]
    axes = ax.get_tightbbox(renderer)  # the axes with their tick labels, axis label and offset text
    assert sum(t.get_text().count("\n") + 1 for t in fig.texts) == len(note_lines(NOTES, 0.98 * 4.8)) >= 3
    for box in boxes:
        assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, "a note runs past the figure's width"
        assert box.y0 >= 0 and box.y1 < axes.y0, "a note overlaps the axes"
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), "two notes overlap"


def test_note_lines_keep_every_word_in_order():
    lines = note_lines(NOTES, 2.0)  # a narrow figure: many lines
    assert len(lines) > 4 and " ".join(lines) == " ".join(NOTES)
