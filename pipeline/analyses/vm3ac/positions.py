"""Stage ``snapshot-<name>``: VM3-AC Fig. 6, where the agents are a few steps after reset,
early in training, drawn from the policies the train stage kept at that step.

Seed k's early policy (``results/runs/<run>/snapshots/step<T>/``) plays one episode on the first
evaluation env seed, acting as it did in training (VM3-AC: a fresh z ~ N(0, I) each step, shared
by the agents; actions sampled from the policy), for ``after_reset`` steps; the agents' and the
preys' positions then are the data. One row per algorithm, one column per seed; preys are black
squares. Writes ``results/snapshots/<name>.csv`` and ``figures/<paper>/<name>.{png,pdf}``.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from algorithms.learner import EXPLORE  # noqa: E402
from envs.vm3ac_predator_prey import positions  # noqa: E402
from pipeline.analyses.snapshots import first_evaluation_start, policy_at, publish_drawn  # noqa: E402
from pipeline.design.figure_budget import budget_line  # noqa: E402
from pipeline.design.params import entry_from_argv, load_runs, run_of, snapshot_steps  # noqa: E402
from pipeline.outputs import stopping  # noqa: E402
from pipeline.outputs.figure_files import save  # noqa: E402
from pipeline.outputs.staging import staging  # noqa: E402


@torch.no_grad()
def play(run, step: int, steps_after_reset: int) -> pd.DataFrame:
    """Every seed's early policy, ``steps_after_reset`` steps into one episode: positions."""
    S = len(run.seeds)
    algo, env = policy_at(run, step)
    obs, state, avail = first_evaluation_start(run, env)
    memory = algo.begin_episodes(None, torch.ones(S, 1, dtype=torch.bool), obs, state)
    for _ in range(steps_after_reset):
        action, memory = algo.act(obs, state, avail, memory, EXPLORE)
        out = env.step(action.squeeze(1).numpy())
        obs, state = torch.from_numpy(out.obs).unsqueeze(1), torch.from_numpy(out.state).unsqueeze(1)
        avail = None if out.avail is None else torch.from_numpy(out.avail).unsqueeze(1)
    rows = []
    for k, copy in enumerate(env.envs):
        agents, preys = positions(copy)
        for kind, where in (("agent", agents), ("prey", preys)):
            for i, (x, y) in enumerate(where):
                rows.append({"seed": run.seeds[k], "entity": kind, "index": i, "x": x, "y": y})
    return pd.DataFrame(rows)


def draw(data: pd.DataFrame, snapshot: dict, style: dict, notes: list[str], folder, name: str) -> None:
    labels, seeds = list(snapshot["rows"]), sorted(data["seed"].unique())
    side = style["height"] / 1.5
    fig, axes = plt.subplots(len(labels), len(seeds), figsize=(side * len(seeds), side * len(labels)), squeeze=False)
    for r, label in enumerate(labels):
        for c, seed in enumerate(seeds):
            ax, here = axes[r, c], data[(data["label"] == label) & (data["seed"] == seed)]
            preys, agents = here[here["entity"] == "prey"], here[here["entity"] == "agent"]
            ax.scatter(preys["x"], preys["y"], marker="s", color="black", s=30)
            ax.scatter(agents["x"], agents["y"], c=[f"C{i}" for i in agents["index"]], s=40)
            ax.set(xlim=(-1.2, 1.2), ylim=(-1.2, 1.2), xticks=[], yticks=[], aspect="equal")
            ax.set_title(f"seed {seed}", fontsize="small")
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle(snapshot.get("title", name), fontsize="small")
    save(fig, notes, folder, snapshot["paper"], name, style["dpi"])


def main(argv: list[str] | None = None) -> None:
    params, runs = load_runs()
    argv = sys.argv[1:] if argv is None else argv
    name, snapshot = entry_from_argv(argv, params, "snapshots", "pipeline.analyses.vm3ac.positions SNAPSHOT")
    (step,) = snapshot_steps(snapshot, params["profile"], next(iter(runs.values())).budget)
    frames = []
    for label, algorithm in snapshot["rows"].items():
        run = runs[run_of(algorithm, snapshot["task"])]
        frames.append(play(run, step, snapshot["after_reset"]).assign(label=label, algorithm=algorithm, step=step))
    data = pd.concat(frames)[["label", "algorithm", "step", "seed", "entity", "index", "x", "y"]]
    notes = [n for n in (budget_line(params, [snapshot["task"]]), f"Training step {step:,}; {snapshot['after_reset']} steps after reset") if n]
    with staging(f"snapshot-{name}") as folder:
        data.to_csv(folder / f"{name}.csv", index=False)
        draw(data, snapshot, params["figure_style"], notes, folder, name)
        publish_drawn(folder, name, snapshot["paper"])


if __name__ == "__main__":
    stopping.run(main)
