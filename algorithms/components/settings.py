"""Settings shared by every learner: value checks that name the field, and the update schedule
the training loop reads (``Schedule``)."""

from __future__ import annotations

from dataclasses import dataclass


def check(ok: bool, field: str, problem: str, value) -> None:
    if not ok:
        raise ValueError(f"{field}: {problem}, got {value!r}")


def check_positive(settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        check(
            isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
            name,
            "must be > 0",
            value,
        )


def check_integer(settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        check(
            isinstance(value, int) and not isinstance(value, bool),
            name,
            "must be an integer",
            value,
        )


def check_unit_interval(settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        check(
            isinstance(value, (int, float)) and 0 <= value <= 1, name, "must be in [0, 1]", value
        )


def check_hidden(settings, name: str = "hidden") -> None:
    value = getattr(settings, name)
    check(
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in value),
        name,
        "must be a non-empty list of positive integers",
        value,
    )


@dataclass(frozen=True)
class Schedule:
    """When a learner updates, read by the training loop (pipeline/runtime/loops.py).

    An update phase starts every ``update_every`` env steps or finished episodes
    (``update_unit``) of a seed, once the seed has taken ``learning_starts`` env steps; it runs
    ``gradient_steps`` gradient steps, or that many per env step the seed took since its last
    phase (``gradient_steps_per: env_step``: SAC's one step per env step, done after each
    episode as VM3-AC's Algorithm 1 does, whatever the episode's length).
    """

    batch_size: int  # transitions (or episodes, for episode replay) per seed per gradient step
    replay_size: int  # transitions (or episodes) kept per seed
    learning_starts: int  # env steps per seed before the first update
    update_every: int
    update_unit: str  # "step" | "episode"
    gradient_steps: int
    gradient_steps_per: str  # "phase" | "env_step"
    env_copies: int  # environment copies each seed plays at once

    def __post_init__(self):
        names = ["batch_size", "replay_size", "learning_starts", "update_every"]
        check_integer(self, *names, "gradient_steps", "env_copies")
        check_positive(self, "batch_size", "replay_size", "update_every", "gradient_steps")
        check_positive(self, "env_copies")
        check(self.learning_starts >= 0, "learning_starts", "must be >= 0", self.learning_starts)
        check(
            self.update_unit in ("step", "episode"),
            "update_unit",
            "must be 'step' or 'episode'",
            self.update_unit,
        )
        check(
            self.gradient_steps_per in ("phase", "env_step"),
            "gradient_steps_per",
            "must be 'phase' or 'env_step'",
            self.gradient_steps_per,
        )


def linear_schedule(start: float, finish: float, anneal_steps: int, t):
    """PyMARL's DecayThenFlatSchedule (linear) per seed: max(finish, start - (start - finish)
    t / anneal_steps) for ``t`` (``[S]`` env steps), as float32 ``[S]`` (a rising schedule,
    finish > start, is capped at finish alike)."""
    progress = t.double() / anneal_steps
    value = start - (start - finish) * progress
    return (value.clamp(min=finish) if finish <= start else value.clamp(max=finish)).float()
