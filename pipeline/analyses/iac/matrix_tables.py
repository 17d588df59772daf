"""Stage ``table-<name>``: IAC Tables 1-4 (IAC §3), QMIX against QMIXs on the 3x3 matrix game.
It reads the trained checkpoints of both runs and never retrains.

- Table 1: the payoff, read from the task by playing every joint action once.
- Table 2: QMIX's individual values Q1(u1), Q2(u2) and its joint value Q_tot(u1, u2).
- Table 3: QMIX's Boltzmann policy over joint actions, IAC eq. 7:
  P(u) = exp(Q_tot(u) / alpha) / sum_u' exp(Q_tot(u') / alpha).
- Table 4: the same for QMIXs, whose agents and mixer see the joint action
  (``observe_other_actions``, algorithms/learners/qmix.py).

Every value is computed from each seed's network (``QMIX.joint_values``); a cell is the mean
over seeds with the 95% t-interval, the paper's number beside it. Each seed's greedy joint
action (the argmax of its Q_tot) is listed with Tables 2-4. Rows are agent 1's action u1,
columns agent 2's u2 (A, B, C), as in the paper. Writes ``results/tables/<name>_table<k>``
``.csv`` and ``.md`` for k = 1..4, all or none.
"""

from __future__ import annotations

import math
import string
import sys

import numpy as np
import pandas as pd
import torch

import envs
from pipeline.design.params import MATRIX_GAME_LEARNERS, Run, entry_from_argv, load_runs, run_of
from pipeline.outputs import layout, stopping
from pipeline.outputs.checkpoint_file import load_checkpoints
from pipeline.outputs.staging import publish, staging
from pipeline.runtime.build import build
from pipeline.statistics.intervals import mean_ci95

CAPTIONS = {  # IAC's captions
    1: "Table 1: Payoff of matrix game",
    2: "Table 2: Individual and joint action-value of QMIX",
    3: "Table 3: Policy of QMIX",
    4: "Table 4: Policy of QMIXs",
}


def _stop(name: str, key: str, problem: str):
    raise SystemExit(f"params.yaml: tables.{name}.{key}: {problem}")


def boltzmann(q_tot: torch.Tensor, temperature: float) -> torch.Tensor:
    """IAC eq. 7 over the last axis (the joint actions): exp(Q/alpha) / sum exp(Q/alpha)."""
    return torch.softmax(q_tot.double() / temperature, -1)


def _env_seed(run: Run) -> int:
    """The games are deterministic; the reset uses the first evaluation env seed, apart from
    the training seeds."""
    return run.evaluation.env_seeds(1)[0]


def payoff_table(run: Run) -> np.ndarray:
    """Table 1: the team reward of every joint action ``[A, A]``, one copy of the task per
    joint action (agent 1's action the row)."""
    spec = envs.make_batched(run.task_id, 1, **run.task_kwargs).spec
    A = spec.action_dim
    env = envs.make_batched(run.task_id, A * A, **run.task_kwargs)
    env.reset([_env_seed(run)] * (A * A))
    joint = np.array([(u1, u2) for u1 in range(A) for u2 in range(A)])
    return env.step(joint).reward.reshape(A, A)


def learned_values(run: Run):
    """Every seed's ``JointValues`` (algorithms/learners/qmix.py) at the game's only step, from its
    final checkpoint."""
    checkpoints = load_checkpoints(run)
    S = len(run.seeds)
    algo, env = build(run, S)
    algo.load_seed_states([c["tensors"] for c in checkpoints])
    obs, state, _ = env.reset([_env_seed(run)] * S)
    return algo.joint_values(torch.from_numpy(obs).float(), torch.from_numpy(state).float())


def _labels(A: int) -> list[str]:
    return list(string.ascii_uppercase[:A])  # IAC names the actions A, B, C


def _cell(values: np.ndarray, seeds, quantity: str, u1: str, u2: str, paper) -> dict:
    mean, low, high = mean_ci95(values)
    row = {"quantity": quantity, "u1": u1, "u2": u2, "mean": mean, "ci95_low": low, "ci95_high": high}
    row["paper"] = math.nan if paper is None else float(paper)
    row["seeds"] = len(seeds)
    row.update({f"seed{s}": float(v) for s, v in zip(seeds, values)})
    return row


