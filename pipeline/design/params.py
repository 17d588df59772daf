"""Read params.yaml once and check all of it before a stage writes anything.

A problem stops the stage with one line naming the key (``ParamsError``); the stage entry
points turn it into ``SystemExit`` so no traceback hides the message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import envs
from algorithms import FAMILIES, learner
from algorithms.components.execution_latents import LATENT_MODES
from pipeline.design.budget import Budget, budget_of, training_env_seeds

PARAMS_FILE = Path("params.yaml")
SECTIONS = {
    "profile", "profiles", "seeds", "evaluation", "tasks", "algorithms", "runs", "figures",
    "figure_style", "tables", "snapshots", "comparisons", "report", "resume",
    "device",
}  # fmt: skip
PROFILE_KEYS = ("seeds", "env_steps", "curve_interval", "curve_episodes", "eval_episodes")
METRICS = ("return", "win_rate")  # what a learning-curve figure can draw
PAPERS = ("vm3ac", "iac", "harness")  # figures/<paper>/: harness figures are in neither paper
# snapshots.<name>.kind -> (the stage module that draws it, the task ids it can draw (None: any),
# its own keys beyond the common ones)
SNAPSHOT_KINDS = {
    "positions": ("pipeline.analyses.vm3ac.positions", ("vm3ac_predator_prey",), ("after_reset",)),  # VM3-AC Fig. 6
    "covariance": ("pipeline.analyses.iac.covariance", None, ()),  # IAC Fig. 5
    "trajectory": ("pipeline.analyses.iac.landscape", ("simple_world",), ()),  # IAC Fig. 2
    "exploration": ("pipeline.analyses.iac.landscape", ("simple_world",), ("independent", "collaborative")),  # IAC Fig. 3
}
TABLE_KINDS = ("latent_modes", "matrix_game")  # pipeline/analyses/vm3ac/latent_table.py, pipeline/analyses/iac/matrix_tables.py
MATRIX_GAME_LEARNERS = ("qmix", "qmixs")  # a matrix_game table's two algorithm keys (IAC Tables 2-4)
MATRIX_GAME_REPORTED = ("table1", "table2_q1", "table2_q2", "table2_qtot", "table3", "table4")
COMPARISON_KEYS = ("paper", "title", "baseline", "algorithms", "reach", "final", "reported")
# comparisons.<name>.reported.<kind>: {label: number}, the paper's saved steps (k steps) as its
# text states them, or as derived from what it states (IAC §5.3: SIAQ's 235 = 295 - 60).
COMPARISON_REPORTED = {"steps_saved_k": "stated", "steps_saved_k_implied": "implied"}
SNAPSHOT_KEYS = ("paper", "title", "kind", "task", "rows", "step")
EVERY = "every"  # a snapshot step list meaning every learning-curve point


class ParamsError(Exception):
    """A bad value in params.yaml; the message starts with the key."""


@dataclass(frozen=True)
class Evaluation:
    episodes: int  # deterministic episodes per seed (the profile's eval_episodes)
    env_seed_start: int  # episode e is played on env seed env_seed_start + e
    latent_modes: tuple[
        str, ...
    ]  # z at execution for runs with a latent; the first is the headline

    def env_seeds(self, episodes: int | None = None) -> list[int]:
        """The evaluation env seeds; learning-curve points replay the first ``episodes``."""
        n = self.episodes if episodes is None else episodes
        return list(range(self.env_seed_start, self.env_seed_start + n))


@dataclass(frozen=True)
class Run:
    """Everything one train/evaluate stage needs, resolved from params.yaml."""

    name: str
    algorithm: str
    family: str
    settings: Any  # the family's settings dataclass
    lineage: tuple[str, ...]  # the algorithm and the entries it inherits from, nearest first
    task: str
    task_id: str
    task_kwargs: dict
    seeds: tuple[int, ...]
    budget: Budget
    evaluation: Evaluation
    declared: bool = False  # listed under runs: (its entry is a DVC param); else implied by a figure
    snapshots: tuple[int, ...] = ()  # training steps whose policies the train stage keeps


def run_of(algorithm: str, task: str) -> str:
    """The run a figure, table or snapshot implies by naming an algorithm and a task."""
    return f"{algorithm}-{task}"


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ParamsError(f"{key}: {problem}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mapping(value, key: str) -> dict:
    _require(isinstance(value, dict), key, f"must be a mapping, got {value!r}")
    return value


def _known_keys(section: dict, allowed, key: str) -> None:
    for name in section:
        _require(
            name in allowed, f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
        )


def _seeds(value, key: str) -> tuple[int, ...]:
    _require(
        isinstance(value, list) and len(value) > 0, key, f"must be a non-empty list, got {value!r}"
    )
    _require(
        all(_is_int(s) and s >= 0 for s in value),
        key,
        f"seeds must be integers >= 0, got {value!r}",
    )
    _require(len(set(value)) == len(value), key, f"seeds repeat: {value!r}")
    return tuple(value)


def _positive_ints(section: dict, key: str, names) -> None:
    for name in names:
        _require(name in section, key, f"missing '{name}'")
        value = section[name]
        _require(
            _is_int(value) and value > 0, f"{key}.{name}", f"must be an integer > 0, got {value!r}"
        )


def _profile(params: dict) -> dict:
    """The profile in use, every profile checked: seeds (the first n of ``seeds``), the
    training budget and the evaluation episodes."""
    profiles = _mapping(params.get("profiles"), "profiles")
    name = params.get("profile")
    _require(
        name in profiles, "profile", f"'{name}' is not one of the profiles ({', '.join(profiles)})"
    )
    tasks = params.get("tasks") if isinstance(params.get("tasks"), dict) else {}
    budget_keys = [f.name for f in fields(Budget)]
    for pname, profile in profiles.items():
        _known_keys(_mapping(profile, f"profiles.{pname}"), [*PROFILE_KEYS, "tasks"], f"profiles.{pname}")
        _positive_ints(profile, f"profiles.{pname}", PROFILE_KEYS)
        for task, own in _mapping(profile.get("tasks", {}), f"profiles.{pname}.tasks").items():
            key = f"profiles.{pname}.tasks.{task}"
            _require(task in tasks, key, f"unknown task {task!r}")
            _known_keys(_mapping(own, key), budget_keys, key)
            _positive_ints(own, key, list(own))
    return profiles[name]



def _evaluation(params: dict, episodes: int) -> Evaluation:
    section = _mapping(params.get("evaluation"), "evaluation")
    _known_keys(section, ["env_seed_start", "latent_modes"], "evaluation")
    start = section.get("env_seed_start")
    _require(
        _is_int(start) and start >= 0,
        "evaluation.env_seed_start",
        f"must be an integer >= 0, got {start!r}",
    )
    modes = section.get("latent_modes")
    _require(
        isinstance(modes, list)
        and modes
        and all(m in LATENT_MODES for m in modes)
        and len(set(modes)) == len(modes),
        "evaluation.latent_modes",
        f"must be a list of distinct modes from {LATENT_MODES}, got {modes!r}",
    )
    return Evaluation(episodes, start, tuple(modes))


def _algorithm_entry(algorithms: dict, name: str) -> tuple[dict, tuple[str, ...], dict]:
    """algorithms.<name> with the entries it inherits (``inherit: <other>``) resolved, nearest
    entry winning; the chain of names; and which entry each value comes from. No YAML merge
    keys: ``dvc exp run -S`` rewrites those into copies (ARCHITECTURE.md)."""
    chain, merged, origin = [], {}, {}
    while name is not None:
        if name in chain:
            raise ParamsError(
                f"algorithms.{chain[0]}.inherit: inheritance cycle {' -> '.join([*chain, name])}"
            )
        _require(
            name in algorithms,
            f"algorithms.{chain[-1] if chain else name}.inherit",
            f"unknown algorithm '{name}' (known: {', '.join(algorithms)})",
        )
        chain.append(name)
        entry = _mapping(algorithms[name], f"algorithms.{name}")
        origin = {**{key: name for key in entry}, **origin}
        merged = {**entry, **merged}
        name = entry.get("inherit")
    merged.pop("inherit", None)
    return merged, tuple(chain), origin


def _settings(params: dict, run_name: str, run: dict, algorithm_key: str):
    """The run's algorithm settings: algorithms.<name> (with what it inherits) and
    runs.<run>.hyper on top."""
    algorithms = _mapping(params.get("algorithms"), "algorithms")
    name = run.get("algorithm")
    _require(
        name in algorithms,
        algorithm_key,
        f"unknown algorithm '{name}' (known: {', '.join(algorithms)})",
    )
    base, lineage, origin = _algorithm_entry(algorithms, name)
    family = base.pop("family", None)
    _require(
        family in FAMILIES,
        f"algorithms.{origin.get('family', name)}.family",
        f"unknown family '{family}' (known: {', '.join(FAMILIES)})",
    )
    hyper = _mapping(run.get("hyper", {}), f"runs.{run_name}.hyper")
    cls = learner(family).Settings
    allowed = [f.name for f in fields(cls)]
    for key in base:
        _require(
            key in allowed,
            f"algorithms.{origin[key]}.{key}",
            f"unknown key (allowed: {', '.join(sorted(allowed))})",
        )
    _known_keys(hyper, allowed, f"runs.{run_name}.hyper")
    merged = {**base, **hyper}
    missing = [k for k in allowed if k not in merged]
    root = origin.get("family", name)  # the entry the run's settings start from
    _require(not missing, f"algorithms.{root}", f"missing settings: {', '.join(missing)}")
    merged = {k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()}
    try:
        return name, family, cls(**merged), lineage
    except (ValueError, TypeError) as err:
        field = str(err).split(":", 1)[0]
        where = f"runs.{run_name}.hyper" if field in hyper else f"algorithms.{origin.get(field, name)}"
        raise ParamsError(f"{where}.{err}") from None


def _tasks(params: dict) -> dict[str, tuple[str, dict]]:
    """Every task entry: a known id and settings that id accepts."""
    tasks = _mapping(params.get("tasks"), "tasks")
    checked = {}
    for name, task in tasks.items():
        _known_keys(_mapping(task, f"tasks.{name}"), ["id", "kwargs"], f"tasks.{name}")
        kwargs = _mapping(task.get("kwargs", {}), f"tasks.{name}.kwargs")
        try:
            envs.registry.check(task.get("id"), kwargs)
        except ValueError as err:
            raise ParamsError(f"tasks.{name}: {err}") from None
        checked[name] = (task["id"], kwargs)
    return checked


def _task(tasks: dict, run: dict, task_key: str) -> tuple[str, str, dict]:
    """The run's task, built once so impossible settings (an agent count, a map) stop here."""
    name = run.get("task")
    _require(
        name in tasks, task_key, f"unknown task '{name}' (known: {', '.join(tasks)})"
    )
    task_id, kwargs = tasks[name]
    try:
        envs.registry.validate(task_id, kwargs)
    except (ValueError, TypeError) as err:
        raise ParamsError(f"tasks.{name}: {err}") from None
    return name, task_id, kwargs


