"""Stochastic DOP (algorithms/learners/dop.py): settings, the critic and actor losses by hand, masks,
per-seed independence, checkpoints, learning a matrix game, and SMAX 3m."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import hand_batch, params_run, random_batch

import envs
from algorithms.learners.dop import DOP, DOPSettings
from envs import EnvSpec
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

pytestmark = pytest.mark.usefixtures("one_thread")


OFFICIAL = dataclasses.asdict(params_run("dop").settings)
TINY = DOPSettings(**{**OFFICIAL, **dict(batch_size=2, on_buffer_size=4, off_batch_size=2, replay_size=8,
                                         env_copies=2, hidden=8, critic_hidden=8, mixing_embed_dim=4,
                                         target_update_interval=3, epsilon_anneal_steps=20)})
SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 4)  # 3 agents, obs 5, state 4, 6 actions, limit 4


@pytest.mark.parametrize(
    "field, value",
    [("td_lambda", 1.5), ("gamma", 1.0), ("critic_lr", 0.0), ("critic_hidden", 0),
     ("epsilon_finish", 0.9), ("update_unit", "step"), ("replay_size", 16), ("obs_agent_id", 1),
     ("on_buffer_size", 8), ("tb_lambda", 1.2), ("tree_backup_steps", 0), ("actor_batch", "newest")],
)
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        DOPSettings(**{**OFFICIAL, field: value})


def constant() -> DOP:
    """2 agents, 3 actions, every weight zero: pi uniform over the available actions (no
    epsilon floor); the critic's body outputs 0, so Q_i = a + v from the head's bias: online
    [1, 2, 3] + 0.5, target [0, 0, 0] + 1; the mixer's hypernetworks output 1 everywhere, so
    k = (1/2, 1/2). The critic's lr is 1e-12: its steps change nothing measurable."""
    settings = dataclasses.replace(TINY, gamma=0.5, td_lambda=0.5, epsilon_start=0.0,
                                   epsilon_finish=0.0, critic_lr=1e-12, target_update_interval=1000)
    algo = DOP(EnvSpec(2, 1, 1, True, 3, (), (), 2), [0], settings)
    with torch.no_grad():
        for p in algo.state_dict(keep_vars=True).values():
            if p.is_floating_point():
                p.zero_()
        algo.critic.head.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 0.5]).view(1, 1, 1, 4))
        algo.target_critic.head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0]).view(1, 1, 1, 4))
        for mixer in (algo.mixer, algo.target_mixer):
            mixer.hyper_w1.layers[0].bias.fill_(1.0)
            mixer.hyper_w_final.layers[0].bias.fill_(1.0)
    return algo


def test_losses_match_a_hand_computation():
    """conftest's hand_batch, gamma = lambda = 1/2. Targets: Q_tot^- = 1 everywhere, so
    episode 0 (cut by the limit): G_1 = 2 + 1/2 = 2.5, G_0 = 1 + 1/2 (1/2 + 1/2 G_1) = 1.875;
    episode 1 (terminated): G_0 = 4. Critic steps per time step: t = 0 has episode 0 (actions
    1, 2: Q_tot = (2.5 + 3.5) / 2 = 3) and episode 1 (actions 2, 1: 3); t = 1 has episode 0's
    row 1 (actions 0, 0: 1.5). Actor: baselines are the mean Q over the available actions;
    advantages (agent 0, agent 1): row (0, 0): 0, 1; row (0, 1): -1 (actions {0, 2}), -1;
    row (1, 0): 1, 0, each times k = 1/2 and log pi = -log K."""
    algo = constant()
    out = algo.update({"on": hand_batch(), "off": None, "actor": hand_batch()}, None)
    step0 = ((3 - 1.875) ** 2 + (3 - 4) ** 2) / 2
    step1 = (1.5 - 2.5) ** 2
    assert out["loss_q"].item() == pytest.approx((step0 + step1) / 2, rel=1e-5)
    l2, l3 = math.log(2), math.log(3)
    terms = [0, 1 * -l3, -1 * -l2, -1 * -l3, 1 * -l3, 0]
    assert out["loss_pi"].item() == pytest.approx(-sum(0.5 * t for t in terms) / 6, rel=1e-5)
    assert algo.updates.tolist() == [2]  # one critic step per time step


def trained(seeds: list[int], env_steps: int = 40) -> DOP:
    env = envs.make_batched("matrix_game", len(seeds) * TINY.env_copies)
    algo = DOP(env.spec, seeds, TINY)
    train(algo, env, seeds, Budget(env_steps, env_steps, 1), lambda step, losses: None)
    return algo


def test_a_seed_trains_the_same_alone_or_among_others():
    alone, among = trained([3]), trained(list(range(5)))
    assert int(alone.updates[0]) >= 3
    a, b = alone.seed_state(0), among.seed_state(3)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    assert not torch.allclose(among.seed_state(0)["actor.agent.fc1.weight"], a["actor.agent.fc1.weight"])


