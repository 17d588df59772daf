"""IAC's one-step games: the 3x3 matrix game (§3 Table 1) and Simple World (§5.1)."""

from __future__ import annotations

import numpy as np
import pytest

import envs

TABLE_1 = [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]


def _play(env, a0, a1):
    obs, _ = env.reset(seed=0)
    assert all(np.array_equal(o, [1.0]) for o in obs.values())  # constant observation
    assert np.array_equal(env.state(), [1.0])
    _, rew, term, trunc, _ = env.step({"agent_0": a0, "agent_1": a1})
    assert all(term.values()) and not any(trunc.values()) and env.agents == []
    assert rew["agent_0"] == rew["agent_1"]
    return rew["agent_0"]


@pytest.mark.parametrize("u1", range(3))
@pytest.mark.parametrize("u2", range(3))
def test_matrix_payoffs_are_table_1(u1, u2):
    env = envs.make("matrix_game")
    assert env.action_space("agent_0").n == 3
    assert _play(env, u1, u2) == TABLE_1[u1][u2]


def _world(a0, a1, **kwargs):
    env = envs.make("simple_world", **kwargs)
    return _play(env, np.array([a0], np.float32), np.array([a1], np.float32))


def test_simple_world_rewards_at_4_3_and_punishes_at_minus_6():
    far_tail = -10 * np.exp(-(10**2 + 9**2) / (2 * 2))  # the other bump's value at [4, 3]
    assert _world(4.0, 3.0) == pytest.approx(10 + far_tail, abs=1e-9)
    assert _world(4.0, 3.0) > 9.999
    assert _world(-6.0, -6.0) == pytest.approx(-10 + 10 * np.exp(-(10**2 + 9**2) / (2 * 5)))
    assert _world(-6.0, -6.0) < -9.99


def test_simple_world_bump_widths_are_the_variances():
    # One standard deviation from each mean along one axis: height * exp(-1/2).
    assert _world(4.0 + np.sqrt(5.0), 3.0) == pytest.approx(10 * np.exp(-0.5), abs=1e-6)
    assert _world(-6.0, -6.0 - np.sqrt(2.0)) == pytest.approx(-10 * np.exp(-0.5), abs=1e-6)
    assert abs(_world(-1.0, 10.0)) < 0.1  # far from both bumps: nothing


def test_simple_world_actions_are_bounded_and_clipped():
    env = envs.make("simple_world")
    space = env.action_space("agent_0")
    assert space.shape == (1,) and space.low[0] == -10 and space.high[0] == 10
    assert _world(40.0, -40.0) == _world(10.0, -10.0)
