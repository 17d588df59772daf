"""IAC's predator-prey and PO-predator-prey (IAC §5.1) on mpe2's simple_tag world.

Values are those of IAC's official code (YiqinYang/IAC, on MPE simple_tag): 3 predators chase
1 faster prey among 2 static landmarks. The prey is not a learner: it is a scripted MPE agent
whose movement force components are U(-1, 1) each step (times its acceleration), drawn from the
environment's own seeded generator, so a seed fixes the prey's walk. Only predators are
PettingZoo agents. Every predator receives ``catch_reward`` for each predator-prey contact
(IAC §5.1: "a shared reward +10"). Actions follow IAC's official code: five continuous values
in [-1, 1] (``action_low = -1``; mpe2's own range is [0, 1]) with the original MPE's force
(a1 - a2, a3 - a4) * accel (``environment.py`` lines 174-175), so a force per axis spans twice
what mpe2's range allows; the physics is the original MPE's (envs/particle_physics.py).

Observation (simple_tag layout): own velocity, own position, landmarks' relative positions,
other agents' relative positions (other predators, then the prey), the prey's velocity.
PO variant (IAC §5.1 "can only receive the information within the distance of 0.8"): an entity
whose centre is farther than ``obs_radius`` from the observer is zeroed (its relative position,
and for the prey also its velocity); at exactly ``obs_radius`` it is still seen.
"""

from __future__ import annotations

import functools

import numpy as np
from gymnasium import spaces
from mpe2._mpe_utils.core import Action
from mpe2._mpe_utils.simple_env import SimpleEnv, make_env
from mpe2.simple_tag.simple_tag import Scenario as TagScenario
from pettingzoo import ParallelEnv
from pettingzoo.utils.agent_selector import AgentSelector
from pettingzoo.utils.conversions import parallel_wrapper_fn

from envs.particle_physics import check_action_low, check_physics, with_physics


class Scenario(TagScenario):
    """simple_tag with a random-walk prey, a shared catch reward and optional sight radius."""

    def __init__(
        self,
        num_predators,
        num_landmarks,
        predator_size,
        predator_accel,
        predator_max_speed,
        prey_size,
        prey_accel,
        prey_max_speed,
        landmark_size,
        catch_reward,
        obs_radius,
    ):
        super().__init__()
        self.num_predators, self.num_landmarks = num_predators, num_landmarks
        self.predator = (predator_size, predator_accel, predator_max_speed)
        self.prey = (prey_size, prey_accel, prey_max_speed)
        self.landmark_size = landmark_size
        self.catch_reward = catch_reward
        self.obs_radius = obs_radius

    def make_world(self):
        world = super().make_world(1, self.num_predators, self.num_landmarks)
        for agent in world.agents:
            agent.size, agent.accel, agent.max_speed = (
                self.predator if agent.adversary else self.prey
            )
            if not agent.adversary:
                agent.action_callback = self.random_prey_action
        for landmark in world.landmarks:
            landmark.size = self.landmark_size
        return world

    def reset_world(self, world, np_random) -> None:
        # simple_tag's reset: agents U(-1,1)^2, landmarks U(-0.9,0.9)^2 (as IAC's code).
        super().reset_world(world, np_random)
        world.np_random = np_random  # the env's seeded generator drives the prey

    def random_prey_action(self, agent, world) -> Action:
        action = Action()
        action.u = world.np_random.uniform(-1.0, 1.0, world.dim_p) * agent.accel
        action.c = np.zeros(world.dim_c)
        return action

    def reward(self, agent, world) -> float:
        contacts = sum(
            self.is_collision(prey, pred)
            for prey in self.good_agents(world)
            for pred in self.adversaries(world)
        )
        return self.catch_reward * contacts

    def observation(self, agent, world) -> np.ndarray:
        def seen(entity) -> bool:
            if self.obs_radius is None:
                return True
            # The official code's distance, so the cut at obs_radius is decided identically.
            distance = np.sqrt(np.sum(np.square(entity.state.p_pos - agent.state.p_pos)))
            return distance <= self.obs_radius

        def rel(entity) -> np.ndarray:
            return entity.state.p_pos - agent.state.p_pos if seen(entity) else np.zeros(2)

        others = [o for o in world.agents if o is not agent]
        velocities = [o.state.p_vel if seen(o) else np.zeros(2) for o in others if not o.adversary]
        return np.concatenate(
            [agent.state.p_vel, agent.state.p_pos]
            + [rel(lm) for lm in world.landmarks]
            + [rel(o) for o in others]
            + velocities
        )


