"""LICA (algorithms/learners/lica.py): settings, the critic and actor losses by hand, the adaptive entropy
gradient, masks, per-seed independence, checkpoints, learning a matrix game, and SMAX 3m."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import hand_batch, random_batch

import envs
from algorithms.learners.lica import LICA, LICASettings
from algorithms.learners.on_policy import episodes, masked_mean
from algorithms.models import masked_categorical as mc
from envs import EnvSpec
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

pytestmark = pytest.mark.usefixtures("one_thread")

# The params.yaml entry (config/default.yaml + config/algs/lica.yaml of mzho7212/LICA).
OFFICIAL = dict(
    hidden=64, mixing_embed_dim=64, hypernet_layers=2, gamma=0.99, td_lambda=0.8, lr=0.0025,
    critic_lr=0.0005, grad_norm_clip=10.0, entropy_coef=0.06, target_update_interval=200,
    obs_last_action=True, obs_agent_id=True, batch_size=32, replay_size=32, learning_starts=0,
    update_every=1, update_unit="episode", gradient_steps=1, gradient_steps_per="phase",
    env_copies=32,
)
TINY = LICASettings(**{**OFFICIAL, **dict(
    batch_size=2, replay_size=2, env_copies=2, hidden=8, mixing_embed_dim=4, target_update_interval=3,
)})
SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 4)  # 3 agents, obs 5, state 4, 6 actions, limit 4


# ---- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("td_lambda", 1.5), ("gamma", 1.0), ("lr", 0.0), ("critic_lr", -1e-3), ("hidden", 0),
     ("mixing_embed_dim", 2.5), ("hypernet_layers", 3), ("grad_norm_clip", 0),
     ("entropy_coef", -0.1), ("target_update_interval", 0), ("obs_agent_id", "yes"),
     ("update_unit", "step"), ("gradient_steps_per", "env_step"), ("batch_size", 33),
     ("replay_size", 16)],
)
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: .*, got {value!r}$"):
        LICASettings(**{**OFFICIAL, field: value})


# ---- the losses by hand --------------------------------------------------------------------
GAMMA, LAMBDA, COEF = 0.5, 0.5, 0.06
W_ONLINE, B_ONLINE = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], 0.5  # per agent and action
W_TARGET, B_TARGET = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], 0.25


def constant() -> LICA:
    """2 agents, 3 actions, every weight zero: the actor's logits are 0 (pi uniform over the
    available actions). Critics with one hidden unit: W1(s) = w (a row per agent), b1 = 0,
    w_final = 1, b2 = b, so Q(s, p) = ReLU(sum_i,u p_i(u) w_i(u)) + b = sum p w + b."""
    settings = dataclasses.replace(TINY, gamma=GAMMA, td_lambda=LAMBDA, entropy_coef=COEF,
                                   mixing_embed_dim=1, target_update_interval=1000)
    algo = LICA(EnvSpec(2, 1, 1, True, 3, (), (), 2), [0], settings)
    with torch.no_grad():
        for p in algo.state_dict(keep_vars=True).values():
            if p.is_floating_point():
                p.zero_()
        for critic, w, b in ((algo.critic, W_ONLINE, B_ONLINE), (algo.target_critic, W_TARGET, B_TARGET)):
            critic.hyper_w1.layers[-1].bias.copy_(torch.tensor(w).view(1, 1, 1, 6))
            critic.hyper_w_final.layers[-1].bias.fill_(1.0)
            critic.hyper_b2.layers[-1].bias.fill_(b)
    return algo


def q(w, b, actions) -> float:
    return sum(w[i][u] for i, u in enumerate(actions)) + b


def test_critic_loss_matches_a_hand_computation():
    """conftest's hand_batch: episode 0 is cut by the limit after 2 steps, so its final row 2
    bootstraps from the target critic at the action pi draws there (the only available one
    of each agent: 2 and 0); episode 1 terminates after one step, then padding."""
    v0, v1, v2 = q(W_TARGET, B_TARGET, [1, 2]), q(W_TARGET, B_TARGET, [0, 0]), q(W_TARGET, B_TARGET, [2, 0])
    g1 = 2 + GAMMA * v2  # G = V on the row past the end
    g0 = 1 + GAMMA * ((1 - LAMBDA) * v1 + LAMBDA * g1)
    online = [q(W_ONLINE, B_ONLINE, [1, 2]), q(W_ONLINE, B_ONLINE, [0, 0]), q(W_ONLINE, B_ONLINE, [2, 1])]
    expected = sum((o - g) ** 2 for o, g in zip(online, [g0, g1, 4.0])) / 3
    algo = constant()
    out = algo.update(hand_batch(), None)
    assert v0 != v1  # the row's own action matters
    assert out["loss_q"].shape == (1,)
    assert out["loss_q"].item() == pytest.approx(expected, rel=1e-6)
    assert int(algo.updates[0]) == 1


def test_final_row_action_is_drawn_from_pi():
    """Where pi has a choice at the final row, the drawn action follows pi (uniform here over
    the 2 available actions) and every other row keeps the action taken."""
    algo = constant()
    batch = hand_batch()
    batch["avail"][0, 0, 2] = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    b = episodes(batch)
    log_pi = algo.log_pi(b)
    draws = torch.stack([algo.final_actions(b, log_pi, None)[0, 0, 2] for _ in range(400)])
    assert set(draws[:, 0].tolist()) == {0, 1} and set(draws[:, 1].tolist()) == {1, 2}
    assert abs(draws[:, 0].float().mean().item() - 0.5) < 0.1
    rows = algo.final_actions(b, log_pi, None)
    assert torch.equal(rows[0, 0, :2], b.action[0, 0, :2]) and torch.equal(rows[0, 1, :1], b.action[0, 1, :1])


def test_actor_loss_matches_a_hand_computation():
    """-Q(s, pi) - coef H / sg(H): pi uniform over the available actions, Q at the
    probabilities: ep 0 row 0 and ep 1 row 0 (all available) 2 + 5 + .5; ep 0 row 1 (agent 0:
    actions 0 and 2) (1 + 3) / 2 + 5 + .5. The regulariser's value is coef."""
    algo = constant()
    b = episodes(hand_batch())
    loss = algo.actor_loss(b, algo.log_pi(b))
    q_pi = (7.5 + 7.5 + 7.5) / 3
    assert loss.item() == pytest.approx(-q_pi - COEF, rel=1e-6)


