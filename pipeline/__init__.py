"""The DVC pipeline's stages and what they run, one subpackage per concern.

outputs/ and statistics/ at the bottom; design/ (params.yaml to runs and dvc.yaml) above
outputs/; runtime/ (running a training or evaluation) above design/; analyses/ (each paper's
own tables and figures) and stages/ (train, evaluate, aggregate, figures, report) on top;
report/ (claims, page, bundle) reads design/, outputs/ and statistics/ only, never training.
Each subpackage's docstring says what it may import; tests/test_layout.py holds every arrow.

Importing this package fixes the process's numeric environment before torch, MKL or oneDNN
start (``python -m pipeline.<concern>.<stage>`` runs this first), so every stage and benchmark
computes alike (README, "Speed and reproducibility"):

- the kernels: torch's vectorised kernels, MKL and oneDNN take their AVX2 code paths, whatever
  the CPU offers beyond AVX2, so any x86-64 CPU with AVX2 gives the same bits. Left to
  themselves they pick per CPU (AVX-512 here, and MKL another path on Intel than on AMD), which
  changed learning curves between two machines. ``HARNESS_NATIVE_KERNELS=1`` lifts the pin.
- the threads: ``HARNESS_THREADS``, else the usable cores divided by the stages running at once
  (``HARNESS_JOBS``, which the Dask builder sets; 1 otherwise). torch's own default (every
  core) makes a stage of small networks many times slower on a machine that is busy.
"""

import os

KERNEL_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def stage_threads() -> int:
    """The threads a stage computes with (the module docstring says how they are chosen)."""
    given = os.environ.get("HARNESS_THREADS")
    if given:
        if not given.isdigit() or int(given) < 1:
            raise SystemExit(f"HARNESS_THREADS: must be an integer >= 1, got {given!r}")
        return int(given)
    jobs = os.environ.get("HARNESS_JOBS") or "1"
    if not jobs.isdigit() or int(jobs) < 1:
        raise SystemExit(f"HARNESS_JOBS: must be an integer >= 1, got {jobs!r}")
    return max(1, len(os.sched_getaffinity(0)) // int(jobs))


if os.environ.get("HARNESS_NATIVE_KERNELS") != "1":
    os.environ.update(KERNEL_PINS)
os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(stage_threads())))
