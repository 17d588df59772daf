"""Two fixed policies' returns on a task, the levels a learning curve is read against where no
independent curve of the learners exists (issue 28: cooperative navigation N=3).

Not a timing and not a reference implementation: context for the figures, drawn as grey lines
on the harness figures' panels of these tasks (pipeline/design/task_levels.py).

- ``random``: every agent draws each action dimension uniformly from its action box.
- ``scripted`` (cooperative navigation only): every agent computes, from what it observes, the
  assignment of agents to landmarks with the least total distance (all N! of them: the agents
  agree on it, as each sees every agent and landmark), then pushes towards its landmark in
  proportion to the remaining offset, damped by its own velocity. A hand-made level, not an
  optimum: a learner may beat it.

Each level is the mean return (the episode's sum of the shared reward, the y-axis of the
figures) over ``--episodes`` episodes on the env seeds the evaluation uses (params.yaml
``evaluation.env_seed_start`` on), with its standard error.

    python -m benchmarks.task_levels [--tasks cooperative_navigation_n3] [--episodes 100]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import yaml

import envs.registry as registry
from benchmarks.measured import merge
from pipeline.design.task_levels import LEVELS

TABLE = Path(LEVELS)
RANDOM_SEED = 0  # the random policy's own generator


def _navigation_action(obs: np.ndarray, n: int, gain: float = 4.0, damping: float = 0.5) -> np.ndarray:
    """The scripted cooperative-navigation action from one agent's observation (mpe2
    simple_spread: own velocity, own position, landmarks relative to it, other agents relative
    to it, communication) for the action box [no-op, +x, -x, +y, -y] in [0, 1]."""
    vel, own = obs[0:2], obs[2:4]
    landmarks = own + obs[4 : 4 + 2 * n].reshape(n, 2)
    others = own + obs[4 + 2 * n : 4 + 2 * n + 2 * (n - 1)].reshape(n - 1, 2)
    positions = np.vstack([own[None], others])
    # the same order on every agent (by position), so all agents pick one assignment
    order = np.lexsort((positions[:, 1], positions[:, 0]))
    me = int(np.flatnonzero(order == 0)[0])
    ordered = positions[order]
    best = min(
        itertools.permutations(range(n)),
        key=lambda perm: sum(np.linalg.norm(ordered[i] - landmarks[perm[i]]) for i in range(n)),
    )
    push = np.clip(gain * (landmarks[best[me]] - own - damping * vel), -1.0, 1.0)
    return np.array([0.0, max(push[0], 0), max(-push[0], 0), max(push[1], 0), max(-push[1], 0)], dtype=np.float32)


SCRIPTED = {"cooperative_navigation": lambda obs, kwargs: _navigation_action(obs, kwargs["N"])}


def level(task: dict, policy: str, episodes: int, seed_start: int) -> dict:
    env = registry.make(task["id"], **task.get("kwargs", {}))
    rng = np.random.default_rng(RANDOM_SEED)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed_start + episode)
        first, total = env.possible_agents[0], 0.0
        while env.agents:
            if policy == "random":
                actions = {
                    a: rng.uniform(env.action_space(a).low, env.action_space(a).high).astype(np.float32)
                    for a in env.agents
                }
            else:
                actions = {a: SCRIPTED[task["id"]](obs[a], task.get("kwargs", {})) for a in env.agents}
            obs, rewards, _, _, _ = env.step(actions)
            total += rewards.get(first, 0.0)  # shared reward: every agent's is the same
        returns.append(total)
    env.close()
    values = np.asarray(returns)
    return {
        "mean_return": round(float(values.mean()), 3),
        "standard_error": round(float(values.std(ddof=1) / np.sqrt(len(values))), 3),
        "episodes": episodes,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["cooperative_navigation_n3"])
    parser.add_argument("--episodes", type=int, default=100)
    args = parser.parse_args(argv)
    params = yaml.safe_load(open("params.yaml"))
    seed_start = params["evaluation"]["env_seed_start"]
    for name in args.tasks:
        if name not in params["tasks"]:
            raise SystemExit(f"task_levels: {name} is not a task of params.yaml")
        task = params["tasks"][name]
        policies = ["random", *(["scripted"] if task["id"] in SCRIPTED else [])]
        row = {
            "task": {"id": task["id"], "kwargs": task.get("kwargs", {})},
            "env_seeds": f"{seed_start} to {seed_start + args.episodes - 1}",
            **{p: level(task, p, args.episodes, seed_start) for p in policies},
        }
        merge(TABLE, name, row)
        print(name, {p: row[p]["mean_return"] for p in policies})


if __name__ == "__main__":
    main()
