"""Bad params stop a stage with one line naming the key, before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from pipeline.analyses.iac import covariance, landscape, matrix_tables, steps_saved
from pipeline.analyses.vm3ac import latent_table, positions  # fmt: skip
from pipeline.stages import aggregate, evaluate, figures, train


def with_probe(params: dict) -> dict:
    """params.yaml with a declared run (figures imply the others) for the runs.* cases."""
    params["runs"]["probe"] = {"algorithm": "vm3ac", "task": "cooperative_navigation_n3"}
    return params


def set_key(params: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        params = params[key]
    if value is DELETE:
        del params[last]
    else:
        params[last] = value


DELETE = object()
CASES = [
    ("algorithms.vm3ac.beta", -0.5, "algorithms.vm3ac.beta: must be >= 0"),
    ("runs.probe.hyper", {"beta": -1.0}, "runs.probe.hyper.beta: must be >= 0"),
    ("runs.probe.algorithm", "vm4ac", "runs.probe.algorithm: unknown algorithm 'vm4ac'"),
    ("runs.probe.task", "chess", "runs.probe.task: unknown task 'chess'"),
    (
        "tasks.cooperative_navigation_n3.id",
        "chess",
        "tasks.cooperative_navigation_n3: unknown task 'chess'",
    ),
    (
        "tasks.cooperative_navigation_n3.kwargs.speed",
        2,
        "tasks.cooperative_navigation_n3: task 'cooperative_navigation' has no setting 'speed'",
    ),
    ("tasks.predator_prey_n2.id", "chess", "tasks.predator_prey_n2: unknown task 'chess'"),
    (
        "tasks.matrix_game.kwargs",
        {"N": 3},
        "tasks.matrix_game: task 'matrix_game' has no setting 'N'",
    ),
    ("algorithms.vm3ac.family", "ppo", "algorithms.vm3ac.family: unknown family 'ppo'"),
    ("algorithms.vm3ac.learning_rate", 0.1, "algorithms.vm3ac.learning_rate: unknown key"),
    ("runs.probe.epochs", 3, "runs.probe.epochs: unknown key"),
    ("profiles.paper.tasks.chess", {"env_steps": 10}, "profiles.paper.tasks.chess: unknown task 'chess'"),
    ("profiles.paper.tasks.iac_predator_prey.seeds", 3, "profiles.paper.tasks.iac_predator_prey.seeds: unknown key"),
    ("profiles.paper.tasks.iac_predator_prey.curve_interval", 0,
     "profiles.paper.tasks.iac_predator_prey.curve_interval: must be an integer > 0"),
    ("evaluation.latent_modes", ["zero", "random"], "evaluation.latent_modes: must be a list"),
    ("evaluation.env_seed_start", 2, "evaluation.env_seed_start: evaluation env seeds overlap run"),
    ("profiles.smoke.env_steps", 0, "profiles.smoke.env_steps: must be an integer > 0"),
    ("profiles.paper.curve_interval", -10, "profiles.paper.curve_interval: must be an integer > 0"),
    ("profiles.smoke.epochs", 5, "profiles.smoke.epochs: unknown key"),
    ("profile", "huge", "profile: 'huge' is not one of the profiles"),
    ("seeds", [], "seeds: must be a non-empty list"),
    ("seeds", [0, 1, 1], "seeds: seeds repeat"),
    ("seeds", [0, -1], "seeds: seeds must be integers >= 0"),
    ("runs.probe.seeds", [2, 2], "runs.probe.seeds: seeds repeat"),
    ("algorithms.vm3ac.hidden", [64, 0], "algorithms.vm3ac.hidden: must be a non-empty list"),
    ("algorithms.vm3ac.gamma", DELETE, "algorithms.vm3ac: missing settings: gamma"),
    ("figures.fig3.curves.VM3-AC.algorithm", "nope", "figures.fig3.curves.VM3-AC.algorithm: unknown algorithm 'nope'"),
    ("figures.fig3.panels.a.task", "chess", "figures.fig3.panels.a.task: unknown task 'chess'"),
    ("figures.fig3.grid", [1, 3], "figures.fig3.grid: must be [rows, columns] with room for 8 panels"),
    ("tables.table1.modes", ["zero", "central"], "tables.table1.modes: unknown z mode 'central'"),
    ("tables.table1.algorithm", "ma_ac", "tables.table1.algorithm: ma_ac has no z mode sampled"),
    ("tables.table1.reported.zero", [409], "tables.table1.reported.zero: must list one number per column (3)"),
    ("snapshots.fig6.task", "cooperative_navigation_n3", "snapshots.fig6.task: 'cooperative_navigation_n3' is a cooperative_navigation task"),
    ("snapshots.fig6.step.smoke", 10**9, "snapshots.fig6.step.smoke: 1000000000 must be a multiple of curve_interval"),
    ("snapshots.fig6.step", {"paper": 50000}, "snapshots.fig6.step.smoke: must be a training step, a list of them or 'every'"),
    ("snapshots.fig6.kind", "heatmap", "snapshots.fig6.kind: must be one of positions, covariance"),
    # IAC: a covariance step beyond the budget, a policy without covariance, a non-PD covariance,
    # a scalability task of one pendulum, Fig. 7's threshold
    ("snapshots.iac_fig5.step.smoke", [0, 500, 3000], "snapshots.iac_fig5.step.smoke: 3000 must be a multiple of curve_interval 500 within the budget"),
    ("snapshots.iac_fig5.rows.IAC", "ddpg_mix", "snapshots.iac_fig5.rows.IAC: ddpg_mix's policy has no covariance to draw"),
    ("snapshots.iac_fig3.collaborative.cov", [[15, 20], [20, 15]], "snapshots.iac_fig3.collaborative.cov: must be symmetric positive definite"),
    ("tasks.multi_pendulum_graded_n4.kwargs.N", 1, "tasks.multi_pendulum_graded_n4: multi_pendulum: the graded (scalability) reward needs N >= 2"),
    ("comparisons.iac_fig7.reach.threshold", "high", "comparisons.iac_fig7.reach.threshold: must be a number"),
    ("comparisons.iac_fig7.final.last_points", 0, "comparisons.iac_fig7.final.last_points: must be an integer >= 1"),
    ("tables.table1.kind", "pivot", "tables.table1.kind: must be one of latent_modes, matrix_game"),
    ("tables.iac_matrix_game.temperature", 0, "tables.iac_matrix_game.temperature: must be a number > 0"),
    ("tables.iac_matrix_game.qmixs", "qmix_uniform", "tables.iac_matrix_game.qmixs: qmix_uniform must have observe_other_actions: true"),
    ("tables.iac_matrix_game.reported.table4", [[1, 2]], "tables.iac_matrix_game.reported.table4: must be numbers of shape [3, 3]"),
    ("algorithms.vm3ac_beta005.beta", -0.05, "algorithms.vm3ac_beta005.beta: must be >= 0"),
    ("profiles.smoke.seeds", 8, "profiles.smoke.seeds: asks for 8 seeds, `seeds` lists 7"),
    ("profiles.paper.eval_episodes", 0, "profiles.paper.eval_episodes: must be an integer > 0"),
    ("colour", "red", "params.colour: unknown key"),
    ("algorithms.ma_ac.inherit", "vm4ac", "algorithms.ma_ac.inherit: unknown algorithm 'vm4ac'"),
    (
        "algorithms.vm3ac.inherit",
        "ma_ac",
        # the stages check runs in params.yaml's order: the test's copy sorts them by name
        "algorithms.vm3ac.inherit: inheritance cycle vm3ac -> ma_ac -> vm3ac",
    ),
    ("algorithms.maddpg.grad_clip", 0, "algorithms.maddpg.grad_clip: must be > 0"),
    ("algorithms.qmix.epsilon_finish", 1.5, "algorithms.qmix.epsilon_finish: must be"),
    ("algorithms.vm3ac.update_unit", "epoch", "algorithms.vm3ac.update_unit: must be 'step' or"),
    ("algorithms.vm3ac.env_copies", 0, "algorithms.vm3ac.env_copies: must be > 0"),
    ("figures.qmix_3m_win_rate.metric", "loss", "figures.qmix_3m_win_rate.metric: must be one of"),
    ("figure_style.dpi", 0, "figure_style.dpi: must be a number > 0"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("key,value,message", CASES, ids=[c[0] + ("=<deleted>" if c[1] is DELETE else "=" + repr(c[1])) for c in CASES])
def test_bad_value_stops_every_stage_before_writing(key, value, message, workdir):
    params = with_probe(yaml.safe_load((REPO / "params.yaml").read_text()))
    set_key(params, key, value)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    stages = [
        lambda: train.main(["probe"]),
        lambda: evaluate.main(["probe"]),
        aggregate.main,
        lambda: figures.main(["fig3"]),
        lambda: latent_table.main(["table1"]),
        lambda: positions.main(["fig6"]),
        lambda: covariance.main(["iac_fig5"]),
        lambda: landscape.main(["iac_fig2"]),
        lambda: steps_saved.main(["iac_fig7"]),
        lambda: matrix_tables.main(["iac_matrix_game"]),
    ]
    for stage in stages:
        with pytest.raises(SystemExit) as stopped:
            stage()
        text = str(stopped.value.code)
        assert text.startswith(f"params.yaml: {message}"), text
        assert "\n" not in text
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


def test_impossible_agent_count_of_a_run_task_is_named(workdir):
    params = with_probe(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["tasks"]["predator_prey_n2"]["kwargs"]["N"] = 1
    params["runs"]["probe"]["task"] = "predator_prey_n2"
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(
        SystemExit, match=r"^params.yaml: tasks.predator_prey_n2: vm3ac_predator_prey: N=1"
    ):
        train.main(["probe"])
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize(
    "algorithm,task",
    [("vm3ac", "matrix_game"), ("maven", "matrix_game"), ("qmix", "cooperative_navigation_n3"),
     ("vm3ac", "smac_3m"), ("fop", "multiwalker_n3"), ("vm3ac_fop", "predator_prey_n2"),
     ("lica", "iac_predator_prey"), ("vdac", "simple_world")],
)
def test_a_learner_on_the_wrong_kind_of_actions_is_named(algorithm, task, workdir):
    """Refused by params validation, before the task or the learner is built."""
    params = with_probe(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["runs"]["probe"] = {"algorithm": algorithm, "task": task}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    kinds = r"acts in (discrete|continuous) actions, task '\w+' has (continuous|discrete) ones"
    with pytest.raises(SystemExit, match=rf"^params.yaml: runs.probe.task: algorithm '{algorithm}' {kinds}$"):
        train.main(["probe"])
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


def test_unknown_run_name_is_named(workdir):
    (workdir / "params.yaml").write_text((REPO / "params.yaml").read_text())
    with pytest.raises(SystemExit, match="runs.nope: no such run"):
        train.main(["nope"])
    assert not (workdir / "results").exists()


def test_stage_prints_one_line_and_fails(workdir):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["algorithms"]["vm3ac"]["beta"] = -1
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.train", "vm3ac-cooperative_navigation_n3"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "params.yaml: algorithms.vm3ac.beta: must be >= 0, got -1"
    ]
    assert sorted(p.name for p in Path(workdir).iterdir()) == ["params.yaml"]
