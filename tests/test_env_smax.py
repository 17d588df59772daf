"""Sparse SMAC on SMAX (VM3-AC §6): maps and limits, the death-driven reward (and SMAX's own
dense reward) on constructed fights, SMAC's dead-agent convention, one compilation per map, and a vectorised batch that
reproduces B separately stepped ParallelEnvs exactly."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.batched import BatchedEnv
from envs.registry import TASKS
from envs.smax_parallel import make
from envs.smax_vectorised import SparseSMACBatch

MAPS = ["3m", "2s3z", "3s_vs_3z"]
STOP = 4  # SMAX's stop action: the no-op, the only action a dead unit has
ATTACK_0 = 5  # attack enemy 0


@pytest.mark.parametrize(
    "map_name,limit,allies,n_actions,unit_types",
    [
        ("3m", 60, 3, 8, [0] * 6),
        ("2s3z", 120, 5, 10, [2, 2, 3, 3, 3] * 2),
        ("3s_vs_3z", 150, 3, 8, [2, 2, 2, 3, 3, 3]),  # stalkers against zealots
    ],
)
def test_maps_have_smac_units_and_limits(map_name, limit, allies, n_actions, unit_types):
    assert TASKS["sparse_smac"].episode_limit(map_name=map_name) == limit
    env = make(map_name=map_name, world_state="smax")  # SMAX's own state: unit types as integers
    assert env.episode_limit == limit
    assert env.possible_agents == [f"ally_{i}" for i in range(allies)]
    assert all(env.action_space(a).n == n_actions for a in env.possible_agents)
    env.reset(seed=0)
    n = len(unit_types)
    state = env.state()
    assert state.shape == env.state_space.shape == (12 * n,)  # SMAX world state
    teams, types = state[-2 * n : -n].tolist(), state[-n:].tolist()
    assert teams == [0] * allies + [1] * (n - allies) and types == unit_types


def _set(env, positions=None, health=None, alive=None, step=None):
    """Overwrite parts of the SMAX state between steps (allies first, then enemies)."""
    s = env.smax_state.state
    changes = {}
    if positions is not None:
        changes["unit_positions"] = jnp.asarray(positions, jnp.float32)
    if health is not None:
        changes["unit_health"] = jnp.asarray(health, jnp.float32)
        changes["unit_alive"] = jnp.asarray(np.asarray(health) > 0 if alive is None else alive)
    if step is not None:
        changes["step"] = jnp.asarray(step, jnp.int32)
    env.smax_state = env.smax_state.replace(state=s.replace(**changes))


# 3m: ally 0 and enemy 0 face each other one unit apart, the others far out of range and sight.
DUEL = [[16, 16], [4, 16], [4, 20], [17, 16], [28, 16], [28, 20]]
FULL = 45.0  # a marine's health; one marine shot takes 9, at most one shot per unit per step


def _duel_step(env, health, ally_0_action):
    env.reset(seed=0)
    _set(env, positions=DUEL, health=health)
    _, rew, term, trunc, info = env.step({"ally_0": ally_0_action, "ally_1": STOP, "ally_2": STOP})
    assert len(set(rew.values())) == 1  # one team reward
    return rew["ally_0"], term["ally_0"], trunc["ally_0"], info


@pytest.fixture(scope="module")
def env_3m():
    return make(map_name="3m")


def health_fraction(env, unit: int) -> float:
    return float(env.state()[10 * unit])  # world state: 10 features per unit, health first


def test_no_death_pays_only_the_time_penalty(env_3m):
    assert _duel_step(env_3m, [FULL] * 6, ATTACK_0)[:3] == (-0.01, False, False)
    # Both duellists were hit: damage alone pays nothing (SMAC's dense reward would pay it).
    assert health_fraction(env_3m, 0) == health_fraction(env_3m, 3) == np.float32(36 / 45)
    env_3m.reset(seed=1)  # fresh battle: nobody in range yet
    _, rew, _, _, _ = env_3m.step({a: STOP for a in env_3m.agents})
    assert rew == {a: -0.01 for a in env_3m.possible_agents}


def test_enemy_killed_pays_the_enemy_death_reward(env_3m):
    health = [FULL] * 3 + [1.0] + [FULL] * 2
    assert _duel_step(env_3m, health, ATTACK_0)[:3] == (1.0 - 0.01, False, False)
    assert health_fraction(env_3m, 3) == 0.0


def test_ally_killed_costs_the_ally_death_penalty_and_stays_with_noop_only(env_3m):
    health = [1.0] + [FULL] * 5  # enemy 0's heuristic shoots the closest ally in range
    assert _duel_step(env_3m, health, STOP)[:3] == (-0.5 - 0.01, False, False)
    assert env_3m.agents == env_3m.possible_agents  # SMAC keeps dead units until the end
    obs, rew, _, _, info = env_3m.step({a: STOP for a in env_3m.agents})
    assert rew["ally_0"] == -0.01  # a death is paid once
    assert not obs["ally_0"].any()  # SMAX shows a dead unit nothing
    assert info["ally_0"]["action_mask"].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]


def test_both_die_in_one_step(env_3m):
    health = [1.0, FULL, FULL, 1.0, FULL, FULL]
    assert _duel_step(env_3m, health, ATTACK_0)[:3] == (1.0 - 0.5 - 0.01, False, False)


def test_last_enemy_killed_wins_and_terminates():
    env = make(map_name="3m", win_reward=5.0)  # same compiled dynamics: rewards are host-side
    health = [FULL] * 3 + [1.0, 0.0, 0.0]
    rew, term, trunc, info = _duel_step(env, health, ATTACK_0)
    assert (rew, term, trunc) == (1.0 - 0.01 + 5.0, True, False)
    assert info["ally_0"]["battle_won"] and env.agents == []


def test_last_ally_killed_loses_and_terminates(env_3m):
    health = [1.0, 0.0, 0.0] + [FULL] * 3
    rew, term, trunc, info = _duel_step(env_3m, health, STOP)
    assert (rew, term, trunc) == (-0.5 - 0.01, True, False)
    assert not info["ally_0"]["battle_won"] and env_3m.agents == []


def test_the_world_state_is_on_smacs_scale():
    """world_state: smac (the default) is SMAC's get_state scale: positions relative to the map's
    centre over its size, cooldowns over the type's full cooldown, dead units zeros; smax keeps
    SMAX's raw numbers. Health (a fraction) and the layout are the same in both."""
    raw, smac = make(map_name="3m", world_state="smax"), make(map_name="3m")
    for env in (raw, smac):
        env.reset(seed=0)
        _set(env, positions=DUEL, health=[FULL] * 5 + [0.0])  # enemy 2 dead
        env.step({"ally_0": ATTACK_0, "ally_1": STOP, "ally_2": STOP})  # the duellists fire, allies stay
    r, s = raw.state(), smac.state()
    units_r, units_s = r[:60].reshape(6, 10), s[:60].reshape(6, 10)
    assert units_r[0, 1:3].tolist() == [16, 16] and units_s[0, 1:3].tolist() == [0, 0]  # the centre
    assert units_s[1, 1:3].tolist() == [(4 - 16) / 32, 0]
    assert not units_s[5].any() and not units_r[5].any()
    assert np.array_equal(units_s[:, 0], units_r[:, 0]) and np.array_equal(units_s[:, 4:], units_r[:, 4:])
    assert np.abs(s).max() <= 1 and np.abs(r).max() > 16  # SMAX's raw positions reach 32
    assert 0 < units_s[0, 3] <= 1 and units_s[0, 3] == units_r[0, 3] / np.float32(0.61)  # a marine's 0.61 s
    assert s[-6:].tolist() == [0.0] * 6  # marines are type 0 either way
    for _ in range(30):  # nobody fires: SMAX's cooldowns fall below 0, SMAC's stop at 0
        for env in (raw, smac):
            env.step({a: STOP for a in env.agents})
    assert raw.state()[13] < -1 and smac.state()[13] == 0.0  # ally 1 never fired
    assert np.abs(smac.state()).max() <= 1


