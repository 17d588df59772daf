"""The evidence instance (issue 28): the same pipeline at budgets where learning can show.

``evidence/`` is a second DVC project folder of this repository: its stages run the same
modules with ``evidence/`` as their working directory, so every relative path of the pipeline
(params.yaml, results/, figures/, .staging/, .resume/) is the evidence instance's own and no
module needs to know which instance it serves. Its params.yaml and claims.yaml are derived from
the root's and from ``evidence.yaml`` (which budgets, which figures, tables and snapshots, which
claims): only the profile, the drawn entries and the runs differ, so a learner, a task or a
hyperparameter has one definition for both instances.

    python -m pipeline.design.evidence          # write evidence/params.yaml and evidence/claims.yaml
    python -m pipeline.design.evidence --check  # exit 1 if they are not what the root files give
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

from pipeline.design.budget import PAPER_PROFILE
from pipeline.design.code_files import ROOT

SPEC = Path("evidence.yaml")
FOLDER = Path("evidence")
PROFILE = "evidence"
SPEC_KEYS = {"profile", "resume_every", "builds", "runs", "claims", "check_defaults", "checks"}
BUILD_SECTIONS = ("figures", "tables", "snapshots", "comparisons")
BUDGET_KEYS = ("env_steps", "curve_interval", "curve_episodes")  # a task's budget (design/budget.py)
# a check's fields in the order checks.yaml writes them when they come from check_defaults
CHECK_ORDER = ("kind", "learner", "run", "table", "quantity", "metric", "reference", "reference_label", "source",
               "window", "band", "tolerance")
HEADER = "# Derived by `python -m pipeline.design.evidence` from {root} (and evidence.yaml): edit those.\n"


def is_instance() -> bool:
    """Whether the working directory is the evidence instance's folder."""
    return Path.cwd().resolve() == (ROOT / FOLDER).resolve()


class EvidenceError(Exception):
    """A bad evidence.yaml; the message starts with the key."""


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise EvidenceError(f"{key}: {problem}")


def _profile(spec: dict) -> dict:
    """profiles.evidence with every task's budget in full, so that a run's stage depends on its
    own task's entry only and a later chunk's new task leaves earlier runs up to date."""
    profile = dict(spec.get("profile") or {})
    tasks = profile.get("tasks") or {}
    _require(isinstance(tasks, dict) and tasks, "evidence.yaml profile.tasks", "must list the tasks' budgets")
    for key in ("seeds", "eval_episodes"):
        _require(isinstance(profile.get(key), int) and profile[key] >= 1, f"evidence.yaml profile.{key}", "must be a positive integer")
    full = {}
    for task, budget in tasks.items():
        budget = {**{k: profile[k] for k in BUDGET_KEYS if k in profile}, **(budget or {})}
        missing = [k for k in BUDGET_KEYS if k not in budget]
        _require(not missing, f"evidence.yaml profile.tasks.{task}", f"missing {', '.join(missing)}")
        full[task] = {k: budget[k] for k in BUDGET_KEYS}
    # a task the instance does not list keeps the first listed task's budget (never used by a run)
    first = next(iter(full.values()))
    return {
        "seeds": profile["seeds"],
        **first,
        "eval_episodes": profile["eval_episodes"],
        "tasks": full,
    }


def derive_params(params: dict, spec: dict) -> dict:
    """The evidence instance's params.yaml: the root's with the evidence profile, the drawn
    entries of ``builds`` (figures restricted to the listed panels, snapshots at their evidence
    steps) and ``runs``."""
    unknown = set(spec) - SPEC_KEYS
    _require(not unknown, "evidence.yaml", f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(SPEC_KEYS))})")
    derived = copy.deepcopy(params)
    derived["profile"] = PROFILE
    derived["profiles"][PROFILE] = _profile(spec)
    builds = spec.get("builds") or {}
    for section in BUILD_SECTIONS:
        chosen = builds.get(section) or {}
        root = params.get(section) or {}
        names = list(chosen)
        for name in names:
            _require(name in root, f"evidence.yaml builds.{section}.{name}", f"no such entry in params.yaml {section}")
        derived[section] = {name: copy.deepcopy(root[name]) for name in names}
    for name, panels in (builds.get("figures") or {}).items():
        figure = derived["figures"][name]
        if panels:
            for panel in panels:
                _require(panel in figure["panels"], f"evidence.yaml builds.figures.{name}", f"no panel '{panel}'")
            figure["panels"] = {p: figure["panels"][p] for p in panels}
            if len(panels) < 2:
                figure.pop("grid", None)
            elif "grid" in figure:
                figure["grid"] = [1, len(panels)]
    for name, steps in (builds.get("snapshots") or {}).items():
        _require(steps is not None, f"evidence.yaml builds.snapshots.{name}", "needs its steps at the evidence budget")
        derived["snapshots"][name]["step"] = {PROFILE: steps}
    derived["runs"] = copy.deepcopy(spec.get("runs") or {})
    every = spec.get("resume_every")
    # checked here too, so that a bad value stops before the derived files are written
    _require(type(every) is int and every >= 1, "evidence.yaml resume_every", f"must be a positive integer, not {every!r}")
    derived["resume"]["every_env_steps"][PROFILE] = every
    return derived


