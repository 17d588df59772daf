"""The papers' claims (claims.yaml) checked against our results.

``load_claims`` reads claims.yaml and checks every claim against params.yaml (an unknown
algorithm, task, figure, table or snapshot, or a malformed test, stops with one line naming
the key). ``verdict`` decides one claim on what ``Results`` holds: ``reproduced``, ``not
reproduced`` with the numbers that decided it, or ``no data yet`` naming what is missing. A test
never passes for lack of data.

Each test kind is one function of the results (claims.yaml's header says what each decides).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.design.budget import PAPER_PROFILE, budget_of
from pipeline.design.params import MATRIX_GAME_LEARNERS, METRICS, run_of
from pipeline.outputs import layout
from pipeline.statistics.curves import first_reach
from pipeline.statistics.final_scores import iqm, probability_of_improvement

CLAIMS_FILE = Path("claims.yaml")
CLAIM_KEYS = {"paper", "source", "shown_in", "words", "paper_numbers", "test", "calibrated", "budget"}
REQUIRED = ("paper", "source", "shown_in", "words", "test", "budget")
PAPERS = ("vm3ac", "iac")
REPRODUCED, NOT_REPRODUCED, NO_DATA = "reproduced", "not reproduced", "no data yet"
NOT_TESTABLE = "not testable at this budget"  # the runs trained for fewer steps than the claim needs
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NO_DATA, NOT_TESTABLE)


class ClaimsError(Exception):
    """A bad claim; the message starts with the key."""


class MissingData(Exception):
    """What a claim needs and the results do not hold (-> ``no data yet``)."""


@dataclass
class Verdict:
    verdict: str
    detail: str  # the numbers that decided it, or what is missing
    values: dict = field(default_factory=dict)  # numbers for DVC metrics
    lines: list[str] = field(default_factory=list)  # every comparison, where a test makes many


# ---- results: what the report stage reads from results/ ---------------------------------------


class Results:
    """The aggregate tables, and the tables and snapshots of other stages, read on demand."""

    def __init__(self, finals: pd.DataFrame, curves: pd.DataFrame, root: Path = layout.RESULTS):
        self.finals = finals[finals["headline"]]
        self.curves = curves
        self.root = root

    def scores(self, algorithm: str, task: str, metric: str) -> np.ndarray:
        run = run_of(algorithm, task)
        rows = self.finals[self.finals["run"] == run].sort_values("seed")
        if rows.empty:
            raise MissingData(f"run {run}")
        values = rows[metric].to_numpy(dtype=float)
        if np.isnan(values).any():
            raise MissingData(f"{metric} of run {run}")
        return values

    def curve(self, algorithm: str, task: str) -> pd.DataFrame:
        run = run_of(algorithm, task)
        rows = self.curves[self.curves["run"] == run]
        if rows.empty:
            raise MissingData(f"run {run}")
        return rows

    def csv(self, relative: str) -> pd.DataFrame:
        path = self.root / relative
        try:
            return pd.read_csv(path)
        except FileNotFoundError:
            raise MissingData(str(path)) from None


def _fmt(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.4g}"


# ---- the test kinds ---------------------------------------------------------------------------


def _scores_of(results: Results, test: dict) -> dict:
    """Every (algorithm, task) score array the test names; every missing run at once."""
    metric = test.get("metric", "return")
    names = test.get("algorithms", []) + test.get("baselines", []) + test.get("candidates", [])
    scores, missing = {}, []
    for task in test["tasks"]:
        for algorithm in names:
            try:
                scores[algorithm, task] = results.scores(algorithm, task, metric)
            except MissingData as err:
                missing.append(str(err))
    if missing:
        raise MissingData(", ".join(dict.fromkeys(missing)))
    return scores


def beats(results: Results, test: dict) -> Verdict:
    scores = _scores_of(results, test)
    held, lines = 0, []
    pairs = [(a, b) for a in test["algorithms"] for b in test["baselines"]]
    for task in test["tasks"]:
        for a, b in pairs:
            x, y = scores[a, task], scores[b, task]
            ok = iqm(x) > iqm(y) and probability_of_improvement(x, y) > test["min_probability"]
            held += ok
            lines.append(
                f"{task}: {a} {_fmt(iqm(x))} vs {b} {_fmt(iqm(y))}, "
                f"P(improvement) {probability_of_improvement(x, y):.2f}{'' if ok else ' (fails)'}"
            )
    total = len(pairs) * len(test["tasks"])
    verdict = REPRODUCED if held == total else NOT_REPRODUCED
    head = f"{held}/{total} comparisons hold (IQM of final {test.get('metric', 'return')})"
    failing = [line for line in lines if line.endswith("(fails)")]
    if failing:
        more = f"; and {len(failing) - 3} more" if len(failing) > 3 else ""
        head += "; " + "; ".join(failing[:3]) + more
    return Verdict(verdict, head, {"held": held, "comparisons": total}, lines)


def best_among(results: Results, test: dict) -> Verdict:
    scores = _scores_of(results, test)
    lines, wins = [], 0
    for task in test["tasks"]:
        by = {c: iqm(scores[c, task]) for c in test["candidates"]}
        best = max(by, key=by.get)
        wins += best in test["winners"]
        ranked = ", ".join(f"{c} {_fmt(v)}" for c, v in sorted(by.items(), key=lambda kv: -kv[1]))
        lines.append(f"{task}: best {best} ({ranked})")
    verdict = REPRODUCED if wins == len(test["tasks"]) else NOT_REPRODUCED
    return Verdict(verdict, "; ".join(lines), {"tasks_won": wins, "tasks": len(test["tasks"])})


def modes_close(results: Results, test: dict) -> Verdict:
    table = results.csv(f"tables/{test['table']}.csv")
    lines, ok_all, worst = [], True, 0.0
    for task in table["task"].unique():
        means = table[table["task"] == task].set_index("mode")["mean"]
        if test["mode"] not in means or test["reference"] not in means:
            raise MissingData(f"mode {test['mode']} or {test['reference']} of {task} in {test['table']}")
        value, reference = float(means[test["mode"]]), float(means[test["reference"]])
        gap = abs(value - reference) / abs(reference) if reference else math.inf
        ok = gap <= test["tolerance"]
        ok_all &= ok
        worst = max(worst, gap)
        gap_text = f"gap {gap:.3g}" if reference else "no gap to a reference of 0: decides nothing"
        lines.append(f"{task}: {test['mode']} {_fmt(value)} vs {test['reference']} {_fmt(reference)}, {gap_text}")
    verdict = REPRODUCED if ok_all else NOT_REPRODUCED
    return Verdict(verdict, "; ".join(lines), {"largest_relative_gap": worst})


def greedy_action(results: Results, test: dict) -> Verdict:
    table = results.csv(f"tables/{test['table']}.csv")
    u1, u2 = test["action"]
    row = table[(table["u1"] == u1) & (table["u2"] == u2)]
    if row.empty:
        raise MissingData(f"joint action ({u1},{u2}) in {test['table']}")
    seeds = int(row["seeds"].iloc[0])
    greedy = str(row["greedy_seeds"].iloc[0]).split() if row["greedy_seeds"].notna().iloc[0] else []
    ok = len(greedy) == (seeds if test["expect"] == "all" else 0)
    detail = f"{len(greedy)}/{seeds} seeds act ({u1},{u2}) greedily; P({u1},{u2}) = {row['mean'].iloc[0]:.3f}"
    return Verdict(REPRODUCED if ok else NOT_REPRODUCED, detail, {"greedy_seeds": len(greedy), "seeds": seeds})


def reaches_first(results: Results, test: dict) -> Verdict:
    medians, missing = {}, []
    for role in ("algorithm", "baseline"):
        try:
            first = first_reach(results.curve(test[role], test["task"]), test["threshold"])
            medians[role] = float(np.median(first.fillna(math.inf)))
        except MissingData as err:
            missing.append(str(err))
    if missing:
        raise MissingData(", ".join(missing))
    a, b = medians["algorithm"], medians["baseline"]
    ok = math.isfinite(a) and a < b
    detail = (
        f"median first step with return >= {test['threshold']:g}: {test['algorithm']} {_fmt(a)}, "
        f"{test['baseline']} {_fmt(b)}"
    )
    saved = b - a if math.isfinite(a) and math.isfinite(b) else math.nan
    return Verdict(REPRODUCED if ok else NOT_REPRODUCED, detail, {"steps_saved": saved})


def lower_on(results: Results, test: dict) -> Verdict:
    both = {**test, "tasks": [test["task"], test["reference_task"]]}
    scores = _scores_of(results, both)
    lines, held = [], 0
    for a in test["algorithms"]:
        low, ref = iqm(scores[a, test["task"]]), iqm(scores[a, test["reference_task"]])
        held += low < ref
        lines.append(f"{a}: {test['task']} {_fmt(low)} vs {test['reference_task']} {_fmt(ref)}")
    verdict = REPRODUCED if held == len(test["algorithms"]) else NOT_REPRODUCED
    return Verdict(verdict, "; ".join(lines), {"held": held, "algorithms": len(test["algorithms"])})


def covariance_positive(results: Results, test: dict) -> Verdict:
    data = results.csv(f"snapshots/{test['snapshot']}.csv")
    last = data[(data["step"] == data["step"].max()) & (data["agent_i"] != data["agent_j"])]
    if last.empty:
        raise MissingData(f"two agents' entries in snapshots/{test['snapshot']}.csv")
    mean = last.groupby(["agent_i", "agent_j"])["correlation"].mean()
    lines = [f"corr({i},{j}) {v:+.3f}" for (i, j), v in mean.items() if i < j]
    ok = bool((mean > 0).all())
    detail = f"step {int(last['step'].iloc[0])}, mean over seeds: " + ", ".join(lines)
    return Verdict(REPRODUCED if ok else NOT_REPRODUCED, detail, {"smallest_correlation": float(mean.min())})


def _nearest_teammate(agents: pd.DataFrame) -> float:
    """Mean over agents of the distance to the nearest other agent, in one seed's snapshot."""
    xy = agents[["x", "y"]].to_numpy()
    distance = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    return float(distance.min(1).mean())


