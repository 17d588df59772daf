"""The batched wrapper gives exactly the reference ParallelEnv's trajectory: same seeds and same
actions -> identical observations, states, team rewards, done flags and automatic resets."""

from __future__ import annotations

import numpy as np
import pytest
from mpe2 import collect_treasure_v1, simple_spread_v3
from pettingzoo.sisl import multiwalker_v9

import envs
from envs import iac_predator_prey

SEEDS = (3, 11)


def _padded(per_agent: dict, agents: list[str], width: int) -> np.ndarray:
    out = np.zeros((len(agents), width), np.float32)
    for i, a in enumerate(agents):
        if a in per_agent:
            flat = np.asarray(per_agent[a], np.float32).ravel()
            out[i, : flat.size] = flat
    return out


def _state(env) -> np.ndarray | None:
    """The reference's state, or None where the package cannot give one (see below)."""
    try:
        return np.asarray(env.state(), np.float32)
    except AttributeError:  # multiwalker_v9 after a walker's body was removed
        return None


def _any_termination(ref, term: dict, live: list) -> bool:
    return any(term[a] for a in live)


def _compare(
    task: str, kwargs: dict, reference, steps: int, ended_for_good=_any_termination
) -> tuple[int, int]:
    """Step the wrapper and one reference env per seed side by side.

    Returns how many episodes ended by a time limit and how many ended for good."""
    batched = envs.make_batched(task, len(SEEDS), **kwargs)
    agents, spec = batched.agents, batched.spec
    refs = [reference() for _ in SEEDS]
    obs, state, _ = batched.reset(list(SEEDS))
    for b, (ref, seed) in enumerate(zip(refs, SEEDS)):
        o, _ = ref.reset(seed=seed)
        assert np.array_equal(obs[b], _padded(o, agents, spec.obs_dim))
        assert np.array_equal(state[b], np.asarray(ref.state(), np.float32))
    rng = np.random.default_rng(0)
    low, high = np.array(spec.action_low), np.array(spec.action_high)
    ends = [0, 0]
    for _ in range(steps):
        actions = rng.uniform(low, high, (len(SEEDS), spec.n_agents, spec.action_dim))
        actions = actions.astype(np.float32)
        step = batched.step(actions)
        for b, ref in enumerate(refs):
            live = list(ref.agents)
            o, r, term, trunc, _ = ref.step({a: actions[b, agents.index(a)] for a in live})
            assert np.array_equal(step.next_obs[b], _padded(o, agents, spec.obs_dim))
            assert step.reward[b] == np.mean([r[a] for a in live])
            # each agent's own reward, and the team reward is their mean (both papers plot it)
            assert step.rewards[b].tolist() == [r.get(a, 0.0) for a in agents]
            assert step.reward[b] == step.rewards[b].mean()
            ended = not ref.agents
            assert step.terminated[b] == (ended and ended_for_good(ref, term, live))
            assert step.truncated[b] == (ended and not ended_for_good(ref, term, live))
            if ended:
                ends[int(bool(step.terminated[b]))] += 1
                o, _ = ref.reset()  # the wrapper continues each copy's own generator
            assert np.array_equal(step.obs[b], _padded(o, agents, spec.obs_dim))
            if (want := _state(ref)) is not None:
                assert np.array_equal(step.state[b], want)
    return tuple(ends)


def test_cooperative_navigation_matches_simple_spread():
    def ref():
        return simple_spread_v3.parallel_env(N=3, max_cycles=6, continuous_actions=True)

    kwargs = {"max_cycles": 6, "physics": "mpe2", "reward": "mpe2"}  # mpe2, still selectable
    assert _compare("cooperative_navigation", kwargs, ref, steps=14) == (4, 0)


@pytest.mark.parametrize("N", [4, 5])
def test_treasure_collection_matches_collect_treasure(N):
    def ref():
        return collect_treasure_v1.parallel_env(
            num_collectors=N - 2,
            num_deposits=2,
            num_treasures=N - 2,
            max_cycles=6,
            continuous_actions=True,
        )

    kwargs = {"N": N, "max_cycles": 6, "physics": "mpe2"}
    assert _compare("treasure_collection", kwargs, ref, steps=14) == (4, 0)


def test_iac_predator_prey_matches_the_unwrapped_env():
    assert _compare(
        "iac_po_predator_prey",
        {"max_cycles": 6},
        lambda: iac_predator_prey.make_po(max_cycles=6),
        steps=14,
    ) == (4, 0)


def test_multiwalker_matches_pettingzoo():
    """Random walkers fall (terminations); a 65-cycle limit also cuts some episodes short,
    which the package calls a termination and we call a truncation."""

    def ref():
        return multiwalker_v9.parallel_env(n_walkers=3, max_cycles=65)

    def fell_or_finished(ref, term, live):  # the package's own done flags, not its time limit
        return any(term[a] for a in live) and any(ref.unwrapped.env.last_dones)

    ends = _compare("multiwalker", {"N": 3, "max_cycles": 65}, ref, 150, fell_or_finished)
    assert ends[0] >= 1 and ends[1] >= 1


def test_batched_one_step_game_terminates_every_step():
    batched = envs.make_batched("matrix_game", 3)
    obs, state, avail = batched.reset([0, 1, 2])
    assert avail.shape == (3, 2, 3) and avail.all()
    step = batched.step(np.array([[0, 0], [0, 1], [2, 1]]))
    assert step.reward.tolist() == [8.0, -12.0, 0.0]
    assert step.rewards.tolist() == [[8.0, 8.0], [-12.0, -12.0], [0.0, 0.0]]
    assert not step.won.any()
    assert step.terminated.all() and not step.truncated.any()
    assert step.episode_return.tolist() == [8.0, -12.0, 0.0]


def test_multiwalker_state_survives_a_fall():
    """The package's state() fails once a fallen walker is removed; ours zeroes that walker."""
    env = envs.make("multiwalker", N=3)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    while env.agents:
        before = env.state()
        env.step({a: rng.uniform(-1, 1, 4).astype(np.float32) for a in env.agents})
    base = env.unwrapped.env
    fallen = [i for i, w in enumerate(base.walkers) if w.hull is None]
    assert fallen, "random actions should make a walker fall within 500 steps"
    state = env.state()
    assert state.shape == before.shape == (75,)
    for i in range(3):
        assert (np.all(state[24 * i : 24 * i + 24] == 0)) == (i in fallen)
    assert state[-3] == np.float32(base.package.position.x)
