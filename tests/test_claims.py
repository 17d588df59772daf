"""Claims decided on hand-made results: every test kind gives each verdict it can give, a claim
whose runs are missing says `no data yet` and names them, and a bad claim stops in one line."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.design.params import load
from pipeline.report.claims import (
    NO_DATA,
    NOT_REPRODUCED,
    REPRODUCED,
    ClaimsError,
    Results,
    check_claims,
    load_claims,
    verdict,
)


def finals(scores: dict[tuple[str, str], list[float]], metric: str = "return") -> pd.DataFrame:
    rows = []
    for (algorithm, task), values in scores.items():
        for seed, value in enumerate(values):
            row = {"run": f"{algorithm}-{task}", "algorithm": algorithm, "task": task, "mode": "deterministic",
                   "headline": True, "seed": seed, "return": np.nan, "win_rate": np.nan}  # fmt: skip
            row[metric] = value
            rows.append(row)
            rows.append({**row, "mode": "other", "headline": False, metric: -1e9})  # never read
    columns = ["run", "algorithm", "task", "mode", "headline", "seed", "return", "win_rate"]
    return pd.DataFrame(rows, columns=columns)


def curves(points: dict[tuple[str, str], dict[int, list[float]]]) -> pd.DataFrame:
    rows = [
        {"run": f"{a}-{t}", "algorithm": a, "task": t, "step": step, "seed": seed, "return": value, "win_rate": np.nan}
        for (a, t), by_step in points.items()
        for step, values in by_step.items()
        for seed, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def results(final: pd.DataFrame, curve: pd.DataFrame | None = None, root: Path = Path("nowhere")) -> Results:
    empty = pd.DataFrame(columns=["run", "algorithm", "task", "step", "seed", "return", "win_rate"])
    return Results(final, empty if curve is None else curve, root)


def claim(**test) -> dict:
    return {"test": test}


BEATS = {"kind": "beats", "algorithms": ["a"], "baselines": ["b", "c"], "tasks": ["t"], "metric": "return", "min_probability": 0.5}


def test_beats_holds_only_when_every_comparison_does():
    good = finals({("a", "t"): [5, 6, 7], ("b", "t"): [1, 2, 3], ("c", "t"): [4, 4, 4]})
    decided = verdict(claim(**BEATS), results(good))
    assert decided.verdict == REPRODUCED and decided.values == {"held": 2, "comparisons": 2}
    close = finals({("a", "t"): [5, 6, 7], ("b", "t"): [1, 2, 3], ("c", "t"): [4, 6.5, 8]})
    decided = verdict(claim(**BEATS), results(close))  # IQM 6 vs 6.17: c is not beaten
    assert decided.verdict == NOT_REPRODUCED and decided.values["held"] == 1
    assert decided.lines == ["t: a 6 vs b 2, P(improvement) 1.00", "t: a 6 vs c 6.167, P(improvement) 0.44 (fails)"]
    assert decided.detail == "1/2 comparisons hold (IQM of final return); t: a 6 vs c 6.167, P(improvement) 0.44 (fails)"


def test_beats_needs_the_probability_of_improvement_too():
    # a's IQM is higher, but one lucky seed carries it: P(a > b) = 4/9 < 0.5
    final = finals({("a", "t"): [0, 0, 100], ("b", "t"): [1, 1, 1], ("c", "t"): [-5, -5, -5]})
    assert verdict(claim(**BEATS), results(final)).verdict == NOT_REPRODUCED


def test_a_missing_run_gives_no_data_yet_naming_every_missing_run():
    final = finals({("a", "t"): [5, 6, 7]})
    decided = verdict(claim(**BEATS), results(final))
    assert decided.verdict == NO_DATA
    assert decided.detail == "missing: run b-t, run c-t"


def test_a_metric_the_run_does_not_report_is_missing_not_zero():
    final = finals({("a", "t"): [5, 6, 7], ("b", "t"): [1, 2, 3], ("c", "t"): [1, 2, 3]})
    decided = verdict(claim(**{**BEATS, "metric": "win_rate"}), results(final))
    assert decided.verdict == NO_DATA and "win_rate of run a-t" in decided.detail


def test_best_among():
    test = {"kind": "best_among", "candidates": ["a", "b", "c"], "winners": ["a", "b"], "tasks": ["t", "u"], "metric": "return"}
    scores = {("a", "t"): [3, 3, 3], ("b", "t"): [1, 1, 1], ("c", "t"): [2, 2, 2],
              ("a", "u"): [1, 1, 1], ("b", "u"): [5, 5, 5], ("c", "u"): [2, 2, 2]}  # fmt: skip
    assert verdict(claim(**test), results(finals(scores))).verdict == REPRODUCED
    scores["c", "u"] = [9, 9, 9]
    decided = verdict(claim(**test), results(finals(scores)))
    assert decided.verdict == NOT_REPRODUCED and "u: best c" in decided.detail


def write_csv(root: Path, relative: str, frame: pd.DataFrame) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_modes_close(tmp_path):
    test = {"kind": "modes_close", "table": "table1", "mode": "zero", "reference": "sampled", "tolerance": 0.05}
    table = pd.DataFrame({"mode": ["sampled", "zero", "sampled", "zero"], "task": ["p2", "p2", "p3", "p3"],
                          "mean": [413.0, 409.0, 734.0, 743.0]})  # fmt: skip  (the paper's own Table 1)
    write_csv(tmp_path, "tables/table1.csv", table)
    decided = verdict(claim(**test), results(finals({}), root=tmp_path))
    assert decided.verdict == REPRODUCED
    assert decided.values["largest_relative_gap"] == pytest.approx(9 / 734)
    table.loc[3, "mean"] = 800.0
    write_csv(tmp_path, "tables/table1.csv", table)
    assert verdict(claim(**test), results(finals({}), root=tmp_path)).verdict == NOT_REPRODUCED
    table["mean"] = 0.0  # policies that never score agree trivially: that decides nothing
    write_csv(tmp_path, "tables/table1.csv", table)
    decided = verdict(claim(**test), results(finals({}), root=tmp_path))
    assert decided.verdict == NOT_REPRODUCED and "no gap to a reference of 0: decides nothing" in decided.detail


def test_a_missing_table_gives_no_data_yet(tmp_path):
    test = {"kind": "modes_close", "table": "table1", "mode": "zero", "reference": "sampled", "tolerance": 0.05}
    decided = verdict(claim(**test), results(finals({}), root=tmp_path))
    assert decided.verdict == NO_DATA and decided.detail == f"missing: {tmp_path / 'tables/table1.csv'}"


def test_greedy_action(tmp_path):
    table = pd.DataFrame({"quantity": ["P", "P"], "u1": ["A", "B"], "u2": ["A", "B"], "mean": [0.8, 0.1],
                          "seeds": [3, 3], "greedy_seeds": ["0 1 2", np.nan]})  # fmt: skip
    write_csv(tmp_path, "tables/m.csv", table)
    test = {"kind": "greedy_action", "table": "m", "action": ["A", "A"], "expect": "all"}
    assert verdict(claim(**test), results(finals({}), root=tmp_path)).verdict == REPRODUCED
    assert verdict(claim(**{**test, "expect": "none"}), results(finals({}), root=tmp_path)).verdict == NOT_REPRODUCED
    decided = verdict(claim(**{**test, "action": ["B", "B"], "expect": "none"}), results(finals({}), root=tmp_path))
    assert decided.verdict == REPRODUCED and decided.detail.startswith("0/3 seeds act (B,B) greedily")


def test_reaches_first():
    test = {"kind": "reaches_first", "algorithm": "a", "baseline": "b", "task": "t", "threshold": 10}
    points = {("a", "t"): {0: [0, 0, 0], 100: [10, 12, 3], 200: [11, 11, 11]},
              ("b", "t"): {0: [0, 0, 0], 100: [0, 0, 0], 200: [10, 9, 20]}}  # fmt: skip
    decided = verdict(claim(**test), results(finals({}), curves(points)))
    assert decided.verdict == REPRODUCED and decided.values == {"steps_saved": 100.0}
    points["b", "t"][100] = [10, 10, 0]  # b's median seed now reaches at 100 as well
    assert verdict(claim(**test), results(finals({}), curves(points))).verdict == NOT_REPRODUCED
    never = {("a", "t"): {0: [0, 0, 0]}, ("b", "t"): {0: [0, 0, 0]}}
    decided = verdict(claim(**test), results(finals({}), curves(never)))  # neither reaches: not a pass
    assert decided.verdict == NOT_REPRODUCED and "a never, b never" in decided.detail
    decided = verdict(claim(**test), results(finals({}), curves({("a", "t"): {0: [0, 0, 0]}})))
    assert decided.verdict == NO_DATA and decided.detail == "missing: run b-t"


def test_lower_on():
    test = {"kind": "lower_on", "algorithms": ["a", "b"], "task": "po", "reference_task": "full", "metric": "return"}
    scores = {("a", "po"): [1, 1, 1], ("a", "full"): [2, 2, 2], ("b", "po"): [1, 1, 1], ("b", "full"): [3, 3, 3]}
    assert verdict(claim(**test), results(finals(scores))).verdict == REPRODUCED
    scores["b", "po"] = [4, 4, 4]
    assert verdict(claim(**test), results(finals(scores))).verdict == NOT_REPRODUCED


def test_covariance_positive(tmp_path):
    rows = [{"step": step, "seed": seed, "agent_i": i, "agent_j": j, "correlation": 1.0 if i == j else value}
            for step, value in ((0, -0.5), (100, 0.3)) for seed in (0, 1) for i in range(3) for j in range(3)]  # fmt: skip
    write_csv(tmp_path, "snapshots/cov.csv", pd.DataFrame(rows))
    test = {"kind": "covariance_positive", "snapshot": "cov"}
    decided = verdict(claim(**test), results(finals({}), root=tmp_path))
    assert decided.verdict == REPRODUCED and decided.detail.startswith("step 100")
    rows[-2]["correlation"] = -2.0  # seed 1's corr(2, 1) at the last step drags the mean below 0
    write_csv(tmp_path, "snapshots/cov.csv", pd.DataFrame(rows))
    assert verdict(claim(**test), results(finals({}), root=tmp_path)).verdict == NOT_REPRODUCED


def test_pairs_closer(tmp_path):
    def agents(algorithm, xy):
        return [{"algorithm": algorithm, "seed": 0, "entity": "agent", "x": x, "y": y} for x, y in xy]

    pairs = agents("a", [(0, 0), (0, 0.1), (1, 1), (1, 1.1)])  # two groups of two
    spread = agents("b", [(0, 0), (0, 1), (1, 0), (1, 1)])
    prey = [{"algorithm": "a", "seed": 0, "entity": "prey", "x": 0, "y": 0.05}]
    write_csv(tmp_path, "snapshots/pos.csv", pd.DataFrame(pairs + spread + prey))
    test = {"kind": "pairs_closer", "snapshot": "pos", "algorithm": "a", "baseline": "b"}
    decided = verdict(claim(**test), results(finals({}), root=tmp_path))
    assert decided.verdict == REPRODUCED and decided.values["distance_ratio"] == pytest.approx(0.1)
    swapped = {**test, "algorithm": "b", "baseline": "a"}
    assert verdict(claim(**swapped), results(finals({}), root=tmp_path)).verdict == NOT_REPRODUCED


# ---- claims.yaml checked against params.yaml ---------------------------------------------------


@pytest.fixture(scope="module")
def params():
    return load()


@pytest.fixture(scope="module")
def real_claims(params):
    return yaml.safe_load(Path("claims.yaml").read_text())


def test_every_claim_of_claims_yaml_is_well_formed_and_both_papers_are_covered(params, real_claims):
    checked = check_claims(real_claims, params)
    assert {c["paper"] for c in checked.values()} == {"vm3ac", "iac"}
    assert {c["shown_in"] for c in checked.values()} >= {"fig3", "vm3ac_fig4", "fig5_ab", "fig5_cd", "table1",
                                                         "iac_matrix_game", "iac_fig4", "iac_fig6", "iac_fig7"}  # fmt: skip


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["test"].update(algorithms=["vm4ac"]), "claims.c.test.algorithms: unknown algorithm 'vm4ac'"),
        (lambda c: c["test"].update(tasks=["mars"]), "claims.c.test.tasks: unknown task 'mars'"),
        (lambda c: c.update(shown_in="fig99"), "claims.c.shown_in: no figure, table, snapshot or comparison 'fig99' in params.yaml"),
        (lambda c: c["test"].update(kind="wins"), "claims.c.test.kind: unknown kind 'wins'"),
        (lambda c: c["test"].pop("baselines"), "claims.c.test: a 'beats' test needs 'baselines'"),
        (lambda c: c["test"].update(threshold=3), "claims.c.test.threshold: not a field of a 'beats' test"),
        (lambda c: c["test"].update(min_probability=1.5), "claims.c.test.min_probability: must be in [0, 1)"),
        (lambda c: c["test"].update(metric="wins"), "claims.c.test.metric: must be one of return, win_rate"),
        (lambda c: c.pop("words"), "claims.c: missing 'words'"),
        (lambda c: c.update(verdict="reproduced"), "claims.c.verdict: unknown key"),
        (lambda c: c.update(test="beats"), "claims.c.test: must be a mapping with a 'kind'"),
    ],
)
def test_a_bad_claim_is_named_in_one_line(params, real_claims, edit, message):
    one = copy.deepcopy(real_claims["claims"]["vm3ac_fig3_all_tasks"])
    edit(one)
    with pytest.raises(ClaimsError) as err:
        check_claims({"claims": {"c": one}}, params)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_tables_and_snapshots_are_checked_by_name_and_kind(params, real_claims):
    table = copy.deepcopy(real_claims["claims"]["iac_matrix_qmix_suboptimal"])
    table["test"]["table"] = "iac_matrix_game_table9"
    with pytest.raises(ClaimsError, match=r"^claims.c.test.table: no table 'iac_matrix_game_table9'"):
        check_claims({"claims": {"c": table}}, params)
    snapshot = copy.deepcopy(real_claims["claims"]["iac_pendulum_covariance"])
    snapshot["test"]["snapshot"] = "fig6"
    with pytest.raises(ClaimsError, match="^claims.c.test.snapshot: a 'covariance_positive' test reads a 'covariance' snapshot"):
        check_claims({"claims": {"c": snapshot}}, params)


def test_an_unreadable_claims_file_stops_in_one_line(tmp_path, params):
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims: [unclosed\n")
    with pytest.raises(SystemExit) as err:
        load_claims(params, bad)
    assert str(err.value).startswith(f"{bad}: cannot be read") and "\n" not in str(err.value)