def derive_claims(claims: dict, spec: dict) -> dict:
    """The claims the evidence instance decides, as claims.yaml states them."""
    chosen = spec.get("claims") or []
    for cid in chosen:
        _require(cid in claims["claims"], f"evidence.yaml claims.{cid}", "no such claim in claims.yaml")
    return {"claims": {cid: claims["claims"][cid] for cid in chosen}}


def derive_checks(spec: dict) -> dict:
    """The learning checks in full: a check with ``like: NAME`` takes the fields of
    ``check_defaults.NAME`` (a task's reference, window and band, shared by its checks) and sets
    the rest, its own fields winning, written in CHECK_ORDER."""
    defaults = spec.get("check_defaults") or {}
    _require(isinstance(defaults, dict), "evidence.yaml check_defaults", "must map names to a check's shared fields")
    checks = {}
    for name, check in (spec.get("checks") or {}).items():
        if isinstance(check, dict) and "like" in check:
            like = check["like"]
            _require(like in defaults, f"evidence.yaml checks.{name}.like", f"no '{like}' in check_defaults")
            check = {**copy.deepcopy(defaults[like]), **{k: v for k, v in check.items() if k != "like"}}
            check = {**{k: check[k] for k in CHECK_ORDER if k in check}, **check}
        checks[name] = check
    return checks


def render(data: dict, root: str) -> str:
    return HEADER.format(root=root) + yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)


def derived_files(root: Path = ROOT, spec: dict | None = None) -> dict[Path, str]:
    """evidence/params.yaml, claims.yaml and checks.yaml as the root files give them (``spec``:
    an evidence.yaml to derive them from instead of the file's)."""
    try:
        spec = (yaml.safe_load((root / SPEC).read_text()) or {}) if spec is None else spec
        params = yaml.safe_load((root / "params.yaml").read_text())
        claims = yaml.safe_load((root / "claims.yaml").read_text())
    except (OSError, yaml.YAMLError) as err:
        raise EvidenceError(f"cannot read the root files ({err})".replace("\n", " ")) from None
    return {
        FOLDER / "params.yaml": render(derive_params(params, spec), "params.yaml"),
        FOLDER / "claims.yaml": render(derive_claims(claims, spec), "claims.yaml"),
        FOLDER / "checks.yaml": render({"checks": derive_checks(spec)}, "evidence.yaml"),
    }


def validate_instance(files: dict[Path, str]) -> None:
    """The derived files as their readers take them: the instance's runs resolved from its
    params.yaml (as `dvc_stages` does) and every check on one of them (as the checks' stage does),
    so that a bad run or check stops before any derived file is written, not after."""
    from pipeline.design.checks import CheckError, validate_checks
    from pipeline.design.params import ParamsError, resolve_runs  # imports the learners: only here

    try:
        runs = resolve_runs(yaml.safe_load(files[FOLDER / "params.yaml"]))
    except ParamsError as err:
        raise EvidenceError(f"{FOLDER / 'params.yaml'} would not load: {err}") from None
    try:
        validate_checks(yaml.safe_load(files[FOLDER / "checks.yaml"])["checks"], runs)
    except CheckError as err:
        raise EvidenceError(f"{SPEC} {err}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the derived files are not current")
    args = parser.parse_args(argv)
    try:
        files = derived_files()
        validate_instance(files)
    except EvidenceError as err:
        raise SystemExit(f"evidence: {err}") from None
    stale = [path for path, text in files.items() if not (ROOT / path).is_file() or (ROOT / path).read_text() != text]
    if args.check:
        if stale:
            print(f"evidence: {', '.join(map(str, stale))} not current: run `python -m pipeline.design.evidence`", file=sys.stderr)
            raise SystemExit(1)
        return
    for path in stale:
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(files[path])
        print(f"evidence: wrote {path}")


if __name__ == "__main__":
    main()


# ---- evidence/dvc.yaml: the root pipeline's stages, as the evidence instance runs them --------

CODE_ROOTS = ("algorithms/", "envs/", "pipeline/", "benchmarks/", "references/")  # repository files: one level up
RUN_STAGES = ("train-", "evaluate-")


