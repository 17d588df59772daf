"""params.yaml survives `dvc exp run -S`: DVC rewrites the whole file in its own YAML style, and
params.yaml is kept in that style (block lists, no flow mapping or plain string longer than a
line), so the rewrite changes the one line that was set; every resolved run stays what it was
apart from the value that was set and the runs that inherit it (ARCHITECTURE.md: entries
inherit by name, never by YAML merge keys).

The experiment is queued, not run: DVC writes the rewritten params.yaml into its queue's stash
commit, which the test reads back."""

from __future__ import annotations

import dataclasses
import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from pipeline.design.params import resolve_runs


def sh(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def resolved(text: str) -> dict:
    """Every run as plain data, resolved from params.yaml's text."""
    return {name: dataclasses.asdict(run) for name, run in resolve_runs(yaml.safe_load(text)).items()}


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("exp")
    for name in ("params.yaml", "dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    sh(["git", "init", "-q"], root)
    sh([sys.executable, "-m", "dvc", "init", "-q"], root)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    sh(git + ["add", "-A"], root)
    sh(git + ["commit", "-qm", "params"], root)
    sh([sys.executable, "-m", "dvc", "exp", "run", "--queue", "-S", "algorithms.vm3ac.beta=0.05"], root)
    after = sh(["git", "show", "refs/exps/celery/stash:params.yaml"], root)
    return (root / "params.yaml").read_text(), after


def test_dvc_changes_the_one_line_that_was_set(rewritten):
    before, after = rewritten
    changed = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]  # fmt: skip
    assert [line[0] + line[1:].split("#")[0].strip() for line in changed] == ["-beta: 0.1", "+beta: 0.05"], changed
    assert not [n for n, line in enumerate(before.splitlines(), 1) if line != line.rstrip()]  # no trailing spaces


def test_every_run_is_unchanged_but_for_the_set_value_and_its_heirs(rewritten):
    before, after = map(resolved, rewritten)
    assert set(after) == set(before)
    changed = {}
    for name, run in before.items():
        if after[name] != run:
            differing = {k for k in run["settings"] if run["settings"][k] != after[name]["settings"][k]}
            assert {k for k in run if run[k] != after[name][k]} == {"settings"}, name
            changed[name] = differing
    # exactly the runs whose beta comes from `vm3ac`: the nearest entry of their lineage that
    # sets beta is vm3ac (VM3-AC, VM3-AC without latent, MA-SAC; not MA-AC or the beta sweep)
    algorithms = yaml.safe_load(rewritten[0])["algorithms"]
    inherit = {n for n, run in before.items() if next((a for a in run["lineage"] if "beta" in algorithms[a]), None) == "vm3ac"}
    assert set(changed) == inherit
    assert all(fields == {"beta"} for fields in changed.values())
    assert all(after[name]["settings"]["beta"] == 0.05 for name in changed)
    assert {"vm3ac-multiwalker_n3", "vm3ac_no_latent-multiwalker_n4", "ma_sac-multiwalker_n4"} <= set(changed)
    assert not {n for n in changed if n.startswith(("ma_ac-", "vm3ac_beta"))}
