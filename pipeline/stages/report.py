"""Stage ``report``: the papers' claims checked on our results, final-performance statistics,
and one static page with every figure and table and where each came from.

Writes into ``results/report/``:
- ``claims.json``: every claim's verdict and the numbers that decided it (DVC metrics);
- ``final_scores.csv`` / ``.json``: per run, the mean and IQM of the per-seed final scores with
  95% bootstrap intervals (pipeline/statistics/final_scores.py; a DVC plot and DVC metrics);
- ``claims.md``: the claims table in Markdown, for a code-hosting site;
- ``index.html``: the page (claims, figures, tables, provenance). It loads no script and no
  remote resource: it opens from disk, in the repository or in an unpacked bundle, where it
  finds the figures at the same relative paths.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from pipeline.design import evidence
from pipeline.design.budget import PAPER_PROFILE
from pipeline.design.code_files import ROOT
from pipeline.design.measured_cost import training_seconds
from pipeline.design.params import load_runs
from pipeline.outputs import layout, stopping
from pipeline.outputs.provenance import package_versions, pipeline_stages, stage_inputs
from pipeline.outputs.staging import publish, staging, write_json
from pipeline.report.claims import (
    NO_DATA,
    NOT_TESTABLE,
    REPRODUCED,
    VERDICTS,
    Results,
    budget_gap,
    claim_runs,
    load_claims,
    needed_steps,
    rule,
    verdict,
)
from pipeline.report.learning_checks import checks_table
from pipeline.report.page import artifacts, render_page
from pipeline.report.page import relative as relative_to_page
from pipeline.statistics.final_scores import interval_estimates

COSTS = Path("benchmarks/measured/paper_cost.json")  # relative to the repository
CHECKS = evidence.FOLDER / "results" / "checks" / "checks.json"  # the evidence instance's learning checks
EVIDENCE_CLAIMS = evidence.FOLDER / layout.REPORT / "claims.json"
EVIDENCE_SCORES = evidence.FOLDER / layout.REPORT / "final_scores.json"  # every evidence run's evaluation
EVIDENCE_FIGURES = evidence.FOLDER / layout.FIGURES  # its figures; check_*.png are the checks' own


def report_settings(params: dict) -> dict:
    """params.yaml ``report``: the bootstrap's replications and seed, checked."""
    settings = params.get("report")
    if not isinstance(settings, dict) or set(settings) != {"bootstrap_reps", "bootstrap_seed"}:
        raise SystemExit("params.yaml: report: must hold bootstrap_reps and bootstrap_seed")
    for key, low in (("bootstrap_reps", 100), ("bootstrap_seed", 0)):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise SystemExit(f"params.yaml: report.{key}: must be an integer >= {low}, got {value!r}")
    return settings


def read_results() -> Results:
    paths = layout.RESULTS / "final.csv", layout.RESULTS / "curves.csv"
    try:
        finals, curves = (pd.read_csv(p) for p in paths)
    except (OSError, ValueError) as err:
        raise SystemExit(f"report: {err}; run the aggregate stage first") from None
    if "headline" not in finals.columns:
        raise SystemExit(f"report: {paths[0]} has no 'headline' column; rerun the aggregate stage")
    return Results(finals, curves)


def final_scores(results: Results, settings: dict) -> pd.DataFrame:
    """Per run and metric (return; win rate where the task reports wins): seeds, mean and IQM
    with their 95% bootstrap intervals."""
    rows = []
    for run, group in results.finals.groupby("run", sort=True):
        first = group.iloc[0]
        for metric in ("return", "win_rate"):
            values = group.sort_values("seed")[metric]
            if values.isna().all():
                continue
            estimates = interval_estimates(values, settings["bootstrap_reps"], settings["bootstrap_seed"])
            rows.append({"run": run, "algorithm": first["algorithm"], "task": first["task"], "metric": metric,
                         "mode": first["mode"], "seeds": len(values), **estimates})  # fmt: skip
    return pd.DataFrame(rows)


def budget(params: dict) -> dict:
    """The profile the verdicts were computed at, beside the papers' budget."""
    name = params["profile"]
    used, paper = params["profiles"][name], params["profiles"][PAPER_PROFILE]

    def text(p: dict) -> str:  # a profile with budgets per task (the evidence's) gives their range
        steps = sorted({p["env_steps"], *(t.get("env_steps", p["env_steps"]) for t in (p.get("tasks") or {}).values())})
        span = f"{steps[0]:,}" if len(steps) == 1 else f"{steps[0]:,} to {steps[-1]:,} (per task)"
        return f"{p['seeds']} seeds x {span} env steps, {p['eval_episodes']} evaluation episodes"

    return {"profile": name, "reduced": name != PAPER_PROFILE, "used": text(used), "paper": text(paper)}


