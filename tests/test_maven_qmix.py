"""MAVEN on QMIX (algorithms/learners/maven_qmix.py): settings, the agent's W(z, i) h, the MI term by
hand, the per-episode latent, masks, per-seed independence, checkpoints, learning a matrix
game, and SMAX 3m."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import params_run, random_batch

import envs
from algorithms.learners.maven_qmix import MAVENQMIX, MAVENQMIXSettings
from envs import EnvSpec
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

pytestmark = pytest.mark.usefixtures("one_thread")


OFFICIAL = dataclasses.asdict(params_run("maven_qmix").settings)
TINY = MAVENQMIXSettings(**{**OFFICIAL, **dict(batch_size=4, replay_size=20, env_copies=2, hidden=8,
                                               mixing_embed_dim=4, target_update_interval=3,
                                               epsilon_anneal_steps=20, discrim_size=8)})
SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 4)


def with_latent(batch: dict, S: int, B: int, Z: int = 2, seed: int = 0) -> dict:
    """A random episode batch with one z per episode, written on every row (as the storage
    holds a HELD field)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.one_hot(torch.randint(0, Z, (S, B), generator=g), Z).float()
    return {**batch, "latent": z[:, :, None].expand(S, B, batch["obs"].shape[2], Z).clone()}


@pytest.mark.parametrize("field, value", [("noise_dim", 0), ("discrim_layers", 1.5), ("mi_loss", -1),
                                          ("observe_other_actions", True)])
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        MAVENQMIXSettings(**{**OFFICIAL, field: value})


