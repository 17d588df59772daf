"""The particle tasks integrate as the original MPE both papers ran (envs/particle_physics.py):
velocity first (damping, force / mass * dt, speed clip), then position with the new velocity;
mpe2's own order stays selectable."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.particle_physics import integrate_original

PARTICLE_TASKS = [
    ("cooperative_navigation", {}),
    ("treasure_collection", {}),
    ("vm3ac_predator_prey", {}),
    ("iac_predator_prey", {}),
    ("iac_po_predator_prey", {}),
]


def world_of(task: str, **kwargs):
    env = envs.make(task, **kwargs)
    env.reset(seed=0)
    return env.unwrapped.world


def test_one_original_step_by_hand():
    """Agent 0 of cooperative navigation: mass 1, damping 0.25, dt 0.1, no max speed."""
    world = world_of("cooperative_navigation")
    agent = world.agents[0]
    assert (agent.mass, world.damping, world.dt, agent.max_speed) == (1.0, 0.25, 0.1, None)
    agent.state.p_pos, agent.state.p_vel = np.array([0.2, -0.4]), np.array([1.0, -2.0])
    forces = [None] * len(world.entities)
    forces[0] = np.array([3.0, 5.0])
    world.integrate_state(forces)
    # v' = v (1 - 0.25) + f / 1 * 0.1 = (0.75 + 0.3, -1.5 + 0.5) = (1.05, -1.0)
    np.testing.assert_allclose(agent.state.p_vel, [1.05, -1.0])
    # p' = p + v' * 0.1 (mpe2 would move with the old v: (0.3, -0.6))
    np.testing.assert_allclose(agent.state.p_pos, [0.305, -0.5])


def test_the_speed_is_clipped_before_the_position_moves():
    """A predator (max speed 1.0): v' = (0.75 * 2 + 0.6, 0) = 2.1 clipped to 1.0, then p' = p + 0.1."""
    world = world_of("iac_predator_prey")
    predator = next(a for a in world.agents if a.adversary)
    assert predator.max_speed == 1.0
    predator.state.p_pos, predator.state.p_vel = np.array([0.0, 0.0]), np.array([2.0, 0.0])
    forces = [None] * len(world.entities)
    forces[world.entities.index(predator)] = np.array([6.0, 0.0])
    world.integrate_state(forces)
    np.testing.assert_allclose(predator.state.p_vel, [1.0, 0.0])
    np.testing.assert_allclose(predator.state.p_pos, [0.1, 0.0])


@pytest.mark.parametrize("task,kwargs", PARTICLE_TASKS)
def test_every_particle_task_integrates_as_the_original_by_default(task, kwargs):
    world = world_of(task, **kwargs)
    assert world.integrate_state.__func__ is integrate_original
    mpe2 = world_of(task, physics="mpe2", **kwargs)
    assert not hasattr(mpe2.integrate_state, "__func__") or mpe2.integrate_state.__func__ is not integrate_original


@pytest.mark.parametrize("task,kwargs", PARTICLE_TASKS)
def test_original_and_mpe2_physics_differ_from_the_first_moving_step(task, kwargs):
    """Same seed, same actions: identical first observations, different after two steps (the
    first step gives the agents a velocity that the orders then use differently)."""
    runs = []
    for physics in ("original", "mpe2"):
        env = envs.make(task, physics=physics, **kwargs)
        obs, _ = env.reset(seed=3)
        trajectory = [np.concatenate([obs[a] for a in env.possible_agents])]
        rng = np.random.default_rng(0)
        for _ in range(2):
            actions = {a: rng.uniform(0, 1, 5).astype(np.float32) for a in env.agents}
            obs, *_ = env.step(actions)
            trajectory.append(np.concatenate([obs[a] for a in env.possible_agents]))
        runs.append(trajectory)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert not np.allclose(runs[0][2], runs[1][2])


def test_an_unknown_physics_is_named():
    with pytest.raises(ValueError, match="cooperative_navigation: physics must be one of"):
        envs.make("cooperative_navigation", physics="newton")


def test_iac_actions_span_the_official_codes_minus_one_to_one():
    """IAC's official code on the original MPE: a in [-1, 1]^5, force x = (a1 - a2) accel
    (multiagent/environment.py lines 174-175), up to twice mpe2's. A predator at rest pushed
    with a1 = 1, a2 = -1: force 2 * 3 = 6, v' = 0.6, p' = 0.06."""
    env = envs.make("iac_predator_prey")
    env.reset(seed=0)
    space = env.action_space("adversary_0")
    assert space.low.tolist() == [-1.0] * 5 and space.high.tolist() == [1.0] * 5
    world = env.unwrapped.world
    for k, entity in enumerate(world.entities):  # far apart: no contact forces
        entity.state.p_pos = np.array([-0.9 + 0.6 * k, 0.9 * (-1) ** k])
        entity.state.p_vel = np.zeros(2)
    predator = world.agents[0]
    start = predator.state.p_pos.copy()
    push = np.array([0.0, 1.0, -1.0, 0.0, 0.0], np.float32)
    still = np.zeros(5, np.float32)
    env.step({a: push if a == "adversary_0" else still for a in env.agents})
    np.testing.assert_allclose(predator.state.p_vel, [0.6, 0.0], atol=1e-12)
    np.testing.assert_allclose(predator.state.p_pos - start, [0.06, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="action_low must be 0"):
        envs.make("iac_predator_prey", action_low=-2.0)


@pytest.mark.parametrize("task,kwargs", PARTICLE_TASKS)
def test_the_same_action_gives_the_original_mpes_force(task, kwargs):
    """The original MPE pushes with (a1 - a2, a3 - a4) * accel; mpe2 with the opposite signs.
    An agent's force for a = (0, 1, 0, 0, 1): (+1, -1) * accel with the original physics,
    (-1, +1) * accel with mpe2's."""
    for physics, sign in (("original", 1.0), ("mpe2", -1.0)):
        env = envs.make(task, physics=physics, **kwargs)
        env.reset(seed=0)
        base = env.unwrapped
        agent = base.world.agents[0]
        name = env.agents[0]
        action = np.zeros(env.action_space(name).shape, np.float32)
        action[1], action[4] = 1.0, 1.0
        base._set_action([action], agent, env.action_space(name))
        accel = agent.accel if agent.accel is not None else 5.0  # mpe2's default sensitivity
        np.testing.assert_allclose(agent.action.u, sign * np.array([1.0, -1.0]) * accel, atol=1e-6)
