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

On a cluster (``--jobqueue``, ``--scheduler``) a job that ends under a running stage (SLURM's
SIGTERM at its time limit goes to every process of the job, the stage's included) is not the end
of the stage: Dask runs the task again on another worker when the worker was lost, and this
process submits it again when the stage itself returned a signal it did not send or Dask gave up
on it (``--resubmit`` times, 10 by default there; 0 on this machine, where such a signal is the
user's own ``kill``). Either way the builder says so in one line, and a training stage goes on
from its last resume point, so a run longer than the walltime finishes over several jobs with
the bytes of an uninterrupted run (tests/test_slurm.py, on a real SLURM). The jobqueue cluster
is asked for its number of jobs again every ``RESCALE_EVERY`` seconds, so an ended job is
replaced.

With ``--warm`` a worker forks each ``python -m`` stage from a warm process that has imported
what the stages import (pipeline/runtime/warm_stages.py) instead of starting it anew: over 200
stages, 2.4 s of imports each. Experimental: the first full default build with it was killed by
the kernel's OOM killer at stage 195 of 233, with 98 python processes of 250-280 MB resident
alive (README, "Warm stages"); the cause is not found yet, so it is not the default.

Every stage gets ``cores // jobs`` threads (``HARNESS_THREADS``, pipeline/__init__.py), so the
stages running together do not oversubscribe the machine. The stages' numbers do not depend on their thread count (tested:
the parallel build gives the serial build's dvc.lock).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml
from tqdm import tqdm

from pipeline.runtime import cost_gate
from pipeline.runtime.meter import PROGRESS_FILE_ENV

LOGS = Path(".dvc/tmp/parallel")  # each stage's stdout and stderr
STOP, KILL = "harness-stop-stages", "harness-kill-stages"  # Dask events: end the running stages
STARTED = "harness-stage-started"  # a worker's log event, one per start of a stage's command
RECORD_EVERY = 120.0  # seconds between records into dvc.lock (a kill loses at most one batch)
RESCALE_EVERY = 10.0  # seconds between asking a jobqueue cluster for its jobs again
# exit statuses of a stage ended by SIGTERM (pipeline/outputs/stopping.py, or unhandled) or SIGKILL
SIGNALLED = {128 + signal.SIGTERM, -signal.SIGTERM, 128 + signal.SIGKILL, -signal.SIGKILL}


def dvc_plan(repo, targets: Sequence[str] = ()):
    """Every stage in the order serial `dvc repro` visits them, and what each reads from; with
    ``targets`` (stage names), only those and the stages they read from, as `dvc repro <targets>`."""
    from dvc.repo.reproduce import get_active_graph, plan_repro

    graph = get_active_graph(repo.index.graph)
    order = plan_repro(graph, list(repo.index.stages))
    needs = {stage: set(graph.successors(stage)) for stage in order}
    if targets:
        by_name = {stage.addressing: stage for stage in order}
        unknown = sorted(set(targets) - set(by_name))
        if unknown:
            raise SystemExit(f"parallel_repro: no stage named {', '.join(unknown)} in dvc.yaml")
        wanted, todo = set(), [by_name[t] for t in targets]
        while todo:
            stage = todo.pop()
            if stage not in wanted:
                wanted.add(stage)
                todo.extend(needs[stage])
        order = [stage for stage in order if stage in wanted]
    return order, needs


def plan(root: Path, targets: Sequence[str] = ()) -> list[str]:
    """The stages that have changed now (what `dvc status` lists), in the plan's order."""
    from dvc.repo import Repo, lock_repo

    with Repo(str(root)) as repo, lock_repo(repo):
        order, _ = dvc_plan(repo, targets)
        return [stage.addressing for stage in order if stage.changed()]


def dry_plan(root: Path, targets: Sequence[str] = ()) -> list[tuple[str, str]]:
    """What `dvc repro` would run now, in its order, and why: each stage that has changed (its
    code, params or inputs; outputs missing), and each that reads from one of those. DVC's own
    ``dvc repro --dry`` stops at the first stage whose inputs do not exist yet (a fresh clone's
    evaluate stages: treeverse/dvc#9021); this asks only ``changed()``, which never hashes a
    missing file."""
    from dvc.repo import Repo, lock_repo

    with Repo(str(root)) as repo, lock_repo(repo):
        order, needs = dvc_plan(repo, targets)
        runs: dict = {}
        for stage in order:
            upstream = sorted(u.addressing for u in needs[stage] if u in runs)
            if stage.changed():
                runs[stage] = "changed"
            elif upstream:
                runs[stage] = f"after {upstream[0]}" + (f" (+{len(upstream) - 1})" if len(upstream) > 1 else "")
        return [(stage.addressing, why) for stage, why in runs.items()]


def print_dry_plan(root: Path, targets: Sequence[str] = ()) -> None:
    planned = dry_plan(root, targets)
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


def warm_command(cmd: str) -> tuple[str, list[str]] | None:
    """``python -m <module> <args>`` with nothing for a shell to do: (module, args), which a
    warm process can run; None for any other command (it runs in a shell, cold)."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    if len(words) < 3 or words[:2] != ["python", "-m"] or any(c in cmd for c in "|;&<>$`()*?~'\"\\"):
        return None
    return words[2], words[3:]


class Zygote:
    """This worker's warm process (pipeline/runtime/warm_stages.py): started for the first
    stage, kept for the next ones, started again after it has died."""

    current = None  # per worker process

    def __init__(self, root: str, threads: int):
        self.key = (root, threads)
        with (Path(root) / LOGS / f"warm-{os.getpid()}.log").open("w") as errors:  # the child keeps its own copy
            self.process = subprocess.Popen([sys.executable, "-m", "pipeline.runtime.warm_stages"], cwd=root,
                                            env=stage_env(threads), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=errors, start_new_session=True)  # fmt: skip
        self.buffer = b""
        self.answer(timeout=None)  # {"ready": pid}: its imports are done

    @classmethod
    def get(cls, root: str, threads: int) -> Zygote:
        z = cls.current
        if z is None or z.key != (root, threads) or z.process.poll() is not None:
            cls.current = z = cls(root, threads)
        return z

    def answer(self, timeout: float | None) -> dict | None:
        """Its next line (JSON), or None when none came within ``timeout`` seconds."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            if timeout is not None and not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise ChildProcessError("the warm process ended")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def start(self, module: str, args: list[str], cwd: str, env: dict, log: Path) -> int:
        request = {"module": module, "args": args, "cwd": cwd, "env": env, "log": str(log)}
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()
        return self.answer(timeout=None)["pid"]

    def discard(self) -> None:
        Zygote.current = None
        self.process.kill()
        self.process.wait()


def run_stage(name: str, cmd: str, root: str, threads: int, warm: bool = False, wdir: str | None = None) -> tuple[str, int, float]:
    """On a worker: the stage's command in its ``wdir`` (the folder of its dvc.yaml; the root
    by default), its output into .dvc/tmp/parallel/<stage>.log. The
    command runs in a session of its own, so a Ctrl-C at the builder's terminal does not reach
    it; it ends when the builder asks, through the Dask events STOP (SIGTERM: a training stage
    keeps its resume point, pipeline/outputs/stopping.py) and KILL (SIGKILL). With ``warm``, a
    ``python -m`` command is forked from the worker's warm process instead of started anew."""
    from dask.distributed import Event
    from distributed import get_worker

    with contextlib.suppress(ValueError):  # not on a worker (called directly)
        get_worker().log_event(STARTED, name)
    log = Path(root) / LOGS / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    progress = progress_file(Path(root), name)
    progress.unlink(missing_ok=True)
    env = dict(stage_env(threads), **{PROGRESS_FILE_ENV: str(progress)})
    start = time.monotonic()
    stop, kill, sent = Event(STOP), Event(KILL), None

    def wanted():
        return signal.SIGKILL if kill.is_set() else signal.SIGTERM if stop.is_set() else None

    command = warm_command(cmd) if warm else None
    if command is not None:
        log.write_text("")
        zygote = Zygote.get(root, threads)
        pid, status = zygote.start(*command, wdir or root, env, log), None
        try:
            while status is None:
                reply = zygote.answer(timeout=1.0)
                status = None if reply is None else reply["status"]
                signum = wanted()
                if status is None and signum is not None and signum != sent:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signum)
                    sent = signum
        finally:
            if status is None:  # this task itself is ending: leave no stage behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                zygote.discard()
        return name, status, time.monotonic() - start
    with log.open("w") as out:
        process = subprocess.Popen(cmd, shell=True, cwd=wdir or root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            while process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=1.0)
                signum = wanted()
                if signum is not None and signum != sent and process.poll() is None:
                    os.killpg(process.pid, signum)
                    sent = signum
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


def stages_at_once(args) -> int:
    """How many stages the build runs at once: the cost estimate's divisor."""
    if args.jobqueue:
        config = yaml.safe_load(Path(args.jobqueue).read_text()) or {}
        return int(config.get("jobs", 1)) * int(config.get("processes", 1))
    return 1 if args.scheduler else args.jobs


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
        cluster.harness_jobs = jobs  # asked for again as jobs end (reproduce: rescale)
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


def reproduce(root: Path, client, threads: int, record_every: float = RECORD_EVERY, resubmit: int = 0,
              targets: Sequence[str] = (), warm: bool = False) -> list[str]:  # fmt: skip
    """Run what has changed; return the stages that failed (their dependents are not run). A
    stage ended by a signal this process did not send is submitted again, ``resubmit`` times.

    Stages that ran are recorded in dvc.lock in batches, at most ``record_every`` seconds apart
    and whatever way this ends (an exception or Ctrl-C included): DVC rewrites the whole lock
    file for every record (seconds each, for this repository's), so serial `dvc repro` spends a
    large part of its time there, while a kill of this process loses at most one batch."""
    from dask.distributed import Event, as_completed
    from dvc.repo import Repo, lock_repo

    with Repo(str(root)) as repo, lock_repo(repo):  # held throughout, as dvc repro holds it
        order, needs = dvc_plan(repo, targets)
        state = {stage: "waiting" for stage in order}  # -> running -> ran | skipped | failed | blocked
        futures, unrecorded, stopping, submitted = {}, [], [], {}
        starts: dict[str, int] = {}  # starts of each stage's command since it was last submitted
        rescaled_at = time.monotonic()
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
                    submit(stage)
                    tqdm.write(f"parallel_repro: running {stage.addressing}", file=sys.stderr)
                else:
                    state[stage] = "skipped"

        def submit(stage) -> None:
            name, tries = stage.addressing, submitted.get(stage, 0)
            key = f"stage-{name}" + (f"-again-{tries}" if tries else "")
            futures[client.submit(run_stage, name, stage.cmd, str(root), threads, warm, str(stage.wdir), key=key, pure=False)] = stage
            submitted[stage] = tries + 1

        def settle(future) -> None:
            """A stage's worker has returned (or died): record how, start what now can run."""
            stage = futures.pop(future)  # released: a lost worker must not make Dask run it again
            try:
                _, code, seconds = future.result()
                problem = None if code == 0 else f"exit {code}; log: {LOGS / (stage.addressing + '.log')}"
            except Exception as err:  # the worker died (KilledWorker) or the task could not run
                code, problem, seconds = None, f"{type(err).__name__}: {err}".splitlines()[0], 0.0
                lost = type(err).__name__ == "KilledWorker"
            else:
                lost = False
            if (code in SIGNALLED or lost) and not stopping and submitted[stage] <= resubmit:
                why = f"was ended by a signal this build did not send (exit {code}" if code else f"lost its workers ({problem}"
                tqdm.write(f"parallel_repro: stage {stage.addressing} {why}: a time limit?); submitting it again "
                           f"({submitted[stage]} of {resubmit}): a training stage goes on from its resume point",
                           file=sys.stderr)  # fmt: skip
                known = set(futures)
                starts[stage.addressing] = 0
                submit(stage)
                for new in set(futures) - known:
                    pending.add(new)
                return
            ended = bool(stopping) and code in SIGNALLED
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

        def rescale() -> None:
            """A jobqueue cluster: ask for its jobs again, so one that ended is replaced."""
            nonlocal rescaled_at
            cluster = getattr(client, "cluster", None)
            if getattr(cluster, "harness_jobs", None) and time.monotonic() - rescaled_at >= RESCALE_EVERY:
                cluster.scale(jobs=cluster.harness_jobs)
                rescaled_at = time.monotonic()

        def drain() -> None:
            nonlocal recorded_at
            while not pending.is_empty():
                rescale()
                finished = pending.next_batch(block=False)
                settled = bool(finished)
                while finished:  # no name left holding a settled future: Dask then forgets its result,
                    settle(finished.pop(0))  # and a lost worker does not make it run the stage again
                if unrecorded and time.monotonic() - recorded_at >= record_every:
                    flush()
                    recorded_at = time.monotonic()
                if not settled:
                    board.refresh(running())
                    time.sleep(0.5)

        def started(event) -> None:
            """A stage's command has started on a worker: a second start is Dask's own retry
            after the worker running it was lost (its job ended)."""
            name = event[1]
            starts[name] = starts.get(name, 0) + 1
            if starts[name] > 1 and not stopping:
                tqdm.write(f"parallel_repro: stage {name} started again on another worker: the one running it "
                           "was lost (its job ended: a time limit?); a training stage goes on from its resume point",
                           file=sys.stderr)  # fmt: skip

        client.subscribe_topic(STARTED, started)
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
    and the stages' dvc.lock entries. The outputs are copied into the cache and left in place
    (no relink): the stages that read them may be running already, and DVC's relink checks an
    output out again from the cache, so a reader could find it missing (one did:
    tests/test_parallel_repro.py, recording after every stage)."""
    for stage in stages:
        stage.save()
        stage.commit(relink=False)
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
    parser.add_argument("targets", nargs="*", metavar="STAGE",
                        help="only these stages and those they read from, as `dvc repro STAGE ...` (default: all)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=2, help="LocalCluster workers (stages at once)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler")
    where.add_argument("--jobqueue", help="YAML file describing a SLURM or PBS cluster")
    parser.add_argument("--threads", type=int, help="threads per stage (default: cores / jobs)")
    parser.add_argument("--record-every", type=float, default=RECORD_EVERY, help="seconds between records into dvc.lock")
    parser.add_argument("--resubmit", type=int, default=None,
                        help="times a stage ended by a signal this build did not send (a job's time limit) is "
                             "submitted again (default: 10 with --jobqueue or --scheduler, 0 with --jobs)")
    parser.add_argument("--dry", action="store_true", help="only say which stages would run, and why")
    parser.add_argument("--warm", action="store_true",
                        help="fork `python -m` stages from a warm process per worker (pipeline/runtime/"
                             "warm_stages.py) instead of starting each anew; experimental: a full default build "
                             "ran out of memory at stage 195 of 233 (README)")
    parser.add_argument("--accept-cost", action="store_true",
                        help="start even when the build's estimated cost is over an hour (pipeline/runtime/cost_gate.py)")
    args = parser.parse_args(argv)
    if args.dry:
        print_dry_plan(Path.cwd(), args.targets)
        return
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        raise SystemExit("parallel_repro: --jobs and --threads must be at least 1")
    if args.resubmit is not None and args.resubmit < 0:
        raise SystemExit("parallel_repro: --resubmit must be at least 0")
    resubmit = args.resubmit if args.resubmit is not None else 10 if args.jobqueue or args.scheduler else 0
    root = Path.cwd()
    cost_gate.check(stages_at_once(args), args.targets, args.accept_cost, root)
    client, threads = client_for(args)
    try:
        failed = reproduce(root, client, threads, args.record_every, resubmit, args.targets, args.warm)
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
