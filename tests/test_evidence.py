"""The evidence instance (evidence/, issue 28): its files are what the root files give, its
stages are the root pipeline's run from evidence/ with every output in git and each run tied to
its own task's budget, it is a DVC project of its own (so the default build never retrains
it), and its learning checks decide as their docstring says."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.design import checks as check_spec
from pipeline.design import dvc_stages, evidence
from pipeline.design.params import load_runs
from pipeline.report import learning_checks
from pipeline.report.claims import load_claims

ROOT = Path(__file__).resolve().parents[1]


def spec() -> dict:
    return yaml.safe_load((ROOT / "evidence.yaml").read_text())


def root_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_derived_files_and_the_instance_dvc_yaml_are_current(monkeypatch):
    for path, text in evidence.derived_files().items():
        assert (ROOT / path).read_text() == text, f"{path} is stale: run `python -m pipeline.design.evidence`"
    monkeypatch.chdir(ROOT / evidence.FOLDER)
    params, runs = load_runs()
    assert (ROOT / "evidence/dvc.yaml").read_text() == dvc_stages.render(params, runs), "run `make evidence-files`"


def test_the_instance_draws_only_what_evidence_yaml_builds_at_its_budgets():
    planned = copy.deepcopy(spec())
    planned["builds"]["figures"] = {"iac_fig4": ["a", "b"]}
    derived = evidence.derive_params(root_params(), planned)
    assert derived["profile"] == "evidence"
    assert set(derived["figures"]) == {"iac_fig4"}
    assert list(derived["figures"]["iac_fig4"]["panels"]) == ["a", "b"]  # its panel c is not drawn
    assert derived["snapshots"]["iac_fig5"]["step"] == {"evidence": [0, 20000, 40000, 60000]}
    profile = derived["profiles"]["evidence"]
    assert all(set(b) == set(evidence.BUDGET_KEYS) for b in profile["tasks"].values())
    # everything else is the root's: one definition of every learner and task
    for section in ("tasks", "algorithms", "seeds", "evaluation"):
        assert derived[section] == root_params()[section]


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(extra=1), "evidence.yaml: unknown key(s) extra"),
    (lambda s: s["builds"]["figures"].update(fig99=None), "evidence.yaml builds.figures.fig99: no such entry in params.yaml figures"),
    (lambda s: s["builds"]["figures"].update(iac_fig4=["z"]), "evidence.yaml builds.figures.iac_fig4: no panel 'z'"),
    (lambda s: s["profile"]["tasks"].update(matrix_game={"env_steps": 10}), "evidence.yaml profile.tasks.matrix_game: missing curve_interval"),
    (lambda s: s.pop("resume_every"), "evidence.yaml resume_every: must be a positive integer, not None"),
    (lambda s: s.update(resume_every=True), "evidence.yaml resume_every: must be a positive integer, not True"),
])  # fmt: skip
def test_a_bad_evidence_yaml_stops_in_one_line(change, message):
    bad = copy.deepcopy(spec())
    change(bad)
    with pytest.raises(evidence.EvidenceError) as err:
        evidence.derive_params(root_params(), bad)
    assert str(err.value).startswith(message)


def test_a_check_like_a_default_is_written_in_full_its_own_fields_winning():
    planned = {"check_defaults": {"task": {"kind": "curve", "reference": "r.json", "window": [1, 2], "band": [0.5, 2.0]}},
               "checks": {"a": {"like": "task", "learner": "A", "run": "a-task", "band": [0.8, 1.2]},
                          "b": {"like": "task", "learner": "B", "run": "b-task"}}}  # fmt: skip
    checks = evidence.derive_checks(planned)
    assert checks["a"] == {"kind": "curve", "learner": "A", "run": "a-task", "reference": "r.json", "window": [1, 2],
                           "band": [0.8, 1.2]}  # fmt: skip
    assert list(checks["a"]) == ["kind", "learner", "run", "reference", "window", "band"]  # CHECK_ORDER
    checks["b"]["window"].append(3)  # a copy each: the file is written without YAML anchors
    assert planned["check_defaults"]["task"]["window"] == [1, 2]
    with pytest.raises(evidence.EvidenceError, match=r"^evidence.yaml checks.c.like: no 'other' in check_defaults$"):
        evidence.derive_checks({"check_defaults": {}, "checks": {"c": {"like": "other"}}})


@pytest.mark.parametrize("change, message", [
    (lambda s: s["checks"]["iac_official"].update(run="iac-iac_predator_pray"),
     "evidence.yaml checks.iac_official.run: no run 'iac-iac_predator_pray' in params.yaml"),
    (lambda s: s["runs"]["iac-iac_predator_prey"].update(algorithm="iacc"),
     "evidence/params.yaml would not load: runs.iac-iac_predator_prey.algorithm: unknown algorithm 'iacc'"),
])  # fmt: skip
def test_a_bad_run_or_check_stops_before_any_derived_file_is_written(monkeypatch, change, message):
    # before, the derived files were written first and `dvc_stages` refused them after: a bad
    # checks.yaml was left behind for the checks' stage to read
    bad = copy.deepcopy(spec())
    change(bad)
    derived_files = evidence.derived_files
    with pytest.raises(evidence.EvidenceError) as err:
        evidence.validate_instance(derived_files(spec=bad))
    assert str(err.value).startswith(message)
    before = {path: (ROOT / path).read_bytes() for path in derived_files()}
    monkeypatch.setattr(evidence, "derived_files", lambda: derived_files(spec=bad))
    with pytest.raises(SystemExit, match=f"^{re.escape(f'evidence: {message}')}"):
        evidence.main([])
    assert {path: (ROOT / path).read_bytes() for path in before} == before
    evidence.validate_instance(derived_files())  # today's evidence.yaml passes


def test_instance_stages_read_code_one_level_up_keep_outputs_in_git_and_own_budgets(monkeypatch):
    monkeypatch.chdir(ROOT / evidence.FOLDER)
    params, runs = load_runs()
    stages = yaml.safe_load(dvc_stages.render(params, runs))["stages"]
    for name, stage in stages.items():
        for dep in stage.get("deps", []):
            assert not dep.startswith(evidence.CODE_ROOTS), f"{name}: {dep} is not one level up"
        for out in stage.get("outs", []) + stage.get("metrics", []):
            assert next(iter(out.values()))["cache"] is False, f"{name}: {out} would live in DVC's cache"
        assert "frozen" not in stage
    train = stages["train-iac-iac_predator_prey"]["params"]
    assert "profiles.${profile}" not in train and "profiles.evidence.tasks.iac_predator_prey" in train
    assert "snapshots" not in train  # no snapshot keeps this run's policies
    assert "snapshots.iac_fig5" in stages["train-iac-multi_pendulum_n3"]["params"]
    assert list(stages)[-2:] == ["learning-checks", "report"]
    assert "results/checks/checks.json" in stages["report"]["deps"]


def test_a_new_task_in_a_later_chunk_leaves_earlier_runs_up_to_date(monkeypatch, tmp_path):
    """A run's stages, and the figures, tables and snapshots drawn from its runs, depend on their
    own tasks' budgets: adding a task changes no earlier stage."""
    monkeypatch.chdir(ROOT / evidence.FOLDER)
    before = yaml.safe_load(dvc_stages.render(*load_runs()))["stages"]
    grown = copy.deepcopy(spec())
    # a MADDPG task the evidence has not budgeted yet (chunk 11 budgeted cooperative navigation)
    task = next(t for t in ("treasure_collection_n4", "multiwalker_n3", "predator_prey_n2") if t not in grown["profile"]["tasks"])
    grown["profile"]["tasks"][task] = {"env_steps": 1000, "curve_interval": 500}
    grown["runs"][f"maddpg-{task}"] = {"algorithm": "maddpg", "task": task}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(evidence.derive_params(root_params(), grown), sort_keys=False))
    shutil.copy(ROOT / "evidence/checks.yaml", tmp_path / "checks.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evidence, "is_instance", lambda: True)
    after = yaml.safe_load(dvc_stages.render(*load_runs()))["stages"]
    assert f"train-maddpg-{task}" in after
    old = yaml.safe_load((ROOT / "evidence/params.yaml").read_text())
    new = yaml.safe_load(Path("params.yaml").read_text())

    def value(params: dict, key: str):  # what DVC compares for a params entry
        for part in key.replace("${profile}", params["profile"]).split("."):
            params = params[part]
        return params

    drawn = ("figure-", "table-", "snapshot-", "compare-")
    assert any(name.startswith(drawn) for name in before)
    for name, stage in before.items():
        if name.startswith(("train-", "evaluate-", *drawn)):
            assert after[name]["params"] == stage["params"], name
            for key in stage["params"]:
                assert value(new, key) == value(old, key), f"{name} would rerun: {key} changed"


def test_the_evidence_instance_is_a_dvc_project_of_its_own():
    """So the root's `dvc repro` and `make repro` never see (nor retrain) its stages."""
    from dvc.repo import Repo

    assert (ROOT / "evidence/.dvc/config").is_file()
    with Repo(str(ROOT)) as repo:
        assert not [s for s in repo.index.stages if "evidence" in Path(s.path).parts]
    with Repo(str(ROOT / "evidence")) as repo:
        assert "train-iac-iac_predator_prey" in {s.name for s in repo.index.stages}


def test_the_evidence_claims_are_the_roots():
    claims = yaml.safe_load((ROOT / "claims.yaml").read_text())["claims"]
    derived = yaml.safe_load((ROOT / "evidence/claims.yaml").read_text())["claims"]
    assert derived == {cid: claims[cid] for cid in spec()["claims"]}
    load_claims(yaml.safe_load((ROOT / "evidence/params.yaml").read_text()), ROOT / "evidence/claims.yaml")


# ---- learning checks ----------------------------------------------------------------------------


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """A scratch evidence instance: its params, one run's curve, a reference curve."""
    for name in ("params.yaml", "checks.yaml"):
        shutil.copy(ROOT / "evidence" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    _, runs = load_runs()
    return runs


def write_curve(run: str, values_by_seed: dict[int, list[float]], steps: list[int]) -> None:
    rows = [(step, seed, v) for seed, values in values_by_seed.items() for step, v in zip(steps, values, strict=True)]
    folder = Path("results/runs") / run
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["step", "seed", "return"]).assign(win_rate=float("nan")).to_csv(folder / "curves.csv", index=False)


def reference_window_mean(check: dict) -> float:
    ref = learning_checks.reference_curves(ROOT / check["reference"])
    return float(learning_checks.window_means(ref, check["window"]).mean())


def check_steps(check: dict) -> list[int]:
    """A curve point every 1,000 steps, past the check's window."""
    return list(range(0, check["window"][1] + 1001, 1000))


@pytest.mark.parametrize("scale, verdict", [
    (1.0, learning_checks.AS_REFERENCE),
    (0.3, learning_checks.WORSE),
    (3.0, learning_checks.BETTER),
    # the official code's own curve has not measurably learned by 60,000 steps either
    (0.0, learning_checks.INCONCLUSIVE),
])  # fmt: skip
def test_a_curve_check_decides_by_the_band_fixed_before_the_run(instance, scale, verdict):
    check = check_spec.load_checks(instance)["iac_official"]
    steps = check_steps(check)
    level = scale * reference_window_mean(check)
    write_curve("iac-iac_predator_prey", {s: [0.0] + [level + s - 1 for _ in steps[1:]] for s in range(3)}, steps)
    result = learning_checks.curve_check("iac_official", check, instance["iac-iac_predator_prey"], Path("."))
    assert result["verdict"] == verdict
    assert Path("harness/check_iac_official.png").is_file()


def test_a_flat_curve_beside_a_reference_that_learns_does_not_learn(instance, tmp_path):
    steps = check_steps(check_spec.load_checks(instance)["iac_official"])
    reference = {"seeds": {str(s): [[step, 0.0 if step < 5000 else 50.0 + s] for step in steps[1:]] for s in range(3)}}
    (tmp_path / "learning_reference.json").write_text(json.dumps(reference))
    write_curve("iac-iac_predator_prey", {s: [0.0] + [float(s) for _ in steps[1:]] for s in range(3)}, steps)
    check = {**check_spec.load_checks(instance)["iac_official"], "reference": str(tmp_path / "learning_reference.json")}
    result = learning_checks.curve_check("iac_official", check, instance["iac-iac_predator_prey"], Path("."))
    assert result["verdict"] == learning_checks.NOT_LEARNED and result["reference_learned"] and not result["learned"]


def test_a_win_rate_check_reads_the_win_rate_not_the_return(instance):
    """checks.vdac_smac_3m compares win rates (its reference is StarCraft II, another reward scale):
    a run winning as often as the reference passes whatever its returns; a curve without the
    metric is named."""
    check = check_spec.load_checks(instance)["vdac_smac_3m"]
    ref = learning_checks.reference_curves(ROOT / check["reference"])
    level = float(learning_checks.window_means(ref, check["window"]).mean())
    steps = list(range(0, 200001, 10000))
    rows = [(step, seed, -100.0, 0.0 if step == 0 else level + 0.01 * (seed - 1)) for seed in range(3) for step in steps]
    folder = Path("results/runs/vdac-smac_3m_dense")
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=["step", "seed", "return", "win_rate"]).to_csv(folder / "curves.csv", index=False)
    result = learning_checks.curve_check("vdac_smac_3m", check, instance["vdac-smac_3m_dense"], Path("."))
    assert result["verdict"] == learning_checks.AS_REFERENCE and result["ratio"] == pytest.approx(1.0)
    assert result["detail"].startswith("mean win rate over steps 100,000-200,000")
    pd.DataFrame(rows, columns=["step", "seed", "return", "won"]).to_csv(folder / "curves.csv", index=False)
    with pytest.raises(check_spec.CheckError, match="vdac-smac_3m_dense has no curve of 'win_rate'"):
        learning_checks.curve_check("vdac_smac_3m", check, instance["vdac-smac_3m_dense"], Path("."))


