"""The real pipeline on a tiny profile, in a temporary copy of the repository: `dvc repro`
builds the figure, the evaluations and the metrics; a second `dvc repro` has nothing to do;
editing one run's hyperparameter invalidates only that run's stages and what reads them."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, shrink, small_claims, small_design

from pipeline.design.params import resolve_runs

GENERATED = ("results", "figures", "dvc.lock", ".dvc/cache", ".dvc/tmp")


def sh(cmd: list[str], cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def copy_repo(dest: Path) -> None:
    """Tracked and untracked-not-ignored files, without anything a previous run generated."""
    listed = sh(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], REPO)
    for name in filter(None, listed.split("\0")):
        if name.startswith(GENERATED) or not (REPO / name).is_file():
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the repository after one tiny `dvc repro` (with an extra Sacred observer)."""
    root = tmp_path_factory.mktemp("repo")
    copy_repo(root)

    params = small_design(shrink(yaml.safe_load((root / "params.yaml").read_text())))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    claims = small_claims(yaml.safe_load((root / "claims.yaml").read_text()))
    (root / "claims.yaml").write_text(yaml.safe_dump(claims, sort_keys=False))
    sh([sys.executable, "-m", "pipeline.design.dvc_stages"], root)  # dvc.yaml for the small design
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    sh(["git", "init", "-q"], root)
    sh(git + ["add", "-A"], root)
    sh(git + ["commit", "-qm", "tiny"], root)
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        DVC_NO_ANALYTICS="1",
        HARNESS_SACRED_OBSERVER=str(root / "extra_observer"),
    )
    log = sh([sys.executable, "-m", "dvc", "repro"], root, env)
    os.chdir(root)
    try:
        runs = sorted(resolve_runs(params))
    finally:
        os.chdir(REPO)
    return root, params, env, log, runs


def test_repro_builds_figure_evaluations_and_metrics(built):
    root, params, _, _, runs = built
    for name in ("harness/cn3_learners", "vm3ac/fig6", *(f"iac/iac_fig{k}" for k in (2, 3, 5, 7))):
        for ext in ("png", "pdf"):
            assert (root / f"figures/{name}.{ext}").stat().st_size > 1000
        assert (root / f"figures/{name}.png").read_bytes()[:4] == b"\x89PNG"
    profile = params["profiles"]["smoke"]
    seeds = params["seeds"][: profile["seeds"]]
    table = pd.read_csv(root / "results/tables/table1.csv")
    assert list(table["mode"]) == params["tables"]["table1"]["modes"]
    assert table.set_index("mode").loc["sampled", "mean"] == table.set_index("mode").loc["shared_seed", "mean"]
    assert "| sampled" in (root / "results/tables/table1.md").read_text()
    drawn = pd.read_csv(root / "results/snapshots/fig6.csv")
    assert set(drawn["label"]) == {"VM3-AC", "MA-SAC"} and set(drawn["seed"]) == set(seeds)
    # IAC: the mean joint action at every curve point (Fig. 2), the covariance at the kept
    # steps (Fig. 5: symmetric), the exploration distributions (Fig. 3), steps saved (Fig. 7).
    curve_steps = set(range(0, profile["env_steps"] + 1, profile["curve_interval"]))
    paths = pd.read_csv(root / "results/snapshots/iac_fig2.csv")
    assert set(paths["step"]) == curve_steps and set(paths["label"]) == {"DDPG-MIX", "IAC"}
    sigma = pd.read_csv(root / "results/snapshots/iac_fig5.csv")
    assert set(sigma["step"]) == {0, 50} and set(sigma["seed"]) == set(seeds)
    matrices = sigma.pivot_table(index=["step", "seed", "i"], columns="j", values="covariance").to_numpy()
    matrices = matrices.reshape(-1, 2, 2)
    assert np.allclose(matrices, matrices.transpose(0, 2, 1)) and (np.linalg.eigvalsh(matrices) > 0).all()
    exploration = pd.read_csv(root / "results/snapshots/iac_fig3.csv")
    assert list(exploration["label"]) == ["independent", "collaborative", "IAC", "IAC", "IAC"]
    compared = pd.read_csv(root / "results/tables/iac_fig7.csv")
    assert list(compared["role"]) == ["baseline", "compared"]
    payoff = pd.read_csv(root / "results/tables/iac_matrix_game_table1.csv")  # played, not typed
    assert list(payoff["payoff"]) == [8, -12, -12, -12, 0, 0, -12, 0, 0]
    policy = pd.read_csv(root / "results/tables/iac_matrix_game_table4.csv").query("quantity == 'P'")
    assert policy["mean"].sum() == pytest.approx(1.0)  # eq. 7 is a distribution
    for k in (1, 2, 3, 4):
        assert (root / f"results/tables/iac_matrix_game_table{k}.md").read_text().startswith("# IAC Table")
    metrics = json.loads((root / "results/metrics.json").read_text())
    assert set(metrics) == set(runs) and len(runs) == 11
    for name in runs:
        run = root / "results/runs" / name
        evaluation = json.loads((run / "eval.json").read_text())
        assert evaluation["episodes"] == profile["eval_episodes"]
        assert set(evaluation["modes"][evaluation["headline_mode"]]["per_seed"]) == {
            str(s) for s in seeds
        }
        assert metrics[name]["eval_return_mean"] == pytest.approx(evaluation["mean"])
        low, high = metrics[name]["eval_return_ci95_low"], metrics[name]["eval_return_ci95_high"]
        assert low <= metrics[name]["eval_return_mean"] <= high
        curves = (run / "curves.csv").read_text().splitlines()
        assert curves[0] == "step,seed,return,win_rate"
        steps = (
            params["profiles"]["smoke"]["env_steps"]
            // params["profiles"]["smoke"]["curve_interval"]
        )
        assert len(curves) - 1 == (steps + 1) * len(seeds)
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
            f"seed{s}.pt" for s in seeds
        )
        sacred = run / "sacred" / "train"
        assert json.loads((sacred / "run.json").read_text())["status"] == "COMPLETED"
        assert json.loads((sacred / "config.json").read_text())["run"] == name
        assert "return.seed0" in json.loads((sacred / "metrics.json").read_text())
    extra = [
        json.loads(p.read_text())["status"] for p in (root / "extra_observer").glob("*/run.json")
    ]
    assert extra == ["COMPLETED"] * len(runs)
    assert not (root / ".staging").exists()


