"""Cooperative navigation's reward as the original MPE gives it (envs/cooperative_navigation.py):
every agent receives the sum over agents of -sum_l min_a dist(a, l) - collisions, where an
agent always collides with itself; mpe2's reward stays selectable."""

from __future__ import annotations

import numpy as np
import pytest

import envs

STILL = np.zeros(5, np.float32)


def placed(**kwargs):
    env = envs.make("cooperative_navigation", physics="mpe2", **kwargs)  # positions stay put
    env.reset(seed=0)
    world = env.unwrapped.world
    # Agents at (0,0), (0.2,0), (2,0); landmarks at (0,1), (2,1), (-1,0). Agent size 0.15:
    # agents 0 and 1 overlap (0.2 < 0.3); agent 2 touches no one.
    for entity, xy in zip(
        world.agents + world.landmarks, [(0, 0), (0.2, 0), (2, 0), (0, 1), (2, 1), (-1, 0)]
    ):
        entity.state.p_pos = np.array(xy, float)
        entity.state.p_vel = np.zeros(2)
    return env


def test_every_agent_gets_the_sum_of_the_original_rewards():
    env = placed()
    _, rewards, *_ = env.step({a: STILL for a in env.agents})
    distances = 1.0 + 1.0 + 1.0  # each landmark's nearest agent is 1 away
    collisions = [2, 2, 1]  # agent 0: itself and agent 1; agent 1 likewise; agent 2: itself
    want = sum(-distances - c for c in collisions)  # 3 * -3 - 5 = -14
    assert want == -14.0
    assert all(r == pytest.approx(want) for r in rewards.values())


def test_mpe2_reward_is_still_selectable():
    env = placed(reward="mpe2", local_ratio=0.5)
    _, rewards, *_ = env.step({a: STILL for a in env.agents})
    # mpe2: 0.5 * (-3) + 0.5 * (-(collisions with others))
    assert rewards["agent_0"] == pytest.approx(0.5 * -3.0 + 0.5 * -1.0)
    assert rewards["agent_2"] == pytest.approx(0.5 * -3.0)


def test_local_ratio_only_goes_with_the_mpe2_reward():
    with pytest.raises(ValueError, match="local_ratio applies to reward 'mpe2' only"):
        envs.make("cooperative_navigation", local_ratio=0.5)
