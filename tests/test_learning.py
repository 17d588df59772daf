"""The learner solves a tiny task: on IAC's Simple World the optimum is the rewarding bump's
centre [4, 3] (reward +10), and the punishing bump at [-6, -6] must be avoided."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from algorithms.vm3ac import VM3AC, VM3ACSettings
from pipeline.rollout import Budget, train_off_policy


@pytest.mark.parametrize("beta,z_dim", [(0.05, 2), (0.0, 0)], ids=["vm3ac", "ma_ac"])
def test_vm3ac_finds_the_rewarding_bump_of_simple_world(beta, z_dim):
    seeds = [0, 1, 2]
    settings = VM3ACSettings(
        batch_size=64, replay_size=2000, learning_starts=100, update_every=1, gradient_steps=1,
        beta=beta, z_dim=z_dim, q_sigma=1.0, hidden=(32, 32), gamma=0.95, tau=0.05,
        lr_actor=3e-3, lr_critic=3e-3, log_std_min=-5.0, log_std_max=1.0,
    )  # fmt: skip
    env = envs.make_batched("simple_world", len(seeds))
    algo = VM3AC(env.spec, seeds, settings)
    curve = []
    train_off_policy(algo, env, seeds, Budget(600, 600, 1), envs.make_batched("simple_world", 3),
                     [0], lambda step, returns, losses: curve.append(returns))  # fmt: skip
    assert (curve[0] < 5).all(), "the untrained policy should not already sit on the bump"
    assert (curve[-1] > 9).all(), curve[-1]  # +10 at the centre
    mean_action = algo.act(torch.ones(3, 1, 2, 1), None, explore=False).squeeze(1).squeeze(-1)
    np.testing.assert_allclose(mean_action.numpy(), np.tile([4.0, 3.0], (3, 1)), atol=0.6)
