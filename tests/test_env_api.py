"""Every task passes PettingZoo's API and seed tests, is registered with its episode limit, and
rejects unknown ids and unsupported agent counts with one line naming the problem."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

import envs
from envs.registry import TASKS

# Every task and agent count (or SMAC map) the papers run (VM3-AC §6, IAC §3/§5.1).
CONFIGS = [
    ("multiwalker", {"N": 3}),
    ("multiwalker", {"N": 4}),
    ("vm3ac_predator_prey", {"N": 2}),
    ("vm3ac_predator_prey", {"N": 3}),
    ("vm3ac_predator_prey", {"N": 4}),
    ("treasure_collection", {"N": 4}),
    ("treasure_collection", {"N": 5}),
    ("cooperative_navigation", {}),
    ("matrix_game", {}),
    ("simple_world", {}),
    ("multi_pendulum", {}),
    ("multi_pendulum", {"N": 5, "graded": True}),
    ("iac_predator_prey", {}),
    ("iac_po_predator_prey", {}),
    ("sparse_smac", {"map_name": "3m"}),
    ("sparse_smac", {"map_name": "2s3z"}),
    ("sparse_smac", {"map_name": "3s_vs_3z"}),
]
STOCHASTIC = [c for c in CONFIGS if c[0] not in ("matrix_game", "simple_world")]


def _id(c):
    return f"{c[0]}-{'-'.join(f'{k}{v}' for k, v in c[1].items())}"


@pytest.mark.parametrize("task,kwargs", CONFIGS, ids=map(_id, CONFIGS))
def test_parallel_api(task, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the API test reports problems as warnings
        parallel_api_test(envs.make(task, **kwargs), num_cycles=30)
        parallel_seed_test(lambda: envs.make(task, **kwargs), num_cycles=30)


@pytest.mark.parametrize("task,kwargs", STOCHASTIC, ids=map(_id, STOCHASTIC))
def test_same_seed_same_episode_other_seed_other_episode(task, kwargs, episode):
    a = episode(envs.make(task, **kwargs), seed=5, steps=8)
    b = episode(envs.make(task, **kwargs), seed=5, steps=8)
    c = episode(envs.make(task, **kwargs), seed=6, steps=8)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len(a) != len(c) or not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_every_task_is_registered():
    assert set(TASKS) >= {
        "multiwalker",
        "vm3ac_predator_prey",
        "treasure_collection",
        "cooperative_navigation",
        "matrix_game",
        "simple_world",
        "multi_pendulum",
        "iac_predator_prey",
        "iac_po_predator_prey",
        "sparse_smac",
    }


@pytest.mark.parametrize(
    "task,kwargs,limit",
    [
        ("vm3ac_predator_prey", {}, 100),
        ("treasure_collection", {}, 100),
        ("cooperative_navigation", {}, 25),
        ("matrix_game", {}, 1),
        ("simple_world", {}, 1),
        ("multi_pendulum", {}, 200),
        ("iac_predator_prey", {}, 100),
        ("iac_po_predator_prey", {}, 100),
        ("multiwalker", {"max_cycles": 7}, 7),
    ],
)
def test_episode_ends_at_its_limit(task, kwargs, limit):
    assert TASKS[task].episode_limit(**kwargs) == limit
    env = envs.make(task, **kwargs)
    env.reset(seed=0)
    steps = 0
    while env.agents:
        # Standing still (zero action, or the first action) never ends an episode early.
        live = list(env.agents)
        _, _, term, trunc, _ = env.step(
            {
                a: np.zeros(env.action_space(a).shape, env.action_space(a).dtype)
                if env.action_space(a).shape
                else 0
                for a in live
            }
        )
        steps += 1
    assert steps == limit
    # A one-step game ends for good; every other limit is a time limit (bootstrap there).
    one_step = limit == 1
    assert all(term[a] == one_step and trunc[a] != one_step for a in live)


def test_multiwalker_default_limit_is_the_package_default():
    assert TASKS["multiwalker"].episode_limit() == 500


@pytest.mark.parametrize(
    "task,kwargs,words",
    [
        ("no_such_task", {}, "unknown task 'no_such_task'"),
        ("vm3ac_predator_prey", {"N": 1}, "N=1"),
        ("treasure_collection", {"N": 2}, "N=2"),
        ("multiwalker", {"N": 1}, "got 1"),
        ("multi_pendulum", {"N": 0}, "got 0"),
        ("matrix_game", {"N": 3}, "no setting 'N'"),
        ("sparse_smac", {"map_name": "4m"}, "unknown map '4m'"),
    ],
)
def test_bad_input_raises_one_line_naming_it(task, kwargs, words):
    with pytest.raises(ValueError) as err:
        envs.make(task, **kwargs)
    message = str(err.value)
    assert words in message and "\n" not in message
