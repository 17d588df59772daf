"""SMAX (JaxMARL) as pure jitted transitions: one copy, and a batch of copies in one call.

SMAC's allies are the learners and its enemies follow the built-in AI; in SMAX that is
``HeuristicEnemySMAX``. This module wraps it in four functions, compiled once per map and
setting per process (``dynamics`` caches them, so building many environments never compiles
again) and shared by the ParallelEnv and the vectorised batch:

- ``reset(key)`` and ``step(limit, key, state, actions)`` for one copy;
- ``batched_reset(keys)`` and ``batched_step(limit, keys, states, actions)``: ``jit(vmap(.))``
  of the same code, the step resetting finished copies inside the compiled call.

Each copy carries its own PRNG key chain: a reset splits the key it is given into (next key,
reset key) and a step into (next key, step key), so a copy's trajectory depends only on its seed
and its actions, and the batch reproduces B separately stepped copies exactly.

This is the only module that imports JAX and JaxMARL (about 3 s); the environments import it
when first built, so ``import envs`` stays light.

The episode limit is an argument, not a compile-time constant (SMAX's own ``max_steps`` is set
out of reach), so changing it never recompiles. The step reports deaths, from which the host
computes the sparse reward, and SMAX's own dense reward (``envs.smax_reward``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxmarl.environments.smax import (
    HeuristicEnemySMAX,
    Scenario,
    map_name_to_scenario,
    register_scenario,
)

from envs.smax_maps import MAPS, smac_map

# JAX's persistent compilation cache: every SMAC stage is a new process that would compile the
# same steps again (half of the 14 s of qmix-smac_3m's evaluate stage). Entries are keyed by the
# computation, compile options, JAX version and device, so a cached step computes exactly what
# a fresh compile would. The small compiles count too (JAX keeps only those over 1 s by default:
# 9.0 s instead of 7.7 s for that stage). A size limit turns on JAX's file lock, so stages
# compiling at once (the Dask build) never read an entry another is still writing; an entry that
# cannot be read is only warned about and compiled afresh. JAX_COMPILATION_CACHE_DIR, where
# set, wins.
if jax.config.jax_compilation_cache_dir is None:
    jax.config.update("jax_compilation_cache_dir", str(Path(__file__).resolve().parents[1] / ".cache" / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_compilation_cache_max_size", 2**30)

NO_LIMIT = 2**31 - 1  # SMAX's max_steps: our limit is applied in `step`, as an argument

# Maps SMAX does not have (3s_vs_3z) become SMAX scenarios: allies first, fixed positions and
# unit types (no SMACv2 generation).
for _name, _map in MAPS.items():
    if _map.unit_types is not None:
        register_scenario(
            _name,
            Scenario(
                unit_types=jnp.array(_map.unit_types, dtype=jnp.uint8),
                num_allies=_map.allies,
                num_enemies=_map.enemies,
                smacv2_position_generation=False,
                smacv2_unit_type_generation=False,
            ),
        )


def scenario(map_name: str) -> Scenario:
    """SMAX's scenario (unit types, team sizes) for a map of ``envs.smax_maps.MAPS``."""
    smac_map(map_name)
    return map_name_to_scenario(map_name)


class First(NamedTuple):
    """A copy right after reset."""

    key: jax.Array
    state: object  # HeuristicEnemySMAX state (a pytree)
    obs: jax.Array  # [N, obs] float32, allies in order
    world_state: jax.Array  # [state] float32: SMAX's world_state
    avail: jax.Array  # [N, A] uint8 available actions


class Transition(NamedTuple):
    """A copy after one step (not reset)."""

    key: jax.Array
    state: object
    obs: jax.Array
    world_state: jax.Array
    avail: jax.Array
    enemy_deaths: jax.Array  # int32: enemy units alive before the step and dead after it
    ally_deaths: jax.Array  # int32: the same for allied units
    won: jax.Array  # bool: every enemy dead and at least one ally alive
    terminated: jax.Array  # bool: one side (or both) wiped out
    truncated: jax.Array  # bool: the episode limit reached with both sides alive
    smax_reward: jax.Array  # float32: SMAX's own reward of the allies' team for the step


