"""MADDPG (algorithms/learners/maddpg.py): its losses on a small batch worked out by hand, the policy
gradient of agent i through its own action only, per-agent rewards, and the target updates."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import continuous_spec

from algorithms.learners.maddpg import MADDPG, MADDPGSettings

GAMMA, TAU, REG = 0.9, 0.25, 0.01
SPEC = continuous_spec(n_agents=2, obs_dim=1, state_dim=2)


def make_maddpg() -> MADDPG:
    settings = MADDPGSettings(
        batch_size=2, replay_size=10, learning_starts=0, update_every=1, update_unit="step",
        gradient_steps=1, gradient_steps_per="phase", env_copies=1, hidden=(4,), gamma=GAMMA,
        tau=TAU, lr_actor=1e-3, lr_critic=1e-3, noise_std=0.1, grad_clip=0.5, action_reg=REG,
    )  # fmt: skip
    return MADDPG(SPEC, [0], settings)


def constant_critic(critic, values) -> None:
    with torch.no_grad():
        critic.weights[-1].zero_()
        critic.biases[-1].copy_(torch.tensor(values).view(1, -1, 1, 1))


def constant_actor(actor, u) -> None:
    """Pre-activations u_i whatever the observation: a_i = tanh(u_i) on [-1, 1]."""
    with torch.no_grad():
        actor.net.layers[-1].weight.zero_()
        actor.net.layers[-1].bias.copy_(torch.tensor(u).view(1, -1, 1, 1))


BATCH = {
    "obs": torch.tensor([[[[0.1], [0.2]], [[0.3], [0.4]]]]),  # [S=1, B=2, N=2, obs=1]
    "next_obs": torch.tensor([[[[0.5], [0.6]], [[0.7], [0.8]]]]),
    "action": torch.tensor([[[[0.2], [-0.6]], [[-0.4], [0.9]]]]),  # [S, B, N, A]
    "rewards": torch.tensor([[[1.0, -1.0], [2.0, 0.5]]]),  # each agent's own reward
    "terminated": torch.tensor([[False, True]]),
}


def test_losses_follow_the_paper_with_each_agents_own_reward():
    algo = make_maddpg()
    # The actor loss is taken after the critic's step (Algorithm 1); with a tiny critic step
    # the critic stays the constant written below.
    algo.critic_opt.lr = 1e-12
    constant_critic(algo.critic, [1.0, -0.5])  # Q_1, Q_2
    constant_critic(algo.critic_target, [3.0, 2.0])  # Q'_1, Q'_2
    constant_actor(algo.actor, [0.5, -1.0])
    losses = algo.update(BATCH)
    expected_q = 0.0
    for i, (q, q_next) in enumerate([(1.0, 3.0), (-0.5, 2.0)]):
        for b in range(2):
            not_done = 1.0 - float(BATCH["terminated"][0, b])
            y = BATCH["rewards"][0, b, i] + GAMMA * not_done * q_next  # y_i = r_i + gamma Q'_i
            expected_q += (q - y) ** 2 / 2  # mean over the batch, summed over agents
    torch.testing.assert_close(losses["loss_q"], torch.tensor([expected_q]))
    # Actor loss per agent: -Q_i(x, .., mu_i(o_i), ..) + reg * u_i^2 (the critic is constant).
    expected_pi = (-1.0 + REG * 0.5**2) + (0.5 + REG * 1.0**2)
    torch.testing.assert_close(losses["loss_pi"], torch.tensor([expected_pi]))


def test_agent_i_moves_only_its_own_action_in_its_critic():
    """The actor loss's gradient equals eq. 6 written out: Q_i evaluated on the joint action
    with a_i = mu_i(o_i) and the other actions from the batch, agent by agent."""
    algo = make_maddpg()
    x = BATCH["obs"].flatten(2)
    mu, u = algo.actor(BATCH["obs"].transpose(1, 2))
    reference = 0.0
    for i in range(2):
        joint = BATCH["action"].clone()
        joint[:, :, i] = mu[:, i]
        reference = reference + (-algo.critic(x, joint, head=0)[:, i]).mean()
    reference = reference + (REG * u.pow(2).mean(-1)).mean(2).sum()
    want = torch.autograd.grad(reference.sum(), list(algo.actor.parameters()))
    mu, u = algo.actor(BATCH["obs"].transpose(1, 2))
    q_pi = algo.critic(x, BATCH["action"], own=mu, head=0)
    got_loss = (-q_pi + REG * u.pow(2).mean(-1)).mean(2).sum(1)
    got = torch.autograd.grad(got_loss.sum(), list(algo.actor.parameters()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_targets_follow_by_polyak_after_every_update():
    algo = make_maddpg()
    before = [p.clone() for p in algo.critic_target.parameters()]
    algo.update(BATCH)
    for old, new, online in zip(before, algo.critic_target.parameters(), algo.critic.parameters()):
        torch.testing.assert_close(new, old + TAU * (online - old))


def test_exploration_noise_stays_in_the_bounds_and_evaluation_is_the_mean():
    algo = make_maddpg()
    constant_actor(algo.actor, [10.0, -10.0])  # mu at the bounds: noise would push it out
    obs = torch.zeros(1, 50, 2, 1)
    explored, _ = algo.act(obs, None, None, None, "explore")
    assert explored.abs().max() <= 1.0 and explored.std() > 0
    mean, _ = algo.act(obs, None, None, None, "deterministic")
    torch.testing.assert_close(mean[0, 0, :, 0], torch.tensor([math.tanh(10.0), math.tanh(-10.0)]))


@pytest.mark.parametrize("field,value", [("tau", 0.0), ("noise_std", -1.0), ("grad_clip", 0)])
def test_bad_settings_name_the_field(field, value):
    good = make_maddpg().settings
    with pytest.raises(ValueError, match=f"^{field}: "):
        MADDPGSettings(**{**good.__dict__, field: value})