def test_seeds_outside_active_do_not_change():
    algo = DOP(SPEC, [0, 1, 2], TINY)
    mixed = lambda seed: {"on": random_batch(SPEC, 3, 2, seed), "off": random_batch(SPEC, 3, 2, seed + 10),  # noqa: E731
                          "actor": random_batch(SPEC, 3, 2, seed + 20)}
    algo.update(mixed(0), None)
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    active = torch.tensor([True, False, True])
    out = algo.update(mixed(1), active)
    assert all(torch.isfinite(v[active]).all() for v in out.values())
    for key, value in algo.state_dict().items():
        assert torch.equal(value[1], before[key][1]), key
    for k in (0, 2):
        assert not torch.equal(algo.state_dict()["critic.head.weight"][k], before["critic.head.weight"][k])


def test_learns_a_monotone_matrix_game():
    """Payoff a_1 a_2 over actions (1, 2, 3): (C, C) pays 9. 3 seeds x 8 copies, an update
    after every round of 8 one-step episodes (199 updates), epsilon from 0.5 to 0 over 500
    steps; every seed's greedy joint action must pay 9."""
    payoff = ((1, 2, 3), (2, 4, 6), (3, 6, 9))
    seeds = [0, 1, 2]
    settings = dataclasses.replace(
        TINY, batch_size=8, on_buffer_size=16, off_batch_size=8, replay_size=64, env_copies=8, hidden=32, critic_hidden=32,
        mixing_embed_dim=8, lr=0.005, critic_lr=0.005, target_update_interval=20,
        epsilon_finish=0.0, epsilon_anneal_steps=500,
    )
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies, payoff=payoff)
    algo = DOP(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(1600, 1600, 1), lambda step, losses: None)
    assert algo.updates.tolist() == [199] * 3
    greedy = evaluate(algo, envs.make_batched("matrix_game", 3, payoff=payoff), seeds, [0], "greedy")
    np.testing.assert_array_equal(greedy.returns, [[9.0]] * 3)


def test_each_update_reads_on_and_off_policy_episodes_as_the_official_run_loop():
    """40 finished episodes (4 copies): the critic's on-policy draw is 2 distinct episodes among
    the newest on_buffer_size = 4, its off-policy draw 2 distinct among all 8 the replay keeps;
    the actor reads the newest 2, or (official sample_latest) a uniform 2 of the newest 4 when
    the ring index, finished episodes mod 4, is below 2."""
    from algorithms.components.storage import LatestEpisodes

    algo = DOP(SPEC, [0], TINY)
    fields = algo.fields(SPEC)
    store = LatestEpisodes([0], TINY.replay_size, fields, 1, SPEC.episode_limit)
    blank = {"obs": torch.zeros(1, 1, 3, 5), "state": torch.zeros(1, 1, 4), "avail": torch.ones(1, 1, 3, 6)}
    for episode in range(10):
        store.open(**{**blank, "obs": torch.full((1, 1, 3, 5), float(episode))})
        store.close(torch.tensor([[False]]), blank, action=torch.zeros(1, 1, 3, dtype=torch.long),
                    reward=torch.zeros(1, 1), terminated=torch.tensor([[True]]))
    assert bool(algo.ready(store)) and not bool(DOP(SPEC, [0], dataclasses.replace(TINY, off_batch_size=12,
                                                                                   replay_size=16)).ready(store))
    seen = {"on": set(), "off": set(), "actor": set()}
    for _ in range(50):
        batch = algo.sample(store, None)
        for part in seen:
            ids = batch[part]["obs"][0, :, 0, 0, 0].long().tolist()
            assert len(set(ids)) == len(ids)  # without replacement
            seen[part] |= set(ids)
    assert seen["on"] == {6, 7, 8, 9} and seen["off"] == set(range(2, 10))  # the ring keeps 8
    assert seen["actor"] == {8, 9}  # 10 mod 4 = 2: no fallback
    for episode in (10, 11):
        store.open(**{**blank, "obs": torch.full((1, 1, 3, 5), float(episode))})
        store.close(torch.tensor([[False]]), blank, action=torch.zeros(1, 1, 3, dtype=torch.long),
                    reward=torch.zeros(1, 1), terminated=torch.tensor([[True]]))
    drawn = {tuple(algo.sample(store, None)["actor"]["obs"][0, :, 0, 0, 0].long().tolist()) for _ in range(50)}
    assert len(drawn) > 1 and set().union(*drawn) == {8, 9, 10, 11}  # 12 mod 4 = 0 < 2: the fallback
    latest = DOP(SPEC, [0], dataclasses.replace(TINY, actor_batch="latest"))
    assert latest.sample(store, None)["actor"]["obs"][0, :, 0, 0, 0].tolist() == [10.0, 11.0]
