"""Where the pipeline's files live, in one place (ARCHITECTURE.md, "Data flow")."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path("results")
RUNS = RESULTS / "runs"
CURVE_PLOTS = RESULTS / "plots" / "curves"
STAGING = Path(".staging")  # stages build outputs here, then move them into place (outside
# results/, so a killed stage leaves no half-written folder there)
RESUME = Path(".resume")  # training resume points (pipeline/runtime/resume.py): outside DVC's outputs
FIGURES = Path("figures")
TABLES = RESULTS / "tables"
MARL_EVAL = RESULTS / "marl_eval.json"  # every run in marl-eval's JSON layout (aggregate)
REPORT = RESULTS / "report"  # claims, statistics and the report page (pipeline/stages/report.py)
REPORT_FILES = ("claims.json", "final_scores.csv", "final_scores.json", "claims.md", "index.html")
SNAPSHOT_DATA = RESULTS / "snapshots"  # the data snapshot figures draw (positions, covariances, ...)


def figure_files(figures: dict) -> list[str]:
    """Every file the figures stage writes: figures/<paper>/<name>.{png,pdf}, and with several
    panels also <name>_<panel>.{png,pdf} per panel."""
    out = []
    for name, figure in figures.items():
        stems = [name]
        if len(figure["panels"]) > 1:
            stems += [f"{name}_{panel}" for panel in figure["panels"]]
        out += [(FIGURES / figure["paper"] / f"{stem}.{ext}").as_posix() for stem in stems for ext in ("png", "pdf")]
    return out


def table_files(name: str) -> list[str]:
    """A table for machines (CSV) and for people (Markdown)."""
    return [(TABLES / f"{name}.{ext}").as_posix() for ext in ("csv", "md")]


def matrix_table_files(name: str) -> list[str]:
    """IAC Tables 1-4 of a matrix-game table entry: <name>_table<k>.{csv,md}."""
    return [f for k in range(1, 5) for f in table_files(f"{name}_table{k}")]


def drawn_files(data: Path, name: str, paper: str) -> list[str]:
    """What a figure stage that computes its own data writes: the data (CSV) and the figure."""
    folder = FIGURES / paper
    return [(data / f"{name}.csv").as_posix(), *((folder / f"{name}.{e}").as_posix() for e in ("png", "pdf"))]


def snapshot_files(name: str, snapshot: dict) -> list[str]:
    return drawn_files(SNAPSHOT_DATA, name, snapshot["paper"])


def comparison_files(name: str, comparison: dict) -> list[str]:
    """A comparison computed from the learning curves (IAC Fig. 7): table and figure."""
    return [*table_files(name), *drawn_files(TABLES, name, comparison["paper"])[1:]]


def run_dir(run: str) -> Path:
    return RUNS / run


def checkpoint_name(seed: int) -> str:
    return f"seed{seed}.pt"


def checkpoint(run: str, seed: int) -> Path:
    return RUNS / run / "checkpoints" / checkpoint_name(seed)


def snapshot(run: str, step: int, seed: int) -> Path:
    """Seed ``seed``'s policy as it was at training step ``step`` (snapshots in params.yaml)."""
    return RUNS / run / "snapshots" / f"step{step}" / checkpoint_name(seed)
