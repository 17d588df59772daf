"""VM3-AC's predator-prey (VM3-AC §6, §6.1 Fig. 6): a new mpe2 scenario, N = 2, 3, 4 agents.

What the paper fixes: agents start at the centre of the map, several preys are scattered (drawn
as black squares), and a prey is caught only when at least two agents catch it together, so four
agents "should spread out in groups of two" (§6.1). Everything else is a harness choice, set so
that a decent policy's episode return (the mean of the agents' rewards, VM3-AC Fig. 3) is in the
hundreds, as VM3-AC Table 1 reports 413 / 734 / 1123 for N = 2 / 3 / 4:
- preys are static (the paper's squares are drawn still) and are scattered U(-1,1)^2 like MPE
  landmarks; a caught prey reappears at once at a new U(-1,1)^2 position;
- agents are MPE simple_tag predators (size 0.075, accel 3, max speed 1) that do not push each
  other (collide=False), so that starting together at the centre is physically possible;
- each agent touching a prey (centre distance < agent size + prey size) counts; a prey touched
  by at least ``agents_to_catch`` agents in the same step is caught, and every agent receives
  ``catch_reward`` per caught prey (shared team reward; no shaping).
Observation: own velocity, own position, every prey's relative position, the other agents'
relative positions and velocities. Actions: mpe2 continuous, Box(0, 1, (5,)).
"""

from __future__ import annotations

import numpy as np
from mpe2._mpe_utils.core import Agent, Landmark, World
from mpe2._mpe_utils.scenario import BaseScenario
from mpe2._mpe_utils.simple_env import SimpleEnv, make_env
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_wrapper_fn

from envs.particle_physics import check_physics, with_physics


class CatchWorld(World):
    """An MPE world that resolves catches right after the physics of each step."""

    def __init__(self, resolve_catches):
        super().__init__()
        self.resolve_catches = resolve_catches
        self.caught = 0  # preys caught in the last step
        self.np_random: np.random.Generator | None = None

    def step(self) -> None:
        super().step()
        self.caught = self.resolve_catches(self)


class Scenario(BaseScenario):
    def __init__(
        self,
        N,
        num_preys,
        agents_to_catch,
        catch_reward,
        agent_size,
        agent_accel,
        agent_max_speed,
        prey_size,
        start_radius,
        prey_range,
    ):
        self.N, self.num_preys, self.agents_to_catch = N, num_preys, agents_to_catch
        self.catch_reward = catch_reward
        self.agent_size, self.agent_accel, self.agent_max_speed = (
            agent_size,
            agent_accel,
            agent_max_speed,
        )
        self.prey_size, self.start_radius, self.prey_range = prey_size, start_radius, prey_range

    def make_world(self) -> CatchWorld:
        world = CatchWorld(self.resolve_catches)
        world.dim_c = 2
        world.agents = [Agent() for _ in range(self.N)]
        for i, agent in enumerate(world.agents):
            agent.name = f"agent_{i}"
            agent.collide = False  # agents overlap freely (start at the centre together)
            agent.silent = True
            agent.size, agent.accel = self.agent_size, self.agent_accel
            agent.max_speed = self.agent_max_speed
            agent.color = np.array([0.35, 0.35, 0.85])
        world.landmarks = [Landmark() for _ in range(self.num_preys)]
        for i, prey in enumerate(world.landmarks):
            prey.name = f"prey_{i}"
            prey.collide = False
            prey.movable = False
            prey.size = self.prey_size
            prey.color = np.array([0.0, 0.0, 0.0])  # VM3-AC Fig. 6: black
        return world

    def reset_world(self, world: CatchWorld, np_random: np.random.Generator) -> None:
        world.np_random = np_random  # respawns draw from the env's seeded generator
        world.caught = 0
        for agent in world.agents:
            agent.state.p_pos = np_random.uniform(-self.start_radius, self.start_radius, 2)
            agent.state.p_vel = np.zeros(world.dim_p)
            agent.state.c = np.zeros(world.dim_c)
        for prey in world.landmarks:
            prey.state.p_pos = np_random.uniform(-self.prey_range, self.prey_range, 2)
            prey.state.p_vel = np.zeros(world.dim_p)

    def touching(self, agent: Agent, prey: Landmark) -> bool:
        return np.linalg.norm(agent.state.p_pos - prey.state.p_pos) < agent.size + prey.size

    def resolve_catches(self, world: CatchWorld) -> int:
        caught = 0
        for prey in world.landmarks:
            if sum(self.touching(a, prey) for a in world.agents) >= self.agents_to_catch:
                caught += 1
                prey.state.p_pos = world.np_random.uniform(-self.prey_range, self.prey_range, 2)
        return caught

    def reward(self, agent: Agent, world: CatchWorld) -> float:
        return self.catch_reward * world.caught

    def observation(self, agent: Agent, world: CatchWorld) -> np.ndarray:
        others = [o for o in world.agents if o is not agent]
        return np.concatenate(
            [agent.state.p_vel, agent.state.p_pos]
            + [p.state.p_pos - agent.state.p_pos for p in world.landmarks]
            + [o.state.p_pos - agent.state.p_pos for o in others]
            + [o.state.p_vel for o in others]
        )