class PredatorPreyEnv(SimpleEnv):
    """SimpleEnv whose scripted agents (the prey) act through the world, not through step()."""

    def __init__(self, scenario: Scenario, max_cycles: int, render_mode: str | None = None):
        world = scenario.make_world()
        super().__init__(scenario, world, max_cycles, render_mode, continuous_actions=True)
        self.metadata = {**SimpleEnv.metadata, "name": "iac_predator_prey"}
        learners = world.policy_agents
        # SimpleEnv indexes actions by the agent's place in world.agents: predators come first.
        assert all(world.agents[i] is a for i, a in enumerate(learners))
        self.agents = [a.name for a in learners]
        self.possible_agents = self.agents[:]
        self._agent_selector = AgentSelector(self.agents)
        for a in world.scripted_agents:
            del self.action_spaces[a.name], self.observation_spaces[a.name]
        state_dim = sum(self.observation_spaces[a].shape[0] for a in self.agents)
        self.state_space = spaces.Box(
            -np.float32(np.inf), np.float32(np.inf), (state_dim,), np.float32
        )
        self.current_actions = [None] * self.num_agents

    def _execute_world_step(self) -> None:
        mdim = self.world.dim_p * 2 + 1
        for i, agent in enumerate(self.world.policy_agents):
            action = self.current_actions[i]
            self._set_action([action[0:mdim]], agent, self.action_spaces[agent.name])
        self.world.step()  # calls the prey's action_callback first
        for agent in self.world.policy_agents:
            self.rewards[agent.name] = float(self.scenario.reward(agent, self.world))


_env = make_env(PredatorPreyEnv)
_parallel_env = parallel_wrapper_fn(_env)


def make(
    num_predators: int = 3,  # IAC §5.1
    num_landmarks: int = 2,  # IAC §5.1
    predator_size: float = 0.075,  # IAC official code (MPE simple_tag)
    predator_accel: float = 3.0,  # IAC official code (MPE simple_tag)
    predator_max_speed: float = 1.0,  # IAC official code (MPE simple_tag)
    prey_size: float = 0.05,  # IAC official code (MPE simple_tag)
    prey_accel: float = 4.0,  # IAC official code (MPE simple_tag)
    prey_max_speed: float = 1.3,  # IAC official code (MPE simple_tag)
    landmark_size: float = 0.2,  # IAC official code (MPE simple_tag)
    catch_reward: float = 10.0,  # IAC §5.1
    max_cycles: int = 100,  # IAC official code
    obs_radius: float | None = None,  # None: fully observed (IAC §5.1 predator-prey)
    physics: str = "original",  # envs/particle_physics.py: the MPE the official code imports
    action_low: float = -1.0,  # IAC official code: actions in [-1, 1] (mpe2: 0)
) -> ParallelEnv:
    """Predators only are agents: obs (4 + 2*landmarks + 2*predators + 2,), actions
    Box(action_low, 1, (5,))."""
    if num_predators < 1:
        raise ValueError(f"iac_predator_prey: num_predators must be >= 1, got {num_predators}")
    scenario = Scenario(
        num_predators,
        num_landmarks,
        predator_size,
        predator_accel,
        predator_max_speed,
        prey_size,
        prey_accel,
        prey_max_speed,
        landmark_size,
        catch_reward,
        obs_radius,
    )
    check_physics("iac_predator_prey", physics)
    check_action_low("iac_predator_prey", action_low)
    env = _parallel_env(scenario=scenario, max_cycles=max_cycles)
    return with_physics(env, physics, action_low)


# PO-predator-prey (IAC §5.1): the same task seen within a radius of 0.8. A partial keeps
# ``make``'s signature, so the registry checks the same settings.
make_po = functools.partial(make, obs_radius=0.8)


def episode_limit(max_cycles: int = 100, **_) -> int:
    return max_cycles
