"""`dvc repro` with independent stages running at the same time, on Dask.

    python -m pipeline.runtime.parallel_repro --jobs 2                  # a LocalCluster on this machine
    python -m pipeline.runtime.parallel_repro --scheduler tcp://host:8786   # any running Dask scheduler
    python -m pipeline.runtime.parallel_repro --jobqueue cluster.yaml   # SLURM or PBS through dask-jobqueue
    python -m pipeline.runtime.parallel_repro --dry                     # what would run, and why (make dry)

DVC holds a repository lock while it reproduces, so concurrent `dvc repro` calls in one
workspace fail. Here only this process talks to DVC, through its own API: it walks the stages
in the order serial `dvc repro` does (DVC's plan), decides each one as `dvc repro` would (run it
when it has changed, once the stages it reads from are done), runs its command on a Dask worker,
and records every stage that ran as `dvc repro` does (DVC's commit: the hashes of its
dependencies, params and outputs into dvc.lock, in the plan's order, and the outputs into the
cache). Afterwards `dvc status` is clean and a plain `dvc repro` has nothing to do. A stage that
fails, or whose worker dies, is named in one line and what depends on it is not run; what
finished is recorded, so running this again finishes the rest.

Every stage gets ``cores // jobs`` threads (``HARNESS_THREADS``, pipeline/__init__.py), so the
stages running together do not oversubscribe the machine. The stages' numbers do not depend on their thread count (tested:
the parallel build gives the serial build's dvc.lock).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from pipeline.runtime.meter import PROGRESS_FILE_ENV

LOGS = Path(".dvc/tmp/parallel")  # each stage's stdout and stderr
STOP, KILL = "harness-stop-stages", "harness-kill-stages"  # Dask events: end the running stages
RECORD_EVERY = 120.0  # seconds between records into dvc.lock (a kill loses at most one batch)


def dvc_plan(repo):
    """Every stage in the order serial `dvc repro` visits them, and what each reads from."""
    from dvc.repo.reproduce import get_active_graph, plan_repro

    graph = get_active_graph(repo.index.graph)
    order = plan_repro(graph, list(repo.index.stages))
    return order, {stage: set(graph.successors(stage)) for stage in order}


def plan(root: Path) -> list[str]:
    """The stages that have changed now (what `dvc status` lists), in the plan's order."""
    from dvc.repo import Repo, lock_repo

    with Repo(str(root)) as repo, lock_repo(repo):
        order, _ = dvc_plan(repo)
        return [stage.addressing for stage in order if stage.changed()]


def dry_plan(root: Path) -> list[tuple[str, str]]:
    """What `dvc repro` would run now, in its order, and why: each stage that has changed (its
    code, params or inputs; outputs missing), and each that reads from one of those. DVC's own
    ``dvc repro --dry`` stops at the first stage whose inputs do not exist yet (a fresh clone's
    evaluate stages: treeverse/dvc#9021); this asks only ``changed()``, which never hashes a
    missing file."""
    from dvc.repo import Repo, lock_repo

    with Repo(str(root)) as repo, lock_repo(repo):
        order, needs = dvc_plan(repo)
        runs: dict = {}
        for stage in order:
            upstream = sorted(u.addressing for u in needs[stage] if u in runs)
            if stage.changed():
                runs[stage] = "changed"
            elif upstream:
                runs[stage] = f"after {upstream[0]}" + (f" (+{len(upstream) - 1})" if len(upstream) > 1 else "")
        return [(stage.addressing, why) for stage, why in runs.items()]


def print_dry_plan(root: Path) -> None:
    planned = dry_plan(root)
    if not planned:
        print("parallel_repro --dry: nothing to run: data and pipelines are up to date")
        return
    width = max(len(name) for name, _ in planned)
    print(f"parallel_repro --dry: {len(planned)} stage(s) would run, in this order:")
    for name, why in planned:
        print(f"  {name:{width}}  {why}")


def stage_env(threads: int) -> dict:
    """The environment a stage runs in: its thread budget, and the venv's tools first."""
    env = dict(os.environ, HARNESS_THREADS=str(threads))  # applied by pipeline/__init__.py
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def progress_file(root: Path, name: str) -> Path:
    """Where a training stage run here writes its progress (pipeline/runtime/meter.py)."""
    return root / LOGS / f"{name}.progress.json"


