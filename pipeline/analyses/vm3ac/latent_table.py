"""Stage ``table-<name>``: VM3-AC Table 1, the latent z at execution (the z = 0 versus
shared-seed ablation). It reads the trained checkpoints and never retrains.

Each seed's final policy plays the profile's evaluation episodes on every task of the table in
every z mode it lists (``algorithms/components/execution_latents.py``); a cell is the mean over seeds of
the seeds' mean returns, with the paper's number beside it where the paper reports one.
Writes ``results/tables/<name>.csv`` (one row per mode and task) and ``<name>.md``.

``shared_seed`` (each agent draws z from its own generator, seeded per episode with a seed the
agents share) draws exactly the z's ``sampled`` draws centrally, so it plays the same episodes:
not a second result but a proof that ``sampled`` needs no communication. The stage checks the
two agree to the bit (else it stops: a bug), and the table shows them as one row.
"""

from __future__ import annotations

import sys

import pandas as pd

from pipeline.design.params import entry_from_argv, load_runs, run_of
from pipeline.outputs import layout, stopping
from pipeline.outputs.checkpoint_file import load_checkpoints
from pipeline.outputs.staging import publish, staging
from pipeline.runtime.build import build
from pipeline.runtime.loops import evaluate
from pipeline.statistics.intervals import mean_ci95


def table_rows(table: dict, runs: dict) -> list[dict]:
    rows = []
    reported = table.get("reported", {})
    for c, (column, task) in enumerate(table["columns"].items()):
        run = runs[run_of(table["algorithm"], task)]
        checkpoints = load_checkpoints(run)
        env_seeds = run.evaluation.env_seeds()
        algo, env = build(run, len(run.seeds) * len(env_seeds))
        algo.load_seed_states([ckpt["tensors"] for ckpt in checkpoints])
        for mode in table["modes"]:
            played = evaluate(algo, env, run.seeds, env_seeds, mode)
            mean, low, high = mean_ci95(played.returns.mean(1))
            paper = reported.get(mode)
            rows.append(
                {
                    "mode": mode,
                    "column": column,
                    "task": task,
                    "run": run.name,
                    "mean": mean,
                    "ci95_low": low,
                    "ci95_high": high,
                    "seeds": len(run.seeds),
                    "episodes": len(env_seeds),
                    "paper": float("nan") if paper is None else float(paper[c]),
                }
            )
    return rows


SAME_DRAWS = ("shared_seed", "sampled")  # the first plays exactly the second's episodes


def check_same_draws(rows: pd.DataFrame) -> None:
    """``shared_seed`` and ``sampled`` must give identical numbers wherever both were played."""
    twin, same = (rows[rows["mode"] == m].set_index("column")["mean"] for m in SAME_DRAWS)
    both = twin.index.intersection(same.index)
    if not twin[both].equals(same[both]):
        raise SystemExit("latent table: shared_seed and sampled differ, though they draw the same z (a bug)")


def markdown(title: str, rows: pd.DataFrame) -> str:
    """Modes down, tasks across; each cell 'ours ± CI half-width (paper)'. ``shared_seed``
    joins ``sampled``'s row (the same episodes), said so in the row's name."""
    shown = rows
    if set(SAME_DRAWS) <= set(rows["mode"]):
        label = "sampled = shared_seed (the same z draws: no communication needed)"
        shown = rows[rows["mode"] != SAME_DRAWS[0]].replace({"mode": {SAME_DRAWS[1]: label}})
    rows = shown

    def cell(r) -> str:
        ours = f"{r['mean']:.1f}"
        if r["ci95_high"] == r["ci95_high"]:
            ours += f" ± {(r['ci95_high'] - r['ci95_low']) / 2:.1f}"
        return ours + ("" if r["paper"] != r["paper"] else f" ({r['paper']:g})")

    grid = rows.assign(cell=rows.apply(cell, axis=1)).pivot(index="mode", columns="column", values="cell")
    grid = grid.loc[list(dict.fromkeys(rows["mode"])), list(dict.fromkeys(rows["column"]))]
    first = rows.iloc[0]
    return (
        f"# {title}\n\nOurs: mean over {first['seeds']} seeds of each seed's mean return on "
        f"{first['episodes']} deterministic episodes, ± the 95% t-interval's half-width; the "
        "paper's number in parentheses.\n\n" + grid.to_markdown() + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    params, runs = load_runs()
    argv = sys.argv[1:] if argv is None else argv
    name, table = entry_from_argv(argv, params, "tables", "pipeline.analyses.vm3ac.latent_table TABLE")
    rows = pd.DataFrame(table_rows(table, runs))
    check_same_draws(rows)
    with staging(f"table-{name}") as folder:
        rows.to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.md").write_text(markdown(table.get("title", name), rows))
        for ext in ("csv", "md"):
            publish(folder / f"{name}.{ext}", layout.TABLES / f"{name}.{ext}")


if __name__ == "__main__":
    stopping.run(main)
