"""The code digests (pipeline/design/code_digests.py): each run's stages depend on one file that
changes exactly when a file the stage runs changes."""

from __future__ import annotations

import shutil

import pytest
from conftest import REPO

from pipeline.design import code_digests, code_files, dvc_stages
from pipeline.design.params import load_runs


@pytest.fixture
def runs(monkeypatch):
    monkeypatch.chdir(REPO)
    return load_runs()[1]


def test_a_digest_lists_every_file_its_stage_runs_in_md5sum_format(runs):
    run = runs["maddpg-cooperative_navigation_n3"]
    lines = code_digests.digest(code_digests.stage_files("train", run)).splitlines()
    listed = [line.split("  ", 1)[1] for line in lines]
    assert listed == code_files.source_files("pipeline.stages.train", *code_files.run_code(run))
    assert {"algorithms/learners/maddpg.py", "pipeline/stages/train.py", "envs/batched.py"} <= set(listed)
    assert all(len(line.split("  ", 1)[0]) == 32 for line in lines)


def test_changing_a_learner_changes_its_runs_digests_only(runs, tmp_path, monkeypatch):
    copy = tmp_path / "repo"
    for package in code_files.PACKAGES:
        shutil.copytree(REPO / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    groups = code_digests.groups(runs)
    monkeypatch.setattr(code_digests, "ROOT", copy)
    before = {path: code_digests.digest(files) for path, files in groups.items()}
    with (copy / "algorithms/learners/maddpg.py").open("a") as f:
        f.write("\n# a change\n")
    after = {path: code_digests.digest(files) for path, files in groups.items()}
    changed = {path.name for path in groups if before[path] != after[path]}
    importing = {path.name for path, files in groups.items() if "algorithms/learners/maddpg.py" in files}
    assert changed == importing
    assert {"train-maddpg-multiwalker.md5", "evaluate-maddpg-multiwalker.md5"} <= changed
    assert "train-vm3ac-multiwalker.md5" not in changed and "train-qmix-sparse_smac.md5" not in changed


def test_the_digest_stage_reruns_when_any_listed_file_changes(runs):
    """Its deps hold every file a digest lists, and its outs every digest a run depends on."""
    stage = dvc_stages.digests_stage(runs)
    groups = code_digests.groups(runs)
    assert set().union(*groups.values()) <= set(stage["deps"])
    assert "pipeline/design/code_digests.py" in stage["deps"]
    outs = {next(iter(out)) for out in stage["outs"]}
    for run in runs.values():
        for name, spec in dvc_stages.run_stages(run).items():
            assert [d for d in spec["deps"] if d.startswith("results/code/")][0] in outs, name