def _greedy(q_tot: np.ndarray, labels: list[str]) -> list[tuple[str, str]]:
    """Each seed's argmax of Q_tot ``[S, A, A]`` as (u1, u2)."""
    A = len(labels)
    return [(labels[j // A], labels[j % A]) for j in q_tot.reshape(len(q_tot), -1).argmax(1)]


def compute_tables(name: str, table: dict, runs: dict[str, Run]) -> dict[int, pd.DataFrame]:
    """Tables 1-4 as long frames (one row per cell), after every check; nothing is written."""
    picked = {part: runs[run_of(table[part], table["task"])] for part in MATRIX_GAME_LEARNERS}  # checked by params.py
    reported = table.get("reported", {}) or {}
    alpha = float(table["temperature"])
    values = {}
    for part, run in picked.items():
        try:
            values[part] = learned_values(run)
        except SystemExit as err:  # a missing or stale checkpoint: name the table's key
            message = str(err).removeprefix("evaluate: ")
            _stop(name, part, f"run {run.name}: {message}")
    payoff = payoff_table(picked["qmix"])
    A = payoff.shape[0]
    labels = _labels(A)
    paper1 = reported.get("table1")
    t1 = pd.DataFrame(
        [
            {"u1": u1, "u2": u2, "payoff": float(payoff[i, j]), "paper": math.nan if paper1 is None else float(paper1[i][j])}
            for i, u1 in enumerate(labels)
            for j, u2 in enumerate(labels)
        ]
    )

    qmix, qmixs = picked["qmix"], picked["qmixs"]
    v = values["qmix"]
    S = len(qmix.seeds)
    q_tot = v.q_tot.double().view(S, A, A).numpy()
    # Without observe_other_actions agent i's values do not depend on the joint action: any
    # joint action's row gives Q1(u1) and Q2(u2); the first is (A, A).
    q1, q2 = v.agent_q[:, 0, 0].double().numpy(), v.agent_q[:, 0, 1].double().numpy()
    greedy_qmix = _greedy(q_tot, labels)
    rows2 = []
    for n, (quantity, q) in enumerate((("Q1", q1), ("Q2", q2))):
        paper = reported.get(f"table2_q{n + 1}")
        for a, label in enumerate(labels):
            u1, u2 = (label, "") if n == 0 else ("", label)
            rows2.append(_cell(q[:, a], qmix.seeds, quantity, u1, u2, None if paper is None else paper[a]))
    rows2 += _grid_rows("Q_tot", q_tot, qmix.seeds, reported.get("table2_qtot"), greedy_qmix, labels)
    t2 = pd.DataFrame(rows2)

    policy = boltzmann(v.q_tot, alpha).view(S, A, A).numpy()
    t3 = pd.DataFrame(_grid_rows("P", policy, qmix.seeds, reported.get("table3"), greedy_qmix, labels))

    w = values["qmixs"]
    Ss = len(qmixs.seeds)
    q_tot_s = w.q_tot.double().view(Ss, A, A).numpy()
    policy_s = boltzmann(w.q_tot, alpha).view(Ss, A, A).numpy()
    greedy_s = _greedy(q_tot_s, labels)
    rows4 = _grid_rows("P", policy_s, qmixs.seeds, reported.get("table4"), greedy_s, labels)
    rows4 += _grid_rows("Q_tot", q_tot_s, qmixs.seeds, None, greedy_s, labels)  # what P is of
    t4 = pd.DataFrame(rows4)
    return {1: t1, 2: t2, 3: t3, 4: t4}


def _grid_rows(quantity, per_seed: np.ndarray, seeds, paper, greedy, labels) -> list[dict]:
    """One row per joint action of ``per_seed [S, A, A]``; ``greedy_seeds``: the seeds whose
    greedy joint action (argmax Q_tot) it is."""
    rows = []
    for i, u1 in enumerate(labels):
        for j, u2 in enumerate(labels):
            row = _cell(per_seed[:, i, j], seeds, quantity, u1, u2, None if paper is None else paper[i][j])
            row["greedy_seeds"] = " ".join(str(s) for s, g in zip(seeds, greedy) if g == (u1, u2))
            rows.append(row)
    return rows


# ---- Markdown ------------------------------------------------------------------------------
def _fmt(r) -> str:
    """'ours ± CI half-width (paper)'; no ± over one seed, no parentheses without a number."""
    ours = f"{r['mean']:.2f}"
    if r["ci95_high"] == r["ci95_high"]:
        ours += f" ± {(r['ci95_high'] - r['ci95_low']) / 2:.2f}"
    return ours + ("" if r["paper"] != r["paper"] else f" ({r['paper']:g})")


def _grid(frame: pd.DataFrame, quantity: str, corner: str, row_head=None, col_head=None) -> str:
    """A u1-by-u2 Markdown grid of ``quantity``; optional headers per row and column (Table 2's
    Q1 and Q2 in the paper's layout)."""
    cells = frame[frame["quantity"] == quantity]
    labels = list(dict.fromkeys(cells["u1"]))
    head = [corner] + [f"{u2}" + (f": {col_head[u2]}" if col_head else "") for u2 in labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for u1 in labels:
        row = cells[cells["u1"] == u1].set_index("u2")
        first = f"{u1}" + (f": {row_head[u1]}" if row_head else "")
        lines.append("| " + " | ".join([first] + [_fmt(row.loc[u2]) for u2 in labels]) + " |")
    return "\n".join(lines) + "\n"


def _greedy_line(frame: pd.DataFrame, run: Run) -> str:
    cells = frame[frame["quantity"] == "Q_tot"]
    by_seed = {s: (r["u1"], r["u2"]) for _, r in cells.iterrows() for s in str(r["greedy_seeds"]).split() if s}
    listed = "; ".join(f"seed {s}: ({by_seed[str(s)][0]}, {by_seed[str(s)][1]})" for s in run.seeds)
    return f"Greedy joint action (argmax of Q_tot) per seed: {listed}.\n"


def markdowns(name: str, table: dict, runs: dict[str, Run], frames: dict[int, pd.DataFrame]) -> dict[int, str]:
    qmix = runs[run_of(table["qmix"], table["task"])]
    qmixs = runs[run_of(table["qmixs"], table["task"])]
    alpha = table["temperature"]
    ours = (
        "Ours: mean over {n} seeds of each seed's final network ({run}), ± the 95% t-interval's "
        "half-width; the paper's number in parentheses. Rows: agent 1's action u1; columns: "
        "agent 2's u2.\n\n"
    )
    out = {}
    t1 = frames[1].assign(quantity="payoff", mean=frames[1]["payoff"], ci95_low=math.nan, ci95_high=math.nan)
    out[1] = (
        f"# IAC {CAPTIONS[1]}\n\nRead from the task `{table['task']}` by playing each joint action "
        "once (the paper's number in parentheses where params.yaml gives it). Rows: agent 1's "
        "action u1; columns: agent 2's u2.\n\n" + _grid(t1, "payoff", "u1 \\ u2")
    )
    t2 = frames[2]
    q1 = {r["u1"]: f"Q1 = {_fmt(r)}" for _, r in t2[t2["quantity"] == "Q1"].iterrows()}
    q2 = {r["u2"]: f"Q2 = {_fmt(r)}" for _, r in t2[t2["quantity"] == "Q2"].iterrows()}
    out[2] = (
        f"# IAC {CAPTIONS[2]}\n\n" + ours.format(n=len(qmix.seeds), run=qmix.name)
        + "Row and column headers: the agents' own values Q1(u1), Q2(u2); cells: Q_tot(u1, u2).\n\n"
        + _grid(t2, "Q_tot", "u1 \\ u2", q1, q2) + "\n" + _greedy_line(t2, qmix)
    )
    out[3] = (
        f"# IAC {CAPTIONS[3]}\n\n" + ours.format(n=len(qmix.seeds), run=qmix.name)
        + f"Boltzmann policy of Table 2's Q_tot, IAC eq. 7, alpha = {alpha}.\n\n"
        + _grid(frames[3], "P", "u1 \\ u2") + "\n" + _greedy_line(t2, qmix)
    )
    out[4] = (
        f"# IAC {CAPTIONS[4]}\n\n" + ours.format(n=len(qmixs.seeds), run=qmixs.name)
        + f"Boltzmann policy (IAC eq. 7, alpha = {alpha}) of QMIXs's Q_tot, whose agents and mixer "
        "see the joint action.\n\n" + _grid(frames[4], "P", "u1 \\ u2")
        + "\nQMIXs's Q_tot(u1, u2):\n\n" + _grid(frames[4], "Q_tot", "u1 \\ u2") + "\n"
        + _greedy_line(frames[4], qmixs)
    )
    return out


def write_tables(name: str, table: dict, runs: dict[str, Run]) -> None:
    """Compute everything, then stage and publish the eight files together."""
    frames = compute_tables(name, table, runs)
    texts = markdowns(name, table, runs, frames)
    with staging(f"table-{name}") as folder:
        for k in range(1, 5):
            frames[k].to_csv(folder / f"{name}_table{k}.csv", index=False)
            (folder / f"{name}_table{k}.md").write_text(texts[k])
        for k in range(1, 5):
            for ext in ("csv", "md"):
                publish(folder / f"{name}_table{k}.{ext}", layout.TABLES / f"{name}_table{k}.{ext}")


def main(argv: list[str] | None = None) -> None:
    params, runs = load_runs()
    argv = sys.argv[1:] if argv is None else argv
    name, table = entry_from_argv(argv, params, "tables", "pipeline.analyses.iac.matrix_tables TABLE")
    if table.get("kind") != "matrix_game":
        _stop(name, "kind", f"is {table.get('kind')!r}; this stage draws kind matrix_game")
    write_tables(name, table, runs)


if __name__ == "__main__":
    stopping.run(main)
