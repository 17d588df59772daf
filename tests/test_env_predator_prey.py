"""Capture and sight rules of both predator-prey tasks on constructed states."""

from __future__ import annotations

import numpy as np
import pytest
from mpe2 import simple_tag_v3

import envs

STILL = np.zeros(5, np.float32)  # mpe2 continuous action with no force


def _place(entity, x, y, vel=(0.0, 0.0)):
    entity.state.p_pos = np.array([x, y], float)
    entity.state.p_vel = np.array(vel, float)


# ---------------------------------------------------------------- VM3-AC predator-prey (§6.1)


def _vm3ac(N, **kwargs):
    env = envs.make("vm3ac_predator_prey", N=N, **kwargs)
    env.reset(seed=0)
    world = env.unwrapped.world
    for k, agent in enumerate(world.agents):  # everyone far from every prey, at rest
        _place(agent, -0.9 + 0.3 * k, -0.9)
    for k, prey in enumerate(world.landmarks):
        _place(prey, -0.9 + 0.4 * k, 0.9)
    return env, world


def test_agents_start_at_the_centre():
    env = envs.make("vm3ac_predator_prey", N=4)
    env.reset(seed=1)
    for agent in env.unwrapped.world.agents:
        assert np.all(np.abs(agent.state.p_pos) <= 0.05)


def test_prey_touched_by_one_agent_is_not_caught():
    env, world = _vm3ac(2)
    _place(world.landmarks[0], 0.3, 0.3)
    _place(world.agents[0], 0.3 + 0.12, 0.3)  # 0.12 < 0.075 + 0.05: touching
    _, rew, _, _, _ = env.step({a: STILL for a in env.agents})
    assert rew == {"agent_0": 0.0, "agent_1": 0.0}
    assert np.array_equal(world.landmarks[0].state.p_pos, [0.3, 0.3])


def test_prey_touched_by_two_agents_is_caught_and_reappears():
    env, world = _vm3ac(3)
    _place(world.landmarks[0], 0.3, 0.3)
    _place(world.agents[0], 0.3 + 0.12, 0.3)
    _place(world.agents[1], 0.3, 0.3 - 0.12)
    others = [p.state.p_pos.copy() for p in world.landmarks[1:]]
    _, rew, _, _, _ = env.step({a: STILL for a in env.agents})
    assert rew == {a: 30.0 for a in env.agents}  # shared by all three, catch_reward default
    assert not np.array_equal(world.landmarks[0].state.p_pos, [0.3, 0.3])
    assert np.all(np.abs(world.landmarks[0].state.p_pos) <= 1.0)
    assert all(np.array_equal(p.state.p_pos, q) for p, q in zip(world.landmarks[1:], others))


def test_agent_just_out_of_reach_does_not_count():
    env, world = _vm3ac(2)
    _place(world.landmarks[0], 0.3, 0.3)
    _place(world.agents[0], 0.3 + 0.12, 0.3)
    _place(world.agents[1], 0.3 - 0.13, 0.3)  # 0.13 > 0.125
    _, rew, _, _, _ = env.step({a: STILL for a in env.agents})
    assert rew["agent_0"] == 0.0


def test_two_pairs_catch_two_preys_in_one_step():
    env, world = _vm3ac(4, catch_reward=7.0)
    for k, (x, y) in enumerate([(0.3, 0.3), (-0.3, 0.2)]):
        _place(world.landmarks[k], x, y)
        _place(world.agents[2 * k], x + 0.1, y)
        _place(world.agents[2 * k + 1], x - 0.1, y)
    _, rew, _, _, _ = env.step({a: STILL for a in env.agents})
    assert set(rew.values()) == {14.0}


def test_a_scripted_pair_scores_in_the_hundreds():
    """Calibration guard: VM3-AC Table 1 reports returns of 413 for N=2."""
    env = envs.make("vm3ac_predator_prey", N=2)
    env.reset(seed=0)
    world = env.unwrapped.world
    total = 0.0
    while env.agents:
        mid = np.mean([a.state.p_pos for a in world.agents], axis=0)
        prey = min(world.landmarks, key=lambda p: np.linalg.norm(p.state.p_pos - mid))
        actions = {}
        for agent in world.agents:  # PD control toward the prey, as the original MPE's force
            d = 4 * (prey.state.p_pos - agent.state.p_pos) - 1.2 * agent.state.p_vel  # (a1 - a2, a3 - a4)
            d = d / max(1.0, np.linalg.norm(d))
            actions[agent.name] = np.array(
                [0, max(d[0], 0), max(-d[0], 0), max(d[1], 0), max(-d[1], 0)], np.float32
            )
        _, rew, _, _, _ = env.step(actions)
        total += np.mean(list(rew.values()))
    assert 200 <= total <= 1000


