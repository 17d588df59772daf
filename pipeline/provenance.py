"""Where a figure or table came from: the DVC stage that wrote it and the hashes of that stage's
inputs as dvc.lock records them, the package versions, and (for a bundle) the git commit.

The report stage reads dvc.lock as DVC left it after the upstream stages ran (DVC writes each
stage's entry as soon as it finishes). The git commit is not written into the report page: a DVC
output that names the commit would change with every commit and leave a fresh `dvc repro` with a
modified tree; ``make bundle`` stamps the commit into the bundle it publishes instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

import yaml

LOCK_FILE = Path("dvc.lock")
# What produces the numbers: the learners, the environments, the statistics and the figures.
PACKAGES = (
    "torch", "numpy", "scipy", "pandas", "pettingzoo", "mpe2", "jaxmarl", "jax", "sacred", "dvc",
    "rliable", "matplotlib", "seaborn",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def lock_stages(path: Path = LOCK_FILE) -> dict:
    """dvc.lock's stages ({} before the first `dvc repro`)."""
    try:
        return (yaml.safe_load(path.read_text()) or {}).get("stages", {})
    except FileNotFoundError:
        return {}


def stage_inputs(stages: dict, stage: str) -> dict:
    """{stage, inputs (a digest of every dependency's and param's hash), data (the non-code
    dependencies and their md5)}, or a note where dvc.lock does not hold the stage yet."""
    entry = stages.get(stage)
    if entry is None:
        return {"stage": stage, "inputs": "not in dvc.lock yet", "data": {}}
    deps = {d["path"]: d.get("md5", "") for d in entry.get("deps", [])}
    digest = hashlib.sha256(json.dumps([deps, entry.get("params", {})], sort_keys=True).encode())
    data = {p: h for p, h in deps.items() if not p.endswith(".py")}
    return {"stage": stage, "inputs": digest.hexdigest()[:16], "data": data}


def git_commit() -> str:
    """HEAD, with ``+modified`` when the working tree differs from it (for bundles)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+modified" if dirty.strip() else "")