def test_smax_reward_pays_the_enemy_health_lost_and_one_for_the_win():
    """reward: smax is SMAX's own reward: each enemy's health lost as a fraction of its full
    health, over the 3 enemies; 1.0 more on the winning step; nothing for deaths or time."""
    env = make(map_name="3m", reward="smax")
    rew, term, _, _ = _duel_step(env, [FULL] * 6, ATTACK_0)
    assert rew == pytest.approx(9 / 45 / 3) and not term  # one marine shot: 9 of 45
    assert _duel_step(env, [FULL] * 6, STOP)[0] == 0.0  # being shot pays nothing
    assert _duel_step(env, [FULL] * 3 + [1.0] + [FULL] * 2, ATTACK_0)[0] == pytest.approx(1 / 45 / 3)
    rew, term, _, info = _duel_step(env, [FULL] * 3 + [1.0, 0.0, 0.0], ATTACK_0)
    assert rew == pytest.approx(1 / 45 / 3 + 1.0) and term and info["ally_0"]["battle_won"]
    scaled = make(map_name="3m", reward="smax", smax_reward_scale=10.0)  # JaxMARL's REW_SCALE
    assert _duel_step(scaled, [FULL] * 6, ATTACK_0)[0] == pytest.approx(10 * 9 / 45 / 3)


