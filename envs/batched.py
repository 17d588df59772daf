"""B copies of a PettingZoo ParallelEnv behind one array interface (ARCHITECTURE.md).

Learners only see arrays: ``obs[B,N,obs]``, ``state[B,state]``, each agent's own reward
``rewards[B,N]`` and the team reward ``reward[B]`` (their mean, which is what both papers
plot), ``terminated[B]``, ``truncated[B]``, ``avail[B,N,A]`` for discrete tasks, and at an
episode's end its record: ``episode_return[B]`` and ``won[B]`` (SMAC's ``battle_won``). A copy
whose episode ends is reset at once; the step that ended it still reports the final
observation in ``next_obs`` (and its mask in ``next_avail``) so a learner can bootstrap from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.spec import EnvSpec


@dataclass
class Step:
    """One lockstep transition of all copies."""

    next_obs: np.ndarray  # [B,N,obs] observation after the action (final one if the episode ended)
    next_state: np.ndarray  # [B,state]
    rewards: np.ndarray  # [B,N] each agent's own reward
    reward: np.ndarray  # [B] team reward: the mean of rewards
    terminated: np.ndarray  # [B] bool: the episode ended for good (no bootstrapping)
    truncated: np.ndarray  # [B] bool: the episode hit its limit (bootstrap)
    obs: np.ndarray  # [B,N,obs] observation to act on next (first of a new episode if reset)
    state: np.ndarray  # [B,state]
    avail: np.ndarray | None  # [B,N,A] available actions for the next step (discrete tasks)
    next_avail: np.ndarray | None  # [B,N,A] available actions after the step (before reset)
    episode_return: np.ndarray  # [B] return of the episode that ended here, NaN elsewhere
    won: np.ndarray  # [B] bool: the episode that ended here was won (SMAC); False elsewhere


def spec_of(env: ParallelEnv, episode_limit: int) -> EnvSpec:
    """Read a ParallelEnv's spaces into an EnvSpec (all agents must share one action space)."""
    agents = list(env.possible_agents)
    act_spaces = [env.action_space(a) for a in agents]
    first = act_spaces[0]
    if any(s != first for s in act_spaces):
        raise ValueError("batched wrapper: agents must share one action space")
    obs_dim = max(int(np.prod(env.observation_space(a).shape)) for a in agents)
    state_dim = int(np.prod(env.state_space.shape))
    wins = bool(env.metadata.get("reports_wins", False))
    if isinstance(first, spaces.Discrete):
        return EnvSpec(
            len(agents), obs_dim, state_dim, True, int(first.n), (), (), episode_limit, wins
        )
    return EnvSpec(
        len(agents),
        obs_dim,
        state_dim,
        False,
        int(np.prod(first.shape)),
        tuple(float(x) for x in first.low.ravel()),
        tuple(float(x) for x in first.high.ravel()),
        episode_limit,
        wins,
    )


class BatchedEnv:
    """B independent copies stepped in lockstep, with automatic reset."""

    def __init__(self, factory: Callable[[], ParallelEnv], n_copies: int, episode_limit: int):
        if n_copies < 1:
            raise ValueError(f"batched wrapper: n_copies must be >= 1, got {n_copies}")
        self.envs = [factory() for _ in range(n_copies)]
        self.spec = spec_of(self.envs[0], episode_limit)
        self.agents = list(self.envs[0].possible_agents)
        self._index = {a: i for i, a in enumerate(self.agents)}  # agent name -> row of actions
        self._returns = np.zeros(n_copies)

    @property
    def n_copies(self) -> int:
        return len(self.envs)

    def reset(self, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Reset copy b with seeds[b]; later automatic resets continue each copy's own RNG."""
        if len(seeds) != self.n_copies:
            raise ValueError(f"batched wrapper: {len(seeds)} seeds for {self.n_copies} copies")
        firsts = [env.reset(seed=int(s)) for env, s in zip(self.envs, seeds)]
        self._returns[:] = 0.0
        obs = np.stack([self._obs(o) for o, _ in firsts])
        state = np.stack([self._state(env) for env in self.envs])
        return obs, state, self._avail([i for _, i in firsts])

    def step(self, actions: np.ndarray, active: np.ndarray | None = None) -> Step:
        """Step every copy with actions[b, n] (continuous vectors or discrete indices).

        Copies outside ``active`` (``[B]`` bool; all if None) are not stepped: they keep their
        state and generator, and their rows of the Step are zeros with no reward and no end."""
        B, N = self.n_copies, self.spec.n_agents
        next_obs = np.zeros((B, N, self.spec.obs_dim), np.float32)
        next_state = np.zeros((B, self.spec.state_dim), np.float32)
        obs, state = np.zeros_like(next_obs), np.zeros_like(next_state)
        rewards = np.zeros((B, N))
        terminated, truncated = np.zeros(B, bool), np.zeros(B, bool)
        episode_return, won = np.full(B, np.nan), np.zeros(B, bool)
        infos, step_infos = [], []
        for b, env in enumerate(self.envs):
            if active is not None and not active[b]:
                infos.append({})
                step_infos.append({})
                continue
            live = list(env.agents)
            o, r, term, trunc, info = env.step({a: actions[b, self._index[a]] for a in live})
            next_obs[b] = self._obs(o)
            next_state[b] = self._state(env)
            for a in live:
                rewards[b, self._index[a]] = r[a]
            self._returns[b] += rewards[b].mean()  # every agent acts until its episode ends
            step_infos.append(info)
            if env.agents:
                obs[b], state[b] = next_obs[b], next_state[b]
                infos.append(info)
                continue
            # The episode is over for every agent. A true end wins over a time limit hit in the
            # same step (a walker falling on the last cycle): only a pure time limit bootstraps.
            terminated[b] = any(term[a] for a in live)
            truncated[b] = not terminated[b]
            episode_return[b] = self._returns[b]
            won[b] = any(i.get("battle_won", False) for i in info.values())
            self._returns[b] = 0.0
            o, info = env.reset()
            obs[b], state[b] = self._obs(o), self._state(env)
            infos.append(info)
        return Step(
            next_obs,
            next_state,
            rewards,
            rewards.mean(axis=1),  # the team reward
            terminated,
            truncated,
            obs,
            state,
            self._avail(infos),
            self._avail(step_infos),
            episode_return,
            won,
        )

    def _obs(self, per_agent: dict) -> np.ndarray:
        out = np.zeros((self.spec.n_agents, self.spec.obs_dim), np.float32)
        for i, a in enumerate(self.agents):
            if a in per_agent:
                flat = np.asarray(per_agent[a], np.float32).ravel()
                out[i, : flat.size] = flat
        return out

    def _state(self, env: ParallelEnv) -> np.ndarray:
        return np.asarray(env.state(), np.float32).ravel()

    def _avail(self, infos: list[dict]) -> np.ndarray | None:
        if not self.spec.discrete:
            return None
        out = np.ones((len(infos), self.spec.n_agents, self.spec.action_dim), np.float32)
        for b, info in enumerate(infos):
            for i, a in enumerate(self.agents):
                mask = info.get(a, {}).get("action_mask")
                if mask is not None:
                    out[b, i] = mask
        return out
