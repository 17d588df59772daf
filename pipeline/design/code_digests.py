"""Stage ``code-digests``: what a run's stages depend on in code, one small file per group of
runs that run the same files.

Each run's train and evaluate stages run about 27 repository files (pipeline/design/code_files.py).
Listed one by one as DVC dependencies they were 58% of dvc.lock, a 1.1 MB file serial
`dvc repro` parses and rewrites whole after every stage (7 s each: 23 of the 75 minutes of a
serial build). Instead, ``results/code/<stage>-<family>-<task>.md5`` lists the md5 of every file
the ``<stage>`` (train or evaluate) of that learner family on that task runs, in md5sum's format
(``md5sum -c`` checks it), and the run's stage depends on that one file. The file changes
exactly when one of the files it lists does, so a run still reruns when, and only when, its own
code changes; `dvc status` names the changed source files at this stage.

    python -m pipeline.design.code_digests
"""

from __future__ import annotations

from pathlib import Path

from pipeline.design.code_files import ROOT, run_code, source_files
from pipeline.design.params import load_runs
from pipeline.outputs import stopping
from pipeline.outputs.provenance import md5_of
from pipeline.outputs.staging import publish, staging

DIGESTS = Path("results/code")
RUN_STAGES = ("train", "evaluate")  # the stages of every run, pipeline/stages/<stage>.py


def digest_path(stage: str, run) -> Path:
    return DIGESTS / f"{stage}-{run.family}-{run.task_id}.md5"


def stage_files(stage: str, run) -> list[str]:
    """The repository files ``stage`` runs for ``run``: its module, the run's learner and task."""
    return source_files(f"pipeline.stages.{stage}", *run_code(run))


def groups(runs: dict) -> dict[Path, list[str]]:
    """Each digest file and the files it lists (runs of one family on one task share one)."""
    return {digest_path(stage, run): stage_files(stage, run) for run in runs.values() for stage in RUN_STAGES}


def digest(files: list[str]) -> str:
    return "".join(f"{md5_of(ROOT / f)}  {f}\n" for f in files)  # dvc.lock's md5 of each file


def main() -> None:
    _, runs = load_runs()
    with staging("code-digests") as folder:
        for path, files in groups(runs).items():
            (folder / path.name).write_text(digest(files))
        publish(folder, DIGESTS)


if __name__ == "__main__":
    stopping.run(main)