def load(path: Path = PARAMS_FILE) -> dict:
    try:
        params = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ParamsError(f"{path}: cannot be read ({err})".replace("\n", " ")) from None
    params = _mapping(params, str(path))
    _known_keys(params, SECTIONS, "params")
    return params


def _implied_runs(params: dict) -> dict[str, tuple[dict, set[int], dict]]:
    """The runs that figures, tables and snapshots imply (each names algorithms and tasks
    once): each run's entry, the snapshot steps it must keep, and the keys that named its
    algorithm and task (where a problem is reported)."""
    implied: dict[str, tuple[dict, set[int], dict]] = {}

    def add(algorithm, task, algorithm_key: str, task_key: str, steps=()):
        for value, key in ((algorithm, algorithm_key), (task, task_key)):
            _require(isinstance(value, str), key, f"must be a name, got {value!r}")
        name = run_of(algorithm, task)
        keys = {"algorithm": algorithm_key, "task": task_key}
        _, kept, _ = implied.setdefault(name, ({"algorithm": algorithm, "task": task}, set(), keys))
        kept.update(steps)

    for name, figure in _mapping(params.get("figures", {}), "figures").items():
        _mapping(figure, f"figures.{name}")
        panels = _mapping(figure.get("panels"), f"figures.{name}.panels")
        curves = _mapping(figure.get("curves"), f"figures.{name}.curves")
        for pkey, panel in panels.items():
            _mapping(panel, f"figures.{name}.panels.{pkey}")
            for label, curve in curves.items():
                _mapping(curve, f"figures.{name}.curves.{label}")
                add(
                    curve.get("algorithm"),
                    panel.get("task"),
                    f"figures.{name}.curves.{label}.algorithm",
                    f"figures.{name}.panels.{pkey}.task",
                )
    for name, table in _mapping(params.get("tables", {}), "tables").items():
        _mapping(table, f"tables.{name}")
        if table.get("kind") == "matrix_game":  # QMIX and QMIXs on one task (IAC §3)
            for part in MATRIX_GAME_LEARNERS:
                add(table.get(part), table.get("task"), f"tables.{name}.{part}", f"tables.{name}.task")
            continue
        for column, task in _mapping(table.get("columns"), f"tables.{name}.columns").items():
            add(table.get("algorithm"), task, f"tables.{name}.algorithm", f"tables.{name}.columns.{column}")
    profile = _profile(params)
    for name, snap in _mapping(params.get("snapshots", {}), "snapshots").items():
        steps = snapshot_steps(snap, params["profile"], budget_of(profile, snap.get("task")))
        for label, algorithm in _mapping(snap.get("rows"), f"snapshots.{name}.rows").items():
            add(algorithm, snap.get("task"), f"snapshots.{name}.rows.{label}", f"snapshots.{name}.task", steps)
    for name, comparison in _mapping(params.get("comparisons", {}), "comparisons").items():
        key = f"comparisons.{name}"
        _mapping(comparison, key)
        algorithms = {"baseline": comparison.get("baseline")}
        algorithms.update({f"algorithms.{k}": v for k, v in _mapping(comparison.get("algorithms"), f"{key}.algorithms").items()})
        for part in ("reach", "final"):
            task = _mapping(comparison.get(part), f"{key}.{part}").get("task")
            for where, algorithm in algorithms.items():
                add(algorithm, task, f"{key}.{where}", f"{key}.{part}.task")
    return implied


