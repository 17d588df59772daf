"""IAC Fig. 7 from learning curves (pipeline/analyses/iac/steps_saved.py): first-reach steps, Δt = t1 − ti,
"not reached", the return difference, and the stage on a hand-written results/curves.csv."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml
from scipy import stats

from pipeline.analyses.iac import steps_saved
from pipeline.analyses.iac.steps_saved import COLUMNS, compare, final_return
from pipeline.design.params import ParamsError, _check_comparison
from pipeline.outputs import layout
from pipeline.statistics.curves import first_reach
from pipeline.statistics.intervals import welch_ci95

REACH, FINAL = "iac_predator_prey", "iac_po_predator_prey"
ENTRY = {
    "paper": "iac",
    "title": "Steps saved against DDPG-MIX and return difference",
    "baseline": "ddpg_mix",
    "algorithms": {"IAC": "iac", "SIAQ": "siaq"},
    "reach": {"task": REACH, "threshold": 1000},
    "final": {"task": FINAL, "last_points": 2},
    "reported": {"steps_saved_k": {"IAC": 295}, "steps_saved_k_implied": {"SIAQ": 235}},
}


def curve(run: str, per_seed: dict[int, list[float]], interval: int = 5000) -> pd.DataFrame:
    """A run's curve: seed -> returns at steps 0, interval, 2 * interval, ..."""
    rows = [
        {"run": run, "step": k * interval, "seed": seed, "return": value}
        for seed, values in per_seed.items()
        for k, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def ramp(reach_step: int, interval: int = 5000, last: int = 400000) -> list[float]:
    """Returns of 0 until ``reach_step``, then 1000 (the threshold exactly) to the end."""
    return [0.0 if s < reach_step else 1000.0 for s in range(0, last + 1, interval)]


def curves_of(reach: dict[str, dict], final: dict[str, dict]) -> pd.DataFrame:
    frames = [curve(f"{a}-{REACH}", seeds) for a, seeds in reach.items()]
    frames += [curve(f"{a}-{FINAL}", seeds) for a, seeds in final.items()]
    return pd.concat(frames, ignore_index=True)


FLAT = {0: [0.0, 0.0], 1: [0.0, 0.0], 2: [0.0, 0.0]}  # a final-task curve whose tail is 0


def test_first_reach_is_the_first_step_at_or_above_the_threshold_per_seed():
    c = curve("r", {0: [0, 999.9, 1000, 0, 2000], 1: [0, 0, 0, 1500, 0], 2: [1001, 0, 0, 0, 0]})
    assert first_reach(c, 1000).tolist() == [10000.0, 15000.0, 0.0]  # a later dip does not undo it
    assert first_reach(c.iloc[::-1], 1000).tolist() == [10000.0, 15000.0, 0.0]  # rows in any order
    never = first_reach(curve("r", {0: [0, 999.9], 4: [2000, 0]}), 1000)
    assert math.isnan(never[0]) and never[4] == 0.0


def test_steps_saved_against_a_baseline_reaching_at_300k_by_an_algorithm_reaching_at_5k():
    reach = {
        "ddpg_mix": {s: ramp(300000) for s in range(3)},
        "iac": {s: ramp(5000) for s in range(3)},
        "siaq": {0: ramp(60000), 1: ramp(65000), 2: ramp(70000)},
    }
    rows = compare(curves_of(reach, {a: FLAT for a in reach}), ENTRY).set_index("label")
    iac = rows.loc["IAC"]
    assert iac["steps_saved_k"] == pytest.approx(295.0)  # (300000 − 5000) / 1000: Fig. 7's unit
    assert iac["steps_saved_k_ci95_low"] == pytest.approx(295.0)  # every seed alike: no spread
    assert iac["steps_saved_k_ci95_high"] == pytest.approx(295.0)
    assert iac["seeds_reached"] == 3 and iac["first_reach_step"] == 5000
    assert iac["steps_saved_note"] == ""
    assert (iac["paper_steps_saved_k"], iac["paper_source"]) == (295.0, "stated")
    siaq = rows.loc["SIAQ"]
    assert siaq["steps_saved_k"] == pytest.approx(235.0)
    # Welch with the baseline's variance 0: t(0.975, n − 1) * sd / sqrt(n) of SIAQ's steps (k).
    half = stats.t.ppf(0.975, 2) * 5.0 / math.sqrt(3)
    assert siaq["steps_saved_k_ci95_high"] - siaq["steps_saved_k"] == pytest.approx(half)
    assert (siaq["paper_steps_saved_k"], siaq["paper_source"]) == (235.0, "implied")
    base = rows.loc["ddpg_mix (baseline)"]
    assert base["role"] == "baseline" and base["first_reach_step"] == 300000
    assert math.isnan(base["steps_saved_k"]) and math.isnan(base["diff_return"])
    assert list(rows.reset_index().columns) == COLUMNS


def test_a_seed_that_never_reaches_is_reported_not_reached_with_the_count():
    reach = {
        "ddpg_mix": {s: ramp(300000) for s in range(3)},
        "iac": {0: ramp(5000), 1: ramp(5000), 2: [0.0] * 81},  # seed 2 never reaches
        "siaq": {s: ramp(5000) for s in range(3)},
    }
    rows = compare(curves_of(reach, {a: FLAT for a in reach}), ENTRY).set_index("label")
    iac = rows.loc["IAC"]
    assert math.isnan(iac["steps_saved_k"]) and math.isnan(iac["first_reach_step"])
    assert iac["seeds_reached"] == 2 and iac["steps_saved_note"] == "not reached (2/3 seeds)"
    assert rows.loc["SIAQ", "steps_saved_k"] == pytest.approx(295.0)  # the others are unaffected
    # A baseline seed that never reaches leaves every Δt undefined: t1 is unknown.
    reach["ddpg_mix"][1] = [0.0] * 81
    rows = compare(curves_of(reach, {a: FLAT for a in reach}), ENTRY).set_index("label")
    assert rows["steps_saved_k"].isna().all()
    assert rows.loc["SIAQ", "steps_saved_note"] == "not reached (ddpg_mix 2/3 seeds)"
    assert rows.loc["IAC", "steps_saved_note"] == "not reached (2/3 seeds; ddpg_mix 2/3 seeds)"


def test_diff_return_is_the_difference_of_the_last_points_means_over_seeds():
    base = {0: [900, 0, 10, 30], 1: [900, 0, 20, 40], 2: [900, 0, 30, 50]}  # tails: 20, 30, 40
    iac = {0: [0, 0, 100, 100], 1: [0, 0, 110, 130], 2: [0, 0, 150, 150]}  # tails: 100, 120, 150
    finals, points = final_return(curve("r", iac), 2)
    assert finals.tolist() == [100.0, 120.0, 150.0] and points == 2
    reach = {a: {s: ramp(5000) for s in range(3)} for a in ("ddpg_mix", "iac", "siaq")}
    final = {"ddpg_mix": base, "iac": iac, "siaq": base}
    rows = compare(curves_of(reach, final), ENTRY).set_index("label")
    assert rows.loc["IAC", "diff_return"] == pytest.approx(370 / 3 - 30)
    assert rows.loc["SIAQ", "diff_return"] == pytest.approx(0.0)
    diff, low, high = welch_ci95([100, 120, 150], [20, 30, 40])
    interval = rows.loc["IAC", ["diff_return_ci95_low", "diff_return_ci95_high"]].tolist()
    assert interval == pytest.approx([low, high])
    # Welch by hand: sample variances 1900/3 and 100, each over 3 seeds; Welch-Satterthwaite df.
    va, vb = 1900 / 9, 100 / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert high - diff == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(va + vb))
    # A curve shorter than last_points uses all its points, and says how many.
    _, points = final_return(curve("r", iac), 10)
    assert points == 4