def _narrowed(stage_name: str, params: list[str], run, snapshots: dict) -> list[str]:
    """A run stage's params with the profile narrowed to what its run reads (its seeds and its
    task's budget; evaluate: also eval_episodes) and the snapshots to those that keep its
    policies, so a chunk that adds a task or a snapshot leaves earlier runs up to date."""
    own = [f"profiles.{PROFILE}.seeds", f"profiles.{PROFILE}.tasks.{run.task}"]
    if stage_name.startswith("evaluate-"):
        own.append(f"profiles.{PROFILE}.eval_episodes")
    kept = [
        f"snapshots.{name}"
        for name, snap in snapshots.items()
        if snap["task"] == run.task and run.algorithm in snap["rows"].values()
    ]
    out = []
    for p in params:
        if p == "profiles.${profile}":
            out += own
        elif p == "snapshots":
            out += kept
        else:
            out.append(p)
    return out


def _drawn_tasks(stage_name: str, params: dict) -> list[str] | None:
    """The tasks whose runs a figure, table, snapshot or comparison stage reads (None for any
    other stage)."""
    kind, _, name = stage_name.partition("-")
    if kind == "figure":
        return [panel["task"] for panel in params["figures"][name]["panels"].values()]
    if kind == "table":
        table = params["tables"][name]
        return [table["task"]] if table["kind"] == "matrix_game" else list(table["columns"].values())
    if kind == "snapshot":
        return [params["snapshots"][name]["task"]]
    if kind == "compare":
        return [params["comparisons"][name][part]["task"] for part in ("reach", "final")]
    return None


def _narrowed_budget(stage_params: list[str], tasks: list[str], params: dict) -> list[str]:
    """A drawing stage's params with the profiles narrowed to what it reads of them: the
    evidence profile's seeds, evaluation episodes and its tasks' budgets (the runs it reads),
    and, for the budget line on its face (pipeline/design/figure_budget.py), the paper
    profile's seeds and those tasks' steps. So a chunk that budgets a new task leaves the
    tables and snapshots of the others up to date (they used to depend on every profile)."""
    tasks = list(dict.fromkeys(tasks))
    own = [f"profiles.{PROFILE}.{key}" for key in ("seeds", "eval_episodes")]
    own += [f"profiles.{PROFILE}.tasks.{task}" for task in tasks]
    paper_tasks = params["profiles"][PAPER_PROFILE].get("tasks") or {}
    paper = [f"profiles.{PAPER_PROFILE}.{key}" for key in ("seeds", "env_steps")]
    paper += [f"profiles.{PAPER_PROFILE}.tasks.{task}" for task in tasks if task in paper_tasks]
    out = []
    for p in stage_params:
        if p == "profiles.${profile}":
            out += own
        elif p == "profiles":
            out += own + paper
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def _in_git(outs: list) -> list[dict]:
    """Every output kept in git (this project has no DVC remote: a fresh clone has only git)."""
    fixed = []
    for entry in outs:
        path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        fixed.append({path: {**options, "cache": False}})
    return fixed


def _with_checks(stages: dict, runs: dict) -> dict:
    """The learning checks' stage, before the report (which shows them)."""
    from pipeline.design.code_files import source_files
    from pipeline.design.checks import CheckError, check_files, load_checks

    try:
        checks = load_checks(runs)
    except CheckError as err:
        raise SystemExit(f"dvc_stages: evidence/{err}") from None
    read = [f"results/runs/{c['run']}/curves.csv" for c in checks.values() if c["kind"] == "curve"]
    read += [f"results/tables/{c['table']}.csv" for c in checks.values() if c["kind"] == "table"]
    references = sorted({f"../{c['reference']}" for c in checks.values() if c["kind"] == "curve"})
    stage = {
        "cmd": "python -m pipeline.report.learning_checks",
        "deps": ["checks.yaml", *dict.fromkeys(read), *references, *source_files("pipeline.report.learning_checks")],
        "params": ["profile", "profiles", "seeds", "runs"],  # load_runs: budgets, seeds, declared runs
        "outs": [{f: {"persist": True}} for f in check_files(checks)],
    }
    report = stages.pop("report")
    report["deps"] = [*report["deps"], "results/checks/checks.json"]
    return {**stages, "learning-checks": stage, "report": report}


def instance_yaml(doc: dict, params: dict, runs: dict) -> dict:
    """The root-style pipeline ``doc`` as the evidence instance runs it: repository files one
    level up, every output in git, the learning checks before the report, and each run's,
    figure's, table's and snapshot's stages depending on their own tasks' budgets only."""
    by_stage = {f"{prefix}{name}": run for name, run in runs.items() for prefix in RUN_STAGES}
    doc["stages"] = _with_checks(doc["stages"], runs)
    for name, stage in doc["stages"].items():
        stage["deps"] = [f"../{d}" if d.startswith(CODE_ROOTS) else d for d in stage.get("deps", [])]
        for kind in ("outs", "metrics"):
            if kind in stage:
                stage[kind] = _in_git(stage[kind])
        if name in by_stage:
            stage["params"] = _narrowed(name, stage["params"], by_stage[name], params.get("snapshots", {}))
        elif (tasks := _drawn_tasks(name, params)) is not None:
            stage["params"] = _narrowed_budget(stage["params"], tasks, params)
    return doc