def snapshot_steps(snap: dict, profile: str, budget: Budget) -> list[int]:
    """The training steps a snapshot keeps under ``profile``: one step, a list, or ``every``
    learning-curve point."""
    value = snap.get("step", {}).get(profile) if isinstance(snap.get("step"), dict) else None
    if value == EVERY:
        return list(range(0, budget.env_steps + 1, budget.curve_interval))
    return value if isinstance(value, list) else [value]


def resolve_runs(params: dict) -> dict[str, Run]:
    """Check every section and every run; return the runs by name."""
    profile = _profile(params)
    evaluation = _evaluation(params, profile["eval_episodes"])
    all_seeds = _seeds(params.get("seeds"), "seeds")
    _require(
        profile["seeds"] <= len(all_seeds),
        f"profiles.{params['profile']}.seeds",
        f"asks for {profile['seeds']} seeds, `seeds` lists {len(all_seeds)}",
    )
    default_seeds = all_seeds[: profile["seeds"]]
    tasks = _tasks(params)
    _check_snapshots(params, profile)
    for name, comparison in _mapping(params.get("comparisons", {}), "comparisons").items():
        _check_comparison(name, comparison, params)
    implied = _implied_runs(params)
    runs = _mapping(params.get("runs", {}) or {}, "runs")
    for name in runs:
        _require(
            name not in implied,
            f"runs.{name}",
            "a figure, table or snapshot already implies this run: give it another name",
        )
    every = {
        **{n: (e, set(), {"algorithm": f"runs.{n}.algorithm", "task": f"runs.{n}.task"}) for n, e in runs.items()},
        **implied,
    }
    _require(len(every) > 0, "runs", "no runs")
    resolved = {}
    for run_name, (run, kept, keys) in every.items():
        declared = run_name in runs
        _mapping(run, f"runs.{run_name}")
        _known_keys(run, ["algorithm", "task", "hyper", "seeds"], f"runs.{run_name}")
        algorithm, family, settings, lineage = _settings(params, run_name, run, keys["algorithm"])
        task, task_id, kwargs = _task(tasks, run, keys["task"])
        discrete = learner(family).discrete_actions
        _require(
            discrete == envs.registry.is_discrete(task_id),
            keys["task"],
            f"algorithm '{algorithm}' acts in {'discrete' if discrete else 'continuous'} actions, "
            f"task '{task}' has {'continuous' if discrete else 'discrete'} ones",
        )
        seeds = _seeds(run["seeds"], f"runs.{run_name}.seeds") if "seeds" in run else default_seeds
        budget = budget_of(profile, task)
        eval_seeds = evaluation.env_seeds(max(evaluation.episodes, budget.curve_episodes))
        overlap = set(training_env_seeds(seeds, settings.env_copies)) & set(eval_seeds)
        _require(
            not overlap,
            "evaluation.env_seed_start",
            f"evaluation env seeds overlap run {run_name}'s training env seeds: {sorted(overlap)}",
        )
        resolved[run_name] = Run(
            run_name,
            algorithm,
            family,
            settings,
            lineage,
            task,
            task_id,
            kwargs,
            seeds,
            budget,
            evaluation,
            declared,
            tuple(sorted(kept)),
        )
    _check_figures(params, resolved)
    _check_tables(params, resolved)
    _check_snapshot_rows(params, resolved)
    return resolved


