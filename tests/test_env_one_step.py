"""IAC's one-step games: the 3x3 matrix game (§3 Table 1) and Simple World (§5.1)."""

from __future__ import annotations

import numpy as np
import pytest

import envs

TABLE_1 = [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]]


def _play(env, a0, a1, observed=([1.0], [1.0])):
    """One episode; every observation is ``observed`` (per agent) and the state [1.0]."""
    obs, _ = env.reset(seed=0)
    assert all(np.array_equal(obs[a], o) for a, o in zip(("agent_0", "agent_1"), observed))
    assert np.array_equal(env.state(), [1.0])
    last, rew, term, trunc, _ = env.step({"agent_0": a0, "agent_1": a1})
    assert all(np.array_equal(last[a], o) for a, o in zip(("agent_0", "agent_1"), observed))
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
    # each agent observes its own index (a network shared by the agents must tell them apart)
    return _play(env, np.array([a0], np.float32), np.array([a1], np.float32), ([1.0, 0.0], [0.0, 1.0]))


def density(a, mean, variance) -> float:
    """The 2-d isotropic Gaussian density, written out."""
    sq = (a[0] - mean[0]) ** 2 + (a[1] - mean[1]) ** 2
    return np.exp(-sq / (2 * variance)) / (2 * np.pi * variance)


def test_simple_world_is_the_two_reward_distributions_of_iac_5_1():
    """r(a) = 100 (N(a; [4, 3], 5 I) + N(a; [-6, -6], 2 I)): both areas reward, and the narrow
    one at [-6, -6] peaks higher."""
    for a in [(4.0, 3.0), (-6.0, -6.0), (0.0, 0.0), (4.0 + np.sqrt(5.0), 3.0), (-1.0, 10.0)]:
        want = 100 * (density(a, (4, 3), 5) + density(a, (-6, -6), 2))
        assert _world(*a) == pytest.approx(want, rel=1e-6)  # actions are float32
    assert _world(-6.0, -6.0) == pytest.approx(100 / (4 * np.pi), rel=1e-6)  # ~7.96
    assert _world(4.0, 3.0) == pytest.approx(100 / (10 * np.pi), rel=1e-6)  # ~3.18
    assert _world(-6.0, -6.0) > _world(4.0, 3.0) > _world(-1.0, -1.0) > 0


def test_simple_world_widths_are_the_variances():
    # One standard deviation from each mean along one axis: the peak times exp(-1/2).
    assert _world(4.0 + np.sqrt(5.0), 3.0) == pytest.approx(
        100 / (10 * np.pi) * np.exp(-0.5), rel=1e-6
    )
    assert _world(-6.0, -6.0 - np.sqrt(2.0)) == pytest.approx(
        100 / (4 * np.pi) * np.exp(-0.5), rel=1e-6
    )


def test_simple_world_actions_are_bounded_and_clipped():
    env = envs.make("simple_world")
    space = env.action_space("agent_0")
    assert space.shape == (1,) and space.low[0] == -10 and space.high[0] == 10
    assert _world(40.0, -40.0) == _world(10.0, -10.0)