def pairs_closer(results: Results, test: dict) -> Verdict:
    data = results.csv(f"snapshots/{test['snapshot']}.csv")
    agents = data[data["entity"] == "agent"]
    means = {}
    for role in ("algorithm", "baseline"):
        rows = agents[agents["algorithm"] == test[role]]
        if rows.empty:
            raise MissingData(f"{test[role]} in snapshots/{test['snapshot']}.csv")
        means[role] = float(rows.groupby("seed").apply(_nearest_teammate, include_groups=False).mean())
    ok = means["algorithm"] < means["baseline"]
    detail = (
        f"mean distance to the nearest teammate: {test['algorithm']} {means['algorithm']:.3f}, "
        f"{test['baseline']} {means['baseline']:.3f}"
    )
    return Verdict(REPRODUCED if ok else NOT_REPRODUCED, detail, {"distance_ratio": means["algorithm"] / means["baseline"]})


# kind -> (function, required fields, optional fields with defaults)
KINDS = {
    "beats": (beats, ("algorithms", "baselines", "tasks"), {"metric": "return", "min_probability": 0.5}),
    "best_among": (best_among, ("candidates", "winners", "tasks"), {"metric": "return"}),
    "modes_close": (modes_close, ("table", "mode", "reference", "tolerance"), {}),
    "greedy_action": (greedy_action, ("table", "action", "expect"), {}),
    "reaches_first": (reaches_first, ("algorithm", "baseline", "task", "threshold"), {}),
    "lower_on": (lower_on, ("algorithms", "task", "reference_task"), {"metric": "return"}),
    "covariance_positive": (covariance_positive, ("snapshot",), {}),
    "pairs_closer": (pairs_closer, ("snapshot", "algorithm", "baseline"), {}),
}


