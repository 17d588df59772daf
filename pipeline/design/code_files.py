"""Which repository files a module runs: a stage's code dependencies (``dvc.yaml``, written by
pipeline/design/dvc_stages.py) and the code part of a resume point's key (pipeline/runtime/resume.py).

A module's packages run before it, so their ``__init__.py`` files are listed with it
(``pipeline/__init__.py`` fixes the numeric kernels and threads of every stage). Two index
modules are not followed: ``algorithms/__init__.py`` only names each learner's module (a run's
own module is listed directly) and is not listed, and ``envs/registry.py``, which imports every
task, is listed as a file but its imports are not followed (a run lists its own task's modules);
``envs/__init__.py`` only re-exports the registry.
"""

from __future__ import annotations

import ast
from pathlib import Path

import envs
from algorithms import module_of

ROOT = Path(__file__).resolve().parents[2]  # the repository: paths below are relative to it
PACKAGES = ("algorithms", "envs", "pipeline")
SKIPPED = {"algorithms", "envs"}  # name tables / re-exports: neither listed nor followed
NOT_FOLLOWED = {"envs.registry"}  # listed, but its imports (every task) are not followed


def module_path(module: str) -> Path:
    path = Path(*module.split("."))
    return path / "__init__.py" if (ROOT / path).is_dir() else path.with_suffix(".py")


def _imports(module: str) -> set[str]:
    """Repository modules that ``module`` imports (``from x.y import z`` names x.y or x.y.z)."""
    tree = ast.parse((ROOT / module_path(module)).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES and _is_module_file(m)}


def _is_module_file(module: str) -> bool:
    """A module of its own file (a package comes in as the parent of its modules)."""
    return (ROOT / Path(*module.split("."))).with_suffix(".py").is_file()


def source_files(*modules: str) -> list[str]:
    """Files of ``modules`` and of every repository module they import, transitively."""
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module in seen or module in SKIPPED:
            continue
        seen.add(module)
        if module not in NOT_FOLLOWED:
            todo.extend(_imports(module))
        parts = module.split(".")
        todo.extend(".".join(parts[:n]) for n in range(1, len(parts)))  # its packages
    return sorted(module_path(m).as_posix() for m in seen)


def task_modules(task_id: str) -> list[str]:
    """The modules that build a task and its batch."""
    task = envs.TASKS[task_id]
    built = [task.make, task.episode_limit, task.batched, task.light_check]
    built = [getattr(f, "func", f) for f in built if f is not None]  # a functools.partial's function
    return sorted({f.__module__ for f in built} | {"envs.batched", "envs.registry"})


def run_code(run) -> list[str]:
    """The modules a run's stages import beyond the stage's own: its learner and its task."""
    return [module_of(run.family), *task_modules(run.task_id)]
