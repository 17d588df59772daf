"""`kill -9` of `dvc repro` in the middle of a training stage, then a plain `dvc repro`: the
stage resumes from its last resume point and the pipeline ends with the bytes, dvc.lock and
clean status of a build that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import shrink, small_design
from test_pipeline_end_to_end import copy_repo, sh, snapshot_files

STAGES = ["evaluate-probe"]  # and train-probe, which it depends on


def repo(root: Path) -> tuple[Path, dict]:
    """A copy of the repository with the small design and a probe long enough to be killed."""
    root.mkdir()
    copy_repo(root)
    params = small_design(shrink(yaml.safe_load((root / "params.yaml").read_text())))
    params["profiles"]["smoke"].update(env_steps=600, curve_interval=50)
    params["resume"]["every_env_steps"]["smoke"] = 100
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh([sys.executable, "-m", "pipeline.design.dvc_stages"], root)
    sh(["git", "init", "-q"], root)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    return root, env


def probe_outputs(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot_files(root / "results/runs/probe").items() if not k.startswith("sacred/")}


def test_dvc_repro_killed_mid_training_resumes_to_the_uninterrupted_bytes(tmp_path):
    reference, env = repo(tmp_path / "reference")
    sh([sys.executable, "-m", "dvc", "repro", *STAGES], reference, env)

    root, env = repo(tmp_path / "killed")
    build = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", *STAGES], cwd=root, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    points = root / ".resume/probe"
    # generous: on a loaded machine (tests on every core, as CI runs them) the first point is slow
    deadline = time.monotonic() + 600
    while not list(points.glob("*.pkl")):  # the test's chosen moment: right after the first point
        assert build.poll() is None, "training finished before its first resume point"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(build.pid, signal.SIGKILL)
    build.wait()
    # nothing was published, and what was half-written stays outside results/
    assert not (root / "results/runs/probe/checkpoints").exists()
    assert (root / ".staging/probe-train").is_dir()

    log = sh([sys.executable, "-m", "dvc", "repro", *STAGES], root, env)
    assert "resume: probe goes on from env step " in log, log
    resumed_from = int(log.split("goes on from env step ")[1].split()[0])
    assert 100 <= resumed_from < 600
    assert probe_outputs(root) == probe_outputs(reference)
    assert (root / "dvc.lock").read_text() == (reference / "dvc.lock").read_text()
    assert "Running stage" not in sh([sys.executable, "-m", "dvc", "repro", *STAGES], root, env)
    assert not (root / ".resume").exists() and not (root / ".staging").exists()
