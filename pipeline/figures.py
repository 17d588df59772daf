"""Stage ``figures``: learning-curve figures from ``results/plots/curves/<run>.csv`` only.

Each entry under ``figures`` in params.yaml becomes ``figures/<paper>/<name>.{png,pdf}``: the
mean over seeds with its 95% confidence band, x = environment steps, y = the average of all
agents' rewards per episode (VM3-AC §6, Fig. 3).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from pipeline import layout  # noqa: E402
from pipeline.params import load_runs  # noqa: E402
from pipeline.staging import publish, staging  # noqa: E402

Y_LABELS = {"return": "Average reward per episode", "win_rate": "Test win rate"}
BOUNDS = {"win_rate": (0.0, 1.0)}  # a rate's t-interval is clipped to where a rate can be
COLUMNS = {  # metric -> (mean, band low, band high) in results/plots/curves/<run>.csv
    "return": ("mean_return", "ci95_low", "ci95_high"),
    "win_rate": ("mean_win_rate", "win_ci95_low", "win_ci95_high"),
}


def draw(name: str, figure: dict, style: dict, folder) -> None:
    fig, ax = plt.subplots(figsize=(style["width"], style["height"]))
    metric = figure.get("metric", "return")
    mean, low, high = COLUMNS[metric]
    for label, curve in figure["curves"].items():
        path = layout.CURVE_PLOTS / f"{curve['run']}.csv"
        try:
            data = pd.read_csv(path)
        except OSError as err:
            raise SystemExit(
                f"figures: {name} needs {path}, which cannot be read ({err})"
            ) from None
        ax.plot(data["step"], data[mean], color=curve.get("color"), label=label)
        lo, hi = BOUNDS.get(metric, (None, None))
        ax.fill_between(
            data["step"],
            data[low].clip(lo, hi),
            data[high].clip(lo, hi),
            color=curve.get("color"),
            alpha=0.2,
            linewidth=0,
        )
    ax.set(title=figure.get("title", name), xlabel="Environment steps", ylabel=Y_LABELS[metric])
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    ax.legend(loc="best", fontsize="small")
    if "note" in figure:  # what the y-axis means, where the paper's own axis needs it
        fig.text(0.01, 0.005, figure["note"], fontsize=5, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.04 if "note" in figure else 0, 1, 1))
    out = folder / figure["paper"]
    out.mkdir(exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=style["dpi"])
    fig.savefig(out / f"{name}.pdf", metadata={"CreationDate": None})  # byte-stable PDFs
    plt.close(fig)


def main() -> None:
    params, _ = load_runs()
    sns.set_theme(style="whitegrid")
    with staging("figures") as folder:
        for name, figure in params.get("figures", {}).items():
            draw(name, figure, params["figure_style"], folder)
        publish(folder, layout.FIGURES)


if __name__ == "__main__":
    main()
