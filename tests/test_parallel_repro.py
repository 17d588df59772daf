"""The Dask build on a small DVC pipeline (a -> b, c -> d, e alone): it records the dvc.lock
serial `dvc repro` records, leaves nothing to do, and a worker that dies mid-stage is named in
one line and finished by the next build. The repository's own pipeline is compared serial
against parallel in tests/test_pipeline_end_to_end.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest
import yaml

from pipeline.runtime import parallel_repro

WRITE = "python -c \"import sys, pathlib; pathlib.Path(sys.argv[2]).write_text(''.join(pathlib.Path(p).read_text() for p in sys.argv[3:]) + sys.argv[1])\""
STAGES = {
    "a": {"cmd": f"{WRITE} a a.txt", "params": ["n"], "outs": ["a.txt"]},
    "b": {"cmd": f"{WRITE} b b.txt a.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
    "c": {"cmd": f"{WRITE} c c.txt a.txt", "deps": ["a.txt"], "outs": [{"c.txt": {"cache": False}}]},
    "d": {"cmd": f"{WRITE} d d.txt b.txt c.txt", "deps": ["b.txt", "c.txt"], "outs": ["d.txt"]},
    "e": {"cmd": f"{WRITE} e e.txt", "outs": ["e.txt"]},
}


def sh(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert not check or done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def project(root: Path, stages: dict = STAGES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text("n: 1\n")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    sh(["git", "init", "-q"], root)
    sh([sys.executable, "-m", "dvc", "init", "-q"], root)
    return root


@pytest.fixture
def inside(monkeypatch):
    def enter(root: Path) -> Path:
        monkeypatch.chdir(root)
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        return root

    return enter


def test_recording_a_stage_leaves_its_outputs_in_place_for_the_stages_reading_them(tmp_path, inside):
    """The stages that read an output may run while it is recorded: DVC's relink would replace
    the file from the cache, and a reader opening it meanwhile found it missing."""
    from dvc.repo import Repo, lock_repo

    root = inside(project(tmp_path))
    sh([sys.executable, "-c", "import pathlib; pathlib.Path('a.txt').write_text('a')"], root)
    os.link(root / "a.txt", tmp_path / "a.held")  # holds the file's inode, so a new file cannot reuse it
    with Repo(str(root)) as repo, lock_repo(repo):  # held as reproduce() holds it
        parallel_repro.record([next(s for s in repo.index.stages if s.name == "a")])
    assert (root / "a.txt").samefile(tmp_path / "a.held")  # the same file, never removed and written again
    assert sh([sys.executable, "-m", "dvc", "status", "a"], root).stdout.strip() == "Data and pipelines are up to date."


def test_the_parallel_build_records_what_the_serial_build_records(tmp_path, inside):
    serial, parallel = project(tmp_path / "serial"), project(tmp_path / "parallel")
    sh([sys.executable, "-m", "dvc", "repro"], serial)
    inside(parallel)
    parallel_repro.main(["--jobs", "2"])
    assert (parallel / "dvc.lock").read_text() == (serial / "dvc.lock").read_text()
    for name in ("a", "b", "c", "d", "e"):
        assert (parallel / f"{name}.txt").read_bytes() == (serial / f"{name}.txt").read_bytes()
    assert (parallel / "d.txt").read_text() == "ab" + "ac" + "d"
    assert "Data and pipelines are up to date" in sh([sys.executable, "-m", "dvc", "status"], parallel).stdout
    assert "Running stage" not in sh([sys.executable, "-m", "dvc", "repro"], parallel).stdout
    # a changed param: a runs again; its output is the same bytes, so, as serially, nothing
    # downstream runs, and both builds record the same dvc.lock
    for root in (serial, parallel):
        (root / "params.yaml").write_text("n: 2\n")
    assert parallel_repro.plan(parallel) == ["a"]
    sh([sys.executable, "-m", "dvc", "repro"], serial)
    parallel_repro.main(["--jobs", "2"])
    assert (parallel / "dvc.lock").read_text() == (serial / "dvc.lock").read_text()
    assert parallel_repro.plan(parallel) == []


def test_a_worker_that_dies_mid_stage_is_named_and_the_next_build_finishes(tmp_path, inside, capsys):
    # b's command kills its Dask worker process the first time it runs
    # (its parent is the shell running the command; the shell's parent is the worker)
    kill = "os.kill(int(pathlib.Path(f'/proc/{os.getppid()}/stat').read_text().split()[3]), signal.SIGKILL)"
    dies = f"python -c \"import os, pathlib, signal; m = pathlib.Path('died'); m.exists() or (m.touch(), {kill})\" && "
    stages = {**STAGES, "b": {**STAGES["b"], "cmd": dies + STAGES["b"]["cmd"]}}
    root = inside(project(tmp_path / "p", stages))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), pytest.raises(SystemExit) as err:
        parallel_repro.main(["--jobs", "2"])
    assert str(err.value) == "parallel_repro: 1 stage(s) failed: b; run again to finish"
    lines = [line for line in capsys.readouterr().err.splitlines() if "stage b failed" in line]
    assert len(lines) == 1 and "KilledWorker" in lines[0]
    assert not (root / "d.txt").exists()  # downstream of the failure: not run
    assert {"a", "c", "e"} <= set(yaml.safe_load((root / "dvc.lock").read_text())["stages"])
    parallel_repro.main(["--jobs", "2"])
    assert parallel_repro.plan(root) == []
    assert (root / "d.txt").read_text() == "ab" + "ac" + "d"


def test_records_in_batches_as_stages_finish_give_the_serial_lock(tmp_path, inside):
    """Recording after every stage (``--record-every 0``): e, alone, finishes while a's
    successors still run, so its entry is appended out of plan order until the end puts the
    new entries in the order serial `dvc repro` appends them."""
    serial, parallel = project(tmp_path / "serial"), project(tmp_path / "parallel")
    sh([sys.executable, "-m", "dvc", "repro"], serial)
    inside(parallel)
    parallel_repro.main(["--jobs", "2", "--record-every", "0"])
    assert (parallel / "dvc.lock").read_text() == (serial / "dvc.lock").read_text()
    assert parallel_repro.plan(parallel) == []


def test_an_interrupted_build_keeps_what_finished_and_the_next_build_does_the_rest(tmp_path, inside, monkeypatch):
    """Ctrl-C (or any error in this process) once a has finished: a is in dvc.lock, so the
    next build does not run it again, and ends with the serial lock's entries."""
    serial, parallel = project(tmp_path / "serial"), project(tmp_path / "parallel")
    sh([sys.executable, "-m", "dvc", "repro"], serial)
    inside(parallel)
    refresh, pressed = parallel_repro.Board.refresh, []

    def interrupted(self, running):
        if not pressed and (parallel / "a.txt").exists() and "a" not in running:
            pressed.append(True)
            raise KeyboardInterrupt
        refresh(self, running)

    monkeypatch.setattr(parallel_repro.Board, "refresh", interrupted)
    with pytest.raises(SystemExit) as stopped:
        parallel_repro.main(["--jobs", "1"])
    assert stopped.value.code == 130
    assert "a" in yaml.safe_load((parallel / "dvc.lock").read_text())["stages"]
    assert "a" not in parallel_repro.plan(parallel)
    monkeypatch.setattr(parallel_repro.Board, "refresh", refresh)
    parallel_repro.main(["--jobs", "2"])
    # the same entries; their order is that of recording, as serial `dvc repro` appends them
    # after an interruption too
    assert yaml.safe_load((parallel / "dvc.lock").read_text()) == yaml.safe_load((serial / "dvc.lock").read_text())
    assert parallel_repro.plan(parallel) == []


