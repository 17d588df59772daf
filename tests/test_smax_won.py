"""The harness's ``won`` flag agrees with SMAX's own notion of a won battle.

SMAX pays ``won_battle_bonus`` in its own reward exactly when every enemy is dead and at least
one ally is alive (``SMAX.compute_reward``); our dynamics ignore SMAX's reward and compute
``won`` from the alive flags themselves. Here an independent, raw ``HeuristicEnemySMAX`` (SMAX's
reward with a won bonus of 1000, its own limit out of reach) replays the very same episodes as
``envs.make_batched("sparse_smac", ...)``: the same scenario and walls setting, the same key
chain (reset: ``key, reset_key = split(key)``; step: ``key, step_key = split(key)``; a finished
episode's chain continues with a reset) and the same actions. On every finished episode the
harness's ``won`` must equal "SMAX paid its won bonus on the last step", and both must end the
episode on the same step. A scripted focus-fire policy mixed with random actions (a different
share per copy) makes some battles won and others lost.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxmarl.environments.smax import HeuristicEnemySMAX, Scenario, map_name_to_scenario

import envs
from envs.smax_maps import MAPS

pytestmark = pytest.mark.usefixtures("one_thread")

BONUS = 1000.0  # SMAX's won_battle_bonus in the replica; its damage reward is at most ~1 a step
NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3  # SMAX's discrete moves (after its 45 degree rotation)


def smax_scenario(map_name: str) -> Scenario:
    """The map as envs/smax_maps.py gives it: SMAX's own scenario, or its listed unit types."""
    m = MAPS[map_name]
    if m.unit_types is None:
        return map_name_to_scenario(map_name)
    return Scenario(
        unit_types=jnp.array(m.unit_types, dtype=jnp.uint8),
        num_allies=m.allies,
        num_enemies=m.enemies,
        smacv2_position_generation=False,
        smacv2_unit_type_generation=False,
    )


class Replica:
    """A raw SMAX env stepped with the harness's key chain, one copy per call (jitted)."""

    def __init__(self, map_name: str):
        self.env = HeuristicEnemySMAX(
            scenario=smax_scenario(map_name),
            max_steps=2**31 - 1,  # the episode limit is applied here, as the harness does
            walls_cause_death=False,  # params.yaml's smac_* tasks: walls_cause_death false
            won_battle_bonus=BONUS,
        )
        self.agents = list(self.env.agents)
        self.n = self.env.num_allies
        self.moves = self.env.num_movement_actions  # moves, then stop; then attack enemy k
        self.reset = jax.jit(self._reset)
        self.step = jax.jit(self._step)

    def _view(self, state):
        s = state.state
        avail = jnp.stack([self.env.get_avail_actions(state)[a] for a in self.agents])
        return avail, s.unit_positions, s.unit_health, s.unit_alive

    def _reset(self, key):
        key, reset_key = jax.random.split(key)
        _, state = self.env.reset(reset_key)
        return key, state, self._view(state)

    def _step(self, key, state, actions):
        key, step_key = jax.random.split(key)
        acts = {a: actions[i] for i, a in enumerate(self.agents)}
        _, state, rewards, dones, _ = self.env.step_env(step_key, state, acts)
        reward = rewards[self.agents[0]]  # one team reward: every ally gets the same
        return key, state, reward, dones["__all__"], self._view(state)


def scripted(view, avail, n_allies, moves, flee=False):
    """Focus fire: shoot the weakest enemy in range, else walk towards the nearest enemy. A
    fleeing team only walks north (battles that run into the episode limit)."""
    _, pos, health, alive = (np.asarray(x) for x in view)
    enemies = np.flatnonzero(alive[n_allies:]) + n_allies
    actions = np.full(n_allies, moves - 1)  # stop: a dead unit's only action
    for i in range(n_allies):
        if not alive[i] or enemies.size == 0:
            continue
        if flee:
            actions[i] = NORTH if avail[i, NORTH] else moves - 1
            continue
        shootable = np.flatnonzero(avail[i, moves:])
        if shootable.size:
            actions[i] = moves + shootable[np.argmin(health[n_allies + shootable])]
            continue
        d = pos[enemies] - pos[i]
        dx, dy = d[np.argmin(np.linalg.norm(d, axis=1))]
        if abs(dx) > abs(dy):
            actions[i] = EAST if dx > 0 else WEST
        else:
            actions[i] = NORTH if dy > 0 else SOUTH
    return actions


def check_won_matches_smax(map_name, seeds, randomness, steps, episode_limit, flee=()):
    """Step the harness batch and the replica in lockstep; every finished episode's
    (won, allies wiped out, truncated). ``randomness[b]``: copy b's share of random actions;
    copies in ``flee`` run away instead of fighting."""
    kwargs = {"map_name": map_name, "episode_limit": episode_limit}
    batch = envs.make_batched("sparse_smac", len(seeds), **kwargs)
    replica = Replica(map_name)
    n, moves = replica.n, replica.moves
    _, _, avail = batch.reset(seeds)
    copies = []  # per copy: [key, state, view, steps into the episode]
    for seed in seeds:
        key, state, view = replica.reset(jax.random.PRNGKey(seed))
        copies.append([key, state, view, 0])
    rng = np.random.default_rng(0)
    outcomes = []
    for _ in range(steps):
        actions = np.zeros((len(seeds), n), np.int32)
        for b, (_, _, view, _) in enumerate(copies):
            np.testing.assert_array_equal(np.asarray(view[0]), avail[b])  # same episodes
            actions[b] = scripted(view, avail[b], n, moves, flee=b in flee)
            for i in range(n):
                if rng.random() < randomness[b]:
                    actions[b, i] = rng.choice(np.flatnonzero(avail[b, i]))
        out = batch.step(actions)
        for b, copy in enumerate(copies):
            key, state, reward, smax_done, view = replica.step(copy[0], copy[1], actions[b])
            copy[3] += 1
            smax_won = float(reward) >= BONUS
            assert bool(out.terminated[b]) == bool(smax_done), (b, copy[3])
            ended = bool(smax_done) or copy[3] >= episode_limit
            assert bool(out.terminated[b] | out.truncated[b]) == ended, (b, copy[3])
            assert bool(out.won[b]) == (ended and smax_won), (b, copy[3], float(reward))
            if ended:
                wiped = not np.asarray(view[3])[:n].any()
                outcomes.append((smax_won, wiped, bool(out.truncated[b])))
                key, state, view = replica.reset(key)
                copy[3] = 0
            copy[:3] = key, state, view
        avail = out.avail
    return outcomes


def test_won_matches_smax_won_bonus_on_3m():
    outcomes = check_won_matches_smax(
        "3m",
        seeds=[0, 1, 2, 3, 4, 5, 6],
        randomness=[0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 0.0],
        steps=150,
        episode_limit=60,
        flee={6},
    )
    won, lost, timed_out = np.sum(outcomes, axis=0)
    print(f"3m: {len(outcomes)} episodes, {won} won, {lost} lost, {timed_out} timed out")
    assert won >= 1 and lost >= 1 and timed_out >= 1, outcomes


def test_won_matches_smax_won_bonus_on_3s_vs_3z():
    outcomes = check_won_matches_smax(
        "3s_vs_3z",
        seeds=[0, 1, 2, 3],
        randomness=[0.0, 0.0, 0.3, 1.0],
        steps=150,
        episode_limit=150,
    )
    won, lost, timed_out = np.sum(outcomes, axis=0)
    print(f"3s_vs_3z: {len(outcomes)} episodes, {won} won, {lost} lost, {timed_out} timed out")
    assert won >= 1 and lost >= 1, outcomes