def _check_figures(params: dict, runs: dict[str, Run]) -> None:
    style = _mapping(params.get("figure_style"), "figure_style")
    _known_keys(style, ["width", "height", "dpi"], "figure_style")
    for key in ("width", "height", "dpi"):
        value = style.get(key)
        _require(
            isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
            f"figure_style.{key}",
            f"must be a number > 0, got {value!r}",
        )
    for name, figure in _mapping(params.get("figures", {}), "figures").items():
        _known_keys(
            figure, ["paper", "title", "note", "metric", "grid", "panels", "curves"], f"figures.{name}"
        )
        _require(
            figure.get("metric", "return") in METRICS,
            f"figures.{name}.metric",
            f"must be one of {', '.join(METRICS)}, got {figure.get('metric')!r}",
        )
        _require(
            figure.get("paper") in PAPERS,
            f"figures.{name}.paper",
            f"must be one of {', '.join(PAPERS)}, got {figure.get('paper')!r}",
        )
        panels = figure["panels"]
        _require(len(panels) > 0, f"figures.{name}.panels", "no panels")
        for pkey, panel in panels.items():
            _known_keys(panel, ["task", "title"], f"figures.{name}.panels.{pkey}")
        grid = figure.get("grid", [1, len(panels)])
        _require(
            isinstance(grid, list)
            and len(grid) == 2
            and all(_is_int(g) and g > 0 for g in grid)
            and grid[0] * grid[1] >= len(panels),
            f"figures.{name}.grid",
            f"must be [rows, columns] with room for {len(panels)} panels, got {grid!r}",
        )
        for label, curve in figure["curves"].items():
            _known_keys(curve, ["algorithm", "color"], f"figures.{name}.curves.{label}")


