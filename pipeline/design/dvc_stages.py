"""Generate ``dvc.yaml`` from params.yaml and the code each run depends on.

DVC's ``foreach`` cannot give each run its own list of code dependencies, and a stage that
depends on all of ``algorithms/`` and ``envs/`` retrains every run when one learner changes.
So each run gets explicit ``train-<run>`` and ``evaluate-<run>`` stages (DVC reserves ``@`` for
the stages ``foreach`` generates) that depend on the files its stage module, its learner and its
task import (followed through the repository's own imports), through the digest of exactly
those files (pipeline/design/code_digests.py, which says why), and whose ``params`` are exactly its own
entries.

    python -m pipeline.design.dvc_stages          # rewrite dvc.yaml
    python -m pipeline.design.dvc_stages --check  # exit 1 if dvc.yaml is not what params.yaml gives

Which files a module imports is pipeline/design/code_files.py's business.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from pipeline.design import code_digests, evidence
from pipeline.design.code_files import run_code, source_files
from pipeline.design.params import MATRIX_GAME_LEARNERS, SNAPSHOT_KINDS, load_runs, run_of
from pipeline.design.task_levels import LEVELS, draws_levels
from pipeline.outputs import layout

DVC_FILE = Path("dvc.yaml")
# A figure below the papers' budget says so, with the papers' own numbers (design/figure_budget.py's
# budget_line): it reads the profile in use and the paper profile, hence every profile (the
# evidence instance narrows this to the tasks each stage draws: design/evidence.py).
NOTED_BUDGET = ["profile", "profiles"]


def run_params(run) -> list[str]:
    """The params entries that make a run what it is: its seeds, its own entry, its task and
    every algorithm entry it inherits from."""
    return [
        "seeds",
        *([f"runs.{run.name}"] if run.declared else []),
        f"tasks.{run.task}",
        *(f"algorithms.{name}" for name in run.lineage),
    ]


def run_stages(run) -> dict:
    params = run_params(run)
    folder = layout.run_dir(run.name).as_posix()
    checkpoints = f"{folder}/checkpoints"
    snapshots = [f"{folder}/snapshots"] if run.snapshots else []
    return {
        f"train-{run.name}": {
            "cmd": f"python -m pipeline.stages.train {run.name}",
            "deps": [code_digests.digest_path("train", run).as_posix()],
            "params": [
                "profile",
                "profiles.${profile}",
                "evaluation.env_seed_start",
                *params,
                *(["snapshots"] if run.snapshots else []),
            ],
            # sacred/ is written beside the outputs but not hashed: its start times and host
            # differ on every run (.gitignore keeps it out of git)
            "outs": [f"{folder}/curves.csv", checkpoints, *snapshots],
        },
        f"evaluate-{run.name}": {
            "cmd": f"python -m pipeline.stages.evaluate {run.name}",
            "deps": [checkpoints, code_digests.digest_path("evaluate", run).as_posix()],
            "params": ["profile", "profiles.${profile}", "evaluation", *params],  # eval_episodes
            "outs": [f"results/runs/{run.name}/eval.json"],
        },
    }


def in_git(files: list[str]) -> list[dict]:
    """Outputs kept in git rather than DVC's cache (small files people read: figures, tables)."""
    return [{f: {"cache": False}} for f in files]


def persistent(outs: list) -> list[dict]:
    """Every output ``persist``: DVC then leaves a stage's previous outputs in place while it
    runs, and the stage replaces them only when it succeeds (pipeline/outputs/staging.py), so a
    rejected, failed or killed stage loses nothing."""
    out = []
    for entry in outs:
        path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        out.append({path: {**options, "persist": True}})
    return out


