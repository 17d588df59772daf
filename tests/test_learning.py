"""Every continuous learner solves a tiny task with a known optimum: Simple World (IAC §5.1's
one-step game) with one reward distribution, N([4, 3], 5 I) scaled to peak at +10, so the best
joint action is [4, 3]. Each learner runs with its params.yaml settings, shrunk only in size and
schedule (small nets and batches, an update after every step) so that it fits in seconds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import envs
from algorithms import learner
from pipeline.design.budget import Budget
from pipeline.design.params import load_runs
from pipeline.runtime.loops import evaluate, train

SEEDS = [0, 1, 2]
ONE_BUMP = dict(means=((4.0, 3.0),), variances=(5.0,), scale=10 * 2 * math.pi * 5.0)  # peak +10
SMALL = dict(
    batch_size=64, replay_size=2000, learning_starts=100, update_every=1, update_unit="step",
    gradient_steps=1, gradient_steps_per="phase", hidden=(32, 32),
)  # fmt: skip
# Per learner: what else differs from params.yaml, the env steps (= updates + 100) it gets, and
# the fraction of the optimum (+10) every seed must reach.
CASES = {
    "vm3ac": (dict(beta=0.05, z_dim=2, tau=0.05, lr_actor=3e-3, lr_critic=3e-3), 600, 0.9),
    "ma_ac": (dict(tau=0.05, lr_actor=3e-3, lr_critic=3e-3), 600, 0.9),
    "ma_sac": (dict(beta=0.05, tau=0.05, lr_actor=3e-3, lr_critic=3e-3), 600, 0.9),
    "maddpg": (dict(lr_actor=3e-3, lr_critic=3e-3, noise_std=0.3), 600, 0.9),
}


@pytest.mark.parametrize("algorithm", CASES)
def test_learner_finds_the_optimum_of_a_one_bump_simple_world(algorithm, monkeypatch):
    from conftest import REPO, simple_world_start

    monkeypatch.chdir(REPO)
    _, runs = load_runs()
    base = next(r.settings for r in runs.values() if r.algorithm == algorithm)
    family = next(r.family for r in runs.values() if r.algorithm == algorithm)
    changes, env_steps, fraction = CASES[algorithm]
    settings = dataclasses.replace(base, **SMALL, **changes)
    env = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    algo = learner(family)(env.spec, SEEDS, settings)
    probe = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    mode = type(algo).execution_modes(settings)[0]
    first = evaluate(algo, probe, SEEDS, [0], mode).returns[:, 0]
    train(algo, env, SEEDS, Budget(env_steps, env_steps, 1), lambda step, losses: None)
    last = evaluate(algo, probe, SEEDS, [0], mode).returns[:, 0]
    assert (first < 5).all(), "the untrained policy should not already sit on the bump"
    assert (last > 10 * fraction).all(), last
    obs, _ = simple_world_start(len(SEEDS))
    action, _ = algo.act(obs, None, None, None, mode, None)
    np.testing.assert_allclose(action.squeeze(1).squeeze(-1).numpy(), [[4.0, 3.0]] * 3, atol=0.6)
