"""Stage ``learning-checks`` of the evidence instance (issue 28): does each learner learn a
task as an independent reference says it should?

    python -m pipeline.report.learning_checks      # in evidence/ (dvc repro does so)

Each check of evidence/checks.yaml (derived from evidence.yaml's ``checks``) names a run of
the instance, a reference (data under references/ or numbers stated with their source: never
another project's code) and a pass band fixed before the run. Kinds:

- ``curve``: the run's learning curve against the reference's per-seed curve over a window of
  steps both have, on the curve's ``metric`` (``return``, the default, or ``win_rate`` where the
  reference is on another simulator or reward scale). Per seed, the mean over the window; ``learned``: the 95% t-interval
  over seeds of (window mean - the curve's first point) lies above 0, for ours and for the
  reference alike; ``ratio``: our mean over seeds / the reference's. Verdict: ``learns as the
  reference`` (learned, ratio within ``band``), ``learns, worse than the reference`` / ``learns,
  better than the reference`` (learned, ratio below / above it), ``does not learn`` (the
  reference did), ``neither learns measurably at this budget`` (nor did the reference: the
  budget cannot tell; the ratio still says whether we track it).
- ``table``: a quantity of a table stage's CSV (its ``mean`` over seeds per cell) against the
  reference's numbers (``paper``: the table's own column of a paper's numbers, as params.yaml
  states them with their source), cell by cell: ``learns as the reference`` when every cell is within
  ``tolerance``, else ``differs from the reference`` with the largest gap.

Writes results/checks/checks.{json,md} and, per curve check, figures/harness/check_<name>.{png,pdf}
with the reference beside our curve and the budget in its title.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.design.checks import OUT, PAPER, CheckError, load_checks  # noqa: E402
from pipeline.design.code_files import ROOT  # noqa: E402
from pipeline.design.params import load_runs  # noqa: E402
from pipeline.outputs import layout, stopping  # noqa: E402
from pipeline.outputs.staging import publish, staging, write_json  # noqa: E402
from pipeline.statistics.intervals import mean_ci95  # noqa: E402

AS_REFERENCE = "learns as the reference"
WORSE, BETTER = "learns, worse than the reference", "learns, better than the reference"
NOT_LEARNED, DIFFERS, NO_DATA = "does not learn", "differs from the reference", "no data yet"
INCONCLUSIVE = "neither learns measurably at this budget"  # ours nor the reference: the budget is too short


def reference_curves(path: Path) -> pd.DataFrame:
    """A reference file's per-seed curve as rows of step, seed, value."""
    data = json.loads(path.read_text())
    rows = [(step, seed, value) for seed, points in data["seeds"].items() for step, value in points]
    return pd.DataFrame(rows, columns=["step", "seed", "value"])


def our_curves(run, metric: str) -> pd.DataFrame:
    """The run's curves.csv as rows of step, seed, value (the check's metric)."""
    curves = pd.read_csv(layout.run_dir(run.name) / "curves.csv")
    if metric not in curves.columns:
        raise CheckError(f"checks: {run.name} has no curve of '{metric}' (it has {', '.join(curves.columns[2:])})")
    return curves[["step", "seed", metric]].rename(columns={metric: "value"})


def window_means(curves: pd.DataFrame, window) -> pd.Series:
    """Per seed (sorted), the mean over the window's points."""
    inside = curves[(curves["step"] >= window[0]) & (curves["step"] <= window[1])]
    return inside.groupby("seed")["value"].mean().sort_index()


def gain_bound(curves: pd.DataFrame, window) -> float:
    """The lower 95% t-bound over seeds of (window mean - the curve's first point): above 0, the
    curve has measurably learned by the window."""
    first = curves[curves["step"] == curves["step"].min()].set_index("seed")["value"].sort_index()
    return mean_ci95((window_means(curves, window) - first).to_numpy())[1]


def curve_check(name: str, check: dict, run, folder: Path) -> dict:
    metric = check.get("metric", "return")
    ours = our_curves(run, metric)
    ref = reference_curves(ROOT / check["reference"])
    window = check["window"]
    mine, theirs = window_means(ours, window).to_numpy(), window_means(ref, window).to_numpy()
    gain_low, ref_gain_low = gain_bound(ours, window), gain_bound(ref, window)
    learned, ref_learned = bool(gain_low > 0), bool(ref_gain_low > 0)
    ours_mean, ours_low, ours_high = mean_ci95(mine)
    ref_mean, ref_low, ref_high = mean_ci95(theirs)
    ratio = ours_mean / ref_mean if ref_mean else math.inf
    low, high = check["band"]
    if not learned and not ref_learned:
        verdict = INCONCLUSIVE
    elif not learned:
        verdict = NOT_LEARNED
    elif ratio < low:
        verdict = WORSE
    elif ratio > high:
        verdict = BETTER
    else:
        verdict = AS_REFERENCE
    draw_curves(name, check, metric, run, ours, ref, folder)
    f = ".2f" if metric == "win_rate" else ".1f"  # a rate in [0, 1] needs two decimals
    detail = (
        f"mean {metric.replace('_', ' ')} over steps {window[0]:,}-{window[1]:,}: ours {ours_mean:{f}} [{ours_low:{f}}, {ours_high:{f}}] "
        f"({len(mine)} seeds), reference {ref_mean:{f}} [{ref_low:{f}}, {ref_high:{f}}] ({len(theirs)} seeds); "
        f"ratio {ratio:.2f} (band {low}-{high}); gain over the first point, lower 95% bound: ours {gain_low:{f}}, "
        f"reference {ref_gain_low:{f}}"
    )
    return {"verdict": verdict, "detail": detail, "ours": ours_mean, "ours_ci95": [ours_low, ours_high],
            "reference_mean": ref_mean, "reference_ci95": [ref_low, ref_high], "ratio": ratio, "learned": learned,
            "reference_learned": ref_learned}  # fmt: skip


