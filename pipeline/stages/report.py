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

import math

import pandas as pd

from pipeline.design.budget import PAPER_PROFILE
from pipeline.design.params import load_runs
from pipeline.outputs import layout, stopping
from pipeline.outputs.provenance import package_versions, pipeline_stages, stage_inputs
from pipeline.outputs.staging import publish, staging, write_json
from pipeline.report.claims import (
    NO_DATA,
    REPRODUCED,
    VERDICTS,
    Results,
    load_claims,
    rule,
    verdict,
)
from pipeline.report.page import artifacts, render_page
from pipeline.statistics.final_scores import interval_estimates


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

    def text(p: dict) -> str:
        return f"{p['seeds']} seeds x {p['env_steps']:,} env steps, {p['eval_episodes']} evaluation episodes"

    return {"profile": name, "reduced": name != PAPER_PROFILE, "used": text(used), "paper": text(paper)}


def checked_claims(claims: dict, results: Results, spent: dict) -> list[dict]:
    rows = []
    for cid, claim in claims.items():
        decided = verdict(claim, results)
        rows.append({"id": cid, "paper_numbers": None, "calibrated": None, **claim, "rule": rule(claim["test"]), "verdict": decided.verdict,
                     "detail": decided.detail, "lines": decided.lines, "values": decided.values,
                     "profile": spent["profile"]})  # fmt: skip
    return rows


def _finite(value):
    """JSON has no infinity (a gap to a zero reference): such a number is written as null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def claims_metrics(rows: list[dict], spent: dict) -> dict:
    summary = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    claims = {
        r["id"]: {"verdict": r["verdict"], "reproduced": int(r["verdict"] == REPRODUCED), **{k: _finite(v) for k, v in r["values"].items()}}
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
        "| Claim | Paper | Source | Verdict | Paper's numbers | Ours |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        shown = r["verdict"] + (f" ({spent['profile']} profile)" if spent["reduced"] and r["verdict"] != NO_DATA else "")
        calibrated = f" **Calibrated:** {r['calibrated']}." if r["calibrated"] else ""
        lines.append(
            f"| `{r['id']}`: {_md(r['words'])} | {r['paper']} | {_md(r['source'])} | {shown} | "
            f"{_md(r['paper_numbers'])} | {_md(r['detail'])}{_md(calibrated)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    params, runs = load_runs()
    settings = report_settings(params)
    claims = load_claims(params)
    results = read_results()
    spent = budget(params)
    rows = checked_claims(claims, results, spent)
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
        (folder / "claims.md").write_text(claims_markdown(rows, spent))
        page = render_page(rows, scores, items, spent, package_versions(), sorted(runs))
        (folder / "index.html").write_text(page)
        for name in layout.REPORT_FILES:
            publish(folder / name, layout.REPORT / name)


if __name__ == "__main__":
    stopping.run(main)