class BatchedTransition(NamedTuple):
    """All copies after one step; copies whose episode ended are already reset."""

    next_obs: jax.Array  # [B, N, obs] observation the step produced (final one if it ended)
    next_world_state: jax.Array  # [B, state]
    next_avail: jax.Array  # [B, N, A] float32 available actions after the step (before reset)
    enemy_deaths: jax.Array  # [B]
    ally_deaths: jax.Array  # [B]
    won: jax.Array  # [B]
    terminated: jax.Array  # [B]
    truncated: jax.Array  # [B]
    smax_reward: jax.Array  # [B]
    key: jax.Array  # [B, 2] key chain, continued through the reset where one happened
    state: object  # batched SMAX state to step next
    obs: jax.Array  # [B, N, obs] observation to act on next
    world_state: jax.Array  # [B, state]
    avail: jax.Array  # [B, N, A] float32


def _strong(tree):
    """Drop weak types, so reset's state has exactly the avals step returns: one compilation."""
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype), tree)


class SMAXDynamics:
    """Jitted transitions of one SMAX map, allies controlled, enemies scripted."""

    def __init__(self, map_name: str, walls_cause_death: bool):
        self.env = HeuristicEnemySMAX(
            scenario=scenario(map_name),
            max_steps=NO_LIMIT,
            walls_cause_death=walls_cause_death,
        )
        self.agents = list(self.env.agents)  # ally_0 .. ally_{N-1}
        self.n_allies = self.env.num_allies
        self.obs_dim = int(self.env.obs_size)
        self.state_dim = int(self.env.state_size)
        self.n_actions = int(self.env.num_ally_actions)
        # SMAX's "stop" action: always available, the only one a dead unit has (SMAC's no-op).
        self.noop = self.env.num_movement_actions - 1
        self._smax = getattr(self.env, "_env", self.env)  # the SMAX under the heuristic enemy
        self.n_units = self.env.num_allies + self.env.num_enemies
        self._cooldowns = np.asarray(self._smax.unit_type_weapon_cooldowns, np.float32)
        self.reset = jax.jit(self._reset)
        self.step = jax.jit(self._step)
        self.batched_reset = jax.jit(jax.vmap(self._reset))
        self.batched_step = jax.jit(jax.vmap(self._step_or_reset, in_axes=(None, 0, 0, 0, 0)))

    def smac_state(self, world_state: np.ndarray) -> np.ndarray:
        """SMAX's world state ``[..., state]`` on SMAC's scale (``StarCraft2Env.get_state``):
        each living unit's position relative to the map's centre over the map's size (SMAX gives
        raw positions, 0 to 32) and its weapon cooldown over its type's full cooldown, within
        [0, 1] (SMAX: seconds, unbounded below); health is already a fraction. Dead units stay all zeros, as in both. The
        trailing unit types (integers; SMAC has only the one-hot) are divided by the number of
        types. The layout and the size are SMAX's. Host-side NumPy, elementwise, so one copy
        and a batch give the same bits."""
        smax = self._smax
        n, width = self.n_units, len(smax.own_features)
        units = world_state[..., : n * width].reshape(*world_state.shape[:-1], n, width).copy()
        alive = units[..., 0] > 0  # SMAX zeroes a dead unit's features, health first
        types = units[..., 4:].argmax(-1)  # the unit-type one-hot follows the 4 numbers
        size = np.float32(smax.map_width), np.float32(smax.map_height)
        for k, extent in ((1, size[0]), (2, size[1])):
            units[..., k] = np.where(alive, (units[..., k] - extent / 2) / extent, 0)
        # SMAX's cooldown keeps falling below 0 while a unit does not fire (down to -30 in an
        # episode) and a shot sets it up to 2 sub-steps above the type's; SMAC's runs from 1 to 0
        cooldown = np.clip(units[..., 3] / self._cooldowns[types], 0, 1)
        units[..., 3] = np.where(alive, cooldown, 0)
        tail = world_state[..., n * width :].copy()
        tail[..., n:] = tail[..., n:] / np.float32(smax.unit_type_bits)  # unit types after teams
        return np.concatenate([units.reshape(*world_state.shape[:-1], n * width), tail], -1)

    @staticmethod
    def seed_key(seed: int) -> jax.Array:
        """The start of a copy's key chain (JAX keeps the low 32 bits of the seed)."""
        return jax.random.PRNGKey(int(seed))

    @staticmethod
    def to_host(arrays):
        """Device arrays to writable NumPy copies (as other tasks give), one transfer."""
        return jax.tree.map(np.array, jax.device_get(arrays))

    def _stack(self, per_agent: dict) -> jax.Array:
        return jnp.stack([per_agent[a] for a in self.agents])

    def _reset(self, key: jax.Array) -> First:
        key, reset_key = jax.random.split(key)
        obs, state = self.env.reset(reset_key)
        state = _strong(state)
        avail = self._stack(self.env.get_avail_actions(state))
        return First(key, state, self._stack(obs), obs["world_state"], avail)

    def _step(self, limit: jax.Array, key: jax.Array, state, actions: jax.Array) -> Transition:
        key, step_key = jax.random.split(key)
        alive_before = state.state.unit_alive
        obs, state, rewards, _, _ = self.env.step_env(
            step_key, state, {a: actions[i] for i, a in enumerate(self.agents)}
        )
        alive = state.state.unit_alive
        died = alive_before & ~alive  # SMAC counts a unit's death once, on the step it dies
        n = self.n_allies
        allies_wiped, enemies_wiped = ~jnp.any(alive[:n]), ~jnp.any(alive[n:])
        terminated = allies_wiped | enemies_wiped
        avail = self._stack(self.env.get_avail_actions(state))
        return Transition(
            key,
            state,
            self._stack(obs),
            obs["world_state"],
            avail,
            jnp.sum(died[n:], dtype=jnp.int32),
            jnp.sum(died[:n], dtype=jnp.int32),
            enemies_wiped & ~allies_wiped,
            terminated,
            # A battle decided on the last step ends for good; only a pure time limit bootstraps.
            (state.state.step >= limit) & ~terminated,
            rewards[self.agents[0]],  # one team reward, the same for every ally
        )

    def _step_or_reset(self, limit, key, state, actions, active) -> BatchedTransition:
        """One copy's step (and reset, if it ended). An inactive copy keeps its key and state;
        its other outputs are meaningless and the host ignores them."""
        t = self._step(limit, key, state, actions)
        first = self._reset(t.key)  # the key chain continues exactly as a later reset() would
        done = (t.terminated | t.truncated) & active

        def pick(after_reset, after_step):
            return jax.tree.map(lambda x, y: jnp.where(done, x, y), after_reset, after_step)

        def keep(before, after):
            return jax.tree.map(lambda x, y: jnp.where(active, y, x), before, after)

        return BatchedTransition(
            t.obs,
            t.world_state,
            t.avail.astype(jnp.float32),
            t.enemy_deaths,
            t.ally_deaths,
            t.won,
            t.terminated,
            t.truncated,
            t.smax_reward,
            keep(key, pick(first.key, t.key)),
            keep(state, pick(first.state, t.state)),
            pick(first.obs, t.obs),
            pick(first.world_state, t.world_state),
            pick(first.avail, t.avail).astype(jnp.float32),
        )


@functools.lru_cache(maxsize=None)
def dynamics(map_name: str, walls_cause_death: bool) -> SMAXDynamics:
    """One compiled set of transitions per map and setting, shared by every env built here."""
    return SMAXDynamics(map_name, walls_cause_death)
