"""Multi-pendulum (IAC §5.1): Gymnasium Pendulum-v1 physics per agent; sparse, graded rewards."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import envs


def _set(env, th, thdot=None):
    env.th = np.array(th, float)
    env.thdot = np.zeros(len(th)) if thdot is None else np.array(thdot, float)


def test_dynamics_equal_gymnasium_pendulum():
    env = envs.make("multi_pendulum", N=3, max_cycles=60)
    env.reset(seed=0)
    starts = [(3.0, -0.5), (-1.2, 0.9), (0.05, 7.9)]
    refs = []
    for th, thdot in starts:
        ref = gymnasium.make("Pendulum-v1").unwrapped
        ref.reset(seed=0)
        ref.state = np.array([th, thdot])
        refs.append(ref)
    _set(env, *zip(*starts))
    rng = np.random.default_rng(0)
    for _ in range(60):
        torques = rng.uniform(-3.0, 3.0, 3)  # includes out-of-range torques: both clip to 2
        obs, _, _, _, _ = env.step(
            {f"pendulum_{i}": np.array([u], np.float32) for i, u in enumerate(torques)}
        )
        for i, (ref, u) in enumerate(zip(refs, torques)):
            ref_obs, *_ = ref.step(np.array([u], np.float32))
            assert np.array_equal(obs[f"pendulum_{i}"], ref_obs)  # own pendulum only
            assert [env.th[i], env.thdot[i]] == list(ref.state)  # bit-identical


def test_reset_draws_pendulum_v1_ranges_and_obs_is_own_pendulum():
    env = envs.make("multi_pendulum", N=4)
    ths, thdots = [], []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        ths += list(env.th)
        thdots += list(env.thdot)
        for i, a in enumerate(env.possible_agents):
            np.testing.assert_allclose(
                obs[a], [np.cos(env.th[i]), np.sin(env.th[i]), env.thdot[i]], atol=1e-6
            )
    assert np.all(np.abs(ths) <= np.pi) and np.all(np.abs(thdots) <= 1.0)
    assert np.max(ths) > 2.5 and np.min(ths) < -2.5  # spread over the whole circle


def _reward(env, th):
    _set(env, th)
    _, rew, _, _, _ = env.step({a: np.zeros(1, np.float32) for a in env.agents})
    values = set(rew.values())
    assert len(values) == 1  # one shared team reward
    return values.pop()


def test_sparse_reward_only_when_every_angle_meets_the_bound():
    env = envs.make("multi_pendulum", N=3)
    env.reset(seed=0)
    up = 2 * np.pi + 0.19  # |normalized angle| = 0.19 < 0.2: upright after wrapping
    assert _reward(env, [0.0, -0.19, up]) == 5.0
    assert _reward(env, [0.0, 0.0, 0.21]) == 0.0
    assert _reward(env, [0.0, np.pi, 0.0]) == 0.0
    assert _reward(env, [3.0, 3.0, 3.0]) == 0.0


@pytest.mark.parametrize(
    "n_up,expected", [(0, 0.0), (1, 0.1), (2, 0.1), (3, 0.2), (4, 0.2), (5, 0.5)]
)
def test_graded_reward_by_count_of_upright_pendulums(n_up, expected):
    env = envs.make("multi_pendulum", N=5, graded=True)
    env.reset(seed=0)
    assert _reward(env, [0.1] * n_up + [2.0] * (5 - n_up)) == expected


def test_graded_reward_with_three_pendulums_pays_the_all_bonus_for_three():
    env = envs.make("multi_pendulum", N=3, graded=True)
    env.reset(seed=0)
    assert [_reward(env, [0.1] * k + [2.0] * (3 - k)) for k in range(4)] == [0.0, 0.1, 0.1, 0.5]


def test_params_have_graded_tasks_where_the_three_pendulum_tier_pays():
    """IAC Fig. 6 grows N; at N = 3 the +0.2 tier can never pay, so params.yaml must offer
    graded tasks with N >= 4 (issue: scalability task), and there three upright pay +0.2."""
    import yaml
    from conftest import REPO

    tasks = yaml.safe_load((REPO / "params.yaml").read_text())["tasks"]
    graded = {
        t["kwargs"]["N"]: t["kwargs"]
        for t in tasks.values()
        if t["id"] == "multi_pendulum" and t.get("kwargs", {}).get("graded")
    }
    assert {4, 5} <= set(graded)
    for n, kwargs in graded.items():
        if n >= 4:
            env = envs.make("multi_pendulum", **kwargs)
            env.reset(seed=0)
            assert _reward(env, [0.1] * 3 + [2.0] * (n - 3)) == 0.2
