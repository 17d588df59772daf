"""Stage ``train-<run>``: every seed of one run trained together in one process, as a Sacred run.

Writes ``results/runs/<run>/{curves.csv, checkpoints/seed<k>.pt, sacred/train/}``, and
``snapshots/step<T>/seed<k>.pt`` for the early policies a snapshot figure draws (Fig. 6).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch.utils._pytree import tree_map

import envs
from pipeline.design.code_files import run_code, source_files
from pipeline.design.params import Run, load_runs, resume_every, run_from_argv, train_device
from pipeline.outputs import layout
from pipeline.outputs.staging import publish, staging
from pipeline.outputs.stopping import one_line_stop
from pipeline.runtime import devices
from pipeline.runtime.build import build
from pipeline.runtime.loops import Training, evaluate
from pipeline.runtime.memory import TooLarge
from pipeline.runtime.meter import Meter
from pipeline.runtime.resume import ResumePoints, run_key, warn
from pipeline.runtime.sacred_run import Experiment, observe

OUTPUTS = ("curves.csv", "checkpoints", "snapshots", "sacred")


def save_checkpoint(path: Path, run: Run, seed: int, spec, tensors: dict) -> None:
    """One seed's policy, saved from CPU copies (pipeline/runtime/devices.py): a run trained on a GPU is
    evaluated on the CPU."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "run": run.name,
            "seed": seed,
            "family": run.family,
            "settings": asdict(run.settings),
            "spec": asdict(spec),
            "tensors": tree_map(lambda t: t.cpu() if torch.is_tensor(t) else t, tensors),
        },
        path,
    )


def run_config(run: Run, device: torch.device) -> dict:
    """The run as Sacred records it (config.json)."""
    return {
        "run": run.name,
        "algorithm": run.algorithm,
        "family": run.family,
        "settings": asdict(run.settings),
        "task": run.task,
        "task_id": run.task_id,
        "task_kwargs": run.task_kwargs,
        "seeds": list(run.seeds),
        "budget": asdict(run.budget),
        "curve_env_seeds": run.evaluation.env_seeds(run.budget.curve_episodes),
        # Sacred seeds Python's, NumPy's and torch's global generators with this; the harness
        # draws nothing from them (every seed owns its streams), so it is fixed for the record.
        "seed": run.seeds[0],
        "device": str(device),  # where it trained (params.yaml device), part of the resume key
    }


@dataclass
class Progress:
    """What the stage gathers while training, beside the loop itself (saved in resume points)."""

    rows: list = field(default_factory=list)  # (step, seed, return, win_rate)
    snapshots: dict = field(default_factory=dict)  # (step, seed) -> that seed's policy then
    metrics: list = field(default_factory=list)  # (name, value, step) as logged to Sacred


def build_checked(run: Run):
    """The run's learner and task batch, or one line when they would not fit in memory."""
    try:
        return build(run, len(run.seeds) * run.settings.env_copies, run.budget.env_steps)
    except TooLarge as err:  # before anything is allocated: one line, as a params error
        raise SystemExit(f"train: {run.name}: {err}") from None