def _check_tables(params: dict, runs: dict[str, Run]) -> None:
    """tables.<name>: an algorithm evaluated on tasks (columns) in latent modes (rows), with the
    paper's numbers beside ours."""
    for name, table in _mapping(params.get("tables", {}), "tables").items():
        key = f"tables.{name}"
        kind = table.get("kind")
        _require(kind in TABLE_KINDS, f"{key}.kind", f"must be one of {', '.join(TABLE_KINDS)}, got {kind!r}")
        if kind == "matrix_game":
            _check_matrix_table(table, key, runs)
            continue
        _known_keys(table, ["paper", "kind", "title", "algorithm", "columns", "modes", "reported"], key)
        _require(table.get("paper") in PAPERS, f"{key}.paper", f"must be one of {', '.join(PAPERS)}")
        modes = table.get("modes")
        _require(isinstance(modes, list) and len(modes) > 0, f"{key}.modes", "must be a non-empty list")
        for mode in modes:
            _require(
                mode in LATENT_MODES,
                f"{key}.modes",
                f"unknown z mode '{mode}' (modes: {', '.join(LATENT_MODES)})",
            )
        for column, task in table["columns"].items():
            run = runs[run_of(table["algorithm"], task)]
            declared = learner(run.family).execution_modes(run.settings)
            missing = [m for m in modes if m not in declared]
            _require(
                not missing,
                f"{key}.algorithm",
                f"{table['algorithm']} has no z mode {', '.join(missing)} (its modes: {', '.join(declared)})",
            )
        reported = _mapping(table.get("reported", {}), f"{key}.reported")
        for mode, values in reported.items():
            _require(mode in modes, f"{key}.reported.{mode}", "is not one of the table's modes")
            _require(
                isinstance(values, list) and len(values) == len(table["columns"]),
                f"{key}.reported.{mode}",
                f"must list one number per column ({len(table['columns'])})",
            )


