"""Particle physics as both papers ran it: the original MPE's integration order and action range.

The original multi-agent particle environment (openai/multiagent-particle-envs, which MADDPG, the
VM3-AC paper [16] and IAC's official code ran) integrates a step as: damp the velocity, add
force / mass * dt, clip the speed to max_speed, and only then move the position with the *new*
velocity. mpe2 moves the position with the *old* velocity first. From the same state and forces
the two differ from the first step on, so every particle task takes a ``physics`` setting:
``"original"`` (the default, the papers' physics) or ``"mpe2"`` (mpe2's own order, unchanged).
Both act on mpe2's own world and scenarios: only the world's ``integrate_state`` is swapped.

Action range: mpe2's continuous actions are Box(0, 1, (5,)), so a force per axis (a[2] - a[1],
times the agent's acceleration) spans [-1, 1] accel. IAC's official code sends actions in
[-1, 1] to the original MPE, which doubles that span; ``action_low = -1`` gives its range.
"""

from __future__ import annotations

import types

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

PHYSICS = ("original", "mpe2")


def integrate_original(world, p_force) -> None:
    """The original MPE ``World.integrate_state``: velocity first, then position."""
    for i, entity in enumerate(world.entities):
        if not entity.movable:
            continue
        entity.state.p_vel = entity.state.p_vel * (1 - world.damping)
        if p_force[i] is not None:
            entity.state.p_vel = entity.state.p_vel + (p_force[i] / entity.mass) * world.dt
        if entity.max_speed is not None:
            speed = np.sqrt(np.square(entity.state.p_vel[0]) + np.square(entity.state.p_vel[1]))
            if speed > entity.max_speed:
                entity.state.p_vel = entity.state.p_vel / speed * entity.max_speed
        entity.state.p_pos = entity.state.p_pos + entity.state.p_vel * world.dt


def check_physics(task: str, physics: str) -> None:
    if physics not in PHYSICS:
        raise ValueError(f"{task}: physics must be one of {', '.join(PHYSICS)}, got {physics!r}")


def check_action_low(task: str, action_low: float) -> None:
    if action_low not in (0.0, -1.0):
        raise ValueError(f"{task}: action_low must be 0 (mpe2) or -1 (original MPE), got {action_low!r}")


def with_physics(env: ParallelEnv, physics: str, action_low: float = 0.0) -> ParallelEnv:
    """``env`` (an mpe2 parallel env) integrating with ``physics``, its continuous actions in
    [action_low, 1] (clipped there by mpe2's own out-of-bounds wrapper)."""
    base = env.unwrapped
    if physics == "original":
        base.world.integrate_state = types.MethodType(integrate_original, base.world)
    if action_low != 0.0:
        for name, space in base.action_spaces.items():
            base.action_spaces[name] = spaces.Box(action_low, 1.0, space.shape, space.dtype)
    return env
