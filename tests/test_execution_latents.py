"""z at execution (VM3-AC Table 1): ``shared_seed`` acts exactly as ``sampled`` without
communication, ``independent`` does not share, ``zero`` feeds z = 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_vm3ac_losses import make_vm3ac

import envs
from algorithms.components.execution_latents import EpisodeLatents
from algorithms.components.seeding import SeedStreams
from algorithms.learners.vm3ac import VM3AC
from pipeline.runtime.loops import evaluate

SEEDS = [0, 3]


def draws(mode: str, steps: int = 3) -> torch.Tensor:
    latents = EpisodeLatents(mode, SeedStreams(SEEDS, "execution"), 4, 3, 2)
    return torch.stack([latents.draw() for _ in range(steps)])  # [T, S, E, N, z]


def test_shared_seed_draws_what_the_central_generator_draws():
    sampled, shared = draws("sampled"), draws("shared_seed")
    assert torch.equal(sampled, shared)
    assert torch.equal(shared, shared[..., :1, :].expand_as(shared))  # every agent the same z
    assert not torch.equal(sampled[0], sampled[1])  # a new z each step
    assert not torch.equal(sampled[:, :, 0], sampled[:, :, 1])  # and each episode its own


def test_independent_agents_draw_apart():
    independent = draws("independent")
    assert not torch.equal(independent[..., 0, :], independent[..., 1, :])
    assert independent.std() > 0.5


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="latent mode: 'central'"):
        EpisodeLatents("central", SeedStreams(SEEDS, "execution"), 4, 3, 2)


def vm3ac_on_a_task():
    env = envs.make_batched("cooperative_navigation", len(SEEDS) * 2, N=3, max_cycles=5)
    algo = make_vm3ac(z_dim=3)
    spec = env.spec
    algo = VM3AC(spec, SEEDS, algo.settings)
    return algo, env


def test_modes_on_episodes():
    algo, env = vm3ac_on_a_task()
    returns = {m: evaluate(algo, env, SEEDS, [5, 6], m).returns for m in VM3AC.execution_modes(algo.settings)}
    np.testing.assert_array_equal(returns["shared_seed"], returns["sampled"])
    assert not np.array_equal(returns["independent"], returns["sampled"])
    assert not np.array_equal(returns["zero"], returns["sampled"])


def test_zero_feeds_zero(monkeypatch):
    algo, env = vm3ac_on_a_task()
    seen = []
    forward = type(algo.actor).forward

    def spy(self, obs, z, eps):
        seen.append(z.clone())
        return forward(self, obs, z, eps)

    monkeypatch.setattr(type(algo.actor), "forward", spy)
    evaluate(algo, env, SEEDS, [5, 6], "zero")
    assert seen and all(torch.equal(z, torch.zeros_like(z)) for z in seen)
    seen.clear()
    evaluate(algo, env, SEEDS, [5, 6], "sampled")
    assert seen and all(z.abs().sum() > 0 for z in seen)