def test_a_table_check_compares_every_cell_with_the_papers_numbers(instance):
    cells = [(u1, u2) for u1 in "ABC" for u2 in "ABC"]
    paper = {c: v for c, v in zip(cells, [-8.06, -8.05, -8.05, -8.05, -0.01, -0.01, -8.05, -0.02, -0.01], strict=True)}
    table = pd.DataFrame([{"quantity": "Q_tot", "u1": u1, "u2": u2, "mean": paper[u1, u2] + (3.0 if (u1, u2) == ("A", "A") else 0.5),
                           "paper": paper[u1, u2]} for u1, u2 in cells])  # fmt: skip
    Path("results/tables").mkdir(parents=True)
    table.to_csv("results/tables/iac_matrix_game_table2.csv", index=False)
    check = check_spec.load_checks(instance)["qmix_matrix"]
    result = learning_checks.table_check(check)
    assert result["verdict"] == learning_checks.DIFFERS and result["largest_gap"] == pytest.approx(3.0)
    assert "at (A,A)" in result["detail"]
    table["mean"] = table["paper"] + 0.5
    table.to_csv("results/tables/iac_matrix_game_table2.csv", index=False)
    assert learning_checks.table_check(check)["verdict"] == learning_checks.AS_REFERENCE


def test_a_check_naming_a_run_the_instance_lacks_stops_in_one_line(instance):
    checks = yaml.safe_load(Path("checks.yaml").read_text())
    checks["checks"]["iac_official"]["run"] = "iac-nowhere"
    Path("checks.yaml").write_text(yaml.safe_dump(checks))
    with pytest.raises(check_spec.CheckError, match=r"^checks.iac_official.run: no run 'iac-nowhere' in params.yaml$"):
        check_spec.load_checks(instance)
