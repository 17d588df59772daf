"""Stage ``compare-<name>``: IAC Fig. 7, steps saved against a baseline and the return difference,
computed from the learning curves only (``results/curves.csv``; never checkpoints).

IAC Fig. 7 caption: DDPG-MIX captures prey cooperatively in Predator-prey at time t1, another
method at ti; "the saved steps is Δt = t1 − ti, unit one thousand steps", and "the diff-return
is the episode return difference between IAC, SIAQ and DDPG-MIX in the PO-Predator-prey task".
§5.3 sets the threshold ("average reward threshold to 1000, where three predators can succeed to
capture prey cooperatively") and states IAC saves 0.295M steps against DDPG-MIX, 0.06M against
SIAQ.

How the two panels are read here (the paper gives no more detail):

(a) A seed *reaches* at the first learning-curve step whose return is >= ``reach.threshold``, on
    its own curve, unsmoothed. Each curve point already averages ``curve_episodes``
    deterministic evaluation episodes (IAC's official code: 10), which is the "average reward"
    §5.3 thresholds; a moving average would delay every reach by a window-dependent lag the
    paper never mentions. A per-seed step (rather than the step where the mean-over-seeds curve
    crosses) gives a spread over seeds, hence an interval. t1 and ti are the means over seeds of
    those steps; Δt = t1 − ti in thousands of steps, with a Welch 95% interval (the runs'
    seeds are independent samples, not pairs: seed k of two algorithms shares env seeds but no
    learner randomness). Δt is reported only when every seed of both runs reaches: averaging
    the seeds that reached would bias t toward early reachers, and putting the budget's end in
    for the others would invent a step nobody observed. Otherwise the row says "not reached"
    with how many seeds did.
(b) diff-return: per seed, the mean return over its last ``final.last_points`` curve points (by
    step; all of them where the curve has fewer, as at the smoke budget, and the table says how
    many were used), algorithm minus baseline, difference of the means over seeds with a Welch
    95% interval.

Writes ``results/tables/<name>.{csv,md}`` and ``figures/<paper>/<name>.{png,pdf}`` (``files``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from pipeline.design.figure_budget import budget_line  # noqa: E402
from pipeline.design.params import COMPARISON_REPORTED, entry_from_argv, load_runs, run_of  # noqa: E402
from pipeline.outputs import (
    layout,  # noqa: E402
    stopping,  # noqa: E402
)
from pipeline.outputs.figure_files import save  # noqa: E402
from pipeline.outputs.staging import publish, staging  # noqa: E402
from pipeline.statistics.curves import first_reach  # noqa: E402
from pipeline.statistics.intervals import welch_ci95  # noqa: E402

CURVES = layout.RESULTS / "curves.csv"
COLUMNS = [
    "label", "role", "algorithm", "reach_run", "seeds", "seeds_reached", "first_reach_step",
    "steps_saved_k", "steps_saved_k_ci95_low", "steps_saved_k_ci95_high", "steps_saved_note",
    "final_run", "final_points", "diff_return", "diff_return_ci95_low", "diff_return_ci95_high",
    "paper_steps_saved_k", "paper_source",
]  # fmt: skip
NAN = math.nan


# ---- the computation: pure functions of a curves DataFrame (run, step, seed, return) ----------


def final_return(curve: pd.DataFrame, last_points: int) -> tuple[pd.Series, int]:
    """Per seed of one run's curve: the mean return of its last ``last_points`` points (by
    step), and the fewest points any seed had to offer (< last_points on a short curve)."""
    tails = curve.sort_values("step", kind="stable").groupby("seed").tail(last_points)
    return tails.groupby("seed")["return"].mean(), int(tails.groupby("seed").size().min())


def _interval(prefix: str, mean: float, low: float, high: float) -> dict:
    return {prefix: mean, f"{prefix}_ci95_low": low, f"{prefix}_ci95_high": high}


def saved_steps(t1: pd.Series, ti: pd.Series, baseline: str) -> dict:
    """Δt = t1 − ti (IAC Fig. 7) in thousands of steps from per-seed first-reach steps (NaN:
    never reached), or a "not reached" note when any seed of either side did not reach."""
    if t1.notna().all() and ti.notna().all():
        saved = welch_ci95(t1 / 1000, ti / 1000)  # the paper's unit: one thousand steps
        return {**_interval("steps_saved_k", *saved), "steps_saved_note": ""}
    short = []
    if ti.isna().any():
        short.append(f"{ti.notna().sum()}/{len(ti)} seeds")
    if t1.isna().any():
        short.append(f"{baseline} {t1.notna().sum()}/{len(t1)} seeds")
    note = f"not reached ({'; '.join(short)})"
    return {**_interval("steps_saved_k", NAN, NAN, NAN), "steps_saved_note": note}


def _row(label: str, role: str, algorithm: str, entry: dict, reach: pd.Series, points: int) -> dict:
    """What a row says of one algorithm itself (the caller adds the comparison's columns)."""
    return {
        "label": label, "role": role, "algorithm": algorithm,
        "reach_run": run_of(algorithm, entry["reach"]["task"]),
        "seeds": len(reach), "seeds_reached": int(reach.notna().sum()),
        # a mean over the seeds that reached would flatter: only when all did
        "first_reach_step": float(reach.mean()) if reach.notna().all() else NAN,
        "final_run": run_of(algorithm, entry["final"]["task"]), "final_points": points,
    }  # fmt: skip


def compare(curves: pd.DataFrame, entry: dict) -> pd.DataFrame:
    """The table: the baseline's row, then one row per ``algorithms`` label (in its order), with
    the columns of ``COLUMNS``. ``curves`` is results/curves.csv; every run must be in it."""
    baseline = entry["baseline"]
    threshold, last = entry["reach"]["threshold"], entry["final"]["last_points"]

    def curve(algorithm: str, part: str) -> pd.DataFrame:
        return curves[curves["run"] == run_of(algorithm, entry[part]["task"])]

    t1 = first_reach(curve(baseline, "reach"), threshold)
    base_final, base_points = final_return(curve(baseline, "final"), last)
    reported = entry.get("reported", {})
    paper = {
        label: (float(value), source)
        for kind, source in COMPARISON_REPORTED.items()
        for label, value in reported.get(kind, {}).items()
    }
    rows = [{
        **_row(f"{baseline} (baseline)", "baseline", baseline, entry, t1, base_points),
        **_interval("steps_saved_k", NAN, NAN, NAN), "steps_saved_note": "",
        **_interval("diff_return", NAN, NAN, NAN), "paper_steps_saved_k": NAN, "paper_source": "",
    }]  # fmt: skip
    for label, algorithm in entry["algorithms"].items():
        ti = first_reach(curve(algorithm, "reach"), threshold)
        finals, points = final_return(curve(algorithm, "final"), last)
        value, source = paper.get(label, (NAN, ""))
        rows.append({
            **_row(label, "compared", algorithm, entry, ti, min(points, base_points)),
            **saved_steps(t1, ti, baseline),
            **_interval("diff_return", *welch_ci95(finals, base_final)),  # algorithm − baseline
            "paper_steps_saved_k": value, "paper_source": source,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


# ---- checks: one line naming the key, before anything is written ------------------------------


def read_curves(name: str, entry: dict) -> pd.DataFrame:
    """results/curves.csv, holding every run the comparison needs, or SystemExit naming the key
    that asked for a missing run."""
    try:
        curves = pd.read_csv(CURVES)
    except (OSError, ValueError) as err:
        problem = f"steps_saved: {CURVES} cannot be read ({err}); run aggregate first"
        raise SystemExit(problem) from None
    missing = {"run", "step", "seed", "return"} - set(curves.columns)
    if missing:
        raise SystemExit(f"steps_saved: {CURVES} lacks columns {', '.join(sorted(missing))}")
    wanted = {"baseline": entry["baseline"]}
    wanted.update({f"algorithms.{label}": a for label, a in entry["algorithms"].items()})
    have = set(curves["run"])
    for part in ("reach", "final"):
        for where, algorithm in wanted.items():
            run = run_of(algorithm, entry[part]["task"])
            if run not in have:
                raise SystemExit(
                    f"params.yaml: comparisons.{name}.{where}: run {run} ({part} task) is not in "
                    f"{CURVES}; train and evaluate it, then run aggregate"
                )
    return curves


# ---- outputs ---------------------------------------------------------------------------------


def _cell(mean: float, low: float, high: float) -> str:
    """'mean ± half-width' (the half-width only where the interval is defined)."""
    if mean != mean:
        return "—"
    return f"{mean:.4g}" + (f" ± {(high - low) / 2:.3g}" if high == high else "")


def markdown(title: str, entry: dict, rows: pd.DataFrame) -> str:
    reach, final, baseline = entry["reach"], entry["final"], entry["baseline"]
    def interval(prefix: str) -> list[str]:
        columns = [prefix, f"{prefix}_ci95_low", f"{prefix}_ci95_high"]
        return [_cell(*values) for values in rows[columns].itertuples(index=False)]

    notes = rows["steps_saved_note"]
    saved = [note or cell for note, cell in zip(notes, interval("steps_saved_k"))]
    paper = [
        "" if v != v else f"{v:g}" + (" (implied)" if source == "implied" else "")
        for v, source in zip(rows["paper_steps_saved_k"], rows["paper_source"])
    ]
    out = pd.DataFrame({
        "Algorithm": rows["label"],
        f"Seeds reaching {reach['threshold']:g}": [
            f"{r}/{n}" for r, n in zip(rows["seeds_reached"], rows["seeds"])
        ],
        "Mean first-reach step": [f"{t:,.0f}" if t == t else "—" for t in rows.first_reach_step],
        "Δt (k steps)": saved,
        "Paper Δt (k steps)": paper,
        "Diff-return": interval("diff_return"),
    })  # fmt: skip
    points = int(rows["final_points"].min())
    short = f" (the curves have only {points})" if points < final["last_points"] else ""
    return (
        f"# {title}\n\n"
        f"Δt = t1 − ti (IAC Fig. 7), in thousands of steps, on `{reach['task']}`: t is the mean "
        "over seeds of the first learning-curve step where a seed's own, unsmoothed curve reaches "
        f"a return of {reach['threshold']:g}; t1 is {baseline}'s. It is given only when every seed "
        "of both runs reaches, otherwise \"not reached\" with the seeds that did. Diff-return on "
        f"`{final['task']}`: each seed's mean return over its last {points} curve points{short}, "
        f"algorithm minus {baseline}, difference of the means over seeds. ± is the half-width of "
        "the Welch 95% interval over seeds. Paper: IAC §5.3's text (Fig. 7's bars carry no "
        "numbers); \"implied\" is derived from what the text states.\n\n"
        + out.to_markdown(index=False) + "\n"
    )


def _yerr(rows: pd.DataFrame, column: str) -> np.ndarray:
    """Error bar lengths below and above each bar (0 where the interval is undefined)."""
    mean = rows[column].to_numpy()
    low, high = rows[f"{column}_ci95_low"].to_numpy(), rows[f"{column}_ci95_high"].to_numpy()
    return np.nan_to_num(np.vstack([mean - low, high - mean]))


def draw(rows: pd.DataFrame, entry: dict, style: dict, notes: list[str], folder, name: str) -> None:
    """(a) saved steps, (b) diff-return: a bar per compared algorithm, whiskers the 95% interval;
    "not reached" written where (a) has no bar; the paper's numbers as markers."""
    compared = rows[rows["role"] == "compared"].reset_index(drop=True)
    x, baseline = np.arange(len(compared)), entry["baseline"]
    colors = np.array([f"C{i}" for i in x])
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(style["width"] * 2, style["height"]))
    ok = compared["steps_saved_k"].notna().to_numpy()
    saved = compared["steps_saved_k"][ok]
    ax_a.bar(x[ok], saved, yerr=_yerr(compared[ok], "steps_saved_k"), color=colors[ok], capsize=3)
    for i in x[~ok]:  # no bar: say why (the baseline's own shortfall goes under the panel, once)
        reached = f"{compared['seeds_reached'][i]}/{compared['seeds'][i]}"
        ax_a.text(i, 0, f"not reached ({reached})", rotation=90, ha="center", va="bottom",
                  fontsize="x-small")  # fmt: skip
    base = rows[rows["role"] == "baseline"].iloc[0]
    if base["seeds_reached"] < base["seeds"]:
        reached = f"{base['seeds_reached']}/{base['seeds']}"
        threshold = entry["reach"]["threshold"]
        why = f"{baseline}: {reached} seeds reach {threshold:g}, so t1 is undefined"
        ax_a.set_xlabel(why, fontsize="x-small")
    for source, face in (("stated", "black"), ("implied", "none")):
        mark = (compared["paper_source"] == source).to_numpy()
        if mark.any():
            paper = compared["paper_steps_saved_k"][mark]
            ax_a.scatter(x[mark], paper, marker="D", s=25, facecolors=face, edgecolors="black",
                         zorder=3, label=f"paper ({source})")  # fmt: skip
    if ax_a.get_legend_handles_labels()[0]:
        ax_a.legend(loc="best", fontsize="x-small")
    ax_a.set(title=f"(a) Saved steps vs {baseline}\n{entry['reach']['task']}",
             ylabel="Δt = t1 − ti (thousand steps)")  # fmt: skip
    diff = compared["diff_return"]
    ax_b.bar(x, diff, yerr=_yerr(compared, "diff_return"), color=colors, capsize=3)
    ax_b.set(title=f"(b) Diff-return vs {baseline}\n{entry['final']['task']}",
             ylabel="Episode return difference")  # fmt: skip
    for ax in (ax_a, ax_b):
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x, compared["label"])
        ax.title.set_fontsize("small")
    fig.suptitle(entry.get("title", name), fontsize="small")
    save(fig, notes, folder, entry["paper"], name, style["dpi"])


def main(argv: list[str] | None = None) -> None:
    params, _ = load_runs()
    argv = sys.argv[1:] if argv is None else argv
    name, entry = entry_from_argv(argv, params, "comparisons", "pipeline.analyses.iac.steps_saved COMPARISON")
    rows = compare(read_curves(name, entry), entry)  # everything checked and computed: now write
    threshold, points = entry["reach"]["threshold"], int(rows["final_points"].min())
    axis = (
        f"(a) first curve step with return >= {threshold:g}, per seed, unsmoothed; bars: "
        "difference of the means over seeds, only where every seed reaches. (b) mean of each "
        f"seed's last {points} curve points. Whiskers: Welch 95% interval over seeds"
    )
    notes = [n for n in (budget_line(params, [entry["reach"]["task"], entry["final"]["task"]]), axis) if n]
    sns.set_theme(style="whitegrid")
    with staging(f"compare-{name}") as folder:
        rows.to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.md").write_text(markdown(entry.get("title", name), entry, rows))
        draw(rows, entry, params["figure_style"], notes, folder, name)
        figure = [folder / entry["paper"] / f"{name}.{ext}" for ext in ("png", "pdf")]
        staged = [folder / f"{name}.csv", folder / f"{name}.md", *figure]
        for source, destination in zip(staged, layout.comparison_files(name, entry)):  # same order
            publish(source, Path(destination))


if __name__ == "__main__":
    stopping.run(main)
