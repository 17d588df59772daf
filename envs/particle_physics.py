"""Particle physics as both papers ran it: the original MPE's integration order and action range.

The original multi-agent particle environment (openai/multiagent-particle-envs, which MADDPG, the
VM3-AC paper [16] and IAC's official code ran) integrates a step as: damp the velocity, add
force / mass * dt, clip the speed to max_speed, and only then move the position with the *new*
velocity. mpe2 moves the position with the *old* velocity first. From the same state and forces
the two differ from the first step on, so every particle task takes a ``physics`` setting:
``"original"`` (the default, the papers' physics) or ``"mpe2"`` (mpe2's own order, unchanged).
Both act on mpe2's own world and scenarios: only the world's ``integrate_state`` is swapped.

Action to force: the original MPE (``multiagent/environment.py`` ``_set_action``) pushes with
(a[1] - a[2], a[3] - a[4]) times the agent's acceleration; mpe2 reversed both signs, (a[2] - a[1],
a[4] - a[3]). ``physics: original`` restores the original mapping, so the same action vector
gives the same force as the code both papers ran (learning is unaffected: a policy can learn
either sign).

Action range: mpe2's continuous actions are Box(0, 1, (5,)), so a force per axis spans [-1, 1]
accel. IAC's official code sends actions in [-1, 1] to the original MPE, which doubles that
span; ``action_low = -1`` gives its range.
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


# mpe2's _set_action reads u = (a[2] - a[1], a[4] - a[3]); swapping components 1 <-> 2 and
# 3 <-> 4 first makes it the original MPE's u = (a[1] - a[2], a[3] - a[4]).
ORIGINAL_ORDER = [0, 2, 1, 4, 3]


def set_action_original(env, action, agent, action_space, time=None) -> None:
    """mpe2's ``SimpleEnv._set_action`` with the original MPE's force signs (continuous actions;
    the communication part, if any, after the five movement values, is passed unchanged)."""
    if env.continuous_actions and agent.movable:
        movement = np.asarray(action[0])
        action = [np.concatenate([movement[ORIGINAL_ORDER], movement[5:]]), *action[1:]]
    type(env)._set_action(env, action, agent, action_space, time)


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
        base._set_action = types.MethodType(set_action_original, base)
    if action_low != 0.0:
        for name, space in base.action_spaces.items():
            base.action_spaces[name] = spaces.Box(action_low, 1.0, space.shape, space.dtype)
    return env
