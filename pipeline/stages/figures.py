"""Stage ``figure-<name>``: one learning-curve figure, from its runs' ``curves.csv`` only.

    python -m pipeline.stages.figures NAME

Each entry under ``figures`` in params.yaml is its own stage, which depends on the curves of
the runs it draws and nothing else: ``dvc repro figure-<name>`` trains those runs only, so a new
variant reaches its figure without the rest of the build. It writes
``figures/<paper>/<name>.{png,pdf}``: per
panel (one task) the mean over seeds of every curve (one algorithm) with its 95% confidence
band, x = environment steps, y = the average of all agents' rewards per episode (VM3-AC §6,
Fig. 3) or the test win rate. A figure with several panels is also written one file per panel,
``<name>_<panel>``, and its composite follows the paper's layout (``grid``). A figure made on a
budget below the papers' says so on its face. A harness figure (one in neither paper) also draws
the returns of fixed policies on its panels' tasks where they were measured
(pipeline/design/task_levels.py).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from pipeline.design.figure_budget import budget_line  # noqa: E402
from pipeline.design.params import entry_from_argv, load_runs, run_of  # noqa: E402
from pipeline.design.task_levels import figure_levels  # noqa: E402
from pipeline.outputs import (
    layout,  # noqa: E402
    stopping,  # noqa: E402
)
from pipeline.outputs.figure_files import save  # noqa: E402
from pipeline.outputs.staging import publish, staging  # noqa: E402
from pipeline.statistics.curves import curve_summary  # noqa: E402

Y_LABELS = {"return": "Average reward per episode", "win_rate": "Test win rate"}
BOUNDS = {"win_rate": (0.0, 1.0)}  # a rate's t-interval is clipped to where a rate can be
COLUMNS = {  # metric -> (mean, band low, band high) in a curve summary (statistics/curves.py)
    "return": ("mean_return", "ci95_low", "ci95_high"),
    "win_rate": ("mean_win_rate", "win_ci95_low", "win_ci95_high"),
}
LEVEL_STYLES = {"random": ":", "scripted": "--"}  # grey lines, told apart by their dashes


def draw_panel(ax, name: str, figure: dict, panel: dict, levels: dict) -> None:
    metric = figure.get("metric", "return")
    mean, low, high = COLUMNS[metric]
    for label, curve in figure["curves"].items():
        path = layout.run_dir(run_of(curve["algorithm"], panel["task"])) / "curves.csv"
        try:
            data = curve_summary(pd.read_csv(path))
        except (OSError, ValueError, KeyError) as err:
            raise SystemExit(f"figures: {name} needs {path}, which cannot be read ({err})") from None
        ax.plot(data["step"], data[mean], color=curve.get("color"), label=label)
        lo, hi = BOUNDS.get(metric, (None, None))
        band = data[low].clip(lo, hi), data[high].clip(lo, hi)
        ax.fill_between(data["step"], *band, color=curve.get("color"), alpha=0.2, linewidth=0)
    for level, value in levels.get(panel["task"], {}).items():
        ax.axhline(value, color="grey", linestyle=LEVEL_STYLES[level], linewidth=1.2, label=f"{level.capitalize()} policy ({value:.1f})")
    ax.set(title=panel.get("title", panel["task"]), xlabel="Environment steps", ylabel=Y_LABELS[metric])
    if metric in BOUNDS:  # a rate's whole range, so panels and figures compare at a glance
        low_edge, high_edge = BOUNDS[metric]
        margin = 0.02 * (high_edge - low_edge)
        ax.set_ylim(low_edge - margin, high_edge + margin)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))


def draw(name: str, figure: dict, style: dict, notes: list[str], folder, levels: dict) -> None:
    panels = figure["panels"]
    size = style["width"], style["height"]
    if len(panels) > 1:  # one file per panel, then the composite
        for key, panel in panels.items():
            fig, ax = plt.subplots(figsize=size)
            draw_panel(ax, name, figure, panel, levels)
            ax.legend(loc="best", fontsize="small")
            save(fig, notes, folder, figure["paper"], f"{name}_{key}", style["dpi"])
    rows, cols = figure.get("grid", [1, len(panels)])
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax, (key, panel) in zip(axes.flat, panels.items()):
        draw_panel(ax, name, figure, panel, levels)
        if len(panels) > 1:
            ax.set_title(f"({key}) {ax.get_title()}")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="best", fontsize="small")
    save(fig, notes, folder, figure["paper"], name, style["dpi"])


def main(argv: list[str] | None = None) -> None:
    params, _ = load_runs()
    name, figure = entry_from_argv(sys.argv[1:] if argv is None else argv, params, "figures", "pipeline.stages.figures NAME")
    sns.set_theme(style="whitegrid")
    notes = [n for n in (budget_line(params, [p["task"] for p in figure["panels"].values()]), figure.get("note")) if n]
    with staging(f"figure-{name}") as folder:
        draw(name, figure, params["figure_style"], notes, folder, figure_levels(figure, params["tasks"]))
        for staged in sorted((folder / figure["paper"]).iterdir()):
            publish(staged, layout.FIGURES / figure["paper"] / staged.name)


if __name__ == "__main__":
    stopping.run(main)