def test_repro_ends_with_the_report(built):
    root, _, _, _, runs = built
    verdicts = json.loads((root / "results/report/claims.json").read_text())
    claims = verdicts["claims"]
    assert set(claims) == {"vm3ac_fig6_groups", "iac_matrix_qmix_suboptimal", "iac_matrix_qmixs_optimal", "cn3", "cn3_absent"}
    assert claims["cn3_absent"]["verdict"] == "no data yet"
    # the tiny profile trains far below every claim's budget: no verdict, and the budget gap said
    assert all(c["verdict"] == "not testable at this budget" and c["budget"].startswith("ours ")
               for k, c in claims.items() if k != "cn3_absent")  # fmt: skip
    assert claims["cn3"]["comparisons"] == 2
    markdown = (root / "results/report/claims.md").read_text()
    assert "missing: run maven-cooperative_navigation_n3, run si_moa-cooperative_navigation_n3" in markdown
    scores = pd.read_csv(root / "results/report/final_scores.csv")
    assert set(scores["run"]) == set(runs)
    page = (root / "results/report/index.html").read_text()
    assert page.count('<tr class="claim"') == 5 and '<img src="../../figures/harness/cn3_learners.png"' in page
    document = json.loads((root / "results/marl_eval.json").read_text())
    assert set(document["cn3_learners"]["cooperative_navigation_n3"]) == {"MADDPG", "MA-AC", "MA-SAC", "VM3-AC"}


def test_second_repro_has_nothing_to_do(built):
    root, _, env, _, _ = built
    log = sh([sys.executable, "-m", "dvc", "repro"], root, env)
    assert "Data and pipelines are up to date." in log
    assert "Running stage" not in log


def copy_built(built, dest: Path) -> Path:
    """A copy of the built repository (its DVC cache and lock included) to change freely."""
    shutil.copytree(built[0], dest, symlinks=True, ignore=shutil.ignore_patterns(".resume", "extra_observer"))
    return dest


def test_dry_says_what_would_run_where_dvcs_own_dry_run_stops(built, tmp_path):
    """As in a fresh clone, one run's outputs are absent: DVC's `repro --dry` stops at the
    stage that reads them (treeverse/dvc#9021); `make dry` lists what would run, and why."""
    _, _, env, _, _ = built
    work = copy_built(built, tmp_path / "repo")
    shutil.rmtree(work / "results/runs/probe")
    dvc_dry = subprocess.run([sys.executable, "-m", "dvc", "repro", "--dry"], cwd=work, env=env, capture_output=True, text=True)
    assert dvc_dry.returncode != 0 and "No such file or directory" in dvc_dry.stderr  # README says so
    out = sh([sys.executable, "-m", "pipeline.runtime.parallel_repro", "--dry"], work, env)
    planned = dict(line.split(None, 1) for line in out.splitlines()[1:])
    assert list(planned)[:2] == ["train-probe", "evaluate-probe"] and planned["train-probe"].strip() == "changed"
    assert {"aggregate", "report"} <= set(planned)
    assert not any(name.startswith(("train-", "figure-")) and "probe" not in name for name in planned)
    assert not (work / "results/runs/probe").exists()  # nothing ran


