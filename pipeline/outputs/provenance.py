"""Where a figure or table came from: the DVC stage that wrote it and the hashes of that stage's
inputs, the package versions, and (for a bundle) the git commit.

The inputs are the dependencies dvc.yaml lists for the stage, hashed from the workspace as DVC
hashes them (a file's md5, which is what dvc.lock records; a folder's md5 over its files'
listing). They are not read from dvc.lock: a build that records dvc.lock at its end (the Dask
build, pipeline/runtime/parallel_repro.py) must give the same page as `dvc repro`. The git commit is not
written into the report page: a DVC output that names the commit would change with every commit
and leave a fresh `dvc repro` with a modified tree; ``make bundle`` stamps the commit into the
bundle it publishes instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

import yaml

DVC_FILE = Path("dvc.yaml")
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


def pipeline_stages(path: Path = DVC_FILE) -> dict:
    """dvc.yaml's stages ({} where there is no dvc.yaml)."""
    try:
        return (yaml.safe_load(path.read_text()) or {}).get("stages", {})
    except FileNotFoundError:
        return {}


def md5_of(path: Path) -> str:
    """A file's md5 (dvc.lock's value), or a folder's md5 over its files' ``path md5`` lines."""
    if path.is_dir():
        listing = "".join(f"{p.relative_to(path).as_posix()} {md5_of(p)}\n" for p in sorted(path.rglob("*")) if p.is_file())
        return hashlib.md5(listing.encode()).hexdigest()
    if not path.is_file():
        return "missing"
    return hashlib.md5(path.read_bytes()).hexdigest()


def stage_inputs(stages: dict, stage: str) -> dict:
    """{stage, inputs (a digest of every dependency's md5), data (the non-code dependencies
    and their md5)}."""
    entry = stages.get(stage)
    if entry is None:
        return {"stage": stage, "inputs": "not in dvc.yaml", "data": {}}
    deps = {d: md5_of(Path(d)) for d in entry.get("deps", [])}
    digest = hashlib.sha256(json.dumps(deps, sort_keys=True).encode()).hexdigest()[:16]
    data = {p: h for p, h in deps.items() if not p.endswith((".py", ".html"))}
    return {"stage": stage, "inputs": digest, "data": data}


def git_commit() -> str:
    """HEAD, with ``+modified`` when the working tree differs from it (for bundles)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+modified" if dirty.strip() else "")
