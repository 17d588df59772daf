"""The numeric environment every stage starts in (pipeline/__init__.py): torch's kernels pinned to
their AVX2 paths, and the thread budget from HARNESS_THREADS or the cores per running stage."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

PROBE = (
    "import pipeline.stages.train, torch, os\n"
    "print(torch.get_num_threads(), torch.backends.cpu.get_cpu_capability(), os.environ.get('MKL_CBWR'))\n"
)


def probe(**env) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "OMP_", "MKL_", "ATEN_", "ONEDNN_"))}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env={**clean, **env}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_stage_computes_on_the_avx2_kernels_with_the_cores_it_is_given():
    cores = len(os.sched_getaffinity(0))
    assert probe() == [str(cores), "AVX2", "AVX2,STRICT"]
    assert probe(HARNESS_THREADS="1") == ["1", "AVX2", "AVX2,STRICT"]
    assert probe(HARNESS_JOBS=str(cores))[0] == "1"  # the Dask build's share of the cores
    assert probe(ATEN_CPU_CAPABILITY="default")[1] == "AVX2"  # the pin wins over a stray setting


def test_native_kernels_only_when_asked():
    native = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"},
    ).stdout.strip()  # fmt: skip
    assert probe(HARNESS_NATIVE_KERNELS="1")[1] == native


@pytest.mark.parametrize("variable", ["HARNESS_THREADS", "HARNESS_JOBS"])
@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_thread_or_job_count_stops_in_one_line(variable, value):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    done = subprocess.run([sys.executable, "-c", "import pipeline"], cwd=REPO, capture_output=True, text=True,
                          env={**clean, variable: value})  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == f"{variable}: must be an integer >= 1, got {value!r}"