def test_a_new_variant_reaches_its_figure_alone(built, tmp_path):
    """A variant of VM3-AC and a figure of it beside its parent: `dvc repro figure-<name>` trains
    the variant only (the parent is built) and draws the figure, nothing else."""
    _, _, env, _, _ = built
    work = copy_built(built, tmp_path / "repo")
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["algorithms"]["vm3ac_beta_half"] = {"inherit": "vm3ac", "beta": 0.05}
    params["figures"]["beta_half"] = {
        "paper": "harness", "panels": {"a": {"task": "cooperative_navigation_n3"}},
        "curves": {"VM3-AC": {"algorithm": "vm3ac"}, "beta 0.05": {"algorithm": "vm3ac_beta_half"}},
    }  # fmt: skip
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh([sys.executable, "-m", "pipeline.design.dvc_stages"], work)
    log = sh([sys.executable, "-m", "dvc", "repro", "figure-beta_half"], work, env)
    ran = sorted(line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage"))
    assert ran == ["figure-beta_half", "train-vm3ac_beta_half-cooperative_navigation_n3"]
    assert (work / "figures/harness/beta_half.png").stat().st_size > 1000


def test_a_bundle_of_a_stale_workspace_is_refused(built, tmp_path):
    """params.yaml changed since the build: the bundle names the stale stages and writes nothing."""
    _, _, env, _, _ = built
    work = copy_built(built, tmp_path / "repo")
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["runs"]["probe"]["hyper"] = {"lr_actor": 0.001}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "pipeline.report.bundle", "build", "b.tar.gz"], cwd=work, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1 and not (work / "b.tar.gz").exists()
    assert done.stderr.strip() == ("bundle: the outputs are not those of params.yaml and the code (dvc status: "
                                   "aggregate, evaluate-probe, train-probe changed); run `make repro` first")  # fmt: skip


def test_dvc_metrics_and_plots_read_the_outputs(built):
    root, params, env, _, runs = built
    shown = json.loads(sh([sys.executable, "-m", "dvc", "metrics", "show", "--json"], root, env))
    metrics = next(iter(shown.values()))["data"]["results/metrics.json"]["data"]
    assert set(metrics) == set(runs)
    plots = json.loads(sh([sys.executable, "-m", "dvc", "plots", "show", "--json"], root, env))
    assert not plots.get("errors")
    assert f"results/plots/curves/{runs[0]}.csv" in plots["data"]