@pytest.mark.parametrize("map_name", MAPS)
def test_episode_is_truncated_at_the_smac_limit(map_name):
    env = make(map_name=map_name)
    limit = env.episode_limit
    env.reset(seed=0)
    _set(env, step=limit - 2)  # both sides alive, two steps before SMAC's limit
    _, _, term, trunc, _ = env.step({a: STOP for a in env.agents})
    assert env.agents and not any(term.values()) and not any(trunc.values())
    _, _, term, trunc, info = env.step({a: STOP for a in env.agents})
    assert env.agents == [] and all(trunc.values()) and not any(term.values())
    assert not info["ally_0"]["battle_won"]


def test_short_limit_ends_the_episode_after_that_many_steps():
    env = make(map_name="3s_vs_3z", episode_limit=5)
    assert TASKS["sparse_smac"].episode_limit(map_name="3s_vs_3z", episode_limit=5) == 5
    env.reset(seed=0)
    for _ in range(5):
        _, _, term, trunc, _ = env.step({a: STOP for a in env.agents})
    assert env.agents == [] and all(trunc.values()) and not any(term.values())


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"map_name": "3s_vs_5z"}, "unknown map '3s_vs_5z' (known: 3m, 2s3z, 3s_vs_3z)"),
        # params.yaml's SMAC tasks give their limit: the map is still checked
        ({"map_name": "4m", "episode_limit": 60}, "unknown map '4m'"),
        ({"episode_limit": 0}, "got 0"),
        ({"reward": "dense"}, "reward must be one of sparse, smax, got 'dense'"),
        ({"reward": "smax", "smax_reward_scale": 0}, "smax_reward_scale must be a number > 0, got 0"),
        ({"world_state": "raw"}, "world_state must be one of smac, smax, got 'raw'"),
    ],
)
def test_bad_settings_raise_one_line(kwargs, words):
    for build in (
        lambda: envs.make("sparse_smac", **kwargs),
        lambda: envs.make_batched("sparse_smac", 2, **kwargs),
        lambda: envs.registry.validate("sparse_smac", kwargs),  # params validation's check
    ):
        with pytest.raises(ValueError) as err:
            build()
        assert words in str(err.value) and "\n" not in str(err.value)


def test_observations_stay_in_their_space_over_random_battles():
    env = make(map_name="2s3z")
    rng = np.random.default_rng(0)
    for seed in range(2):
        obs, info = env.reset(seed=seed)
        while env.agents:
            assert all(env.observation_space(a).contains(obs[a]) for a in env.agents)
            actions = {a: rng.choice(np.flatnonzero(info[a]["action_mask"])) for a in env.agents}
            obs, _, _, _, info = env.step(actions)


def test_creating_envs_and_resetting_never_recompiles():
    env = make(map_name="3m", episode_limit=4)
    dyn = env.dynamics
    env.reset(seed=0)
    env.step({a: STOP for a in env.agents})
    compiled = (dyn.reset._cache_size(), dyn.step._cache_size())
    for seed in range(3):  # new objects, other limits and rewards, episodes run to their end
        other = make(map_name="3m", episode_limit=3 + seed, time_penalty=0.1 * seed)
        assert other.dynamics is dyn
        other.reset(seed=seed)
        while other.agents:
            other.step({a: STOP for a in other.agents})
        other.reset()
    assert (dyn.reset._cache_size(), dyn.step._cache_size()) == compiled == (1, 1)


