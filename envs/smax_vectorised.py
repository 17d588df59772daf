"""Sparse SMAC, natively vectorised: B copies stepped by one jit(vmap(.)) call.

Same interface and same numbers as ``envs.batched.BatchedEnv`` over B copies of
``envs.smax_parallel.SparseSMAC`` (tests/test_env_smax.py checks it step by step): identical
observations, states, rewards, done flags, masks and automatic resets for the same seeds and
actions. Finished copies are reset inside the compiled step, each continuing its own key chain
as ``SparseSMAC.reset()`` would; only arrays cross to the host, once per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.batched import Step, spec_of
from envs.smax_parallel import make


class SparseSMACBatch:
    """B copies of sparse SMAC in lockstep, with automatic reset, as arrays."""

    def __init__(self, n_copies: int, **kwargs):
        if n_copies < 1:
            raise ValueError(f"batched wrapper: n_copies must be >= 1, got {n_copies}")
        template = make(**kwargs)  # builds nothing heavy: validates kwargs, names the spaces
        self.reward = template.reward
        self.host_state = template.host_state
        self.dynamics = template.dynamics
        self.spec = spec_of(template, template.episode_limit)
        self.agents = list(template.possible_agents)
        self._n = n_copies
        self._limit = np.int32(template.episode_limit)
        self._keys = None  # [B, 2] the copies' key chains
        self._smax_states = None  # batched SMAX state, on the device
        self._returns = np.zeros(n_copies)

    @property
    def n_copies(self) -> int:
        return self._n

    def reset(self, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reset copy b with seeds[b]; later automatic resets continue each copy's key chain."""
        if len(seeds) != self.n_copies:
            raise ValueError(f"batched wrapper: {len(seeds)} seeds for {self.n_copies} copies")
        keys = np.stack([self.dynamics.seed_key(s) for s in seeds])  # as SparseSMAC.reset does
        first = self.dynamics.batched_reset(keys)
        self._keys, self._smax_states = first.key, first.state
        self._returns[:] = 0.0
        h = self.dynamics.to_host(first._replace(key=None, state=None))
        return h.obs, self.host_state(h.world_state), h.avail.astype(np.float32)

    def step(self, actions: np.ndarray, active: np.ndarray | None = None) -> Step:
        """Step every copy with discrete actions[b, n]; copies outside ``active`` (``[B]``
        bool; all if None) are not stepped, and their rows are zeros with no reward and no end
        (as BatchedEnv.step)."""
        actions = np.asarray(actions, np.int32).reshape(self.n_copies, self.spec.n_agents)
        on = np.ones(self.n_copies, bool) if active is None else np.asarray(active, bool)
        t = self.dynamics.batched_step(self._limit, self._keys, self._smax_states, actions, on)
        self._keys, self._smax_states = t.key, t.state
        h = self.dynamics.to_host(t._replace(key=None, state=None))
        h = h._replace(world_state=self.host_state(h.world_state), next_world_state=self.host_state(h.next_world_state))
        if not on.all():  # what the idle copies' lanes computed is discarded
            idle = {k: np.where(_lanes(on, v), v, 0).astype(v.dtype) for k, v in h._asdict().items() if v is not None}
            h = h._replace(**idle)
        term, trunc = h.terminated, h.truncated
        shared = np.asarray(self.reward(h), np.float64)
        shared = np.where(on, shared, 0.0)  # an idle copy pays no time penalty
        rewards = np.repeat(shared[:, None], self.spec.n_agents, axis=1)  # SMAC: one team reward
        # The team reward is the mean of the agents' (equal) rewards, as BatchedEnv takes it;
        # a float64 mean of N equal values can be 1 ulp off the value, so take it the same way.
        reward = rewards.mean(axis=1)
        self._returns += reward
        done = term | trunc
        episode_return = np.where(done, self._returns, np.nan)
        self._returns[done] = 0.0
        return Step(
            h.next_obs,
            h.next_world_state,
            rewards,
            reward,
            term,
            trunc,
            h.obs,
            h.world_state,
            h.avail,
            h.next_avail,
            episode_return,
            done & h.won,
        )


def _lanes(on: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The ``[B]`` mask shaped to broadcast against a ``[B, ...]`` array."""
    return on.reshape(-1, *[1] * (value.ndim - 1))


def make_batched(n_copies: int, **kwargs) -> SparseSMACBatch:
    return SparseSMACBatch(n_copies, **kwargs)
