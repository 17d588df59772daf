"""The learning checks of the evidence instance as data (evidence.yaml ``checks``, derived into
evidence/checks.yaml): what a check must say, and the files its stage writes
(pipeline/report/learning_checks.py decides them)."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.design.code_files import ROOT
from pipeline.outputs import layout

CHECKS_FILE = Path("checks.yaml")
OUT = layout.RESULTS / "checks"
PAPER = "harness"  # figures/harness/: the checks are in neither paper
METRICS = ("return", "win_rate")  # curves.csv columns a curve check can compare
KINDS = {"curve": ("run", "reference", "window", "band"), "table": ("run", "table", "quantity", "reference", "tolerance")}


class CheckError(Exception):
    """A bad check; the message starts with its key."""


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise CheckError(f"{key}: {problem}")


def load_checks(runs: dict, path: Path = CHECKS_FILE) -> dict:
    """checks.yaml read and checked against the instance's runs."""
    try:
        checks = (yaml.safe_load(path.read_text()) or {}).get("checks") or {}
    except (OSError, yaml.YAMLError) as err:
        raise CheckError(f"{path}: cannot be read ({err})".replace("\n", " ")) from None
    return validate_checks(checks, runs)


def validate_checks(checks: dict, runs: dict) -> dict:
    """Each check complete, on one of ``runs``, with its reference file there; CheckError if not."""
    for name, check in checks.items():
        key = f"checks.{name}"
        _require(isinstance(check, dict) and check.get("kind") in KINDS, f"{key}.kind", f"must be one of {', '.join(KINDS)}")
        for field in ("learner", "source", "reference_label", *KINDS[check["kind"]]):
            _require(field in check, key, f"a '{check['kind']}' check needs '{field}'")
        _require(check["run"] in runs, f"{key}.run", f"no run '{check['run']}' in params.yaml")
        if check["kind"] == "curve":
            _require(len(check["window"]) == 2 and check["window"][0] <= check["window"][1], f"{key}.window", "must be [first step, last step]")
            _require(len(check["band"]) == 2 and 0 < check["band"][0] <= 1 <= check["band"][1], f"{key}.band", "must be [low <= 1, high >= 1] ratios")
            _require((ROOT / check["reference"]).is_file(), f"{key}.reference", f"no file {check['reference']}")
            _require(check.get("metric", "return") in METRICS, f"{key}.metric", f"must be one of {', '.join(METRICS)}")
    return checks


def check_files(checks: dict) -> list[str]:
    """What the stage writes (evidence/dvc.yaml lists them)."""
    figures = [(layout.FIGURES / PAPER / f"check_{n}.{e}").as_posix() for n, c in checks.items() if c["kind"] == "curve" for e in ("png", "pdf")]
    return [(OUT / "checks.json").as_posix(), (OUT / "checks.md").as_posix(), *figures]