def _check_matrix_table(table: dict, key: str, runs: dict[str, Run]) -> None:
    """IAC Tables 1-4: QMIX (agents that see their own observation) and QMIXs (agents and mixer
    that see the joint action) trained on a two-agent one-step discrete game, their Boltzmann
    policies (eq. 7) at ``temperature``, the paper's numbers in ``reported``."""
    _known_keys(table, ["paper", "kind", "title", "task", *MATRIX_GAME_LEARNERS, "temperature", "reported"], key)
    _require(table.get("paper") in PAPERS, f"{key}.paper", f"must be one of {', '.join(PAPERS)}")
    temperature = table.get("temperature")
    _require(
        isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature > 0,
        f"{key}.temperature",
        f"must be a number > 0 (alpha of IAC eq. 7), got {temperature!r}",
    )
    for part in MATRIX_GAME_LEARNERS:
        run = runs[run_of(table[part], table["task"])]
        _require(run.family == "qmix", f"{key}.{part}", f"{table[part]} is a {run.family} learner, not qmix")
        # Table 2 needs Q_i(u_i) alone (QMIX); Table 4 is about QMIXs's joint-action inputs.
        want = part == "qmixs"
        _require(
            run.settings.observe_other_actions == want,
            f"{key}.{part}",
            f"{table[part]} must have observe_other_actions: {str(want).lower()}",
        )
    spec = envs.make_batched(run.task_id, 1, **run.task_kwargs).spec
    _require(
        spec.n_agents == 2 and spec.discrete and spec.episode_limit == 1,
        f"{key}.task",
        f"'{table['task']}' is not a two-agent one-step discrete game",
    )
    A = spec.action_dim
    for name, values in _mapping(table.get("reported", {}), f"{key}.reported").items():
        _require(name in MATRIX_GAME_REPORTED, f"{key}.reported.{name}", f"unknown key (allowed: {', '.join(MATRIX_GAME_REPORTED)})")
        shape = (A,) if name in ("table2_q1", "table2_q2") else (A, A)
        try:
            ok = np.asarray(values, dtype=float).shape == shape
        except (TypeError, ValueError):
            ok = False
        _require(ok, f"{key}.reported.{name}", f"must be numbers of shape {list(shape)}, got {values!r}")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_comparison(name: str, entry, params: dict) -> None:
    """comparisons.<name>: algorithms against a baseline on the learning curves of a reach task
    (first step at a threshold) and a final task (the last points' mean): IAC Fig. 7."""
    key = f"comparisons.{name}"

    def require(ok: bool, where: str, problem: str) -> None:
        _require(ok, f"{key}{where}", problem)

    require(isinstance(entry, dict), "", f"must be a mapping, got {entry!r}")
    for k in entry:
        require(k in COMPARISON_KEYS, f".{k}", f"unknown key (allowed: {', '.join(sorted(COMPARISON_KEYS))})")
    paper = entry.get("paper")
    require(paper in PAPERS, ".paper", f"must be one of {', '.join(PAPERS)}, got {paper!r}")
    labels = entry.get("algorithms")
    require(
        isinstance(labels, dict) and len(labels) > 0,
        ".algorithms", f"must be a non-empty mapping label: algorithm, got {labels!r}",
    )  # fmt: skip
    tasks = params.get("tasks", {})
    for part, own in (("reach", "threshold"), ("final", "last_points")):
        section = entry.get(part)
        require(isinstance(section, dict), f".{part}", f"must be a mapping, got {section!r}")
        for k in section:
            require(k in ("task", own), f".{part}.{k}", f"unknown key (allowed: {own}, task)")
        task = section.get("task")
        require(task in tasks, f".{part}.task", f"unknown task {task!r}")
    threshold = entry["reach"].get("threshold")
    require(_finite(threshold), ".reach.threshold", f"must be a number, got {threshold!r}")
    last = entry["final"].get("last_points")
    require(
        isinstance(last, int) and not isinstance(last, bool) and last >= 1,
        ".final.last_points", f"must be an integer >= 1 (curve points), got {last!r}",
    )  # fmt: skip
    reported = entry.get("reported", {})
    require(isinstance(reported, dict), ".reported", f"must be a mapping, got {reported!r}")
    for kind, values in reported.items():
        where = f".reported.{kind}"
        require(kind in COMPARISON_REPORTED, where, f"unknown key (allowed: {', '.join(COMPARISON_REPORTED)})")
        require(isinstance(values, dict), where, f"must be a mapping label: number, got {values!r}")
        for label, value in values.items():
            require(label in labels, f"{where}.{label}", f"is not a label of {key}.algorithms")
            require(_finite(value), f"{where}.{label}", f"must be a number, got {value!r}")