def table_check(check: dict) -> dict:
    table = pd.read_csv(layout.TABLES / f"{check['table']}.csv", keep_default_na=False)
    rows = table[table["quantity"] == check["quantity"]]
    if check["reference"] == "paper":  # the table's own column of the paper's numbers (params.yaml reported)
        reference = {f"{r.u1},{r.u2}": float(r.paper) for r in rows.itertuples() if r.paper != ""}
    else:
        reference = check["reference"]
    if not reference:
        raise CheckError(f"checks: {check['table']}: no reference numbers for {check['quantity']}")
    seeds = [c for c in rows.columns if c.startswith("seed") and c[4:].isdigit()]
    gaps, per_seed = [], dict.fromkeys(seeds, 0.0)
    for cell, expected in reference.items():
        u1, u2 = cell.split(",")
        row = rows[(rows["u1"] == u1) & (rows["u2"] == u2)]
        if len(row) != 1:
            raise CheckError(f"checks: {check['table']}: no {check['quantity']} cell ({u1}, {u2})")
        ours = float(row["mean"].iloc[0])
        gaps.append((abs(ours - expected), cell, ours, expected))
        for seed in seeds:
            per_seed[seed] = max(per_seed[seed], abs(float(row[seed].iloc[0]) - expected))
    worst = max(gaps)
    verdict = AS_REFERENCE if worst[0] <= check["tolerance"] else DIFFERS
    close = [seed for seed, gap in per_seed.items() if gap <= check["tolerance"]]
    detail = (
        f"{check['quantity']}, mean over seeds per cell: the largest gap to the reference is {worst[0]:.2f} at ({worst[1]}) "
        f"(ours {worst[2]:.2f}, reference {worst[3]:.2f}; tolerance {check['tolerance']}); seeds within the tolerance "
        f"on every cell: {len(close)} of {len(seeds)}"
        + (f" ({', '.join(close)})" if 0 < len(close) < len(seeds) else "")
    )
    return {"verdict": verdict, "detail": detail, "largest_gap": worst[0], "cells": {c: o for _, c, o, _ in gaps},
            "seeds_within": len(close)}  # fmt: skip


def draw_curves(name: str, check: dict, metric: str, run, ours: pd.DataFrame, ref: pd.DataFrame,
                folder: Path) -> None:
    """Our curve and the reference's, mean over seeds with the 95% t-band; the budget in the title."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, data, color in ((f"ours ({run.algorithm})", ours, "red"), (check["reference_label"], ref, "black")):
        rows = [(step, *mean_ci95(group["value"])) for step, group in data.groupby("step")]
        steps, mean, low, high = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
        ax.plot(steps, mean, color=color, label=label)
        ax.fill_between(steps, low, high, color=color, alpha=0.15, linewidth=0)
    ax.axvspan(*check["window"], color="grey", alpha=0.1, label="compared window")
    ax.set_xlim(0, 1.05 * ours["step"].max())  # our budget: a longer reference is cut at its end
    seeds = ours["seed"].nunique()
    ax.set_title(f"{check['learner']} on {run.task}\nbudget: {seeds} seeds x {run.budget.env_steps:,} env steps", fontsize=10)
    ylabel = {"return": "Return per episode", "win_rate": "Win rate"}.get(metric, metric)
    ax.set(xlabel="Environment steps", ylabel=ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = folder / PAPER
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"check_{name}.png", dpi=150)
    fig.savefig(out / f"check_{name}.pdf", metadata={"CreationDate": None})
    plt.close(fig)


def checks_table(results: dict) -> list[str]:
    """The checks as Markdown table rows (this stage's checks.md and the root report's section)."""
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    rows = ["| Learner | Task | Budget | Reference (source) | Ours | Verdict |", "|---|---|---|---|---|---|"]
    for _, c in sorted(results.items()):
        rows.append(f"| {cell(c['learner'])} | {c['task']} | {c['seeds']} seeds x {c['env_steps']:,} steps | "
                    f"{cell(c['reference'])} ({cell(c['source'])}) | {cell(c['detail'])} | **{c['verdict']}** |")  # fmt: skip
    return rows


def markdown(results: dict) -> str:
    intro = ("Each learner against an independent reference at a stated budget, with a pass band fixed before the run "
             "(evidence.yaml `checks`, pipeline/report/learning_checks.py).")  # fmt: skip
    return "\n".join(["# Learning checks", "", intro, "", *checks_table(results)]) + "\n"


def main() -> None:
    _, runs = load_runs()
    try:
        checks = load_checks(runs)
    except CheckError as err:
        raise SystemExit(f"learning_checks: {err}") from None
    results = {}
    with staging("learning-checks") as folder:
        for name, check in checks.items():
            run = runs[check["run"]]
            try:
                res = curve_check(name, check, run, folder) if check["kind"] == "curve" else table_check(check)
            except (OSError, CheckError) as err:
                res = {"verdict": NO_DATA, "detail": f"missing: {err}"}
            results[name] = {"learner": check["learner"], "run": run.name, "task": run.task, "seeds": len(run.seeds),
                             "env_steps": run.budget.env_steps, "reference": check["reference_label"],
                             "source": check["source"], **res}  # fmt: skip
        (folder / "checks").mkdir()
        write_json(folder / "checks" / "checks.json", results)
        (folder / "checks" / "checks.md").write_text(markdown(results))
        for staged in sorted((folder / PAPER).iterdir()) if (folder / PAPER).is_dir() else ():
            publish(staged, layout.FIGURES / PAPER / staged.name)
        publish(folder / "checks", OUT)


if __name__ == "__main__":
    stopping.run(main)