def run_stage(name: str, cmd: str, root: str, threads: int) -> tuple[str, int, float]:
    """On a worker: the stage's command, its output into .dvc/tmp/parallel/<stage>.log. The
    command runs in a session of its own, so a Ctrl-C at the builder's terminal does not reach
    it; it ends when the builder asks, through the Dask events STOP (SIGTERM: a training stage
    keeps its resume point, pipeline/outputs/stopping.py) and KILL (SIGKILL)."""
    from dask.distributed import Event

    log = Path(root) / LOGS / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    progress = progress_file(Path(root), name)
    progress.unlink(missing_ok=True)
    env = dict(stage_env(threads), **{PROGRESS_FILE_ENV: str(progress)})
    start = time.monotonic()
    stop, kill, sent = Event(STOP), Event(KILL), None
    with log.open("w") as out:
        process = subprocess.Popen(cmd, shell=True, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            while process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=1.0)
                wanted = signal.SIGKILL if kill.is_set() else signal.SIGTERM if stop.is_set() else None
                if wanted is not None and wanted != sent and process.poll() is None:
                    os.killpg(process.pid, wanted)
                    sent = wanted
        finally:
            if process.poll() is None:  # this task itself is ending: leave no stage behind
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return name, process.returncode, time.monotonic() - start


class Board:
    """One line per running stage on stderr (a tqdm bar each; quiet when stderr is not a
    terminal): a training stage's env steps, speed, latest evaluation return and time left
    from its progress file, any other stage's time so far."""

    def __init__(self, root: Path):
        self.root, self.bars = root, {}

    def refresh(self, running: list[str]) -> None:
        for name in set(self.bars) - set(running):
            self.bars.pop(name).close()
        for name in running:
            bar = self.bars.get(name)
            if bar is None:
                bar = self.bars[name] = tqdm(desc=name, unit="step", disable=None, file=sys.stderr, leave=False, dynamic_ncols=True)
            try:
                status = json.loads(progress_file(self.root, name).read_text())
            except (OSError, ValueError):  # not a training stage, or no progress yet
                bar.refresh()
                continue
            bar.total = status["total"]
            bar.n = status["steps"]
            if status["eval_return"] is not None:
                bar.set_postfix(eval_return=f"{status['eval_return']:.3g}", refresh=False)
            bar.refresh()

    def close(self) -> None:
        self.refresh([])


