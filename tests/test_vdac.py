"""VDAC-mix (algorithms/learners/vdac.py): settings, the losses by hand, the epsilon floor, masks, per-seed
independence, checkpoints, learning a matrix game, and SMAX 3m."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import hand_batch, random_batch

import envs
from algorithms.learners.vdac import VDAC, VDACSettings
from algorithms.models.masked_categorical import epsilon_floored
from envs import EnvSpec
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

pytestmark = pytest.mark.usefixtures("one_thread")

# The params.yaml entry (config/default.yaml + config/algs/vmix_a2c.yaml of hahayonghuming/VDACs).
OFFICIAL = dict(
    hidden=64, mixing_embed_dim=32, hypernet_layers=2, hypernet_embed=64, gamma=0.99,
    td_lambda=0.8, lr=0.0005, optim_alpha=0.99, optim_eps=0.00001, grad_norm_clip=10.0,
    vf_coef=0.1, ent_coef=0.0, epsilon_start=0.5, epsilon_finish=0.01, epsilon_anneal_steps=100000,
    obs_last_action=True, obs_agent_id=True, batch_size=8, replay_size=8, learning_starts=0,
    update_every=1, update_unit="episode", gradient_steps=1, gradient_steps_per="phase",
    env_copies=8,
)
TINY = VDACSettings(**{**OFFICIAL, **dict(
    batch_size=2, replay_size=2, env_copies=2, hidden=8, mixing_embed_dim=4, hypernet_embed=8,
    epsilon_anneal_steps=20,
)})
SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 4)  # 3 agents, obs 5, state 4, 6 actions, limit 4


# ---- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("td_lambda", 1.5), ("gamma", 1.0), ("lr", 0.0), ("optim_alpha", 1.0), ("optim_eps", 0),
     ("hidden", 0), ("mixing_embed_dim", 2.5), ("hypernet_layers", 3), ("hypernet_embed", 0),
     ("grad_norm_clip", 0), ("vf_coef", -0.1), ("ent_coef", None), ("epsilon_start", 1.5),
     ("epsilon_finish", 0.6), ("epsilon_anneal_steps", 0), ("obs_last_action", 1),
     ("update_unit", "step"), ("gradient_steps_per", "env_step"), ("batch_size", 9),
     ("replay_size", 4)],
)
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: .*, got {value!r}$"):
        VDACSettings(**{**OFFICIAL, field: value})


# ---- the losses by hand --------------------------------------------------------------------
GAMMA, LAMBDA, EPS, VF, ENT = 0.5, 0.5, 0.5, 0.1, 0.01


def constant() -> VDAC:
    """2 agents, 3 actions, every weight zero: every agent's logits are fc2's bias [0, ln 2, 0]
    (softmax [1/4, 1/2, 1/4]) and its V_i = 1 (the last unit). Mixer (embed 1): |W1| = 1,
    b1 = 0, |w_final| = 1, V(s) = 0.5, so V_tot = ELU(1 + 1) + 0.5 = 2.5 on every row."""
    settings = dataclasses.replace(
        TINY, gamma=GAMMA, td_lambda=LAMBDA, epsilon_start=EPS, epsilon_finish=EPS, vf_coef=VF,
        ent_coef=ENT, mixing_embed_dim=1,
    )
    algo = VDAC(EnvSpec(2, 1, 1, True, 3, (), (), 2), [0], settings)
    with torch.no_grad():
        for p in algo.state_dict(keep_vars=True).values():
            if p.is_floating_point():
                p.zero_()
        algo.agent.fc2.bias.copy_(torch.tensor([0.0, math.log(2.0), 0.0, 1.0]).view(1, 1, 1, 4))
        algo.mixer.hyper_w1.layers[-1].bias.fill_(1.0)
        algo.mixer.hyper_w_final.layers[-1].bias.fill_(1.0)
        algo.mixer.V.layers[-1].bias.fill_(0.5)
    return algo


def test_losses_match_a_hand_computation():
    """conftest's hand_batch. pi_eps = (1 - eps) [1/4, 1/2, 1/4] + eps / 3 over the available
    actions, renormalised: all available [7, 10, 7] / 24; agent 0 at ep 0 row 1 (actions 0
    and 2) [1/2, 1/2]. TD(lambda) on V_tot = 2.5: ep 0 cut by the limit (its final row
    bootstraps), ep 1 terminated after one step."""
    full = [7 / 24, 10 / 24, 7 / 24]
    v = 2.5
    g1 = 2 + GAMMA * v
    g0 = 1 + GAMMA * ((1 - LAMBDA) * v + LAMBDA * g1)
    adv = [g0 - v, g1 - v, 4 - v]
    # log pi_i(u_i) of the taken actions: ep 0 row 0 [1, 2]; row 1 [0, 0]; ep 1 row 0 [2, 1]
    logs = [[full[1], full[2]], [0.5, full[0]], [full[2], full[1]]]
    loss_pg = -sum(a * math.log(p) for a, row in zip(adv, logs) for p in row) / 6
    loss_v = sum(a**2 for a in adv) / 3
    h_full = -sum(p * math.log(p) for p in full)
    entropy = (5 * h_full + math.log(2)) / 6
    out = constant().update(hand_batch(), None)
    assert out["loss_pg"].item() == pytest.approx(loss_pg, rel=1e-5)
    assert out["loss_v"].item() == pytest.approx(loss_v, rel=1e-5)
    assert out["entropy"].item() == pytest.approx(entropy, rel=1e-5)
    assert out["loss"].item() == pytest.approx(loss_pg + VF * loss_v - ENT * entropy, rel=1e-5)


def test_epsilon_floor_then_mask():
    """The selector's pi_eps (mask_before_softmax False): the floor spreads over all A actions,
    then the unavailable ones are dropped and the rest renormalised."""
    logits = torch.tensor([[[2.0, 0.0, -1.0, 0.5]]])
    available = torch.tensor([[[True, False, True, True]]])
    eps = torch.tensor([0.2])
    p = 0.8 * torch.softmax(logits, -1) + 0.05
    p = p * available / (p * available).sum(-1, keepdim=True)
    got = epsilon_floored(logits, available, eps).exp()
    torch.testing.assert_close(got, p)
    assert got[0, 0, 1] == 0


# ---- seeds ---------------------------------------------------------------------------------
def trained(seeds: list[int], env_steps: int = 16) -> VDAC:
    env = envs.make_batched("matrix_game", len(seeds) * TINY.env_copies)
    algo = VDAC(env.spec, seeds, TINY)
    train(algo, env, seeds, Budget(env_steps, env_steps, 1), lambda step, losses: None)
    return algo


def test_a_seed_trains_the_same_alone_or_among_others():
    alone, among = trained([3]), trained(list(range(5)))
    a, b = alone.seed_state(0), among.seed_state(3)
    assert int(alone.env_steps[0]) == 16
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    fresh = VDAC(envs.make_batched("matrix_game", 1).spec, [3], TINY).seed_state(0)
    assert not torch.equal(fresh["agent.fc1.weight"], a["agent.fc1.weight"])  # it trained
    other = among.seed_state(0)
    assert not torch.allclose(other["agent.fc1.weight"], a["agent.fc1.weight"])


def test_a_seed_trains_the_same_alone_or_among_others_on_multi_step_episodes():
    """Batches whose longest episode differs between seeds (the trim is over all seeds)."""
    together, alone = VDAC(SPEC, [0, 1, 2], TINY), VDAC(SPEC, [1], TINY)
    for seed in range(4):
        batch = random_batch(SPEC, 3, 2, seed)
        if seed % 2:
            batch["filled"][1] = False
            batch["filled"][1, :, 0] = True
        together.update(batch, None)
        alone.update({k: v[1:2] for k, v in batch.items()}, None)
    a, b = alone.seed_state(0), together.seed_state(1)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def test_seeds_outside_active_do_not_change():
    algo = VDAC(SPEC, [0, 1, 2], TINY)
    algo.env_steps.copy_(torch.tensor([5, 6, 7]))
    for seed in range(2):
        algo.update(random_batch(SPEC, 3, 2, seed), None)
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    moments = [m.clone() for m in algo.optimiser.square_avg]
    active = torch.tensor([True, False, True])
    out = algo.update(random_batch(SPEC, 3, 2, seed=2), active)
    assert all(torch.isfinite(v[active]).all() for v in out.values())
    after = algo.state_dict()
    for key, value in after.items():
        assert torch.equal(value[1], before[key][1]), key
    for m, m0 in zip(algo.optimiser.square_avg, moments):
        assert torch.equal(m[1], m0[1])
    for k in (0, 2):
        assert not torch.equal(after["agent.fc1.weight"][k], before["agent.fc1.weight"][k])
        assert not torch.equal(after["mixer.V.layers.0.weight"][k], before["mixer.V.layers.0.weight"][k])


# ---- learning ------------------------------------------------------------------------------
def test_learns_a_monotone_matrix_game():
    """Payoff a_1 a_2 over actions (1, 2, 3): (C, C) pays 9. On-policy as the official runner:
    each update reads the 8 one-step episodes the copies just played (replay = batch =
    copies), 3 seeds x 1600 episodes (199 updates per seed), epsilon from 0.5 to 0.01 over
    the first 400 steps. Every seed's greedy joint action must pay the optimum 9."""
    payoff = ((1, 2, 3), (2, 4, 6), (3, 6, 9))
    seeds = [0, 1, 2]
    settings = dataclasses.replace(
        TINY, env_copies=8, batch_size=8, replay_size=8, hidden=32, mixing_embed_dim=8,
        hypernet_embed=16, lr=0.005, epsilon_anneal_steps=400,
    )
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies, payoff=payoff)
    algo = VDAC(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(1600, 1600, 1), lambda step, losses: None)
    greedy = evaluate(algo, envs.make_batched("matrix_game", 3, payoff=payoff), seeds, [0], "greedy")
    np.testing.assert_array_equal(greedy.returns, [[9.0]] * 3)
