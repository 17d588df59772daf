"""Sparse SMAC (VM3-AC §6) on SMAX, as a PettingZoo ParallelEnv: maps 3m, 2s3z, 3s_vs_3z.

The agents are SMAC's allies (``ally_0`` ..), the enemies follow SMAX's heuristic AI (SMAC's
built-in AI). Each agent sees SMAX's unit-list observation, chooses one of SMAX's discrete
actions (four moves, stop, attack enemy k) under SMAX's availability mask, given as
``infos[agent]["action_mask"]``; ``state()`` is SMAX's world state.

Reward (team, shared by every agent): VM3-AC §6 makes SMAC sparse, "giving rewards when an ally
or an enemy dies and a time penalty", so a step pays
``enemy_death_reward * (enemies that died) - ally_death_penalty * (allies that died)
- time_penalty (+ win_reward on the winning step)``; deaths are read from the units' alive flags
before and after the step. Appendix G with the paper's values is not available; ours are
harness choices (see ``make``). ``reward="smax"`` gives SMAX's own dense reward instead
(``envs.smax_reward``): the published SMAC/SMAX results are on a dense reward.

Dead agents follow SMAC: an ally that dies stays in ``agents`` until the episode ends, with a
zero observation and only the no-op (SMAX's stop action) available, so every agent acts every
step and learners keep a fixed agent axis. The episode terminates when one side is wiped out
and is truncated (bootstrap) at the map's SMAC limit; a battle decided on the limit's step
terminates, as in SMAC. The last step's infos carry SMAC's ``battle_won``.

Seeding: ``reset(seed=s)`` starts the copy's key chain at ``jax.random.PRNGKey(s)`` (seeds are
read modulo 2**32); later resets without a seed continue that chain.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.smax_maps import smac_map
from envs.smax_reward import REWARDS, SmaxReward, SparseReward
from envs.uniform_spaces import UniformSpaces

WORLD_STATES = ("smac", "smax")  # the task setting `world_state`


class SparseSMAC(UniformSpaces, ParallelEnv):
    metadata = {
        "render_modes": [],
        "is_parallelizable": True,
        "name": "sparse_smac",
        "reports_wins": True,  # the last step's infos carry battle_won (EnvSpec.reports_wins)
    }

    def __init__(
        self,
        map_name: str,
        episode_limit: int,
        reward: SparseReward | SmaxReward,
        walls_cause_death: bool,
        world_state: str = "smac",
    ):
        if episode_limit < 1:
            raise ValueError(f"sparse_smac: episode_limit must be >= 1 step, got {episode_limit}")
        smac_map(map_name)  # an unknown map fails here, before JAX is imported
        from envs.smax_dynamics import dynamics  # JAX and JaxMARL load with the first SMAX env

        self.map_name, self.episode_limit, self.reward = map_name, episode_limit, reward
        self.world_state = world_state
        self.dynamics = dynamics(map_name, walls_cause_death)
        self._limit = np.int32(episode_limit)
        self.possible_agents = list(self.dynamics.agents)
        self.agents: list[str] = []
        self._obs_space = spaces.Box(-1.0, 1.0, (self.dynamics.obs_dim,), np.float32)
        self._act_space = spaces.Discrete(self.dynamics.n_actions)
        self.state_space = spaces.Box(-np.inf, np.inf, (self.dynamics.state_dim,), np.float32)
        self._key = None  # this copy's PRNG key chain (a jax key)
        self.smax_state = None  # SMAX's state (a pytree of device arrays) between steps
        self._world_state = None

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = self.dynamics.seed_key(seed)
        elif self._key is None:
            self._key = self.dynamics.seed_key(np.random.default_rng().integers(2**31))
        first = self.dynamics.reset(self._key)
        self._key, self.smax_state = first.key, first.state
        h = self.dynamics.to_host(first._replace(key=None, state=None))
        self._world_state = self.host_state(h.world_state)
        self.agents = self.possible_agents[:]
        return self._per_agent(h.obs), self._infos(h.avail)

    def step(self, actions: dict):
        # An agent left out of `actions` takes the no-op (what SMAC gives a dead unit).
        chosen = np.full(len(self.possible_agents), self.dynamics.noop, np.int32)
        for i, a in enumerate(self.possible_agents):
            if a in actions:
                chosen[i] = int(actions[a])
        t = self.dynamics.step(self._limit, self._key, self.smax_state, chosen)
        self._key, self.smax_state = t.key, t.state
        h = self.dynamics.to_host(t._replace(key=None, state=None))  # the rest stays on device
        self._world_state = self.host_state(h.world_state)
        term, trunc, won = bool(h.terminated), bool(h.truncated), bool(h.won)
        reward = float(self.reward(h))
        agents = self.agents
        infos = self._infos(h.avail)
        if term or trunc:
            self.agents = []
            for info in infos.values():
                info["battle_won"] = won
        return (
            self._per_agent(h.obs),
            {a: reward for a in agents},
            {a: term for a in agents},
            {a: trunc for a in agents},
            {a: infos[a] for a in agents},
        )

    def host_state(self, world_state: np.ndarray) -> np.ndarray:
        """The world state as the task's ``world_state`` setting gives it (``smac``: SMAC's scale)."""
        return self.dynamics.smac_state(world_state) if self.world_state == "smac" else world_state

    def _per_agent(self, obs: np.ndarray) -> dict:
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}

    def _infos(self, avail: np.ndarray) -> dict:
        masks = avail.astype(np.int8)  # gymnasium's Discrete.sample(mask) takes int8 masks
        return {a: {"action_mask": masks[i]} for i, a in enumerate(self.possible_agents)}

    def state(self) -> np.ndarray:
        return self._world_state

    def render(self) -> None:
        return None


def make(
    map_name: str = "3m",  # VM3-AC §6 / Fig. 4: 3m, 2s3z, 3s_vs_3z
    episode_limit: int | None = None,  # SMAC's limit for the map (60, 120, 150) when None
    enemy_death_reward: float = 1.0,  # harness choice: one unit of reward per enemy killed
    # harness choice: SMAC's ratio, an allied death costs reward_negative_scale (0.5) times the
    # reward_death_value an enemy death pays (SMAC: 10 x 0.5 against 10)
    ally_death_penalty: float = 0.5,
    time_penalty: float = 0.01,  # harness choice: a whole 60-150 step episode costs 0.6-1.5
    win_reward: float = 0.0,  # harness choice: §6 names only deaths and time; 0 = no bonus
    # "sparse" (VM3-AC §6, the four values above) or "smax": SMAX's own dense reward (JaxMARL's
    # SMAX baselines; the four values above are then unused)
    reward: str = "sparse",
    # "smax" only: a factor on SMAX's reward (JaxMARL's SMAX Q-learning baselines: 10, SMAC's scale)
    smax_reward_scale: float = 1.0,
    # "smac" (default): the world state (the critics' and mixers' input) on SMAC's scale, as the
    # papers' SMAC gives it (positions over the map's size, cooldowns over their maximum); "smax":
    # SMAX's own, raw positions up to 32 (envs.smax_dynamics.SMAXDynamics.smac_state)
    world_state: str = "smac",
    # SMAC (the paper's environment): map edges only block movement. SMAX's own default (True)
    # kills units that walk into a wall, a death SMAC does not have.
    walls_cause_death: bool = False,
) -> ParallelEnv:
    """Sparse SMAC on ``map_name``: Discrete actions with masks, SMAX unit-list observations."""
    check(map_name, episode_limit, reward=reward, smax_reward_scale=smax_reward_scale, world_state=world_state)
    limit = smac_map(map_name).episode_limit if episode_limit is None else episode_limit
    if reward == "smax":
        team_reward = SmaxReward(smax_reward_scale)
    else:
        team_reward = SparseReward(enemy_death_reward, ally_death_penalty, time_penalty, win_reward)
    return SparseSMAC(map_name, limit, team_reward, walls_cause_death, world_state)


def check(
    map_name: str = "3m",
    episode_limit: int | None = None,
    reward: str = "sparse",
    smax_reward_scale: float = 1.0,
    world_state: str = "smac",
    **_,
) -> None:
    """What ``make`` would reject, found without importing JAX."""
    known = smac_map(map_name)  # an unknown map is named here, whatever the limit says
    limit = known.episode_limit if episode_limit is None else episode_limit
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"sparse_smac: episode_limit must be >= 1 step, got {limit}")
    if reward not in REWARDS:
        raise ValueError(f"sparse_smac: reward must be one of {', '.join(REWARDS)}, got {reward!r}")
    scale = smax_reward_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"sparse_smac: smax_reward_scale must be a number > 0, got {scale!r}")
    if world_state not in WORLD_STATES:
        raise ValueError(f"sparse_smac: world_state must be one of {', '.join(WORLD_STATES)}, got {world_state!r}")


def episode_limit(map_name: str = "3m", episode_limit: int | None = None, **_) -> int:
    return smac_map(map_name).episode_limit if episode_limit is None else episode_limit
