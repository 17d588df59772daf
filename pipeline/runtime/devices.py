"""Where a train stage places its tensors (params.yaml ``device``).

On a GPU every tensor a learner, its replay storage and the loop make goes there through
torch's default device, so no algorithm names a device. What stays on the CPU, and why:
- the per-seed generators draw on the CPU and their numbers are moved (algorithms/components/seeding.py),
  so a seed's random streams are the same numbers on every device;
- the environments speak NumPy: the loop moves their arrays in and the actions out
  (pipeline/runtime/loops.py);
- checkpoints are saved from CPU copies, so the evaluate stage (always on the CPU) and a
  machine without a GPU read them.
"""

from __future__ import annotations

import os

import torch


def resolve(setting: str) -> torch.device:
    """``auto``: cuda when torch sees a GPU, else cpu. A GPU asked for by name that torch does
    not see stops the stage with one line, before anything is written."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise SystemExit(f"params.yaml: device: {setting}, but torch sees {count} CUDA device(s)")
    return device


def use(device: torch.device) -> None:
    """Make ``device`` this process's default for new tensors. On a GPU, also ask for
    deterministic kernels (cuBLAS needs its workspace setting before its first call), so
    the same params and seeds on the same machine give the same numbers; kernels without a
    deterministic version warn rather than stop the run."""
    if device.type == "cpu":
        return  # torch's default already: the CPU path stays exactly as it was
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_default_device(device)
