"""Stage ``snapshot-<name>`` of kind ``covariance``: IAC Fig. 5, the joint policy's covariance
matrix Sigma = L L^T + D (IAC eq. 12) at several training steps.

Every seed's policy kept at each step (``results/runs/<run>/snapshots/step<T>/``) is asked for
its covariance at the first evaluation episode's initial observations and state (Sigma depends
on them: L = f_psi(s), D from the individual policies). The paper's reading, "values change
from irregular to regular [and positive]", is measured by the correlations between different
agents' action dimensions: their mean and the share that is positive, per step.
Writes ``results/snapshots/<name>.csv`` (one row per step, seed and matrix entry) and
``figures/<paper>/<name>.{png,pdf}`` (a heatmap per step, one row per seed).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.analyses.snapshots import first_evaluation_start, policy_at, publish_drawn  # noqa: E402
from pipeline.design.figure_budget import budget_line  # noqa: E402
from pipeline.design.params import entry_from_argv, load_runs, run_of, snapshot_steps  # noqa: E402
from pipeline.outputs import stopping  # noqa: E402
from pipeline.outputs.figure_files import save  # noqa: E402
from pipeline.outputs.staging import staging  # noqa: E402


def covariances(run, steps: list[int]) -> pd.DataFrame:
    """Sigma's entries for every step and seed, with the correlation of each entry."""
    rows = []
    for step in steps:
        algo, env = policy_at(run, step)
        obs, state, _ = first_evaluation_start(run, env)
        sigma = algo.covariance(obs, state)[:, 0].numpy()  # [S, NA, NA]
        A = env.spec.action_dim
        for k, seed in enumerate(run.seeds):
            sd = np.sqrt(np.diag(sigma[k]))
            for i in range(sigma.shape[1]):
                for j in range(sigma.shape[2]):
                    rows.append(
                        {
                            "step": step,
                            "seed": seed,
                            "i": i,
                            "j": j,
                            "agent_i": i // A,
                            "agent_j": j // A,
                            "covariance": float(sigma[k, i, j]),
                            "correlation": float(sigma[k, i, j] / (sd[i] * sd[j])),
                        }
                    )
    return pd.DataFrame(rows)


def between_agents(data: pd.DataFrame) -> pd.DataFrame:
    """Per step and seed: the mean correlation between different agents' action dimensions and
    the share of them that is positive (Fig. 5's "regular and positive")."""
    cross = data[(data["agent_i"] != data["agent_j"]) & (data["i"] < data["j"])]
    return cross.groupby(["label", "step", "seed"], sort=True)["correlation"].agg(
        mean_correlation="mean", positive_share=lambda c: float((c > 0).mean())
    ).reset_index()


def draw(data: pd.DataFrame, summary: pd.DataFrame, snapshot: dict, style: dict, notes, folder, name) -> None:
    panels = data[["label", "seed"]].drop_duplicates().itertuples(index=False)
    panels, steps = list(panels), sorted(data["step"].unique())
    side = style["height"] / 1.4
    fig, axes = plt.subplots(len(panels), len(steps), figsize=(side * len(steps), side * len(panels)), squeeze=False)
    scale = float(data["covariance"].abs().max()) or 1.0
    for r, (label, seed) in enumerate(panels):
        for c, step in enumerate(steps):
            here = data[(data["label"] == label) & (data["seed"] == seed) & (data["step"] == step)]
            n = int(here["i"].max()) + 1
            matrix = here.pivot(index="i", columns="j", values="covariance").to_numpy()
            ax = axes[r, c]
            ax.imshow(matrix, cmap="RdBu_r", vmin=-scale, vmax=scale)
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{matrix[i, j]:.2g}", ha="center", va="center", fontsize=5)
            s = summary[(summary["label"] == label) & (summary["seed"] == seed) & (summary["step"] == step)]
            corr = float(s["mean_correlation"].iloc[0]) if len(s) else float("nan")
            ax.set(xticks=range(n), yticks=range(n))
            ax.tick_params(labelsize=5)
            ax.set_title(f"step {step:,}, mean corr {corr:+.2f}", fontsize=6)
            if c == 0:
                ax.set_ylabel(f"{label}, seed {seed}", fontsize=6)
    fig.suptitle(snapshot.get("title", name), fontsize="small")
    save(fig, notes, folder, snapshot["paper"], name, style["dpi"])


def main(argv: list[str] | None = None) -> None:
    params, runs = load_runs()
    argv = sys.argv[1:] if argv is None else argv
    name, snapshot = entry_from_argv(argv, params, "snapshots", "pipeline.analyses.iac.covariance SNAPSHOT")
    frames = []
    for label, algorithm in snapshot["rows"].items():
        run = runs[run_of(algorithm, snapshot["task"])]
        steps = snapshot_steps(snapshot, params["profile"], run.budget)
        frames.append(covariances(run, steps).assign(label=label, algorithm=algorithm))
    data = pd.concat(frames)[["label", "algorithm", "step", "seed", "i", "j", "agent_i", "agent_j", "covariance", "correlation"]]
    summary = between_agents(data)
    notes = [n for n in (budget_line(params, [snapshot["task"]]), "Sigma = L L^T + D at the first evaluation episode's initial state") if n]
    with staging(f"snapshot-{name}") as folder:
        data.to_csv(folder / f"{name}.csv", index=False)
        draw(data, summary, snapshot, params["figure_style"], notes, folder, name)
        publish_drawn(folder, name, snapshot["paper"])


if __name__ == "__main__":
    stopping.run(main)
