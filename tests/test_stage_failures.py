"""A stage that crashes leaves nothing half-written behind."""

from __future__ import annotations

import json

import pytest
import yaml

from pipeline import evaluate, train


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    return tmp_path


def test_training_crash_leaves_no_outputs_and_no_staging(workdir, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash in the middle of training")

    monkeypatch.setattr(train, "train_all_seeds", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.main(["vm3ac-cooperative_navigation_n3"])
    assert not (workdir / "results/runs").exists()
    assert not (workdir / "results/.staging").exists()


def test_evaluation_crash_keeps_the_previous_eval_json_whole(workdir, monkeypatch):
    train.main(["vm3ac-cooperative_navigation_n3"])
    evaluate.main(["vm3ac-cooperative_navigation_n3"])
    path = workdir / "results/runs/vm3ac-cooperative_navigation_n3/eval.json"
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash while evaluating")

    monkeypatch.setattr(evaluate, "evaluate", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate.main(["vm3ac-cooperative_navigation_n3"])
    assert path.read_bytes() == before
    assert json.loads(before)["run"] == "vm3ac-cooperative_navigation_n3"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "checkpoints",
        "curves.csv",
        "eval.json",
        "sacred",
    ]


def test_evaluation_without_checkpoints_names_the_missing_file(workdir):
    with pytest.raises(SystemExit, match=r"seed0.pt is missing: train the run first"):
        evaluate.main(["vm3ac-cooperative_navigation_n3"])
    assert not (workdir / "results").exists()


def test_evaluation_of_checkpoints_trained_with_other_settings_stops(workdir, tiny_params):
    train.main(["vm3ac-cooperative_navigation_n3"])
    tiny_params["algorithms"]["vm3ac"]["beta"] = 0.05
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    with pytest.raises(SystemExit, match=r"trained with other settings than params.yaml says"):
        evaluate.main(["vm3ac-cooperative_navigation_n3"])
    assert not (workdir / "results/runs/vm3ac-cooperative_navigation_n3/eval.json").exists()
