"""Stage ``aggregate``: every run's curves and evaluation into the tables figures read.

Writes ``results/curves.csv`` (run, algorithm, task, step, seed, return),
``results/final.csv`` (one row per run, latent mode and seed; ``headline`` marks the mode a
run's headline number uses), ``results/metrics.json`` (per run: the final evaluation's mean and
95% Student-t CI over seeds, the interval the figures' bands draw; DVC metrics; the report
stage adds IQMs with bootstrap intervals), ``results/plots/curves/<run>.csv`` (mean and 95% CI
over seeds per step; DVC plots) and ``results/marl_eval.json`` (every run in marl-eval's layout:
pipeline/report/marl_eval_export.py).
"""

from __future__ import annotations

import json

import pandas as pd

from pipeline.design.params import Run, load_runs
from pipeline.outputs import layout, stopping
from pipeline.outputs.staging import publish, staging, write_json
from pipeline.report.marl_eval_export import export
from pipeline.statistics.curves import curve_summary


def read_run(run: Run) -> tuple[pd.DataFrame, dict]:
    folder = layout.run_dir(run.name)
    try:
        curves = pd.read_csv(folder / "curves.csv")
        evaluation = json.loads((folder / "eval.json").read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"aggregate: run {run.name} has no readable results ({err})") from None
    if sorted(curves["seed"].unique()) != sorted(run.seeds):
        raise SystemExit(
            f"aggregate: {folder / 'curves.csv'} has seeds {sorted(curves['seed'].unique())}, "
            f"params.yaml says {list(run.seeds)}"
        )
    return curves, evaluation


def main() -> None:
    params, runs = load_runs()
    all_curves, finals, metrics, data = [], [], {}, {}
    with staging("aggregate") as folder:
        (folder / "curves").mkdir()
        for run in runs.values():
            curves, evaluation = read_run(run)
            data[run.name] = curves, evaluation
            all_curves.append(curves.assign(run=run.name, algorithm=run.algorithm, task=run.task))
            curve_summary(curves).to_csv(folder / "curves" / f"{run.name}.csv", index=False)
            for mode, result in evaluation["modes"].items():
                for seed, per_seed in result["per_seed"].items():
                    finals.append(
                        {
                            "run": run.name,
                            "algorithm": run.algorithm,
                            "task": run.task,
                            "mode": mode,
                            "headline": mode == evaluation["headline_mode"],
                            "seed": int(seed),
                            "return": per_seed["mean"],
                            "win_rate": per_seed.get("win_rate", float("nan")),
                        }
                    )
            metrics[run.name] = {
                "eval_return_mean": evaluation["mean"],
                "eval_return_ci95_low": evaluation["ci95"][0],
                "eval_return_ci95_high": evaluation["ci95"][1],
                "seeds": len(run.seeds),
            }
            headline = evaluation["modes"][evaluation["headline_mode"]]
            if "win_rate" in headline:
                metrics[run.name]["eval_win_rate"] = headline["win_rate"]
        columns = ["run", "algorithm", "task", "step", "seed", "return", "win_rate"]
        pd.concat(all_curves)[columns].to_csv(folder / "curves.csv", index=False)
        pd.DataFrame(finals).to_csv(folder / "final.csv", index=False)
        # marl-eval reads steps in file order: keys keep their order (no sort_keys)
        document = export(params.get("figures", {}), runs, data)
        (folder / "marl_eval.json").write_text(json.dumps(document, allow_nan=False) + "\n")
        publish(folder / "curves.csv", layout.RESULTS / "curves.csv")
        publish(folder / "final.csv", layout.RESULTS / "final.csv")
        publish(folder / "curves", layout.CURVE_PLOTS)
        publish(folder / "marl_eval.json", layout.MARL_EVAL)
        write_json(layout.RESULTS / "metrics.json", metrics)


if __name__ == "__main__":
    stopping.run(main)
