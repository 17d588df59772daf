"""Refuse a run that would not fit in this machine's memory, before anything is allocated.

Allocating it anyway gets the process killed by the kernel mid-training (exit 137, no message):
cooperative navigation with N = 100 did so at 23.6 GB. The estimate is what a run holds for its
whole life: the learner's tensors (parameters, target copies, optimiser moments, buffers), one
gradient per trainable parameter, and the replay storage. Activations of an update are left
out: they depend on the batch and are small beside these for the papers' networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psutil
import torch

from algorithms.components.storage import STORAGES, capacity


class TooLarge(Exception):
    """A run that would not fit in the memory available now (refused before training)."""


def _tensor_bytes(obj, seen: set[int]) -> tuple[int, int]:
    """(bytes of every tensor reachable from a learner's attributes, of those that train)."""
    if id(obj) in seen:
        return 0, 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        size = obj.numel() * obj.element_size()
        return size, size if obj.requires_grad else 0
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif isinstance(obj, torch.nn.Module) or type(obj).__module__.startswith("algorithms"):
        # modules (their parameters, buffers, submodules and plain attributes such as
        # optimisers), learners and their parts
        children = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    else:
        return 0, 0
    total = trainable = 0
    for child in children:
        t, g = _tensor_bytes(child, seen)
        total, trainable = total + t, trainable + g
    return total, trainable


def estimate(cls, spec, seeds: Sequence[int], settings, env_steps: int) -> tuple[int, int]:
    """Bytes of (the learner's tensors plus a gradient per trainable parameter, the replay
    storage as ``loops.Training`` allocates it), for all seeds. The learner is built once for
    one seed on torch's meta device (shapes, no memory); every tensor has the seed as its
    leading axis, so the seeds multiply it."""
    with torch.device("meta"):
        one = cls(spec, list(seeds)[:1], settings)
    total, trainable = _tensor_bytes(one, set())
    storage = STORAGES[cls.loop].bytes_needed(
        capacity(settings, env_steps), one.fields(spec), settings.env_copies, spec.episode_limit
    )
    return len(seeds) * (total + trainable), len(seeds) * storage


UNLIMITED = 2**62  # cgroup v1 writes "no limit" as a number near 2**63


def _limits(folder: Path, base: Path, limit_file: str, usage_file: str):
    """(limit, usage) of ``folder`` and each cgroup above it up to ``base``, where set."""
    while True:
        try:
            limit = (folder / limit_file).read_text().strip()
            usage = int((folder / usage_file).read_text())
        except (OSError, ValueError):
            pass
        else:
            if limit != "max" and int(limit) < UNLIMITED:
                yield int(limit), usage
        if folder == base or folder.parent == folder:
            return
        folder = folder.parent


def cgroup_headroom(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes this process's cgroups (v2 or v1) still allow it, the tightest of its own and its
    parents' limits: a SLURM job or a container is killed at its limit, whatever the machine
    has free. None where no limit is set or cgroups cannot be read."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    room = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and (root / "cgroup.controllers").exists():  # v2, unified
            base, files = root, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1
            base, files = root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        folder = base / path.lstrip("/")
        while not folder.is_dir() and folder != base:  # a container sees its own cgroup as the root
            folder = folder.parent
        room += [limit - usage for limit, usage in _limits(folder, base, *files)]
    return min(room) if room else None


def available_memory(device: torch.device) -> tuple[int, str]:
    """Bytes a run may still allocate on ``device`` and what they are called in a message."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], "GPU memory"
    free, headroom = psutil.virtual_memory().available, cgroup_headroom()
    return (free, "memory") if headroom is None or headroom >= free else (headroom, "memory under this cgroup's limit")


def check_fits(cls, spec, seeds: Sequence[int], settings, env_steps: int) -> None:
    """Raise TooLarge, with the estimate and the limit in one line, when the run needs more
    memory than is available now."""
    networks, storage = estimate(cls, spec, seeds, settings, env_steps)
    # the train stage's device (pipeline/runtime/devices.py)
    available, memory = available_memory(torch.get_default_device())
    if networks + storage > available:
        gib = 2**30
        raise TooLarge(
            f"needs about {(networks + storage) / gib:.1f} GiB for {len(seeds)} seeds (networks with targets, "
            f"optimiser moments and gradients {networks / gib:.1f} GiB, replay storage {storage / gib:.1f} GiB) "
            f"and {available / gib:.1f} GiB of {memory} is available: lower the algorithm's network sizes or "
            "replay_size, the profile's seeds or the task's size"
        )