# ---- vectorised batch against B ParallelEnvs in envs.batched.BatchedEnv ---------------------

SEEDS = [3, 11, 12]


def _reference(n_copies, **kwargs) -> BatchedEnv:
    return BatchedEnv(
        lambda: make(**kwargs), n_copies, TASKS["sparse_smac"].episode_limit(**kwargs)
    )


def _assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # exact; NaN equals NaN


@pytest.mark.parametrize(
    "map_name,limit,steps,reward",
    [("3m", 7, 30, "sparse"), ("2s3z", 9, 30, "sparse"), ("3s_vs_3z", None, 90, "sparse"), ("3s_vs_3z", None, 90, "smax")],
)
def test_vectorised_batch_equals_batched_parallel_envs(map_name, limit, steps, reward):
    """Short limits force truncations; 3s_vs_3z at its own limit also sees battles end. The
    SMAX-reward case also takes SMAX's raw world state."""
    kwargs = {"map_name": map_name, "episode_limit": limit, "reward": reward}
    if reward == "smax":
        kwargs["world_state"] = "smax"
    fast = envs.make_batched("sparse_smac", len(SEEDS), **kwargs)
    assert isinstance(fast, SparseSMACBatch)
    ref = _reference(len(SEEDS), **kwargs)
    assert fast.spec == ref.spec and fast.agents == ref.agents and fast.n_copies == 3
    dyn = fast.dynamics  # compiled once per map and process: other tests may have used it
    compiled = dyn.batched_step._cache_size(), dyn.batched_reset._cache_size()
    first = fast.reset(SEEDS)
    _assert_same(first, ref.reset(SEEDS))
    avail = first[2]
    rng = np.random.default_rng(0)
    ends = np.zeros(2, int)  # truncated, terminated
    for _ in range(steps):
        actions = np.array(
            [[rng.choice(np.flatnonzero(m)) for m in copy] for copy in avail], np.int64
        )
        a, b = fast.step(actions), ref.step(actions)
        fields = [
            "next_obs",
            "next_state",
            "rewards",
            "reward",
            "terminated",
            "truncated",
            "obs",
            "state",
            "avail",
            "next_avail",
            "episode_return",
            "won",
        ]
        for f in fields:
            x, y = getattr(a, f), getattr(b, f)
            assert x.shape == y.shape and x.dtype == y.dtype, f
            np.testing.assert_array_equal(x, y, err_msg=f)
        ends += [a.truncated.sum(), a.terminated.sum()]
        assert np.array_equal(a.reward, a.rewards.mean(1))
        assert not (a.won & ~a.terminated).any()  # a win ends the battle
        avail = a.avail
    assert ends[1 if limit is None else 0] >= 2, ends  # auto-resets were exercised
    # at most one compilation each for this batch shape, however many steps and resets
    assert dyn.batched_step._cache_size() - compiled[0] <= 1
    assert dyn.batched_reset._cache_size() - compiled[1] <= 1


def test_copies_that_wait_resume_exactly_where_they_were():
    """A copy left out of ``active`` is not stepped (pipeline/runtime/loops.py lets a seed's copies
    wait for the other seeds): its later steps equal those of a reference stepped only when
    active, and while it waits it reports no reward and no end."""
    kwargs = {"map_name": "3m", "episode_limit": 7}
    fast = envs.make_batched("sparse_smac", len(SEEDS), **kwargs)
    ref = _reference(len(SEEDS), **kwargs)
    avail = fast.reset(SEEDS)[2]
    ref.reset(SEEDS)
    rng = np.random.default_rng(1)
    for _ in range(40):
        active = rng.random(len(SEEDS)) < 0.6
        actions = np.array([[rng.choice(np.flatnonzero(m)) for m in copy] for copy in avail])
        a, b = fast.step(actions, active), ref.step(actions, active)
        for f in ("next_obs", "rewards", "reward", "terminated", "truncated", "obs", "won"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
        assert not a.reward[~active].any() and not (a.terminated | a.truncated)[~active].any()
        avail = np.where(active[:, None, None], a.avail, avail)