def rule(test: dict) -> str:
    """The test in one line, as the report shows it."""
    def text(value) -> str:
        return f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)

    fields = ", ".join(f"{k}={text(v)}" for k, v in test.items() if k != "kind")
    return f"{test['kind']}({fields})"


def verdict(claim: dict, results: Results) -> Verdict:
    function = KINDS[claim["test"]["kind"]][0]
    try:
        return function(results, claim["test"])
    except MissingData as err:
        return Verdict(NO_DATA, f"missing: {err}")


# ---- claims.yaml, checked against params.yaml --------------------------------------------------


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ClaimsError(f"{key}: {problem}")


def _names(value, key: str, known, what: str) -> None:
    _require(isinstance(value, list) and value and all(isinstance(v, str) for v in value), key, f"must be a non-empty list of {what} names, got {value!r}")
    for v in value:
        _require(v in known, key, f"unknown {what} '{v}'")


def _check_test(test, key: str, params: dict) -> dict:
    _require(isinstance(test, dict) and "kind" in test, key, "must be a mapping with a 'kind'")
    kind = test["kind"]
    _require(kind in KINDS, f"{key}.kind", f"unknown kind '{kind}' (kinds: {', '.join(KINDS)})")
    _, required, optional = KINDS[kind]
    for name in required:
        _require(name in test, key, f"a '{kind}' test needs '{name}'")
    for name in test:
        _require(name in {"kind", *required, *optional}, f"{key}.{name}", f"not a field of a '{kind}' test")
    test = {**optional, **test}
    algorithms, tasks = params.get("algorithms", {}), params.get("tasks", {})
    tables = {Path(f).stem for t, e in params.get("tables", {}).items() for f in _table_files(t, e)}
    snapshots = params.get("snapshots", {})
    for name in ("algorithms", "baselines", "candidates", "winners"):
        if name in test:
            _names(test[name], f"{key}.{name}", algorithms, "algorithm")
    for name in ("algorithm", "baseline"):
        if name in test:
            _names([test[name]], f"{key}.{name}", algorithms, "algorithm")
    if "tasks" in test:
        _names(test["tasks"], f"{key}.tasks", tasks, "task")
    for name in ("task", "reference_task"):
        if name in test:
            _names([test[name]], f"{key}.{name}", tasks, "task")
    if "winners" in test:
        _require(set(test["winners"]) <= set(test["candidates"]), f"{key}.winners", "must be among the candidates")
    if "metric" in test:
        _require(test["metric"] in METRICS, f"{key}.metric", f"must be one of {', '.join(METRICS)}")
    if "table" in test:
        _require(test["table"] in tables, f"{key}.table", f"no table '{test['table']}' (tables: {', '.join(sorted(tables))})")
    if "snapshot" in test:
        _require(test["snapshot"] in snapshots, f"{key}.snapshot", f"no snapshot '{test['snapshot']}'")
        wanted = {"covariance_positive": "covariance", "pairs_closer": "positions"}[kind]
        _require(snapshots[test["snapshot"]].get("kind") == wanted, f"{key}.snapshot", f"a '{kind}' test reads a '{wanted}' snapshot")
    for name in ("min_probability", "tolerance", "threshold"):
        if name in test:
            value = test[name]
            _require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value), f"{key}.{name}", f"must be a number, got {value!r}")
    if "min_probability" in test:
        _require(0 <= test["min_probability"] < 1, f"{key}.min_probability", "must be in [0, 1)")
    if "tolerance" in test:
        _require(test["tolerance"] >= 0, f"{key}.tolerance", "must be >= 0")
    if kind == "greedy_action":
        _require(test["expect"] in ("all", "none"), f"{key}.expect", "must be 'all' or 'none'")
        action = test["action"]
        _require(isinstance(action, list) and len(action) == 2, f"{key}.action", f"must be a joint action [u1, u2], got {action!r}")
    return test