class PredatorPreyEnv(SimpleEnv):
    def __init__(self, scenario: Scenario, max_cycles: int, render_mode: str | None = None):
        super().__init__(
            scenario, scenario.make_world(), max_cycles, render_mode, continuous_actions=True
        )
        self.metadata = {**SimpleEnv.metadata, "name": "vm3ac_predator_prey"}


_parallel_env = parallel_wrapper_fn(make_env(PredatorPreyEnv))


def make(
    N: int = 2,  # VM3-AC §6: N = 2, 3, 4
    num_preys: int = 4,  # harness choice: two pairs of N=4 each have a prey and spares remain
    agents_to_catch: int = 2,  # VM3-AC §6.1
    # harness choice: a scripted pair (PD control toward the nearest prey) catches about 12
    # preys per 100 steps, so +30 puts returns in VM3-AC Table 1's range (~360 for N=2 and N=3,
    # ~660 for N=4 with the scripted policy; 413 / 734 / 1123 reported).
    catch_reward: float = 30.0,
    agent_size: float = 0.075,  # MPE simple_tag predator
    agent_accel: float = 3.0,  # MPE simple_tag predator
    agent_max_speed: float = 1.0,  # MPE simple_tag predator
    prey_size: float = 0.05,  # MPE simple_tag prey
    start_radius: float = 0.05,  # harness choice: agents start U(-r, r)^2 around the centre
    prey_range: float = 1.0,  # MPE: entities scattered U(-1, 1)^2
    max_cycles: int = 100,  # harness choice (IAC official code / MAAC length)
    physics: str = "original",  # envs/particle_physics.py: the papers' MPE integration order
) -> ParallelEnv:
    """N agents, obs (4 + 2*num_preys + 4*(N-1),), Box(0, 1, (5,)) actions."""
    if N < max(2, agents_to_catch):
        raise ValueError(
            f"vm3ac_predator_prey: N={N} is too few agents, a prey needs "
            f"{max(2, agents_to_catch)} agents together to be caught"
        )
    if num_preys < 1:
        raise ValueError(f"vm3ac_predator_prey: num_preys must be >= 1, got {num_preys}")
    scenario = Scenario(
        N,
        num_preys,
        agents_to_catch,
        catch_reward,
        agent_size,
        agent_accel,
        agent_max_speed,
        prey_size,
        start_radius,
        prey_range,
    )
    check_physics("vm3ac_predator_prey", physics)
    return with_physics(_parallel_env(scenario=scenario, max_cycles=max_cycles), physics)


def episode_limit(max_cycles: int = 100, **_) -> int:
    return max_cycles


def positions(env: ParallelEnv) -> tuple[np.ndarray, np.ndarray]:
    """Where the agents ``[N, 2]`` and the preys ``[num_preys, 2]`` of one copy are (Fig. 6)."""
    world = env.unwrapped.world
    agents = np.stack([a.state.p_pos for a in world.agents])
    return agents, np.stack([p.state.p_pos for p in world.landmarks])
