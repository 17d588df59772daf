"""A run is refused against its cgroup's memory limit (a SLURM job, a container), not only the
machine's free memory (pipeline/runtime/memory.py). The cgroup trees here are written by the test."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from pipeline.runtime import memory

GIB = 2**30


def write(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (folder / name.replace("_", ".", 1)).write_text(f"{value}\n")


def test_v2_takes_the_tightest_limit_of_the_job_and_its_parents(tmp_path):
    root = tmp_path / "cgroup"
    write(root, cgroup_controllers="memory")
    write(root / "slurm", memory_max=64 * GIB, memory_current=10 * GIB)  # 54 GiB left
    write(root / "slurm/job_7", memory_max=16 * GIB, memory_current=3 * GIB)  # 13 GiB left
    write(root / "slurm/job_7/step_0", memory_max="max", memory_current=2 * GIB)
    proc = tmp_path / "self_cgroup"
    proc.write_text("0::/slurm/job_7/step_0\n")
    assert memory.cgroup_headroom(root, proc) == 13 * GIB


def test_v1_reads_the_memory_controller_and_ignores_its_no_limit_value(tmp_path):
    root = tmp_path / "cgroup"
    write(root / "memory", memory_limit_in_bytes=9223372036854771712, memory_usage_in_bytes=GIB)
    write(root / "memory/job", memory_limit_in_bytes=8 * GIB, memory_usage_in_bytes=GIB)
    proc = tmp_path / "self_cgroup"
    proc.write_text("4:memory:/job\n3:cpuset:/\n0::/\n")
    assert memory.cgroup_headroom(root, proc) == 7 * GIB
    write(root / "memory/job", memory_limit_in_bytes=9223372036854771712)
    assert memory.cgroup_headroom(root, proc) is None  # no limit anywhere


def test_a_container_sees_its_own_cgroup_as_the_root(tmp_path):
    root = tmp_path / "cgroup"
    write(root, cgroup_controllers="memory", memory_max=4 * GIB, memory_current=GIB)
    proc = tmp_path / "self_cgroup"
    proc.write_text("0::/docker/abc\n")  # a path the container's mount does not show
    assert memory.cgroup_headroom(root, proc) == 3 * GIB


def test_the_refusal_names_the_cgroup_limit_when_it_is_the_tighter(monkeypatch):
    monkeypatch.setattr(memory.psutil, "virtual_memory", lambda: SimpleNamespace(available=20 * GIB))
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: 5 * GIB)
    assert memory.available_memory(torch.device("cpu")) == (5 * GIB, "memory under this cgroup's limit")
    monkeypatch.setattr(memory, "cgroup_headroom", lambda: None)
    assert memory.available_memory(torch.device("cpu")) == (20 * GIB, "memory")
