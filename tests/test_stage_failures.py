"""A stage that crashes leaves nothing half-written behind."""

from __future__ import annotations

import json

import pytest
import yaml

from algorithms import FAMILIES
from pipeline.stages import evaluate, train


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

    from pipeline.runtime import memory

    monkeypatch.setattr(memory.psutil, "virtual_memory", lambda: SimpleNamespace(available=1000))
    with pytest.raises(SystemExit) as err:
        train.main(["vm3ac-cooperative_navigation_n3"])
    message = str(err.value)
    assert message.startswith("train: vm3ac-cooperative_navigation_n3: needs about ")
    assert "replay storage " in message
    assert message.endswith(
        "GiB of memory is available: lower the algorithm's network sizes or replay_size, the profile's seeds or the task's size"
    )
    assert "\n" not in message
    assert not (workdir / "results/runs").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_networks_beyond_the_available_memory_are_refused_before_they_are_allocated(workdir, tiny_params, monkeypatch):
    """Cooperative navigation with N = 100 was killed by the kernel at 23.6 GB with no message:
    its critics take the joint observation of 100 agents. The estimate comes from shapes only
    (the learner built on the meta device), so it costs nothing however large the run."""
    from types import SimpleNamespace

    import psutil

    from pipeline.runtime import memory

    tiny_params["tasks"]["cooperative_navigation_n3"]["kwargs"]["N"] = 100
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    monkeypatch.setattr(memory.psutil, "virtual_memory", lambda: SimpleNamespace(available=16 * 2**30))
    before = psutil.Process().memory_info().rss
    with pytest.raises(SystemExit) as err:
        train.main(["vm3ac-cooperative_navigation_n3"])
    message = str(err.value)
    assert "\n" not in message
    networks = float(message.split("optimiser moments and gradients ")[1].split(" GiB")[0])
    assert networks > 16, message  # the estimate is in the tens of GiB the kernel saw
    assert message.split(" and ")[-1].startswith("16.0 GiB of memory is available")
    assert psutil.Process().memory_info().rss - before < 2**30  # nothing of that size was allocated
    assert not (workdir / "results/runs").exists()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_estimate_counts_every_tensor_the_real_learner_holds(family):
    """Shapes on the meta device are the real learner's shapes: the estimate matches the real
    learner's tensors (a few small constants without a seed axis are counted once per seed, so
    it may be over by a hair), and they hold its checkpoint and an optimiser moment per
    parameter."""
    import envs
    from algorithms import learner
    from pipeline.design.params import load_runs
    from pipeline.runtime import memory

    _, runs = load_runs()
    run = next(r for r in runs.values() if r.family == family)
    env = envs.make_batched(run.task_id, 1, **run.task_kwargs)
    cls = learner(family)
    real = cls(env.spec, run.seeds, run.settings)
    total, trainable = memory._tensor_bytes(real, set())
    networks, _ = memory.estimate(cls, env.spec, run.seeds, run.settings, run.budget.env_steps)
    assert total + trainable <= networks <= 1.001 * (total + trainable)
    policy = sum(t.numel() * t.element_size() for t in real.seed_state(0).values())
    assert total >= len(run.seeds) * policy
    assert total >= 2 * trainable  # the parameters and at least one optimiser moment each (RMSprop)