def test_one_run_edited_invalidates_only_that_run(built):
    root, params, env, _, runs = built
    edited = yaml.safe_load((root / "params.yaml").read_text())
    edited["runs"]["probe"]["hyper"] = {"lr_actor": 0.001}
    (root / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    try:
        status = json.loads(sh([sys.executable, "-m", "dvc", "status", "--json"], root, env))
    finally:
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert set(status) == {"train-probe", "evaluate-probe", "aggregate"}


def test_an_edited_entry_invalidates_the_runs_that_inherit_it(built):
    root, params, env, _, runs = built
    edited = yaml.safe_load((root / "params.yaml").read_text())
    edited["algorithms"]["vm3ac"]["q_sigma"] = 0.5
    (root / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    try:
        status = json.loads(sh([sys.executable, "-m", "dvc", "status", "--json"], root, env))
    finally:
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    inheriting = [r for r in runs if r.split("-")[0] in ("vm3ac", "ma_ac", "ma_sac", "probe")]
    assert len(inheriting) == 6  # VM3-AC, MA-AC, MA-SAC on CN; VM3-AC and MA-SAC on PP; probe
    stale = {f"{s}-{r}" for s in ("train", "evaluate") for r in inheriting}
    # and the stages that rebuild those runs' learners from their checkpoints (they check the
    # settings against params.yaml): Table 1 and the Fig. 6 snapshot, both on VM3-AC's lineage
    assert set(status) == stale | {"table-table1", "snapshot-fig6"}


def test_editing_one_learner_leaves_every_other_run_up_to_date(built):
    """The per-run code dependencies of the generated dvc.yaml, through the code digests:
    MADDPG's module changes, `dvc status` names it at the digest stage, and once the digests
    are rewritten only MADDPG's stages are stale."""
    root, _, env, _, _ = built
    module = root / "algorithms/learners/maddpg.py"
    original = module.read_text()
    dvc = [sys.executable, "-m", "dvc"]
    module.write_text(original + "\n# an edit\n")
    try:
        status = json.loads(sh([*dvc, "status", "--json"], root, env))
        assert status == {"code-digests": [{"changed deps": {"algorithms/learners/maddpg.py": "modified"}}]}
        sh([*dvc, "repro", "--single-item", "code-digests"], root, env)
        status = json.loads(sh([*dvc, "status", "--json"], root, env))
    finally:
        module.write_text(original)
        sh([*dvc, "repro", "--single-item", "code-digests"], root, env)
    assert set(status) == {"train-maddpg-cooperative_navigation_n3", "evaluate-maddpg-cooperative_navigation_n3"}
    assert json.loads(sh([*dvc, "status", "--json"], root, env)) == {}  # the digests are back


def test_fig6_positions_are_those_of_the_kept_policies_replayed(built, monkeypatch):
    """The snapshot stage's data equal a fresh replay of the checkpoints kept at that step."""
    from pipeline.analyses.vm3ac import positions

    root, params, _, _, _ = built
    monkeypatch.chdir(root)
    runs = resolve_runs(params)
    snapshot = params["snapshots"]["fig6"]
    drawn = pd.read_csv(root / "results/snapshots/fig6.csv")
    for label, algorithm in snapshot["rows"].items():
        run = runs[f"{algorithm}-{snapshot['task']}"]
        replayed = positions.play(run, snapshot["step"]["smoke"], snapshot["after_reset"])
        ours = drawn[drawn["label"] == label].reset_index(drop=True)
        assert len(ours) == len(replayed) > 0
        for column in ("seed", "entity", "index", "x", "y"):
            assert list(ours[column]) == list(replayed[column]), column
    # the agents moved away from the centre they start at, and apart from each other
    agents = drawn[drawn["entity"] == "agent"]
    assert agents.groupby(["label", "seed"])["x"].std().gt(0).all()


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rejected_value_through_dvc_repro_keeps_the_previous_outputs(built):
    """`persist` outputs: DVC leaves them in place while the stage runs, and the stage stops
    on the bad value before it writes anything."""
    root, params, env, _, _ = built
    probe = root / "results/runs/probe"
    before = snapshot_files(probe)
    assert {"curves.csv", "eval.json"} <= set(before) and any(k.startswith("sacred/") for k in before)
    edited = yaml.safe_load((root / "params.yaml").read_text())
    edited["runs"]["probe"]["hyper"] = {"beta": float("nan")}
    (root / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    try:
        done = subprocess.run([sys.executable, "-m", "dvc", "repro", "train-probe"], cwd=root, env=env, capture_output=True, text=True)
    finally:
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert done.returncode != 0
    assert "params.yaml: algorithms.ma_ac.beta" in done.stderr or "runs.probe" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot_files(probe) == before
    assert not (root / ".staging").exists()


def test_the_dask_build_gives_the_serial_builds_lock_and_outputs(built, tmp_path):
    """The same tiny pipeline built again from nothing by `python -m pipeline.runtime.parallel_repro
    --jobs 2 --warm` (a Dask LocalCluster, one thread per stage, stages forked warm): dvc.lock and every
    output as the serial build's, byte for byte. So what differs from run to run (Sacred's start
    times and host) is recorded but not hashed into dvc.lock, and a rebuild on an unchanged
    commit leaves the tree clean (this replaces a forced serial rebuild, 136 s of CI)."""
    root, params, env, _, _ = built
    twin = tmp_path / "twin"
    twin.mkdir()
    copy_repo(twin)
    for name in ("params.yaml", "claims.yaml", "dvc.yaml"):
        shutil.copy(root / name, twin / name)
    sh(["git", "init", "-q"], twin)
    log = sh([sys.executable, "-m", "pipeline.runtime.parallel_repro", "--jobs", "2", "--warm"], twin, env)
    assert "parallel_repro: stage train-probe finished" in log
    # the progress the build's one line per running stage reads (pipeline/runtime/meter.py)
    progress = json.loads((twin / ".dvc/tmp/parallel/train-probe.progress.json").read_text())
    env_steps = params["profiles"]["smoke"]["env_steps"]
    assert progress["steps"] == progress["total"] == env_steps and progress["steps_per_second"] > 0
    assert (twin / "dvc.lock").read_text() == (root / "dvc.lock").read_text()
    for folder in ("results", "figures"):
        ours = {k: v for k, v in snapshot_files(root / folder).items() if "/sacred/" not in k and not k.startswith(".")}
        theirs = {k: v for k, v in snapshot_files(twin / folder).items() if "/sacred/" not in k and not k.startswith(".")}
        assert theirs == ours
    assert "Running stage" not in sh([sys.executable, "-m", "dvc", "repro"], twin, env)


# ---- every params.yaml value a stage's outputs depend on is declared in its `params:` ---------


def _leaves(tree, prefix=()):
    """(path, value) of every number and boolean in params.yaml, lists included by index."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        if isinstance(value, (dict, list)):
            yield from _leaves(value, (*prefix, key))
        elif isinstance(value, (bool, int, float)):
            yield (*prefix, key), value


def _changed(value):
    """Another value of the same kind, near enough that most checks still accept it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return (value + 1) / 2 if 0 < value < 1 else value * 1.5 if value else 0.5


def _mutated(params: dict, paths) -> dict:
    out = copy.deepcopy(params)
    for path in paths:
        node = out
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _changed(node[path[-1]])
    return out


def _accepted(params: dict) -> bool:
    from pipeline.design.params import ParamsError, resume_every, train_device

    try:
        resolve_runs(params), resume_every(params), train_device(params)
    except (ParamsError, SystemExit, ValueError, KeyError, TypeError):
        return False
    return True


def _accepted_subset(params: dict, paths: list) -> list:
    """A large subset of ``paths`` whose values, all changed at once, params.yaml still accepts."""
    if not paths or _accepted(_mutated(params, paths)):
        return paths
    if len(paths) == 1:
        return []
    half = len(paths) // 2
    first, second = _accepted_subset(params, paths[:half]), _accepted_subset(params, paths[half:])
    both = first + second
    return both if _accepted(_mutated(params, both)) else max(first, second, key=len)


def _covered(path, declared, profile: str) -> bool:
    dotted = ".".join(map(str, path))
    return any(dotted == d or dotted.startswith(d + ".") for d in (p.replace("${profile}", profile) for p in declared))


def _digest(root: Path, outs: list) -> dict:
    found = {}
    for entry in outs:
        out = root / (next(iter(entry)) if isinstance(entry, dict) else entry)
        for f in sorted(out.rglob("*")) if out.is_dir() else [out]:
            if f.is_file():
                found[f.relative_to(root).as_posix()] = hashlib.md5(f.read_bytes()).hexdigest()
    return found


def _one_stage_per_kind(stages: dict) -> dict:
    """The first stage of every command module, and of every snapshot kind."""
    kinds = {}
    for name, stage in stages.items():
        module = stage["cmd"].split()[2]
        kinds.setdefault(name.split("-")[0] + ":" + module, name)
    return kinds


def test_every_value_a_stage_depends_on_is_in_its_params(built, tmp_path):
    """Each kind of stage, run again with every number and flag of params.yaml it does not
    declare changed at once (those params.yaml still accepts), writes the same bytes. A stage
    whose outputs change, or that stops, names the undeclared keys it depends on (found by
    halving)."""
    _, params, env, _, _ = built
    work = copy_built(built, tmp_path / "repo")
    original = (work / "params.yaml").read_text()
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    leaves = dict(_leaves(params))
    missing = {}
    for kind, name in sorted(_one_stage_per_kind(stages).items()):
        stage = stages[name]
        outs = [*stage.get("outs", []), *stage.get("metrics", [])]
        free = [p for p in leaves if not _covered(p, stage.get("params", []), params["profile"])]
        free = _accepted_subset(params, free)

        def outputs(paths):
            (work / "params.yaml").write_text(yaml.safe_dump(_mutated(params, paths), sort_keys=False))
            shutil.rmtree(work / ".resume", ignore_errors=True)
            try:
                done = subprocess.run(stage["cmd"].split(), cwd=work, env=env, capture_output=True, text=True)
            finally:
                (work / "params.yaml").write_text(original)
            if done.returncode:  # it read a changed value and stopped: it depends on it too
                return {"stopped": done.stderr.strip().splitlines()[-1:]}
            return _digest(work, outs)

        before = _digest(work, outs)  # as the build wrote them (a rerun writes the same bytes)
        if outputs(free) == before:
            continue
        culprits, todo = [], [free]
        while todo:  # halve the changed keys until each culprit stands alone
            paths = todo.pop()
            if len(paths) == 1:
                culprits.append(".".join(map(str, paths[0])))
                continue
            todo += [part for part in (paths[: len(paths) // 2], paths[len(paths) // 2 :]) if outputs(part) != before]
        missing[name] = sorted(culprits)
    assert not missing, f"stages depend on params they do not declare: {missing}"