def train(run: Run, folder: Path, log_scalar=None, resume: ResumePoints | None = None, built=None) -> dict:
    """Train all seeds of ``run``; write curves.csv and one checkpoint per seed into folder.

    With ``resume``, go on from the run's last resume point if there is one, and save points
    as training goes. ``built``: the learner and task batch if the caller built them already.
    Returns what the Sacred run records as info (the storage and its size per seed, and the
    env step training resumed from)."""
    S = len(run.seeds)
    algo, env = built or build_checked(run)
    curve_seeds = run.evaluation.env_seeds(run.budget.curve_episodes)
    curve_env = envs.make_batched(run.task_id, S * len(curve_seeds), **run.task_kwargs)
    headline = type(algo).execution_modes(run.settings)[0]
    saved = resume.load() if resume else None
    if saved:
        training, progress = saved["training"], saved["progress"]
        training.attach(env)
        resume.saved_at = resumed_from = int(training.t.max())
        warn(f"{run.name} goes on from env step {resumed_from} ({resume.path})")
        for metric in progress.metrics if log_scalar else ():  # this Sacred run records it all
            log_scalar(*metric)
    else:
        training, progress, resumed_from = Training(algo, env, run.seeds, run.budget), Progress(), 0

    meter = Meter(run.name, run.budget.env_steps, resumed_from, log_scalar)

    def log(name: str, value: float, step: int) -> None:
        if log_scalar:
            progress.metrics.append((name, value, step))
            log_scalar(name, value, step)

    def on_curve(points, losses):
        played = evaluate(training.algo, curve_env, run.seeds, curve_seeds, headline)
        returns = played.returns.mean(1)
        wins = played.won.mean(1) if env.spec.reports_wins else [float("nan")] * S
        for k, steps in points.items():
            seed = run.seeds[k]
            for step in set(steps) & set(run.snapshots):  # the policy that acted at that step
                progress.snapshots[step, seed] = training.algo.seed_state(k)
            for step in steps:
                progress.rows.append((step, seed, float(returns[k]), float(wins[k])))
                log(f"return.seed{seed}", float(returns[k]), step)
                if env.spec.reports_wins:
                    log(f"win_rate.seed{seed}", float(wins[k]), step)
            for name, value in losses[k].items():
                if value == value:  # NaN: no update since the last point
                    log(f"{name}.seed{seed}", value, steps[-1])
        meter.curve_point(max(max(steps) for steps in points.values()), float(returns.mean()))

    try:
        while not training.finished:
            training.advance(on_curve)
            meter.advance(int(training.t.min()))
            if resume and resume.due(training.t):
                resume.save({"training": training, "progress": progress}, int(training.t.max()))
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: say where (pipeline/outputs/stopping.py)
        stop.env_step = int(training.t.min())
        raise
    meter.close()
    if resume and resume.saved_at < int(training.t.max()):  # a kill from here on costs no training
        resume.save({"training": training, "progress": progress}, int(training.t.max()))
    curves = pd.DataFrame(progress.rows, columns=["step", "seed", "return", "win_rate"])
    curves.sort_values(["step", "seed"], kind="stable").to_csv(folder / "curves.csv", index=False)
    for (step, seed), tensors in sorted(progress.snapshots.items()):
        path = folder / "snapshots" / f"step{step}" / layout.checkpoint_name(seed)
        save_checkpoint(path, run, seed, env.spec, tensors)
    for k, seed in enumerate(run.seeds):
        path = folder / "checkpoints" / layout.checkpoint_name(seed)
        save_checkpoint(path, run, seed, env.spec, training.algo.seed_state(k))
    points = {"resume_points": resume.written} if resume else {}
    return {**training.record(), "resumed_from_env_step": resumed_from, **points}


def kept(stop: KeyboardInterrupt, resume: ResumePoints) -> str:
    """What a stopped training leaves for the next run of the same command."""
    where = f"at env step {stop.env_step:,}; " if hasattr(stop, "env_step") else "before training; "
    if resume.saved_at:
        return where + f"its resume point at env step {resume.saved_at:,} is kept: run the same command to go on"
    return where + f"no resume point yet (one every {resume.every:,} env steps): the same command starts again"


def main(argv: list[str] | None = None) -> None:
    params, runs = load_runs()
    run = run_from_argv(sys.argv[1:] if argv is None else argv, runs)
    device = devices.resolve(train_device(params))
    devices.use(device)
    config = run_config(run, device)
    code = source_files("pipeline.stages.train", *run_code(run))
    resume = ResumePoints(run.name, run_key(config, code), resume_every(params))
    built = build_checked(run)  # before the Sacred run: a refusal is not a failed run
    with one_line_stop(f"train {run.name}", lambda stop: kept(stop, resume)), staging(f"{run.name}-train") as folder:
        ex = Experiment(f"train_{run.name}", base_dir=".", save_git_info=False)
        observe(ex, folder / "sacred")
        ex.add_config(config)

        @ex.main
        def train_run(_run):
            _run.info.update(train(run, folder, _run.log_scalar, resume, built))

        ex.run()
        for name in OUTPUTS:  # only after Sacred has written status COMPLETED
            if (folder / name).exists():  # snapshots only where params.yaml asks for them
                publish(folder / name, layout.run_dir(run.name) / name)
    resume.discard()  # published: a rerun now trains afresh, as DVC asked for a new run


if __name__ == "__main__":
    main()