def reading_stage(command: str, read: list, folder: str, params: list[str], outs: list[str]) -> dict:
    """A stage that reads the kept policies (``folder``: checkpoints or snapshots) of ``read``
    runs: it depends on those folders, its own module and every module the runs' learners and
    tasks import, and never retrains."""
    module = command.split()[0]
    code = sorted({m for run in read for m in run_code(run)})
    # the runs' own entries too: the stage rebuilds their learners and checks each checkpoint's
    # settings against params.yaml (pipeline/outputs/checkpoint_file.py)
    read_params = dict.fromkeys(p for run in read for p in run_params(run))
    return {
        "cmd": f"python -m {command}",
        "deps": [
            *(f"{layout.run_dir(run.name).as_posix()}/{folder}" for run in read),
            *source_files(module, *code),
        ],
        "params": [*params, *(p for p in read_params if p not in params)],
        "outs": in_git(outs),
    }


def digests_stage(runs: dict) -> dict:
    """The digests of every run's code: reruns when any of those files changes, and rewrites
    only what changed (a digest whose files did not change keeps its bytes)."""
    groups = code_digests.groups(runs)
    listed = {f for files in groups.values() for f in files}
    return {
        "cmd": "python -m pipeline.design.code_digests",
        "deps": sorted(listed | set(source_files("pipeline.design.code_digests"))),
        "outs": in_git([path.as_posix() for path in sorted(groups)]),
    }


def pipeline_yaml(params: dict, runs: dict) -> dict:
    stages = {"code-digests": digests_stage(runs)}
    for run in runs.values():
        stages.update(run_stages(run))
    evaluations = [f"results/runs/{name}/{f}" for name in runs for f in ("curves.csv", "eval.json")]
    stages["aggregate"] = {
        "cmd": "python -m pipeline.stages.aggregate",
        "deps": [*evaluations, *source_files("pipeline.stages.aggregate")],
        # figures: marl_eval.json groups runs by figure; seeds and the profile: each run's seeds,
        # which its curves must hold
        "params": ["runs", "figures", "seeds", "profile", "profiles.${profile}"],
        "outs": [
            "results/curves.csv",
            "results/final.csv",
            {"results/plots/curves": {"cache": False}},
            {layout.MARL_EVAL.as_posix(): {"cache": False}},
        ],
        "metrics": [{"results/metrics.json": {"cache": False}}],
    }
    for name, figure in params.get("figures", {}).items():
        drawn = dict.fromkeys(run_of(c["algorithm"], p["task"]) for p in figure["panels"].values() for c in figure["curves"].values())
        levels = draws_levels(figure)
        stages[f"figure-{name}"] = {
            "cmd": f"python -m pipeline.stages.figures {name}",
            "deps": [
                *(f"{layout.run_dir(run).as_posix()}/curves.csv" for run in drawn),
                *([LEVELS] if levels else []),  # fixed policies' returns, drawn as scale
                *source_files("pipeline.stages.figures"),
            ],
            # the levels' task settings: a level measured on others stops the stage (design/task_levels.py)
            "params": [f"figures.{name}", "figure_style", *NOTED_BUDGET,
                       *(dict.fromkeys(f"tasks.{p['task']}" for p in figure["panels"].values()) if levels else [])],
            "outs": in_git(layout.figure_files({name: figure})),
        }
    for name, table in params.get("tables", {}).items():
        if table["kind"] == "matrix_game":
            table_runs = [runs[run_of(table[part], table["task"])] for part in MATRIX_GAME_LEARNERS]
            module, outs = "pipeline.analyses.iac.matrix_tables", layout.matrix_table_files(name)
        else:
            table_runs = [runs[run_of(table["algorithm"], task)] for task in table["columns"].values()]
            module, outs = "pipeline.analyses.vm3ac.latent_table", layout.table_files(name)
        stages[f"table-{name}"] = reading_stage(
            f"{module} {name}", table_runs, "checkpoints",
            [f"tables.{name}", "evaluation.env_seed_start", "profile", "profiles.${profile}"], outs,
        )  # fmt: skip
    for name, snap in params.get("snapshots", {}).items():
        snap_runs = [runs[run_of(algorithm, snap["task"])] for algorithm in snap["rows"].values()]
        stages[f"snapshot-{name}"] = reading_stage(
            f"{SNAPSHOT_KINDS[snap['kind']][0]} {name}", snap_runs, "snapshots",
            [f"snapshots.{name}", "figure_style", "evaluation.env_seed_start", *NOTED_BUDGET],
            layout.snapshot_files(name, snap),
        )  # fmt: skip
    for name, comparison in params.get("comparisons", {}).items():
        stages[f"compare-{name}"] = {
            "cmd": f"python -m pipeline.analyses.iac.steps_saved {name}",
            "deps": ["results/curves.csv", *source_files("pipeline.analyses.iac.steps_saved")],
            "params": [f"comparisons.{name}", "figure_style", *NOTED_BUDGET],
            "outs": in_git(layout.comparison_files(name, comparison)),
        }
    stages["report"] = report_stage(params, stages)
    for stage in stages.values():
        for kind in ("outs", "metrics"):
            if kind in stage:
                stage[kind] = persistent(stage[kind])
    pngs = [f for stage in stages.values() for out in stage["outs"] for f in out if str(f).endswith(".png")]
    plots = [
        {"results/plots/curves": {"x": "step", "y": "mean_return"}},
        {(layout.REPORT / "final_scores.csv").as_posix(): {"x": "iqm", "y": "run", "template": "bar_horizontal"}},
        *pngs,
    ]
    return {"stages": stages, "plots": plots}


