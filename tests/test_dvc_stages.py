"""dvc.yaml is generated from params.yaml and each run's code (pipeline/design/dvc_stages.py): the
committed file must be what the generator gives, and each run depends on its own code only."""

from __future__ import annotations

from conftest import REPO

from pipeline.design import code_digests, dvc_stages
from pipeline.design.params import load, load_runs, resolve_runs


def test_committed_dvc_yaml_is_what_params_yaml_gives(monkeypatch):
    monkeypatch.chdir(REPO)
    params, runs = load_runs()
    assert (REPO / "dvc.yaml").read_text() == dvc_stages.render(params, runs), (
        "dvc.yaml is stale: run `python -m pipeline.design.dvc_stages` and commit it"
    )


def test_each_run_depends_on_its_own_learner_and_task_only(monkeypatch):
    monkeypatch.chdir(REPO)
    _, runs = load_runs()
    for name, run in runs.items():  # through its digest: one file per stage
        stages = dvc_stages.run_stages(run)
        assert stages[f"train-{name}"]["deps"] == [f"results/code/train-{run.family}-{run.task_id}.md5"]
        assert stages[f"evaluate-{name}"]["deps"][1:] == [f"results/code/evaluate-{run.family}-{run.task_id}.md5"]
    deps = {name: set(code_digests.stage_files("train", run)) for name, run in runs.items()}
    assert "algorithms/learners/maddpg.py" in deps["maddpg-cooperative_navigation_n3"]
    assert "algorithms/learners/maddpg.py" not in deps["vm3ac-cooperative_navigation_n3"]
    assert "algorithms/learners/vm3ac.py" not in deps["maddpg-cooperative_navigation_n3"]
    assert "algorithms/learners/qmix.py" in deps["qmix-smac_3m"]
    assert "envs/smax_dynamics.py" in deps["qmix-smac_3m"]  # imported lazily, still followed
    assert not any(d.startswith("envs/smax") for d in deps["vm3ac-cooperative_navigation_n3"])
    assert "envs/matrix_game.py" not in deps["qmix-smac_3m"]
    shared = {"algorithms/learner.py", "algorithms/components/storage.py", "pipeline/runtime/loops.py", "envs/batched.py"}
    assert all(shared <= d for d in deps.values())


def test_stages_track_every_entry_a_run_inherits(monkeypatch):
    monkeypatch.chdir(REPO)
    _, runs = load_runs()
    run = runs["ma_ac-cooperative_navigation_n3"]  # implied by a figure: no runs entry
    params = dvc_stages.run_stages(run)[f"train-{run.name}"]["params"]
    assert {"algorithms.ma_ac", "algorithms.vm3ac", "tasks.cooperative_navigation_n3"} <= set(params)
    assert "algorithms.maddpg" not in params and not any(p.startswith("runs.") for p in params)
    params = load(REPO / "params.yaml")
    params["runs"] = {"probe": {"algorithm": "qmix", "task": "matrix_game"}}  # a declared run
    declared = resolve_runs(params)["probe"]
    assert "runs.probe" in dvc_stages.run_stages(declared)["train-probe"]["params"]


def test_only_the_snapshot_runs_keep_snapshots(monkeypatch):
    monkeypatch.chdir(REPO)
    _, runs = load_runs()
    keeping = {n for n, r in runs.items() if r.snapshots}
    assert keeping == {
        "vm3ac-predator_prey_n4", "ma_sac-predator_prey_n4",  # VM3-AC Fig. 6
        "ddpg_mix-simple_world", "attn_qmix-simple_world", "iac-simple_world",  # IAC Figs. 2-3
        "iac-multi_pendulum_n3",  # IAC Fig. 5
    }  # fmt: skip
    assert runs["iac-simple_world"].snapshots == (0, 500, 1000, 1500)  # `every` curve point
    outs = dvc_stages.run_stages(runs["vm3ac-predator_prey_n4"])["train-vm3ac-predator_prey_n4"]["outs"]
    assert "results/runs/vm3ac-predator_prey_n4/snapshots" in outs
