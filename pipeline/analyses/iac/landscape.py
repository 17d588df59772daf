"""Stage ``snapshot-<name>`` of kinds ``trajectory`` and ``exploration``: IAC Figs. 2 and 3,
policies drawn over Simple World's value landscape (IAC §5.1, §5.3).

The landscape is the task's own reward at every joint action (a_1, a_2) of a grid over the
action box (``payoff`` of the ParallelEnv, never a copy of its formula).

- ``trajectory`` (Fig. 2): each seed's mean joint action (the execution action) at every kept
  training step, a dotted path from a red circle (the first step kept) to a red star (the last).
- ``exploration`` (Fig. 3): (a) the independent and (b) the collaborative exploration
  distributions of §5.3 (params: mean and covariance), and (c) the learned policy's, each seed's
  mean mu(o) and covariance Sigma = L L^T + D (IAC eq. 12) at the last step kept, drawn as 1- and
  2-sigma ellipses. Each distribution's expected reward (actions clipped to the box, as the task
  clips them) is computed on the grid and written beside it.

Writes ``results/snapshots/<name>.csv`` and ``figures/<paper>/<name>.{png,pdf}``.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

import envs  # noqa: E402
from pipeline.analyses.snapshots import first_evaluation_start, policy_at, publish_drawn  # noqa: E402
from pipeline.design.figure_budget import budget_line  # noqa: E402
from pipeline.design.params import entry_from_argv, load_runs, run_of, snapshot_steps  # noqa: E402
from pipeline.outputs import stopping  # noqa: E402
from pipeline.outputs.figure_files import save  # noqa: E402
from pipeline.outputs.staging import staging  # noqa: E402

GRID = 121  # landscape points per axis (harness choice: 1/6 action unit on Simple World's box)


def landscape(run) -> tuple[np.ndarray, np.ndarray]:
    """The grid's axis ``[G]`` and the reward at every (a_1, a_2) ``[G, G]`` (rows: a_2)."""
    game = envs.TASKS[run.task_id].make(**run.task_kwargs)
    space = game.action_space(game.possible_agents[0])
    axis = np.linspace(float(space.low[0]), float(space.high[0]), GRID)
    values = np.array([[game.payoff([np.array([a1]), np.array([a2])]) for a1 in axis] for a2 in axis])
    return axis, values


def expected_reward(axis: np.ndarray, values: np.ndarray, mean, cov) -> float:
    """E[r(a)] for a ~ N(mean, cov) with actions clipped to the box, as the task clips them:
    20,000 draws (a fixed generator), each scored at its nearest grid point."""
    lo, hi, step = axis[0], axis[-1], axis[1] - axis[0]
    rng = np.random.default_rng(0)  # fixed: the stage is deterministic
    draws = rng.multivariate_normal(np.asarray(mean, float), np.asarray(cov, float), size=20000)
    index = np.rint((np.clip(draws, lo, hi) - lo) / step).astype(int)
    return float(values[index[:, 1], index[:, 0]].mean())


def mean_actions(run, step: int) -> np.ndarray:
    """Every seed's execution action at ``step`` ``[S, 2]`` (the policy mean, Fig. 2's points)."""
    algo, env = policy_at(run, step)
    obs, state, avail = first_evaluation_start(run, env)
    mode = type(algo).execution_modes(run.settings)[0]
    memory = algo.begin_episodes(None, torch.ones(len(run.seeds), 1, dtype=torch.bool), obs, state, mode)
    action, _ = algo.act(obs, state, avail, memory, mode)
    return action[:, 0].reshape(len(run.seeds), -1).numpy()


def trajectory_rows(run, steps, label) -> list[dict]:
    rows = []
    for step in steps:
        for seed, (a1, a2) in zip(run.seeds, mean_actions(run, step)):
            rows.append({"label": label, "algorithm": run.algorithm, "seed": seed, "step": step, "a1": a1, "a2": a2})
    return rows


