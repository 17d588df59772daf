"""The Dask build on a real SLURM: Debian's single-node slurmctld, slurmd and munge, started in
a temporary folder. Two runs are built through dask-jobqueue's SLURMCluster; once the long run
has saved its first resume point, its job's time limit is set to what it has used
(`scontrol update TimeLimit=0`), so SLURM ends it as at any walltime (SIGTERM to every process
of the job, "CANCELLED ... DUE TO TIME LIMIT"). The builder submits the stage again, a new job
goes on from the resume point, and the run ends with the bytes of a build that was never
interrupted. Skipped, saying why, where the packages are not installed (`.ci/run` installs them
where apt can)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_pipeline_end_to_end import sh
from test_resume_dvc import probe_outputs, repo

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
LONG_STEPS = 6000  # the probe's env steps: its job is ended at its first resume point, at 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster of this machine; yields the environment that reaches it."""
    missing = [name for name in DAEMONS if not shutil.which(name, path=f"/usr/sbin:/usr/bin:{os.environ['PATH']}")]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge")
    root = tmp_path_factory.mktemp("slurm")
    for folder in ("state", "spool", "log", "munge"):
        (root / folder).mkdir()
    key = root / "munge/munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (root / "munge").chmod(0o700)
    sbin = "/usr/sbin"
    sock = root / "munge/sock"
    subprocess.run([f"{sbin}/munged", "--force", f"--key-file={key}", f"--socket={sock}",
                    f"--pid-file={root}/munge/pid", f"--log-file={root}/munge/log", f"--seed-file={root}/munge/seed"],
                   check=True)  # fmt: skip
    host, user = socket.gethostname(), getpass.getuser()
    cpus = len(os.sched_getaffinity(0))
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=harness", f"SlurmctldHost={host}", f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        f"SlurmUser={user}", f"SlurmdUser={user}", "AuthType=auth/munge", f"AuthInfo=socket={sock}",
        "CredType=cred/munge", f"StateSaveLocation={root}/state", f"SlurmdSpoolDir={root}/spool",
        f"SlurmctldPidFile={root}/slurmctld.pid", f"SlurmdPidFile={root}/slurmd.pid",
        f"SlurmctldLogFile={root}/log/slurmctld.log", f"SlurmdLogFile={root}/log/slurmd.log",
        # linuxproc follows every descendant of a job, so the time limit's SIGTERM reaches a
        # stage that runs in a session of its own (parallel_repro.run_stage), as cgroups do
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "SchedulerType=sched/builtin",
        "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
        "MpiDefault=none", "ReturnToService=2", "KillWait=30", "OverTimeLimit=0", "InactiveLimit=0",
        f"NodeName={host} CPUs={cpus} RealMemory=8000 State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", "",
    ]))  # fmt: skip
    env = dict(os.environ, SLURM_CONF=str(conf))
    for daemon in ("slurmctld", "slurmd"):
        subprocess.run([f"{sbin}/{daemon}", "-c"], env=env, check=True)
    deadline = time.monotonic() + 60
    while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, (root / "log/slurmd.log").read_text()[-2000:]
        time.sleep(1)
    try:
        yield env, root
    finally:
        subprocess.run(["scancel", "--user", user], env=env)
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/pid"):
            path = root / pid_file
            if path.exists():
                try:
                    os.kill(int(path.read_text().split()[0]), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass


def two_runs(root: Path) -> tuple[Path, dict]:
    """The small design's probe (MA-AC on CN, N=3), long, and a short second run."""
    root, env = repo(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["runs"]["quick"] = {"algorithm": "maddpg", "task": "predator_prey_n2"}
    smoke = params["profiles"]["smoke"]
    smoke.update(env_steps=50, curve_interval=25)  # the quick run's
    smoke["tasks"] = {"cooperative_navigation_n3": {"env_steps": LONG_STEPS, "curve_interval": LONG_STEPS // 4}}
    params["resume"]["every_env_steps"]["smoke"] = 500
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh([sys.executable, "-m", "pipeline.design.dvc_stages"], root)
    return root, dict(env, HARNESS_THREADS="1")


def test_a_run_longer_than_its_jobs_walltime_finishes_over_resubmitted_jobs(tmp_path, slurm):
    slurm_env, slurm_root = slurm
    targets = ["evaluate-probe", "train-quick"]
    reference, env = two_runs(tmp_path / "reference")
    # the uninterrupted build, on this machine, beside the cluster's single job
    serial = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "evaluate-probe"], cwd=reference, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip

    root, env = two_runs(tmp_path / "cluster")
    (root / "cluster.yaml").write_text(yaml.safe_dump({
        "kind": "slurm", "jobs": 1, "cores": 1, "processes": 1, "memory": "4GB", "walltime": "00:20:00",
        "queue": "debug", "log_directory": str(root / "jobs"),
        "job_script_prologue": [f"export PATH={Path(sys.executable).parent}:$PATH"],
        "python": sys.executable,
    }))  # fmt: skip
    build = subprocess.Popen([sys.executable, "-m", "pipeline.runtime.parallel_repro", "--jobqueue", "cluster.yaml",
                              *targets], cwd=root, env=dict(env, **slurm_env), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while not list((root / ".resume/probe").glob("*.pkl")):
        assert build.poll() is None, build.stdout.read()[-4000:]
        assert time.monotonic() < deadline, "no resume point in 10 minutes"
        time.sleep(0.2)
    jobs = subprocess.run(["squeue", "-h", "-o", "%i"], env=slurm_env, capture_output=True, text=True).stdout.split()
    assert len(jobs) == 1, jobs
    subprocess.run(["scontrol", "update", f"JobId={jobs[0]}", "TimeLimit=0"], env=slurm_env, check=True)
    log, _ = build.communicate(timeout=900)
    (tmp_path / "build.log").write_text(log)  # what the user saw
    assert build.returncode == 0, log[-4000:]
    # Dask's retry on a new job (the lost worker), or this builder's resubmission (the stage's
    # own exit 143 came back first): both say so
    said = ("parallel_repro: stage train-probe started again on another worker", "stage train-probe was ended by a signal")
    assert any(line in log for line in said), log[-4000:]
    # a stage that had finished on the lost worker is not run again (its result is released)
    assert "stage code-digests started again" not in log and "stage train-quick started again" not in log, log
    # the stage's own log says where it went on from (the last job's)
    stage_log = (root / ".dvc/tmp/parallel/train-probe.log").read_text()
    assert "resume: probe goes on from env step " in stage_log, stage_log[-2000:]
    assert "DUE TO TIME LIMIT" in "".join(p.read_text() for p in (root / "jobs").glob("*.err"))

    out, _ = serial.communicate(timeout=900)
    assert serial.returncode == 0, out[-4000:]
    assert probe_outputs(root) == probe_outputs(reference)
    assert (root / "results/runs/quick/curves.csv").exists()
    assert not (root / ".resume").exists() and not (root / ".staging").exists()
    locked = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    expected = yaml.safe_load((reference / "dvc.lock").read_text())["stages"]
    for stage in ("train-probe", "evaluate-probe"):
        assert locked[stage] == expected[stage]
