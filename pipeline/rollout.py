"""The loops that join a learner to a batched environment: off-policy training of all seeds in
lockstep, and deterministic evaluation episodes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from algorithms.replay import SeedReplay
from algorithms.seeding import SeedStreams
from envs import BatchedEnv


@dataclass(frozen=True)
class Budget:
    """A profile of params.yaml: how long to train and how often to draw the learning curve."""

    env_steps: int  # environment steps per seed
    curve_interval: int  # env steps between learning-curve points
    curve_episodes: int  # deterministic episodes per learning-curve point


def evaluate(
    algo,
    env: BatchedEnv,
    n_seeds: int,
    env_seeds: Sequence[int],
    latent: str = "zero",
    latent_noise: SeedStreams | None = None,
) -> np.ndarray:
    """Returns ``[S, E]``: one episode per (seed, env seed) with the deterministic policy.

    ``env`` holds ``S * E`` copies; copy ``s * E + e`` plays env seed ``env_seeds[e]`` with seed
    s's policy, so every seed meets the same episodes.
    """
    E = len(env_seeds)
    if env.n_copies != n_seeds * E:
        raise ValueError(f"evaluation: {env.n_copies} copies for {n_seeds} seeds x {E} episodes")
    obs, state, _ = env.reset([int(s) for _ in range(n_seeds) for s in env_seeds])
    returns = np.full(n_seeds * E, np.nan)
    for _ in range(env.spec.episode_limit):
        action = algo.act(
            torch.from_numpy(obs).unflatten(0, (n_seeds, E)),
            torch.from_numpy(state).unflatten(0, (n_seeds, E)),
            explore=False,
            latent=latent,
            latent_noise=latent_noise,
        )
        step = env.step(action.flatten(0, 1).numpy())
        ended = np.isnan(returns) & ~np.isnan(step.episode_return)
        returns[ended] = step.episode_return[ended]
        if not np.isnan(returns).any():
            return returns.reshape(n_seeds, E)
        obs, state = step.obs, step.state
    raise RuntimeError(
        f"evaluation: an episode outlasted the episode limit {env.spec.episode_limit}"
    )


def train_off_policy(
    algo,
    env: BatchedEnv,
    seeds: Sequence[int],
    budget: Budget,
    curve_env: BatchedEnv,
    curve_seeds: Sequence[int],
    on_curve: Callable[[int, np.ndarray, dict[str, np.ndarray]], None],
) -> None:
    """Algorithm 1's loop for all seeds at once: one env copy per seed, env seed = the seed.

    ``on_curve(step, returns[S], mean losses since the last point)`` is called at step 0 and
    every ``budget.curve_interval`` steps with the deterministic policy's mean return.
    """
    sched, spec, S = algo.settings, env.spec, len(seeds)
    replay = SeedReplay(
        seeds,
        min(sched.replay_size, budget.env_steps),
        {
            "obs": (spec.n_agents, spec.obs_dim),
            "state": (spec.state_dim,),
            "action": (spec.n_agents, spec.action_dim),
            "reward": (),
            "next_obs": (spec.n_agents, spec.obs_dim),
            "next_state": (spec.state_dim,),
            "terminated": (),
        },
    )
    losses: dict[str, list[torch.Tensor]] = {}

    def curve_point(step: int) -> None:
        returns = evaluate(algo, curve_env, S, curve_seeds).mean(1)
        on_curve(step, returns, {k: torch.stack(v).mean(0).numpy() for k, v in losses.items()})
        losses.clear()

    obs, state, _ = env.reset(list(seeds))
    curve_point(0)
    for step in range(1, budget.env_steps + 1):
        action = algo.act(
            torch.from_numpy(obs).unsqueeze(1), torch.from_numpy(state).unsqueeze(1), explore=True
        ).squeeze(1)
        out = env.step(action.numpy())
        replay.add(
            obs=torch.from_numpy(obs),
            state=torch.from_numpy(state),
            action=action,
            reward=torch.from_numpy(out.reward),
            next_obs=torch.from_numpy(out.next_obs),
            next_state=torch.from_numpy(out.next_state),
            terminated=torch.from_numpy(out.terminated),
        )
        obs, state = out.obs, out.state
        if step >= sched.learning_starts and step % sched.update_every == 0:
            for _ in range(sched.gradient_steps):
                for name, value in algo.update(replay.sample(sched.batch_size)).items():
                    losses.setdefault(name, []).append(value)
            algo.sync_targets()
        if step % budget.curve_interval == 0:
            curve_point(step)