# ---- the stage ----------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_params):
    """params.yaml with only the comparison under test, and a hand-written results/curves.csv."""
    monkeypatch.chdir(tmp_path)
    tiny_params["comparisons"] = {"fig7": dict(ENTRY)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    reach = {
        "ddpg_mix": {s: ramp(300000) for s in range(3)},
        "iac": {s: ramp(5000) for s in range(3)},
        "siaq": {0: ramp(60000), 1: ramp(65000), 2: [0.0] * 81},  # seed 2 never reaches
    }
    final = {"ddpg_mix": FLAT, "iac": {0: [5, 6], 1: [7, 8], 2: [9, 9]}, "siaq": FLAT}
    (tmp_path / "results").mkdir()
    curves_of(reach, final).to_csv(tmp_path / "results/curves.csv", index=False)
    return tmp_path


def test_the_stage_writes_the_table_and_the_figure(workdir):
    steps_saved.main(["fig7"])
    outputs = layout.comparison_files("fig7", ENTRY)
    tables, figures = ["results/tables/fig7.csv", "results/tables/fig7.md"], "figures/iac/fig7"
    assert outputs == [*tables, f"{figures}.png", f"{figures}.pdf"]
    assert all((workdir / f).stat().st_size > 0 for f in outputs)
    table = pd.read_csv(workdir / "results/tables/fig7.csv").set_index("label")
    assert table.loc["IAC", "steps_saved_k"] == pytest.approx(295.0)
    assert table.loc["SIAQ", "steps_saved_note"] == "not reached (2/3 seeds)"
    md = (workdir / "results/tables/fig7.md").read_text()
    assert "not reached (2/3 seeds)" in md and "235 (implied)" in md and "| IAC " in md
    assert not (workdir / ".staging").exists()


def test_a_threshold_not_a_number_stops_with_one_line_and_writes_nothing(workdir, tiny_params):
    tiny_params["comparisons"] = {"fig7": {**ENTRY, "reach": {"task": REACH, "threshold": "high"}}}
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    with pytest.raises(SystemExit) as stop:
        steps_saved.main(["fig7"])
    message = str(stop.value)
    assert message.startswith("params.yaml: comparisons.fig7.reach.threshold: ")
    assert "\n" not in message
    assert sorted(p.name for p in (workdir / "results").iterdir()) == ["curves.csv"]
    assert not (workdir / "figures").exists()


@pytest.mark.parametrize(
    "change, key",
    [
        ({"final": {"task": FINAL, "last_points": 0}}, "comparisons.fig7.final.last_points"),
        # curves.csv has no sq run
        ({"algorithms": {**ENTRY["algorithms"], "SQ": "sq"}}, "comparisons.fig7.algorithms.SQ"),
    ],
)
def test_bad_input_names_its_key_before_writing(workdir, tiny_params, change, key):
    tiny_params["comparisons"] = {"fig7": {**ENTRY, **change}}
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    with pytest.raises(SystemExit) as stop:
        steps_saved.main(["fig7"])
    assert str(stop.value).startswith(f"params.yaml: {key}: ") and "\n" not in str(stop.value)
    assert sorted(p.name for p in (workdir / "results").iterdir()) == ["curves.csv"]
    assert not (workdir / "figures").exists()


def test_an_unknown_task_names_its_key():
    params = {"tasks": {REACH: {}, FINAL: {}}}
    with pytest.raises(ParamsError, match=r"^comparisons\.fig7\.reach\.task: unknown task 'nowhere'$"):
        _check_comparison("fig7", {**ENTRY, "reach": {"task": "nowhere", "threshold": 1}}, params)
    _check_comparison("fig7", ENTRY, params)  # the good entry passes
