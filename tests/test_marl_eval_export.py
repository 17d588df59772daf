"""The marl-eval export loads in marl-eval itself (InstaDeep's id-marl-eval): its data
diagnosis finds every figure's block consistent, its processing pipeline accepts the file and
builds rliable's (runs x tasks) matrices from it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from marl_eval.utils.data_processing_utils import create_matrices_for_rliable, data_process_pipeline
from marl_eval.utils.diagnose_data_errors import DiagnoseData

from pipeline.outputs import layout
from pipeline.report.marl_eval_export import UNPLOTTED, export

FIGURES = {
    "fig": {"paper": "vm3ac", "panels": {"a": {"task": "t1"}, "b": {"task": "t2"}},
            "curves": {"Ours": {"algorithm": "ours"}, "Base": {"algorithm": "base"}}},
}  # fmt: skip


class FakeRun:
    def __init__(self, algorithm, task):
        self.name, self.algorithm, self.task = f"{algorithm}-{task}", algorithm, task


def run_data(offset: float, wins: bool = False) -> tuple[pd.DataFrame, dict]:
    curves = pd.DataFrame(
        [{"step": step, "seed": seed, "return": offset + step / 100 + seed, "win_rate": 0.5 if wins else np.nan}
         for step in (0, 100, 200) for seed in (0, 1, 2)]  # fmt: skip
    )
    per_seed = {str(s): {"mean": offset + s, "returns": [offset + s, offset + s + 1]} for s in range(3)}
    if wins:
        for s in per_seed.values():
            s["win_rate"] = 0.5
    return curves, {"headline_mode": "zero", "modes": {"zero": {"per_seed": per_seed}, "sampled": {"per_seed": {}}}}


@pytest.fixture
def document():
    runs = {n: FakeRun(*n.split("-")) for n in ("ours-t1", "ours-t2", "base-t1", "base-t2", "extra-t3")}
    data = {name: run_data(i * 10.0) for i, name in enumerate(runs)}
    return export(FIGURES, runs, data)


def test_the_layout_is_environment_task_algorithm_seed_step(document):
    seed = document["fig"]["t1"]["Ours"]["seed_1"]
    assert list(seed) == ["step_0", "step_1", "step_2", "absolute_metrics"]
    assert seed["step_2"] == {"step_count": 200, "return": [0 + 2 + 1]}
    assert seed["absolute_metrics"] == {"return": [1.0, 2.0]}  # the headline mode's episodes
    assert document[UNPLOTTED]["t3"]["extra"]["seed_0"]["absolute_metrics"] == {"return": [40.0, 41.0]}


def test_win_rates_travel_where_the_task_reports_them():
    runs = {"ours-t1": FakeRun("ours", "t1")}
    document = export({}, runs, {"ours-t1": run_data(0.0, wins=True)})
    seed = document[UNPLOTTED]["t1"]["ours"]["seed_0"]
    assert seed["step_0"]["win_rate"] == [0.5] and seed["absolute_metrics"]["win_rate"] == [0.5]


def loads_in_marl_eval(document: dict, environments: list[str]) -> None:
    raw = json.loads(json.dumps(document))  # what a reader of the file gets
    diagnosis = DiagnoseData(copy.deepcopy(raw)).check_data()
    for environment in environments:
        assert all(diagnosis[environment].values()), (environment, diagnosis[environment])
    processed = data_process_pipeline(raw, metrics_to_normalize=["return"])
    assert "extra" in processed, "marl-eval rejected the file's format"
    for environment in environments:
        matrices, over_time = create_matrices_for_rliable(copy.deepcopy(processed), environment, ["return"])
        runs = processed["extra"]["number_of_runs"]
        tasks = len(raw[environment])
        for per_algorithm in matrices.values():
            for matrix in per_algorithm.values():
                assert matrix.shape == (runs, tasks)


def test_hand_made_runs_load_in_marl_eval(document):
    loads_in_marl_eval({"fig": document["fig"]}, ["fig"])


def test_the_pipelines_export_loads_in_marl_eval():
    path = Path(layout.MARL_EVAL)
    if not path.exists():
        pytest.fail(f"{path} is missing: it is a committed output of the aggregate stage")
    document = json.loads(path.read_text())
    figures = [name for name in document if name != UNPLOTTED]
    assert figures, "no figure in the export"
    loads_in_marl_eval({name: document[name] for name in figures}, figures)