def _table_files(name: str, entry: dict) -> list[str]:
    if entry.get("kind") == "matrix_game":
        return layout.matrix_table_files(name)
    return layout.table_files(name)


def check_claims(data, params: dict, source: str = str(CLAIMS_FILE)) -> dict[str, dict]:
    """Every claim checked; the claims by id with their tests' defaults filled in."""
    _require(isinstance(data, dict) and set(data) == {"claims"}, source, "must hold one mapping, 'claims'")
    claims = data["claims"]
    _require(isinstance(claims, dict) and claims, "claims", "must be a non-empty mapping of claim ids")
    shown = {k for section in ("figures", "tables", "snapshots", "comparisons") for k in params.get(section, {})}
    checked = {}
    for cid, claim in claims.items():
        key = f"claims.{cid}"
        _require(isinstance(claim, dict), key, "must be a mapping")
        for name in REQUIRED:
            _require(name in claim, key, f"missing '{name}'")
        for name in claim:
            _require(name in CLAIM_KEYS, f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(CLAIM_KEYS))})")
        _require(claim["paper"] in PAPERS, f"{key}.paper", f"must be one of {', '.join(PAPERS)}")
        _require(claim["shown_in"] in shown, f"{key}.shown_in", f"no figure, table, snapshot or comparison '{claim['shown_in']}' in params.yaml")
        budget = claim["budget"]
        _require(budget == PAPER_PROFILE or (isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1),
                 f"{key}.budget", f"must be env steps per seed (a positive integer) or '{PAPER_PROFILE}', got {budget!r}")  # fmt: skip
        for name in ("source", "words", "paper_numbers", "calibrated"):
            if name in claim:
                _require(isinstance(claim[name], str) and claim[name].strip(), f"{key}.{name}", "must be a non-empty string")
        checked[cid] = {**claim, "test": _check_test(claim["test"], f"{key}.test", params)}
    return checked