def wait_for_both_stages(root: Path, builder: subprocess.Popen, seconds: float = 300) -> None:
    """Wait until the slow stage started and the quick one finished, so that Ctrl-C lands on a
    running build. The builder's start (DVC, Dask, the cost gate's imports) can take minutes on a
    loaded core; past ``seconds`` the builder is killed and the test fails saying so."""
    deadline = time.monotonic() + seconds
    while not ((root / "started").exists() and (root / "quick.txt").exists()):
        if time.monotonic() > deadline or builder.poll() is not None:
            if builder.poll() is None:
                os.killpg(builder.pid, signal.SIGKILL)
            out, _ = builder.communicate(timeout=60)
            pytest.fail(f"the builder ended, or had not run both stages in {seconds:.0f} s:\n{out}")
        time.sleep(0.2)


def test_ctrl_c_ends_the_running_stages_records_what_finished_and_leaves_no_process(tmp_path):
    """Ctrl-C at a terminal signals the builder's whole process group (its Dask workers too):
    no new stage starts, the running one is ended (SIGTERM), what finished is recorded, the
    builder exits in seconds with 130, and no stage process is left behind."""
    sleeper = "import time, pathlib; pathlib.Path('started').touch(); time.sleep(120); pathlib.Path('slow.txt').touch()"
    stages = {
        "slow": {"cmd": f'python -c "{sleeper}"', "outs": ["slow.txt"]},
        "quick": {"cmd": f"{WRITE} q quick.txt", "outs": ["quick.txt"]},
        "after": {"cmd": f"{WRITE} a after.txt quick.txt", "deps": ["quick.txt", "slow.txt"], "outs": ["after.txt"]},
    }
    root = project(tmp_path / "p", stages)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    builder = subprocess.Popen(
        [sys.executable, "-m", "pipeline.runtime.parallel_repro", "--jobs", "2"], cwd=root, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a shell's foreground job
    )  # fmt: skip
    wait_for_both_stages(root, builder)
    os.killpg(builder.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    stopped_at = time.monotonic()
    out, _ = builder.communicate(timeout=60)
    assert builder.returncode == 130, out
    assert time.monotonic() - stopped_at < 30
    assert "stopping: no new stage starts; ending slow" in out and "stage slow stopped" in out
    # the builder's last word; on a loaded machine Dask's nanny may still log its workers' shutdown after it
    _, said, after = out.partition("run the same command to go on")
    assert said and all("distributed." in line for line in after.strip().splitlines()), out
    assert set(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == {"quick"}
    assert not (root / "slow.txt").exists() and not (root / "after.txt").exists()
    left = subprocess.run(["pgrep", "-f", "time.sleep\\(120\\)"], capture_output=True, text=True).stdout.split()
    assert left == []


def test_ctrl_c_ends_a_warm_stage_and_its_warm_process_leaves_none_behind(tmp_path):
    """The same with a `python -m` stage, which a worker forks from its warm process
    (pipeline/runtime/warm_stages.py): the forked stage is ended by its process group, and no
    process of the build (stage, warm process, worker) is left in the project's folder."""
    stages = {
        "slow": {"cmd": "python -m sleeper", "outs": ["slow.txt"]},
        "quick": {"cmd": f"{WRITE} q quick.txt", "outs": ["quick.txt"]},
    }
    root = project(tmp_path / "p", stages)
    (root / "sleeper.py").write_text(
        "import os, pathlib, time\npathlib.Path('started').write_text(str(os.getpid()))\n"
        "time.sleep(120)\npathlib.Path('slow.txt').touch()\n"
    )
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    builder = subprocess.Popen(
        [sys.executable, "-m", "pipeline.runtime.parallel_repro", "--jobs", "2", "--warm"], cwd=root, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    wait_for_both_stages(root, builder)
    stage_pid = int((root / "started").read_text())
    assert Path(f"/proc/{stage_pid}/cmdline").read_bytes().split(b"\0")[2] == b"pipeline.runtime.warm_stages"  # forked
    os.killpg(builder.pid, signal.SIGINT)
    out, _ = builder.communicate(timeout=60)
    assert builder.returncode == 130, out
    assert "stage slow stopped" in out
    assert not (root / "slow.txt").exists()

    def in_project() -> list[int]:
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if Path(os.readlink(proc / "cwd")) == root:
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    deadline = time.monotonic() + 20  # the warm process ends when its worker's pipe closes
    while in_project() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert in_project() == []
