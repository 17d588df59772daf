"""Checks shared by every algorithm's settings: a bad value raises ValueError naming the field."""

from __future__ import annotations

from dataclasses import dataclass, fields


def check(ok: bool, field: str, problem: str, value) -> None:
    if not ok:
        raise ValueError(f"{field}: {problem}, got {value!r}")


def check_positive(settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        check(isinstance(value, (int, float)) and value > 0, name, "must be > 0", value)


def check_integer(settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        check(
            isinstance(value, int) and not isinstance(value, bool),
            name,
            "must be an integer",
            value,
        )


@dataclass(frozen=True)
class OffPolicySchedule:
    """When an off-policy learner updates; read by the training loop (pipeline/rollout.py)."""

    batch_size: int
    replay_size: int  # transitions kept per seed
    learning_starts: int  # env steps per seed before the first update
    update_every: int  # env steps between update phases
    gradient_steps: int  # gradient steps per update phase

    def __post_init__(self):
        names = [f.name for f in fields(OffPolicySchedule)]
        check_integer(self, *names)
        check_positive(self, "batch_size", "replay_size", "update_every", "gradient_steps")
        check(self.learning_starts >= 0, "learning_starts", "must be >= 0", self.learning_starts)