def load_claims(params: dict, path: Path = CLAIMS_FILE) -> dict[str, dict]:
    """claims.yaml read and checked, or SystemExit with one line naming the problem."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SystemExit(f"{path}: cannot be read ({err})".replace("\n", " ")) from None
    try:
        return check_claims(data, params, str(path))
    except ClaimsError as err:
        raise SystemExit(f"{path}: {err}") from None


# ---- the budget a claim needs (issue 28) --------------------------------------------------------


def claim_runs(claim: dict, params: dict) -> list[str]:
    """The runs a claim's test reads: its algorithms on its tasks, or a table's or snapshot's runs."""
    test = claim["test"]
    names = [test[k] for k in ("algorithm", "baseline") if k in test]
    names += [a for k in ("algorithms", "baselines", "candidates") for a in test.get(k, [])]
    tasks = test.get("tasks", []) + [test[k] for k in ("task", "reference_task") if k in test]
    runs = [run_of(a, t) for t in tasks for a in names]
    if "table" in test:
        for name, table in params.get("tables", {}).items():
            if Path(test["table"]).stem.startswith(name):
                if table["kind"] == "matrix_game":
                    runs += [run_of(table[part], table["task"]) for part in MATRIX_GAME_LEARNERS]
                else:
                    runs += [run_of(table["algorithm"], task) for task in table["columns"].values()]
    if "snapshot" in test:
        snap = params["snapshots"][test["snapshot"]]
        runs += [run_of(a, snap["task"]) for a in snap["rows"].values()]
    return list(dict.fromkeys(runs))


def needed_steps(claim: dict, params: dict, task: str) -> int:
    """Env steps per seed at which the paper shows the claim, on ``task``."""
    if claim["budget"] == PAPER_PROFILE:
        return budget_of(params["profiles"][PAPER_PROFILE], task).env_steps
    return claim["budget"]


def budget_gap(claim: dict, params: dict, runs: dict) -> tuple[int, int] | None:
    """(our env steps, the claim's) on the run furthest below the claim's budget; None when every
    run the claim reads trained at least as long as the claim needs (or none exists yet)."""
    short = [
        (run.budget.env_steps, needed_steps(claim, params, run.task))
        for name in claim_runs(claim, params)
        if (run := runs.get(name)) is not None
    ]
    short = [pair for pair in short if pair[0] < pair[1]]
    return min(short, key=lambda p: p[0] / p[1]) if short else None
