"""Every task of both papers as a PettingZoo ParallelEnv, plus one batched wrapper.

No learning code lives here (ARCHITECTURE.md): ``envs`` never imports ``algorithms``.
"""

from envs.batched import BatchedEnv, Step
from envs.registry import TASKS, make, make_batched
from envs.spec import EnvSpec

__all__ = ["TASKS", "BatchedEnv", "EnvSpec", "Step", "make", "make_batched"]
