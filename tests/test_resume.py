"""Resume points (pipeline/runtime/resume.py): a run stopped after any point and started again writes
the bytes an uninterrupted run writes; a point from other params, or a damaged one, is not
used. (Killing `dvc repro` itself: tests/test_resume_dvc.py.)"""

from __future__ import annotations

import json
import pickle

import pytest
import torch
import yaml

from envs.registry import TASKS
from pipeline.design.budget import Budget
from pipeline.design.params import resolve_runs
from pipeline.outputs.staging import publish
from pipeline.runtime import resume
from pipeline.runtime.build import build
from pipeline.runtime.loops import Training
from pipeline.stages import train

RUN = "vm3ac-cooperative_navigation_n3"


class Killed(BaseException):
    """Stands for a kill: nothing after it runs in the stage (not even `except Exception`)."""


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    return tmp_path


def outputs(root, run=RUN) -> dict[str, bytes]:
    folder = root / "results/runs" / run
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and "sacred" not in p.parts}


def info(root, run=RUN) -> dict:
    return json.loads((root / "results/runs" / run / "sacred/train/info.json").read_text())


def kill_after_points(monkeypatch, n: int) -> None:
    """The stage dies right after writing its n-th resume point."""
    save = resume.ResumePoints.save
    written = []

    def save_then_die(self, payload, at):
        size = save(self, payload, at)
        written.append(at)
        if len(written) == n:
            raise Killed(at)
        return size

    monkeypatch.setattr(resume.ResumePoints, "save", save_then_die)


def killed_after_points(monkeypatch, workdir, n: int):
    """Train until the n-th resume point is written, then die; the point left behind."""
    with monkeypatch.context() as m:
        kill_after_points(m, n)
        with pytest.raises(Killed):
            train.main([RUN])
    (point,) = (workdir / ".resume" / RUN).glob("*.pkl")
    return point


@pytest.mark.parametrize("points", [1, 2, 3])  # after step 20, step 40, and after the last step
def test_a_run_stopped_after_a_point_resumes_to_the_uninterrupted_bytes(workdir, monkeypatch, points, capsys):
    train.main([RUN])
    uninterrupted = outputs(workdir)
    assert info(workdir)["resumed_from_env_step"] == 0
    assert not (workdir / ".resume").exists()  # discarded once the outputs are published
    killed_after_points(monkeypatch, workdir, points)
    train.main([RUN])
    assert outputs(workdir) == uninterrupted
    assert info(workdir)["resumed_from_env_step"] == [20, 40, 50][points - 1]
    assert f"resume: {RUN} goes on from env step {[20, 40, 50][points - 1]}" in capsys.readouterr().err
    metrics = json.loads((workdir / "results/runs" / RUN / "sacred/train/metrics.json").read_text())
    assert metrics["return.seed0"]["steps"] == [0, 25, 50]  # the points before the kill too


def test_a_point_saved_under_other_params_is_not_used(workdir, monkeypatch, tiny_params, capsys):
    stale = killed_after_points(monkeypatch, workdir, 2)
    tiny_params["algorithms"]["vm3ac"]["beta"] = 0.05
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    train.main([RUN])
    assert f"resume: {stale.relative_to(workdir)} was saved with other params or code; not used" in capsys.readouterr().err
    assert info(workdir)["resumed_from_env_step"] == 0
    assert not (workdir / ".resume").exists()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not_a_pickle"])
def test_a_damaged_point_is_named_and_ignored(workdir, monkeypatch, capsys, damage):
    train.main([RUN])
    uninterrupted = outputs(workdir)
    point = killed_after_points(monkeypatch, workdir, 2)
    raw = point.read_bytes()
    if damage == "truncated":
        point.write_bytes(raw[: len(raw) // 2])
    elif damage == "flipped":
        point.write_bytes(raw[:-100] + bytes([raw[-100] ^ 1]) + raw[-99:])
    else:  # whole, with a matching digest, but not something this code wrote
        import hashlib

        junk = b"not a pickle at all"
        point.write_bytes(resume.MAGIC + hashlib.sha256(junk).hexdigest().encode() + b"\n" + junk)
    train.main([RUN])
    err = capsys.readouterr().err.strip().splitlines()
    warning = [line for line in err if line.startswith("resume: ")]
    expected = "cannot be read" if damage == "not_a_pickle" else "is damaged or incomplete (its digest does not match)"
    assert len(warning) == 1 and str(point.relative_to(workdir)) in warning[0] and expected in warning[0], err
    assert warning[0].endswith("training from step 0")
    assert outputs(workdir) == uninterrupted
    assert info(workdir)["resumed_from_env_step"] == 0


def test_a_kill_while_a_point_is_written_leaves_the_previous_one_whole(workdir, monkeypatch):
    point = killed_after_points(monkeypatch, workdir, 1)
    before = point.read_bytes()

    def die_before_rename(src, dst):
        raise Killed("between the write and the rename")

    with monkeypatch.context() as m:
        m.setattr(resume.os, "replace", die_before_rename)
        with pytest.raises(Killed):
            train.main([RUN])
    assert point.read_bytes() == before  # the new point never replaced it
    train.main([RUN])
    assert info(workdir)["resumed_from_env_step"] == 20


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_training_pickled_and_replayed_on_a_fresh_task_goes_on_identically(task, tiny_params):
    """The environment is the one part a resume point does not pickle: replaying the actions on
    a fresh copy must bring every task (Box2D, JAX, the particle worlds) to the same state."""
    run = next(r for r in resolve_runs(tiny_params).values() if r.task_id == task)
    copies = len(run.seeds) * run.settings.env_copies
    original = Training(*build(run, copies), run.seeds, Budget(env_steps=60, curve_interval=30, curve_episodes=1))
    for _ in range(25):
        original.advance(ignore)
    copy = pickle.loads(pickle.dumps(original))
    copy.attach(build(run, copies)[1])
    trajectories = []
    for training in (original, copy):
        seen = []
        while not training.finished:
            training.advance(ignore)
            seen += [training.obs, training.state, training.t]
        seen += [p.detach() for p in training.algo.parameters()]
        trajectories.append(seen)
    assert len(trajectories[0]) == len(trajectories[1]) > 3 + len(list(original.algo.parameters()))
    for ours, theirs in zip(*trajectories):
        assert (ours is None and theirs is None) or torch.equal(ours, theirs)


def ignore(points, losses) -> None:
    pass


def test_a_kill_between_two_published_outputs_is_finished_by_the_next_run(workdir, monkeypatch):
    """Outputs are moved into place one at a time; the finished run's point outlives them, so a
    run killed in between is redone from its last step, with no training."""
    train.main([RUN])
    uninterrupted = outputs(workdir)
    moved = []

    def publish_one_then_die(staged, destination):
        if moved:
            raise Killed("between two outputs")
        moved.append(destination)
        publish(staged, destination)

    with monkeypatch.context() as m:
        m.setattr(train, "publish", publish_one_then_die)
        with pytest.raises(Killed):
            train.main([RUN])
    train.main([RUN])
    assert info(workdir)["resumed_from_env_step"] == 50  # the run's last step: nothing retrained
    assert outputs(workdir) == uninterrupted