def test_agent_q_is_the_latent_hypernetwork_times_the_gru_state():
    """Q_i = W([z, one-hot i]) h for every row, with h the GRU state PyMARL's agent computes."""
    algo = MAVENQMIX(SPEC, [0, 1], TINY)
    agent, S, E, N, A, H = algo.agent, 2, 3, 3, 6, 8
    x = torch.randn(S, 2, E * N, agent.body.fc1.weight.shape[2])
    z = torch.nn.functional.one_hot(torch.tensor([[0, 1, 1], [1, 0, 0]]), 2).float()
    q, _ = agent(x, agent.initial_hidden(S, E * N), z)
    states, _ = agent.body.hidden_states(x, agent.initial_hidden(S, E * N))
    for k in range(S):
        for m in range(E * N):
            inp = torch.cat([z[k, m // N], torch.eye(N)[m % N]])
            W = (inp @ agent.hyper.layers[0].weight[k, 0] + agent.hyper.layers[0].bias[k, 0, 0]).view(A, H)
            torch.testing.assert_close(q[k, :, m], states[k, :, m] @ W.T, rtol=1e-5, atol=1e-6)


def test_mi_term_by_hand():
    """A discriminator that outputs equal logits predicts z with probability 1/2: the
    cross-entropy is log 2 on every filled row, whatever the batch."""
    algo = MAVENQMIX(SPEC, [0, 1], TINY)
    with torch.no_grad():
        algo.discriminator.layers[-1].weight.zero_()
        algo.discriminator.layers[-1].bias.zero_()
    batch = with_latent(random_batch(SPEC, 2, 5), 2, 5)
    _, q, T = algo.td_terms(batch)
    torch.testing.assert_close(algo.mi_terms(batch, q, T), torch.full((2,), math.log(2)))
    # a discriminator that favours class 1 by logit 1: CE = log(1 + e) for z = 0, log(1 + e^-1)
    with torch.no_grad():
        algo.discriminator.layers[-1].bias[..., 1] = 1.0
    mask = batch["filled"].float()
    z1 = batch["latent"][:, :, 0, 1]
    per_episode = torch.where(z1 > 0, math.log(1 + math.exp(-1)), math.log(1 + math.e))
    expected = (per_episode[:, :, None] * mask).sum((1, 2)) / mask.sum((1, 2))
    torch.testing.assert_close(algo.mi_terms(batch, q, T), expected)


def test_latent_is_drawn_at_the_start_and_held_for_the_episode():
    algo = MAVENQMIX(SPEC, [0, 1], TINY)
    S, E = 2, 500
    obs = torch.zeros(S, E, SPEC.n_agents, SPEC.obs_dim)
    memory = algo.begin_episodes(None, torch.ones(S, E, dtype=torch.bool), obs, None)
    assert memory.latent.sum(-1).eq(1).all()
    share = memory.latent[..., 1].mean().item()
    assert 0.4 < share < 0.6  # uniform over the 2 classes
    first = memory.latent.clone()
    avail = torch.ones(S, E, SPEC.n_agents, SPEC.action_dim)
    _, memory = algo.act(obs, None, avail, memory, "explore")
    assert torch.equal(memory.latent, first)
    restart = torch.zeros(S, E, dtype=torch.bool)
    restart[1, :3] = True
    after = algo.begin_episodes(memory, restart, obs, None).latent
    assert torch.equal(after[0], first[0]) and torch.equal(after[1, 3:], first[1, 3:])


def trained(seeds: list[int], env_steps: int = 40) -> MAVENQMIX:
    env = envs.make_batched("matrix_game", len(seeds) * TINY.env_copies)
    algo = MAVENQMIX(env.spec, seeds, TINY)
    train(algo, env, seeds, Budget(env_steps, env_steps, 1), lambda step, losses: None)
    return algo


def test_a_seed_trains_the_same_alone_or_among_others():
    alone, among = trained([3]), trained(list(range(5)))
    assert int(alone.updates[0]) >= 3
    a, b = alone.seed_state(0), among.seed_state(3)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    assert not torch.allclose(among.seed_state(0)["discriminator.layers.0.weight"],
                              a["discriminator.layers.0.weight"])


def test_seeds_outside_active_do_not_change():
    algo = MAVENQMIX(SPEC, [0, 1, 2], TINY)
    for seed in range(2):
        algo.update(with_latent(random_batch(SPEC, 3, 5, seed), 3, 5, seed=seed), None)
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    active = torch.tensor([True, False, True])
    algo.update(with_latent(random_batch(SPEC, 3, 5, 2), 3, 5, seed=2), active)
    for key, value in algo.state_dict().items():
        assert torch.equal(value[1], before[key][1]), key
    assert algo.updates.tolist() == [3, 2, 3]
    for k in (0, 2):
        key = "discriminator.layers.0.weight"
        assert not torch.equal(algo.state_dict()[key][k], before[key][k])


def test_learns_a_monotone_matrix_game():
    """Payoff a_1 a_2 over actions (1, 2, 3): (C, C) pays 9. 3 seeds x 8 copies, an update
    per round of 8 one-step episodes, epsilon annealed over 500 steps; every seed's greedy
    joint action, under either z, must pay 9."""
    payoff = ((1, 2, 3), (2, 4, 6), (3, 6, 9))
    seeds = [0, 1, 2]
    settings = dataclasses.replace(TINY, env_copies=8, batch_size=32, replay_size=500,
                                   epsilon_anneal_steps=500, target_update_interval=20,
                                   hidden=32, mixing_embed_dim=8, lr=0.005)
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies, payoff=payoff)
    algo = MAVENQMIX(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(2000, 2000, 1), lambda step, losses: None)
    assert algo.updates.tolist() == [246] * 3
    greedy = evaluate(algo, envs.make_batched("matrix_game", 3 * 4, payoff=payoff), seeds,
                      [0, 1, 2, 3], "greedy")
    np.testing.assert_array_equal(greedy.returns, np.full((3, 4), 9.0))


def test_trains_on_smax_3m_with_its_action_masks_and_holds_z_in_the_rows():
    seeds, E = [0, 1], 2
    env = envs.make_batched("sparse_smac", len(seeds) * E, map_name="3m")
    algo = MAVENQMIX(env.spec, seeds, dataclasses.replace(TINY, env_copies=E))
    act, update, taken, losses = algo.act, algo.update, [], []

    def checked_act(obs, state, avail, memory, mode, noise=None, acting=None):
        action, memory = act(obs, state, avail, memory, mode, noise, acting)
        legal = avail.gather(-1, action.unsqueeze(-1)).squeeze(-1) == 1
        taken.append(bool(legal[acting].all()))
        return action, memory

    def checked_update(batch, active):
        filled = batch["filled"]
        z = batch["latent"][:, :, : filled.shape[-1]]
        # one z per episode: every filled row holds the episode's first row's z
        assert torch.equal(z * filled[..., None], z[:, :, :1].expand_as(z) * filled[..., None])
        out = update(batch, active)
        losses.extend(v if active is None else v[active] for v in out.values())
        return out

    algo.act, algo.update = checked_act, checked_update
    train(algo, env, seeds, Budget(300, 300, 1), lambda step, loss: None)
    assert taken and all(taken) and (algo.updates > 0).all()
    assert torch.isfinite(torch.cat(losses)).all()


def test_a_truncated_episodes_bootstrap_reads_the_episodes_z():
    seeds, E = [0, 1], 2
    # a 5-step limit: every episode that no side wins is cut, and its last step bootstraps
    env = envs.make_batched("sparse_smac", len(seeds) * E, map_name="3m", episode_limit=5)
    algo = MAVENQMIX(env.spec, seeds, dataclasses.replace(TINY, env_copies=E))
    update, gaps = algo.update, []

    def checked_update(batch, active):
        # the loss must not depend on which z the rows after the filled ones hold, once the
        # episode's own z is on every row (its first row's, as the official learner reads it)
        everywhere = {**batch, "latent": batch["latent"][:, :, :1].expand_as(batch["latent"])}
        with torch.no_grad():
            gaps.append((algo.td_loss(batch) - algo.td_loss(everywhere)).abs().max().item())
        return update(batch, active)

    algo.update = checked_update
    train(algo, env, seeds, Budget(200, 200, 1), lambda step, loss: None)
    assert gaps and max(gaps) == 0.0
