"""The layout by concern (README, "Layout"): every import between the repository's packages points
the way ``ALLOWED`` says, and a subpackage's ``__init__.py`` is only its docstring (only the top
``pipeline/__init__.py`` runs code: the numeric environment of every stage)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PIPELINE = {"pipeline.outputs", "pipeline.design", "pipeline.runtime", "pipeline.statistics",
            "pipeline.stages", "pipeline.analyses", "pipeline.analyses.iac", "pipeline.analyses.vm3ac",
            "pipeline.report"}  # fmt: skip
# What the pipeline may import of algorithms: the registry, the learner protocol and the shared
# components (storage, seeding, latents); never a learner or a network by name.
LEARNERS_SEEN_FROM_PIPELINE = {"algorithms", "algorithms.learner", "algorithms.components"}
ALLOWED = {
    # envs knows nothing of learning
    "envs": {"envs"},
    # algorithms: components <- models <- learners; the protocol and the registry on top
    "algorithms.components": {"algorithms.components"},
    "algorithms.models": {"algorithms.models", "algorithms.components"},
    "algorithms.learner": {"algorithms.components"},
    "algorithms.learners": {"algorithms.learners", "algorithms.models", "algorithms.components", "algorithms.learner"},
    "algorithms": {"algorithms.learner"},  # the registry names learner modules, imports them lazily
    # pipeline: outputs and statistics at the bottom, then design, runtime; analyses and stages on
    # top; the report never imports training (runtime, stages, analyses)
    "pipeline": set(),  # its __init__.py: the concerns, and the stages' kernels and threads
    "pipeline.outputs": {"pipeline.outputs"},
    "pipeline.statistics": {"pipeline.statistics"},
    "pipeline.design": {"pipeline.design", "pipeline.outputs", *LEARNERS_SEEN_FROM_PIPELINE, "envs"},
    "pipeline.runtime": {"pipeline.runtime", "pipeline.design", "pipeline.outputs", *LEARNERS_SEEN_FROM_PIPELINE, "envs"},
    "pipeline.report": {"pipeline.report", "pipeline.design", "pipeline.outputs", "pipeline.statistics"},
    "pipeline.analyses": {"pipeline.analyses", "pipeline.runtime", "pipeline.design", "pipeline.outputs",
                          "pipeline.statistics", *LEARNERS_SEEN_FROM_PIPELINE, "envs"},
    "pipeline.stages": PIPELINE - {"pipeline.analyses", "pipeline.analyses.iac", "pipeline.analyses.vm3ac"}
    | {*LEARNERS_SEEN_FROM_PIPELINE, "envs"},
}  # fmt: skip
# each paper's analyses read the shared snapshots, never the other paper's analyses
ALLOWED["pipeline.analyses.iac"] = ALLOWED["pipeline.analyses"] - {"pipeline.analyses.vm3ac"} | {"pipeline.analyses.iac"}
ALLOWED["pipeline.analyses.vm3ac"] = ALLOWED["pipeline.analyses"] - {"pipeline.analyses.iac"} | {"pipeline.analyses.vm3ac"}
TOP = ("envs", "algorithms", "pipeline")


def concern(module: str) -> str:
    """The most specific entry of ALLOWED that holds ``module``."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in ALLOWED:
            return ".".join(parts[:n])
    raise KeyError(module)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str) -> set[str]:
    """Every repository module a source imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m.split(".")[0] in TOP}


def wrong_arrows(module: str, source: str) -> list[str]:
    """``module -> target`` for each import of ``source`` that ALLOWED does not allow."""
    allowed = ALLOWED[concern(module)]
    return sorted(f"{module} -> {target}" for target in imported(source) if concern(target) not in allowed)


def repository_modules() -> list[tuple[str, Path]]:
    return [(module_name(p), p) for top in TOP for p in sorted((REPO / top).rglob("*.py"))]


def test_every_import_points_the_way_the_layout_allows():
    wrong = [arrow for name, path in repository_modules() for arrow in wrong_arrows(name, path.read_text())]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "module, source",
    [
        ("pipeline.report.claims", "from pipeline.runtime.loops import train"),  # the report trains
        ("pipeline.report.bundle", "from pipeline.stages import report"),
        ("pipeline.design.params", "def f():\n    from pipeline.runtime import loops"),  # inside a function
        ("pipeline.outputs.layout", "import pipeline.design.params"),
        ("pipeline.analyses.iac.covariance", "from pipeline.analyses.vm3ac.positions import draw"),
        ("pipeline.stages.train", "from algorithms.learners.vm3ac import VM3AC"),  # a learner by name
        ("algorithms.models.stacked_mlp", "from algorithms.learners import vm3ac"),
        ("algorithms.components.storage", "from pipeline.outputs import layout"),
        ("envs.registry", "from algorithms.components.seeding import SeedStreams"),
    ],
)
def test_a_wrong_arrow_is_caught(module, source):
    assert wrong_arrows(module, source)


def test_every_module_belongs_to_a_concern_and_every_concern_has_modules():
    names = [name for name, _ in repository_modules()]
    assert {concern(name) for name in names} == set(ALLOWED)


@pytest.mark.parametrize(
    "package",
    sorted({p.parent for top in TOP[1:] for p in (REPO / top).rglob("*/__init__.py")}),
    ids=lambda p: p.relative_to(REPO).as_posix(),
)
def test_a_subpackage_init_is_only_its_docstring(package):
    """Its docstring says what the folder holds (and, for a concern, what it may import), and it
    runs nothing."""
    tree = ast.parse((package / "__init__.py").read_text())
    assert len(tree.body) == 1 and ast.get_docstring(tree), package
