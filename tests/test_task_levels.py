"""Fixed policies' levels on a task (benchmarks/task_levels.py, pipeline/design/task_levels.py):
the scripted cooperative-navigation policy really navigates, the committed levels match the task
as params.yaml builds it, and harness figures (only they) draw them."""

from __future__ import annotations

import json

import pytest
import yaml

from benchmarks import task_levels as bench
from pipeline.design import dvc_stages, task_levels
from pipeline.design.code_files import ROOT
from pipeline.design.params import load_runs

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
CN = PARAMS["tasks"]["cooperative_navigation_n3"]


def test_the_scripted_policy_covers_the_landmarks_far_better_than_random_actions():
    seed_start = PARAMS["evaluation"]["env_seed_start"]
    scripted = bench.level(CN, "scripted", 10, seed_start)["mean_return"]
    random = bench.level(CN, "random", 10, seed_start)["mean_return"]
    # the original reward: at best -3 a step from the agents' own collisions (-75 an episode)
    assert -75 >= scripted > random + 60, (scripted, random)


def test_the_committed_levels_are_of_the_task_params_yaml_builds():
    figure = PARAMS["figures"]["cn3_learners"]
    levels = task_levels.figure_levels(figure, PARAMS["tasks"])
    table = json.loads((ROOT / task_levels.LEVELS).read_text())["runs"]["cooperative_navigation_n3"]
    assert levels == {"cooperative_navigation_n3": {k: table[k]["mean_return"] for k in ("random", "scripted")}}
    assert table["env_seeds"].startswith(str(PARAMS["evaluation"]["env_seed_start"]))


def test_levels_measured_on_other_task_settings_stop_in_one_line():
    tasks = {**PARAMS["tasks"], "cooperative_navigation_n3": {**CN, "kwargs": {**CN["kwargs"], "max_cycles": 50}}}
    with pytest.raises(SystemExit, match="other settings than params.yaml's: remeasure it"):
        task_levels.figure_levels(PARAMS["figures"]["cn3_learners"], tasks)


def test_only_harness_figures_of_returns_draw_levels_and_depend_on_them(monkeypatch):
    monkeypatch.chdir(ROOT)
    stages = yaml.safe_load(dvc_stages.render(*load_runs()))["stages"]
    for name, figure in PARAMS["figures"].items():
        depends = task_levels.LEVELS in stages[f"figure-{name}"]["deps"]
        assert depends == (figure["paper"] == "harness" and figure.get("metric", "return") == "return"), name
        if figure["paper"] != "harness":  # a paper's figure stays as the paper drew it
            assert task_levels.figure_levels(figure, PARAMS["tasks"]) == {}