def _check_snapshots(params: dict, chosen: dict) -> None:
    """snapshots.<name>: policies kept at training steps (per profile) of the rows' runs on one
    task, drawn by the stage of the snapshot's ``kind`` (SNAPSHOT_KINDS)."""
    profile = params.get("profile")
    tasks = _mapping(params.get("tasks"), "tasks")
    for name, snap in _mapping(params.get("snapshots", {}), "snapshots").items():
        key = f"snapshots.{name}"
        kind = _mapping(snap, key).get("kind")
        _require(kind in SNAPSHOT_KINDS, f"{key}.kind", f"must be one of {', '.join(SNAPSHOT_KINDS)}, got {kind!r}")
        _, drawable, own = SNAPSHOT_KINDS[kind]
        _known_keys(snap, [*SNAPSHOT_KEYS, *own], key)
        _require(snap.get("paper") in PAPERS, f"{key}.paper", f"must be one of {', '.join(PAPERS)}")
        task = snap.get("task")
        _require(task in tasks, f"{key}.task", f"unknown task {task!r}")
        _require(
            drawable is None or tasks[task].get("id") in drawable,
            f"{key}.task",
            f"'{task}' is a {tasks[task].get('id')} task; a {kind} snapshot draws {', '.join(drawable or ())} only",
        )
        _mapping(snap.get("step"), f"{key}.step")
        budget = budget_of(chosen, task)
        steps = snapshot_steps(snap, profile, budget)
        _require(
            len(steps) > 0 and all(_is_int(t) and t >= 0 for t in steps),
            f"{key}.step.{profile}",
            f"must be a training step, a list of them or '{EVERY}' for the profile in use, got "
            f"{snap['step'].get(profile)!r}",
        )
        for step in steps:
            _require(
                step <= budget.env_steps and step % budget.curve_interval == 0,
                f"{key}.step.{profile}",
                f"{step} must be a multiple of curve_interval {budget.curve_interval} within the "
                f"budget of {budget.env_steps} env steps",
            )
        if kind == "positions":
            after = snap.get("after_reset")
            _require(_is_int(after) and after >= 0, f"{key}.after_reset", f"must be an integer >= 0, got {after!r}")
        if kind == "exploration":
            for part in ("independent", "collaborative"):
                _gaussian_2d(snap.get(part), f"{key}.{part}")


