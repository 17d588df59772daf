"""The default pipeline built by plain `dvc repro` (`make repro-dvc`) and by the harness's
builder (`make repro`: Dask, JOBS stages at once, warm stage processes), same commit, same
machine, one after the other: wall times, their ratio, and whether the two builds recorded the
same dvc.lock.

    python -m benchmarks.parallel_build [--jobs 2] [--keep]

Each build runs in its own fresh clone of HEAD (set-up done and not timed), so neither reuses
the other's outputs or DVC cache. It takes as long as two full builds (about 50 minutes each on
2 cores at the smoke profile): run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(clone: Path, target: list[str]) -> float:
    """Seconds of ``make <target>`` in ``clone`` (set-up before the clock starts)."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["make", "setup"], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    start = time.monotonic()
    subprocess.run(["make", *target], cwd=clone, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the two clones")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="parallel-build-"))
    try:
        serial = build(root / "serial", ["repro-dvc"])
        print(f"make repro-dvc (dvc repro): {serial / 60:6.1f} min", flush=True)
        parallel = build(root / "parallel", ["repro", f"JOBS={args.jobs}"])
        print(f"make repro JOBS={args.jobs}:         {parallel / 60:6.1f} min   ({serial / parallel:.2f}x)")
        same = (root / "serial/dvc.lock").read_bytes() == (root / "parallel/dvc.lock").read_bytes()
        print(f"same dvc.lock: {same}")
    finally:
        if args.keep:
            print(f"clones kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