def test_adaptive_entropy_gradient_is_coef_times_grad_log_entropy():
    """With a critic that ignores pi, the actor's gradient is -coef grad log H (H the mean
    entropy over filled rows and agents): the entropy's magnitude is detached."""
    algo = constant()
    with torch.no_grad():
        algo.critic.hyper_w1.layers[-1].bias.zero_()  # Q = b, whatever pi
        algo.actor.agent.fc2.bias.copy_(torch.tensor([0.5, -0.3, 0.1]).view(1, 1, 1, 3))
    b = episodes(hand_batch())
    bias = algo.actor.agent.fc2.bias
    (got,) = torch.autograd.grad(algo.actor_loss(b, algo.log_pi(b)).sum(), bias)
    lp = algo.log_pi(b)[:, :, : b.mask.shape[-1]]
    entropy = masked_mean(mc.entropy(lp).mean(-1), b.mask)
    (want,) = torch.autograd.grad((-COEF * torch.log(entropy)).sum(), bias)
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_critic_is_not_monotone():
    """LICA's critic mixes probabilities with unconstrained weights: dQ/dp can be negative."""
    critic = LICA(SPEC, [0, 1], TINY).critic
    g = torch.Generator().manual_seed(0)
    p = torch.rand(2, 50, SPEC.n_agents, SPEC.action_dim, generator=g).requires_grad_()
    critic(p, torch.randn(2, 50, SPEC.state_dim, generator=g)).sum().backward()
    assert (p.grad < 0).any() and (p.grad > 0).any()