def _gaussian_2d(value, key: str) -> None:
    """{mean: [x, y], cov: [[a, b], [b, c]]}, a symmetric positive-definite covariance."""
    _known_keys(_mapping(value, key), ["mean", "cov"], key)
    mean, cov = value.get("mean"), value.get("cov")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    _require(isinstance(mean, list) and len(mean) == 2 and all(map(number, mean)), f"{key}.mean", f"must be [x, y], got {mean!r}")
    _require(
        isinstance(cov, list) and len(cov) == 2 and all(isinstance(r, list) and len(r) == 2 and all(map(number, r)) for r in cov),
        f"{key}.cov",
        f"must be [[a, b], [b, c]], got {cov!r}",
    )
    (a, b), (b2, c) = cov
    _require(b == b2 and a > 0 and a * c - b * b > 0, f"{key}.cov", f"must be symmetric positive definite, got {cov!r}")


def _check_snapshot_rows(params: dict, runs: dict[str, Run]) -> None:
    """A covariance snapshot needs learners that have a covariance (IAC's joint Gaussian)."""
    for name, snap in params.get("snapshots", {}).items():
        if snap["kind"] != "covariance":
            continue
        for label, algorithm in snap["rows"].items():
            run = runs[run_of(algorithm, snap["task"])]
            has = getattr(learner(run.family), "has_covariance", lambda settings: False)
            _require(has(run.settings), f"snapshots.{name}.rows.{label}", f"{algorithm}'s policy has no covariance to draw")


def resume_every(params: dict) -> int:
    """``resume.every_env_steps.<profile>``: env steps between a run's resume points."""
    section = _mapping(params.get("resume"), "resume")
    _known_keys(section, ("every_env_steps",), "resume")
    every = _mapping(section.get("every_env_steps"), "resume.every_env_steps")
    for name in every:
        _require(name in params["profiles"], f"resume.every_env_steps.{name}", "is not one of the profiles")
    _positive_ints(every, "resume.every_env_steps", [params["profile"]])
    return every[params["profile"]]


DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def train_device(params: dict) -> str:
    """``device``: where the train stages place their tensors (``auto``: resolved by
    pipeline/runtime/devices.py when the stage starts)."""
    device = params.get("device", "auto")
    _require(isinstance(device, str) and DEVICE.fullmatch(device) is not None, "device",
             f"must be auto, cpu, cuda or cuda:<n>, got {device!r}")
    return device


def load_runs(path: Path = PARAMS_FILE) -> tuple[dict, dict[str, Run]]:
    """params.yaml read and checked, or SystemExit with one line naming the problem."""
    try:
        params = load(path)
        runs = resolve_runs(params)
        resume_every(params)
        train_device(params)
        return params, runs
    except ParamsError as err:
        raise SystemExit(f"params.yaml: {err}") from None


def entry_from_argv(argv: list[str], params: dict, section: str, usage: str) -> tuple[str, dict]:
    """The one ``section`` entry (a table, a snapshot) a stage was asked for, by name."""
    entries = params.get(section, {})
    if len(argv) != 1 or argv[0] not in entries:
        raise SystemExit(f"usage: python -m {usage} ({section}: {', '.join(entries)})")
    return argv[0], entries[argv[0]]


def run_from_argv(argv: list[str], runs: dict[str, Run]) -> Run:
    if len(argv) != 1:
        raise SystemExit("usage: python -m pipeline.stages.<stage> RUN_NAME")
    if argv[0] not in runs:
        raise SystemExit(f"params.yaml: runs.{argv[0]}: no such run (runs: {', '.join(runs)})")
    return runs[argv[0]]