def exploration_rows(snapshot, run, step, axis, values, label) -> list[dict]:
    """The two distributions of §5.3 and every seed's learned one."""
    given = [(part, None, snapshot[part]["mean"], snapshot[part]["cov"]) for part in ("independent", "collaborative")]
    algo, env = policy_at(run, step)
    obs, state, _ = first_evaluation_start(run, env)
    sigma = algo.covariance(obs, state)[:, 0].numpy()
    mu = mean_actions(run, step)
    learned = [(label, seed, mu[k].tolist(), sigma[k].tolist()) for k, seed in enumerate(run.seeds)]
    rows = []
    for name, seed, mean, cov in given + learned:
        rows.append(
            {
                "label": name,
                "algorithm": None if seed is None else run.algorithm,
                "seed": seed,
                "step": None if seed is None else step,
                "mean1": mean[0],
                "mean2": mean[1],
                "cov11": cov[0][0],
                "cov12": cov[0][1],
                "cov22": cov[1][1],
                "expected_reward": expected_reward(axis, values, mean, cov),
            }
        )
    return rows


def ellipse(ax, mean, cov, k: float, **style) -> None:
    """The k-sigma contour of N(mean, cov)."""
    w, v = np.linalg.eigh(np.asarray(cov, float))
    angle = np.degrees(np.arctan2(v[1, 1], v[0, 1]))
    ax.add_patch(Ellipse(mean, 2 * k * np.sqrt(w[1]), 2 * k * np.sqrt(w[0]), angle=angle, fill=False, **style))


def draw(kind, data, axis, values, snapshot, style, notes, folder, name) -> None:
    groups = list(dict.fromkeys(data["label"])) if kind == "trajectory" else ["independent", "collaborative", "learned"]
    side = style["height"]
    fig, axes = plt.subplots(1, len(groups), figsize=(side * len(groups), side), squeeze=False)
    for ax, group in zip(axes.flat, groups):
        ax.contourf(axis, axis, values, levels=20, cmap="viridis")
        ax.set(aspect="equal", xlabel="$a_1$", ylabel="$a_2$", title=group)
        if kind == "trajectory":
            for seed, path in data[data["label"] == group].groupby("seed"):
                path = path.sort_values("step")
                ax.plot(path["a1"], path["a2"], ":", color="white", linewidth=1)
                ax.plot(path["a1"].iloc[0], path["a2"].iloc[0], "o", color="red", markersize=5)
                ax.plot(path["a1"].iloc[-1], path["a2"].iloc[-1], "*", color="red", markersize=8)
            continue
        shown = data[data["seed"].isna()] if group != "learned" else data[data["seed"].notna()]
        shown = shown[shown["label"] == group] if group != "learned" else shown
        for r in shown.itertuples():
            cov = [[r.cov11, r.cov12], [r.cov12, r.cov22]]
            for k in (1, 2):
                ellipse(ax, (r.mean1, r.mean2), cov, k, color="white", linewidth=1)
            ax.plot(r.mean1, r.mean2, "o", color="white", markersize=3)
        title = group if group != "learned" else f"learned ({shown['label'].iloc[0]})"
        ax.set_title(f"{title}\nE[r] = {shown['expected_reward'].mean():.2f}", fontsize="small")
        ax.set(xlim=(axis[0], axis[-1]), ylim=(axis[0], axis[-1]))
    fig.suptitle(snapshot.get("title", name), fontsize="small")
    save(fig, notes, folder, snapshot["paper"], name, style["dpi"])


def main(argv: list[str] | None = None) -> None:
    params, runs = load_runs()
    argv = sys.argv[1:] if argv is None else argv
    name, snapshot = entry_from_argv(argv, params, "snapshots", "pipeline.analyses.iac.landscape SNAPSHOT")
    kind, rows = snapshot["kind"], []
    for label, algorithm in snapshot["rows"].items():
        run = runs[run_of(algorithm, snapshot["task"])]
        steps = snapshot_steps(snapshot, params["profile"], run.budget)
        axis, values = landscape(run)
        if kind == "trajectory":
            rows += trajectory_rows(run, steps, label)
        else:
            rows += exploration_rows(snapshot, run, steps[-1], axis, values, label)
    data = pd.DataFrame(rows)
    steps_note = "Mean joint action at every learning-curve point" if kind == "trajectory" else f"Learned policy at step {steps[-1]:,}"
    notes = [n for n in (budget_line(params, [snapshot["task"]]), steps_note) if n]
    with staging(f"snapshot-{name}") as folder:
        data.to_csv(folder / f"{name}.csv", index=False)
        draw(kind, data, axis, values, snapshot, params["figure_style"], notes, folder, name)
        publish_drawn(folder, name, snapshot["paper"])


if __name__ == "__main__":
    stopping.run(main)