def claim_cost(claim: dict, params: dict, table: dict) -> float | None:
    """CPU-hours on one core of the claim's runs at the claim's own budget, 7 seeds each, from the
    measured per-step times (benchmarks/measured/paper_cost.json); None where a run is unmeasured."""
    rows = table.get("runs", {})
    total = 0.0
    for name in claim_runs(claim, params):
        row = rows.get(name)
        if row is None:
            return None
        # from step 0 (an upper bound by the steps before learning_starts, a few % at a claim's budget)
        total += training_seconds(row, needed_steps(claim, params, row["task"]), 0, row["seeds"]) / 3600
    return total


def checked_claims(claims: dict, results: Results, spent: dict, params: dict, runs: dict, indicative: bool) -> list[dict]:
    """Every claim's verdict at the budget its runs trained for. Below the budget at which the
    paper shows a claim, the default build says "not testable at this budget" (what its runs
    showed is kept in the detail); the evidence instance, which runs the largest budget that
    fits, keeps the verdict and marks it with its budget (``indicative``)."""
    rows = []
    table = measured_costs()
    for cid, claim in claims.items():
        decided = verdict(claim, results)
        shown, detail = decided.verdict, decided.detail
        gap = budget_gap(claim, params, runs)
        steps = min((runs[n].budget.env_steps for n in claim_runs(claim, params) if n in runs), default=None)
        cost = claim_cost(claim, params, table)
        cost_text = "" if cost is None else f"; the claim's budget costs {cost:,.1f} CPU-hours (7 seeds, one core)"
        if gap is None:
            at = f"at the claim's budget ({steps:,} env steps)" if steps else "at the claim's budget"
        elif indicative and decided.verdict != NO_DATA:
            at = f"indicative: at {gap[0]:,} env steps, below the claim's {gap[1]:,}{cost_text}"
        else:
            at = f"ours {gap[0]:,} env steps, the claim's {gap[1]:,}{cost_text}"
            if decided.verdict != NO_DATA:
                shown, detail = NOT_TESTABLE, f"these runs show: {decided.verdict}; {decided.detail}"
        rows.append({"id": cid, "paper_numbers": None, "calibrated": None, **claim, "rule": rule(claim["test"]), "verdict": shown,
                     "detail": detail, "lines": decided.lines, "values": decided.values, "at": at,
                     "profile": spent["profile"]})  # fmt: skip
    return rows


def measured_costs() -> dict:
    """The committed per-step times of every run at 7 seeds (benchmarks/measured/paper_cost.json)."""
    try:
        return json.loads((ROOT / COSTS).read_text())
    except (OSError, ValueError):
        return {}


