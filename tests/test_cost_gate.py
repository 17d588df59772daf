"""The estimate `make repro` prints before a build of over an hour, and its refusal to start one
the user has not asked for (pipeline/runtime/cost_gate.py)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from conftest import REPO

from pipeline.design.measured_cost import training_seconds
from pipeline.runtime import cost_gate


def workspace(tmp_path, profile: str):
    (tmp_path / cost_gate.TABLE).parent.mkdir(parents=True)
    shutil.copy(REPO / cost_gate.TABLE, tmp_path / cost_gate.TABLE)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = profile
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def test_the_committed_table_prices_every_run_of_params_yaml():
    cost = cost_gate.estimate(None, REPO)
    assert not cost["unpriced"], cost["unpriced"]
    assert cost["cpu_hours"] > 0


def test_a_run_the_table_lacks_is_priced_from_its_family(tmp_path):
    root = workspace(tmp_path, "paper")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["algorithms"]["maddpg_wide"] = {"inherit": "maddpg", "noise_std": 0.2}
    params["runs"]["maddpg_wide-multiwalker_n3"] = {"algorithm": "maddpg_wide", "task": "multiwalker_n3"}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cost = cost_gate.estimate(["maddpg_wide-multiwalker_n3", "maddpg-multiwalker_n3"], root)
    assert cost["estimated"] == ["maddpg_wide-multiwalker_n3"] and not cost["unpriced"]
    per_run = cost["cpu_hours"] / 2
    assert cost_gate.estimate(["maddpg-multiwalker_n3"], root)["cpu_hours"] == pytest.approx(per_run)


def test_the_paper_profile_stops_with_its_cost_until_the_user_accepts_it(tmp_path, monkeypatch, capfd):
    root = workspace(tmp_path, "paper")
    monkeypatch.delenv(cost_gate.ACCEPT, raising=False)
    # DVC's plan is what parallel_repro's tests check; here every run is to be trained
    monkeypatch.setattr(cost_gate, "planned_runs", lambda targets, root: [r.name for r in cost_gate.estimate(None, root)["runs"]])
    with pytest.raises(SystemExit) as stop:
        cost_gate.check(2, root=root)
    assert str(stop.value).startswith("cost: over 1 h: to start it, run `make repro ACCEPT_COST=1`")
    said = capfd.readouterr().err
    assert "CPU-hours of training" in said and "resume points need up to" in said and "GiB free here" in said
    monkeypatch.setenv(cost_gate.ACCEPT, "1")
    cost_gate.check(2, root=root)
    assert "cost: going on (HARNESS_ACCEPT_COST=1)" in capfd.readouterr().err


def test_the_default_profile_starts_without_a_word(tmp_path, capsys):
    root = workspace(tmp_path, "smoke")
    cost_gate.check(1, root=root)
    assert capsys.readouterr().err == ""


def test_an_unpriced_run_is_named_even_under_the_limit(tmp_path, monkeypatch, capsys):
    """A run of a family the table has never measured costs "0": the gate says it cannot price it."""
    root = workspace(tmp_path, "smoke")
    table = yaml.safe_load((root / cost_gate.TABLE).read_text())
    table["runs"] = {k: v for k, v in table["runs"].items() if v["family"] != "maddpg"}
    (root / cost_gate.TABLE).write_text(json.dumps(table))
    monkeypatch.setattr(cost_gate, "planned_runs", lambda targets, root: ["maddpg-multiwalker_n3"])
    cost_gate.check(1, root=root)
    assert capsys.readouterr().err.startswith("cost: 1 run(s) this build trains are not priced (no run of their family measured: maddpg-multiwalker_n3)")


def test_the_evidence_instance_reads_the_repositorys_table():
    assert cost_gate.table_path(REPO / "evidence") == REPO / cost_gate.TABLE
    assert cost_gate.table_path(REPO) == REPO / cost_gate.TABLE


def test_a_run_shorter_than_its_learning_starts_is_priced_at_acting_alone():
    # MADDPG updates from its 25,600th step on: the default profile's 1,500 steps only act
    row = {"seeds": 7, "threads": 1, "seconds_per_env_step": 0.05, "acting_seconds_per_env_step": 0.01,
           "seconds_per_gradient_step": 4.0, "gradient_steps_per_env_step": 0.01}  # fmt: skip
    assert training_seconds(row, 1500, 25600, 7) == pytest.approx(15.0)
    # past it, one gradient step per 100 env steps at 4 s each; 3 seeds of 7 measured
    assert training_seconds(row, 125600, 25600, 7) == pytest.approx(1256.0 + 1000 * 4.0)
    assert training_seconds(row, 125600, 25600, 3) == pytest.approx((1256.0 + 4000.0) * 3 / 7)
    # a row measured before the parts: its mean on every step
    assert training_seconds({"seeds": 7, "threads": 1, "seconds_per_env_step": 0.05}, 1500, 25600, 7) == pytest.approx(75.0)
