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

    monkeypatch.setattr(train.Training, "advance", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.main(["vm3ac-cooperative_navigation_n3"])
    assert not (workdir / "results/runs").exists()
    assert not (workdir / ".staging").exists()


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


def test_a_truncated_checkpoint_is_named_in_one_line(workdir):
    train.main(["vm3ac-cooperative_navigation_n3"])
    path = workdir / "results/runs/vm3ac-cooperative_navigation_n3/checkpoints/seed1.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SystemExit) as err:
        evaluate.main(["vm3ac-cooperative_navigation_n3"])
    message = str(err.value)
    assert message.startswith(f"{path.relative_to(workdir)}: not a readable checkpoint (")
    assert message.endswith("retrain the run (dvc repro train-vm3ac-cooperative_navigation_n3)") and "\n" not in message
    assert not (workdir / "results/runs/vm3ac-cooperative_navigation_n3/eval.json").exists()


def test_checkpoints_hold_tensors_only(workdir):
    """The final checkpoints load with weights_only=True: a published bundle never asks anyone
    to run pickled code."""
    import torch

    train.main(["vm3ac-cooperative_navigation_n3"])
    for path in (workdir / "results/runs/vm3ac-cooperative_navigation_n3/checkpoints").iterdir():
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["run"] == "vm3ac-cooperative_navigation_n3" and ckpt["tensors"]


def test_storage_beyond_the_available_memory_is_refused_before_training(workdir, monkeypatch, capsys):
    from types import SimpleNamespace

    from pipeline import loops

    monkeypatch.setattr(loops.psutil, "virtual_memory", lambda: SimpleNamespace(available=1000))
    with pytest.raises(SystemExit) as err:
        train.main(["vm3ac-cooperative_navigation_n3"])
    message = str(err.value)
    assert message.startswith("train: vm3ac-cooperative_navigation_n3: its replay storage needs ")
    assert message.endswith("GiB of memory is available: lower the algorithm's replay_size, the profile's seeds or the task's size")
    assert "\n" not in message
    assert not (workdir / "results/runs").exists()
    assert "Traceback" not in capsys.readouterr().err