def client_for(args):
    """A Dask client: a LocalCluster of ``jobs`` workers, a given scheduler, or a jobqueue
    cluster described by a YAML file (kind: slurm | pbs, jobs: N, and the cluster's own
    arguments, e.g. cores, memory, walltime, queue, account)."""
    from dask.distributed import Client, LocalCluster

    if args.scheduler:
        return Client(args.scheduler), args.threads or 1
    if args.jobqueue:
        import dask_jobqueue

        config = yaml.safe_load(Path(args.jobqueue).read_text())
        kinds = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}
        if not isinstance(config, dict) or config.get("kind") not in kinds or not isinstance(config.get("jobs"), int):
            raise SystemExit(f"parallel_repro: {args.jobqueue}: needs kind (slurm or pbs) and jobs (an integer)")
        kind, jobs = kinds[config.pop("kind")], config.pop("jobs")
        cluster = kind(**config)
        cluster.scale(jobs=jobs)
        # each Dask thread of a worker runs one stage: one thread per stage unless told
        return Client(cluster), args.threads or 1
    # The workers start with SIGINT ignored (kept across exec): a Ctrl-C at the terminal reaches
    # every process of its group, and must stop the build through this process, not kill the
    # workers under the stages they run.
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True, dashboard_address=None)
    finally:
        signal.signal(signal.SIGINT, interrupt)
    return Client(cluster), args.threads or max(1, len(os.sched_getaffinity(0)) // args.jobs)


def reproduce(root: Path, client, threads: int, record_every: float = RECORD_EVERY) -> list[str]:
    """Run what has changed; return the stages that failed (their dependents are not run).

    Stages that ran are recorded in dvc.lock in batches, at most ``record_every`` seconds apart
    and whatever way this ends (an exception or Ctrl-C included): DVC rewrites the whole lock
    file for every record (seconds each, for this repository's), so serial `dvc repro` spends a
    large part of its time there, while a kill of this process loses at most one batch."""
    from dask.distributed import Event, as_completed
    from dvc.repo import Repo, lock_repo

    with Repo(str(root)) as repo, lock_repo(repo):  # held throughout, as dvc repro holds it
        order, needs = dvc_plan(repo)
        state = {stage: "waiting" for stage in order}  # -> running -> ran | skipped | failed | blocked
        futures, unrecorded, stopping = {}, [], []
        lock = root / "dvc.lock"
        recorded_before = lock_stages(lock)

        def decide() -> None:
            """Stages whose upstream stages are all settled: run the changed ones."""
            for stage in order if not stopping else ():
                if state[stage] != "waiting" or any(state[u] in ("waiting", "running") for u in needs[stage]):
                    continue
                if any(state[u] in ("failed", "blocked") for u in needs[stage]):
                    state[stage] = "blocked"
                elif stage.changed():
                    state[stage] = "running"
                    name = stage.addressing
                    futures[client.submit(run_stage, name, stage.cmd, str(root), threads, key=f"stage-{name}", pure=False)] = stage
                    tqdm.write(f"parallel_repro: running {name}", file=sys.stderr)
                else:
                    state[stage] = "skipped"

        def settle(future) -> None:
            """A stage's worker has returned (or died): record how, start what now can run."""
            stage = futures[future]
            try:
                _, code, seconds = future.result()
                problem = None if code == 0 else f"exit {code}; log: {LOGS / (stage.addressing + '.log')}"
            except Exception as err:  # the worker died (KilledWorker) or the task could not run
                code, problem, seconds = None, f"{type(err).__name__}: {err}".splitlines()[0], 0.0
            ended = bool(stopping) and code in (128 + signal.SIGTERM, -signal.SIGTERM, -signal.SIGKILL)
            state[stage] = "failed" if problem else "ran"
            if not problem:
                unrecorded.append(stage)
            what = "stopped" if ended else f"failed ({problem})" if problem else f"finished ({seconds:.0f} s)"
            tqdm.write(f"parallel_repro: stage {stage.addressing} {what}", file=sys.stderr)
            known = set(futures)
            decide()
            for new in set(futures) - known:
                pending.add(new)

        def flush() -> None:
            record(sorted(unrecorded, key=order.index))
            unrecorded.clear()

        def running() -> list[str]:
            return [stage.addressing for stage in order if state[stage] == "running"]

        def drain() -> None:
            nonlocal recorded_at
            while not pending.is_empty():
                finished = pending.next_batch(block=False)
                for future in finished:
                    settle(future)
                if unrecorded and time.monotonic() - recorded_at >= record_every:
                    flush()
                    recorded_at = time.monotonic()
                if not finished:
                    board.refresh(running())
                    time.sleep(0.5)

        decide()
        pending, board, recorded_at = as_completed(list(futures)), Board(root), time.monotonic()
        try:
            try:
                drain()
            except KeyboardInterrupt:  # Ctrl-C: start nothing more, end what runs, keep what finished
                stopping.append(True)
                board.close()
                if running():
                    tqdm.write(f"parallel_repro: stopping: no new stage starts; ending {', '.join(running())} "
                               "(a training stage keeps its resume point); Ctrl-C again to kill them at once",
                               file=sys.stderr)  # fmt: skip
                    Event(STOP, client=client).set()
                    try:
                        drain()
                    except KeyboardInterrupt:
                        Event(KILL, client=client).set()
                        drain()
                raise
        finally:
            try:
                flush()
                if lock.exists():
                    order_new_entries(lock, recorded_before, [stage.name for stage in order])
            finally:
                board.close()
        return [stage.addressing for stage in order if state[stage] == "failed"]


def record(stages: list) -> None:
    """What `dvc repro` writes for each stage it ran (DVC's `commit --force`, done for a batch
    at once): the hashes of its dependencies, params and outputs, the outputs into the cache,
    and the stages' dvc.lock entries."""
    for stage in stages:
        stage.save()
        stage.commit()
    if stages:
        stages[0].dvcfile.dump_stages(stages, update_pipeline=False)


def lock_stages(lock: Path) -> list[str]:
    """The stages dvc.lock records now, in its order."""
    if not lock.exists():
        return []
    return list((yaml.load(lock.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}).get("stages", {}))


def order_new_entries(lock: Path, before: list[str], plan: list[str]) -> None:
    """Serial `dvc repro` updates the entries a lock has in place and appends new ones in its
    plan's order; batches recorded as stages finish append in finishing order. Put the new
    entries in plan order, so both builds write the same file."""
    from dvc.utils.serialize import modify_yaml

    now = lock_stages(lock)
    rank = {name: i for i, name in enumerate(plan)}
    known = set(before)
    new = [name for name in now if name not in known]
    wanted = [name for name in now if name in known] + sorted(new, key=lambda n: rank.get(n, len(rank)))
    if now == wanted:
        return
    with modify_yaml(str(lock)) as data:
        entries = [(name, data["stages"][name]) for name in wanted]
        for name in now:
            del data["stages"][name]
        for name, entry in entries:
            data["stages"][name] = entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=2, help="LocalCluster workers (stages at once)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler")
    where.add_argument("--jobqueue", help="YAML file describing a SLURM or PBS cluster")
    parser.add_argument("--threads", type=int, help="threads per stage (default: cores / jobs)")
    parser.add_argument("--record-every", type=float, default=RECORD_EVERY, help="seconds between records into dvc.lock")
    parser.add_argument("--dry", action="store_true", help="only say which stages would run, and why")
    args = parser.parse_args(argv)
    if args.dry:
        print_dry_plan(Path.cwd())
        return
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        raise SystemExit("parallel_repro: --jobs and --threads must be at least 1")
    root = Path.cwd()
    client, threads = client_for(args)
    try:
        failed = reproduce(root, client, threads, args.record_every)
    except KeyboardInterrupt:
        print("parallel_repro: stopped; what finished is recorded in dvc.lock: run the same command to go on",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(128 + signal.SIGINT) from None
    finally:
        client.close()
    if failed:
        raise SystemExit(f"parallel_repro: {len(failed)} stage(s) failed: {', '.join(failed)}; run again to finish")


if __name__ == "__main__":
    main()