# ------------------------------------------------------------ IAC predator-prey (§5.1)


def _iac(task="iac_predator_prey", **kwargs):
    env = envs.make(task, **kwargs)
    env.reset(seed=0)
    world = env.unwrapped.world
    for k, entity in enumerate(world.agents + world.landmarks):
        _place(entity, -0.9 + 0.6 * k, 0.9 * (-1) ** k)
    return env, world


def test_only_predators_are_agents_with_simple_tag_sizes():
    env, world = _iac()
    assert env.possible_agents == ["adversary_0", "adversary_1", "adversary_2"]
    preds, prey = world.agents[:3], world.agents[3]
    assert [(p.size, p.accel, p.max_speed) for p in preds] == [(0.075, 3.0, 1.0)] * 3
    assert (prey.size, prey.accel, prey.max_speed) == (0.05, 4.0, 1.3)
    assert [lm.size for lm in world.landmarks] == [0.2, 0.2]
    assert all(not lm.movable for lm in world.landmarks)


def test_reset_is_simple_tags_world():
    """Same seed: the predators see exactly what simple_tag's adversaries see at reset."""
    ours = envs.make("iac_predator_prey")
    tag = simple_tag_v3.parallel_env(continuous_actions=True)
    o1, _ = ours.reset(seed=4)
    o2, _ = tag.reset(seed=4)
    for a in ours.possible_agents:
        assert np.array_equal(o1[a], o2[a])


def test_every_predator_gets_ten_per_contact():
    # mpe2's order moves positions with the old (zero) velocity in the step, so the contacts
    # placed here are the ones judged; the original order would first push them apart.
    env, world = _iac(physics="mpe2")
    prey = world.agents[3]
    _place(prey, 0.0, 0.0)
    _place(world.agents[0], 0.1, 0.0)  # 0.1 < 0.075 + 0.05
    _, rew, _, _, _ = env.step({a: STILL for a in env.agents})
    assert rew == {a: 10.0 for a in env.agents}
    _place(prey, 0.0, 0.0)
    _place(world.agents[0], 0.1, 0.0)
    _place(world.agents[1], -0.1, 0.0)
    _, rew, _, _, _ = env.step({a: STILL for a in env.agents})
    assert rew == {a: 20.0 for a in env.agents}


def test_prey_walks_at_random_from_the_env_seed():
    def prey_path(seed):
        env = envs.make("iac_predator_prey")
        env.reset(seed=seed)
        path = []
        for _ in range(5):
            env.step({a: STILL for a in env.agents})
            path.append(env.unwrapped.world.agents[3].state.p_pos.copy())
        return np.array(path)

    a, b, c = prey_path(1), prey_path(1), prey_path(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(np.linalg.norm(np.diff(a, axis=0), axis=1) > 0)  # it moves on its own


@pytest.mark.parametrize("task", ["iac_po_predator_prey", "iac_predator_prey"])
def test_sight_radius(task):
    """PO: an entity at 0.79 is seen, one at 0.81 is zeroed (with the prey's velocity)."""
    env, world = _iac(task)
    me, near_pred, far_pred, prey = world.agents
    _place(me, 0.1, 0.1, vel=(0.2, -0.1))
    _place(world.landmarks[0], 0.1 + 0.79, 0.1)
    _place(world.landmarks[1], 0.1 - 0.81, 0.1)
    _place(near_pred, 0.1, 0.1 + 0.79)
    _place(far_pred, 0.1, 0.1 - 0.81)
    _place(prey, 0.1 + 0.79 * np.cos(1.0), 0.1 + 0.79 * np.sin(1.0), vel=(0.3, 0.4))
    obs = env.unwrapped.observe("adversary_0")
    full = task == "iac_predator_prey"
    far = [0.0, 0.0]
    expected = np.concatenate(
        [
            [0.2, -0.1, 0.1, 0.1],  # own velocity and position: always seen
            [0.79, 0.0],
            [-0.81, 0.0] if full else far,  # landmarks
            [0.0, 0.79],
            [0.0, -0.81] if full else far,  # other predators
            [0.79 * np.cos(1.0), 0.79 * np.sin(1.0)],
            [0.3, 0.4],  # prey position, velocity
        ]
    ).astype(np.float32)
    np.testing.assert_allclose(obs, expected, atol=1e-6)
    _place(prey, 0.1 - 0.81 * np.cos(1.0), 0.1 - 0.81 * np.sin(1.0), vel=(0.3, 0.4))
    obs = env.unwrapped.observe("adversary_0")
    if full:
        np.testing.assert_allclose(obs[-2:], [0.3, 0.4], atol=1e-6)
    else:
        assert np.all(obs[-4:] == 0.0)