def _finite(value):
    """JSON has no infinity (a gap to a zero reference): such a number is written as null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def claims_metrics(rows: list[dict], spent: dict) -> dict:
    summary = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    claims = {
        r["id"]: {"verdict": r["verdict"], "reproduced": int(r["verdict"] == REPRODUCED), "budget": r["at"], **{k: _finite(v) for k, v in r["values"].items()}}
        for r in rows
    }
    return {"profile": spent["profile"], "budget": spent["used"], "summary": summary, "claims": claims}


def _md(text) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def claims_markdown(rows: list[dict], spent: dict) -> str:
    lines = [
        "# Claims of the two papers, checked on this repository's results",
        "",
        f"Profile **{spent['profile']}** ({spent['used']}); the papers' budget is the `paper` profile "
        f"({spent['paper']}).",
        *(["Verdicts at a reduced budget say what these short runs show, not what the papers' runs would."] if spent["reduced"] else []),
        "",
        "| Claim | Paper | Source | Verdict | Budget | Paper's numbers | Ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        calibrated = f" **Calibrated:** {r['calibrated']}." if r["calibrated"] else ""
        lines.append(
            f"| `{r['id']}`: {_md(r['words'])} | {r['paper']} | {_md(r['source'])} | {r['verdict']} | {_md(r['at'])} | "
            f"{_md(r['paper_numbers'])} | {_md(r['detail'])}{_md(calibrated)} |"
        )
    return "\n".join(lines) + "\n"


def read_evidence() -> dict:
    """The evidence instance's learning checks and claims (evidence/results/), for the root's
    report: each at the budget it ran."""
    found = {}
    for key, path in (("checks", CHECKS), ("claims", EVIDENCE_CLAIMS)):
        try:
            found[key] = json.loads(path.read_text())
        except (OSError, ValueError):
            found[key] = None
    for name, check in (found["checks"] or {}).items():
        figure = EVIDENCE_FIGURES / "harness" / f"check_{name}.png"
        check["figure"] = relative_to_page(figure) if figure.is_file() else None
    found["runs"] = evidence_runs(found["checks"] or {})
    found["figures"] = [relative_to_page(f) for f in sorted(EVIDENCE_FIGURES.glob("*/*.png")) if not f.name.startswith("check_")]
    return found


def evidence_runs(checks: dict) -> list[dict]:
    """Every evidence run's final evaluation (mean over seeds, 95% bootstrap interval), with the
    checks that read it: runs without a check (a claim's or a figure's, or one no independent
    curve exists for) are evidence too, and the page shows them beside the checked ones."""
    try:
        scores = json.loads(EVIDENCE_SCORES.read_text())
    except (OSError, ValueError):
        return []
    read_by = {}
    for name, check in checks.items():
        if check.get("run"):
            read_by.setdefault(check["run"], []).append(name)
    rows = []
    for run, metrics in sorted(scores.items()):
        shown = {
            metric: f"{m['mean']:.3g} [{m['mean_ci95_low']:.3g}, {m['mean_ci95_high']:.3g}]"
            for metric, m in metrics.items()
        }
        seeds = max(m["seeds"] for m in metrics.values())
        rows.append({"run": run, "seeds": seeds, "return": shown.get("return", ""),
                     "win_rate": shown.get("win_rate", ""), "checks": ", ".join(read_by.get(run, []))})  # fmt: skip
    return rows


def evidence_markdown(learning: dict) -> str:
    """The "Learning evidence" section of claims.md: the checks and the claims at their budgets."""
    if not learning:
        return ""
    lines = ["", "## Learning evidence", "",
             f"Runs at budgets where learning can show (the evidence instance, `{evidence.FOLDER}/`: "
             "evidence.yaml; `make evidence` rebuilds them).", "",
             *checks_table(learning.get("checks") or {})]  # fmt: skip
    claims = (learning.get("claims") or {}).get("claims") or {}
    if claims:
        lines += ["", "Claims at the evidence budgets:", "", "| Claim | Verdict | Budget |", "|---|---|---|"]
        lines += [f"| `{cid}` | {c['verdict']} | {_md(c.get('budget'))} |" for cid, c in claims.items()]
    if learning.get("runs"):
        lines += ["", "Every evidence run's final evaluation (deterministic episodes; mean over seeds [95% percentile-bootstrap interval]), "
                  "with the checks that read it:", "",
                  "| Run | Seeds | Return | Win rate | Checks |", "|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['run']} | {r['seeds']} | {r['return']} | {r['win_rate']} | {r['checks']} |" for r in learning["runs"]]
    if learning.get("figures"):
        lines += ["", "Figures of the evidence instance: " + ", ".join(f"[{Path(f).stem}]({f})" for f in learning["figures"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    params, runs = load_runs()
    settings = report_settings(params)
    claims = load_claims(params)
    results = read_results()
    spent = budget(params)
    rows = checked_claims(claims, results, spent, params, runs, indicative=evidence.is_instance())
    learning = {} if evidence.is_instance() else read_evidence()
    scores = final_scores(results, settings)
    stages = pipeline_stages()
    items = artifacts(params)
    for item in items:
        item["provenance"] = stage_inputs(stages, item["stage"])
    with staging("report") as folder:
        write_json(folder / "claims.json", claims_metrics(rows, spent))
        scores.to_csv(folder / "final_scores.csv", index=False)
        by_run = {}
        for r in scores.to_dict("records"):
            by_run.setdefault(r["run"], {})[r["metric"]] = {k: v for k, v in r.items() if k not in ("run", "algorithm", "task", "metric", "mode")}
        write_json(folder / "final_scores.json", by_run)
        (folder / "claims.md").write_text(claims_markdown(rows, spent) + evidence_markdown(learning))
        page = render_page(rows, scores, items, spent, package_versions(), sorted(runs), learning)
        (folder / "index.html").write_text(page)
        for name in layout.REPORT_FILES:
            publish(folder / name, layout.REPORT / name)


if __name__ == "__main__":
    stopping.run(main)