def report_stage(params: dict, stages: dict) -> dict:
    """The report reads the aggregate tables, every table and snapshot's data, every figure (it
    links them and records their provenance) and claims.yaml."""
    shown = [
        next(iter(out)) if isinstance(out, dict) else out
        for name, stage in stages.items()
        if name.startswith(("figure-", "table-", "snapshot-", "compare-"))
        for out in stage["outs"]
    ]
    report = layout.REPORT.as_posix()
    return {
        "cmd": "python -m pipeline.stages.report",
        "deps": [
            "claims.yaml",
            "results/final.csv",
            "results/curves.csv",
            *shown,
            "pipeline/report/templates/report.html",
            *source_files("pipeline.stages.report"),
            "benchmarks/measured/paper_cost.json",  # a claim's cost at its own budget
            # the root's report shows the evidence instance's learning checks and claims
            # and every evidence run's evaluation and figure
            *([] if evidence.is_instance() else [f"{evidence.FOLDER}/results/checks/checks.json", f"{evidence.FOLDER}/{report}/claims.json",
                                                  f"{evidence.FOLDER}/{report}/final_scores.json", f"{evidence.FOLDER}/figures"]),
        ],
        # profiles: the page sets the profile in use beside the papers'. Claims name algorithms and
        # tasks, but their settings never change a verdict (a renamed run changes final.csv).
        "params": ["report", "profile", "profiles", "figures", "tables", "snapshots", "comparisons"],
        "outs": in_git([f"{report}/{name}" for name in ("claims.md", "final_scores.csv", "index.html")]),
        "metrics": [{f"{report}/{name}": {"cache": False}} for name in ("claims.json", "final_scores.json")],
    }


HEADER = """\
# GENERATED by `python -m pipeline.design.dvc_stages` from params.yaml and the code each run imports:
# do not edit by hand (tests/test_dvc_stages.py fails when this file is stale). Each run has its
# own train- and evaluate- stages that depend on its own learner's, task's and stage's files
# (through their digest in results/code/, pipeline/design/code_digests.py) and on its own params
# entries only (ARCHITECTURE.md, "Pipeline and tracking").
"""


def render(params: dict, runs: dict) -> str:
    """dvc.yaml of the instance in the working directory: the root's, or the evidence
    instance's (pipeline/design/evidence.py) when run in ``evidence/``."""
    doc = pipeline_yaml(params, runs)
    if evidence.is_instance():
        doc = evidence.instance_yaml(doc, params, runs)
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if dvc.yaml is stale")
    args = parser.parse_args(argv)
    params, runs = load_runs()
    text = render(params, runs)
    if args.check:
        if not DVC_FILE.exists() or DVC_FILE.read_text() != text:
            sys.exit("dvc.yaml is stale: run `python -m pipeline.design.dvc_stages` and commit it")
        return
    DVC_FILE.write_text(text)


if __name__ == "__main__":
    main()