# ---- seeds ---------------------------------------------------------------------------------
def trained(seeds: list[int], env_steps: int = 16, settings: LICASettings = TINY) -> LICA:
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies)
    algo = LICA(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(env_steps, env_steps, 1), lambda step, losses: None)
    return algo


def test_a_seed_trains_the_same_alone_or_among_others():
    alone, among = trained([3]), trained(list(range(5)))
    assert int(alone.updates[0]) >= 3  # past a target copy
    a, b = alone.seed_state(0), among.seed_state(3)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    other = among.seed_state(0)
    assert not torch.allclose(other["actor.agent.fc1.weight"], a["actor.agent.fc1.weight"])


def test_a_seed_trains_the_same_alone_or_among_others_on_multi_step_episodes():
    """Batches whose longest episode differs between seeds (the trim is over all seeds): the
    final-row draws and the losses of a seed do not depend on the others'."""
    spec = EnvSpec(3, 5, 4, True, 6, (), (), 4)
    together = LICA(spec, [0, 1, 2], TINY)
    alone = LICA(spec, [1], TINY)
    for seed in range(4):
        batch = random_batch(spec, 3, 2, seed)
        if seed % 2:
            batch["filled"][1] = False  # seed 1's episodes: 1 step; the others' up to 4
            batch["filled"][1, :, 0] = True
        together.update(batch, None)
        alone.update({k: v[1:2] for k, v in batch.items()}, None)
    a, b = alone.seed_state(0), together.seed_state(1)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def test_seeds_outside_active_do_not_change():
    algo = LICA(SPEC, [0, 1, 2], TINY)  # targets every 3 updates
    for seed in range(2):
        algo.update(random_batch(SPEC, 3, 2, seed), None)
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    moments = [m.clone() for m in algo.critic_opt.v + algo.actor_opt.v]
    active = torch.tensor([True, False, True])
    out = algo.update(random_batch(SPEC, 3, 2, seed=2), active)  # the 3rd: targets due
    assert all(torch.isfinite(v[active]).all() for v in out.values())
    after = algo.state_dict()
    for key, value in after.items():
        assert torch.equal(value[1], before[key][1]), key
    for m, m0 in zip(algo.critic_opt.v + algo.actor_opt.v, moments):
        assert torch.equal(m[1], m0[1])
    assert algo.updates.tolist() == [3, 2, 3]
    for k in (0, 2):
        assert not torch.equal(after["actor.agent.fc1.weight"][k], before["actor.agent.fc1.weight"][k])
        w = "critic.hyper_w1.layers.0.weight"
        assert torch.equal(after["target_" + w][k], after[w][k])
    assert not torch.equal(after["target_critic.hyper_w1.layers.0.weight"][1],
                           after["critic.hyper_w1.layers.0.weight"][1])


# ---- learning ------------------------------------------------------------------------------
def test_learns_a_monotone_matrix_game():
    """Payoff a_1 a_2 over actions (1, 2, 3): (C, C) pays 9. On-policy as the official runner:
    each update reads the 8 one-step episodes the copies just played (replay = batch =
    copies), 3 seeds x 1600 episodes: 199 updates per seed (none follows the last round). Every seed's greedy joint
    action must pay the optimum 9."""
    payoff = ((1, 2, 3), (2, 4, 6), (3, 6, 9))
    seeds = [0, 1, 2]
    settings = dataclasses.replace(
        TINY, env_copies=8, batch_size=8, replay_size=8, hidden=32, mixing_embed_dim=8,
        lr=0.005, critic_lr=0.005, target_update_interval=20,
    )
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies, payoff=payoff)
    algo = LICA(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(1600, 1600, 1), lambda step, losses: None)
    assert algo.updates.tolist() == [199] * 3  # none after the last round
    greedy = evaluate(algo, envs.make_batched("matrix_game", 3, payoff=payoff), seeds, [0], "greedy")
    np.testing.assert_array_equal(greedy.returns, [[9.0]] * 3)
