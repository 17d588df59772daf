"""FOP (algorithms/learners/fop.py) and VM3-AC on FOP (algorithms/learners/vm3ac_fop.py): settings, the losses by
hand (official defaults and the paper's reading), the critic target against the official code's
numbers, masks, per-seed independence, checkpoints, learning a matrix game, and SMAX 3m."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import hand_batch, params_run, random_batch

import envs
from algorithms.components.execution_latents import LATENT_MODES
from algorithms.learners.fop import FOP, FOPSettings
from algorithms.learners.vm3ac_fop import VM3ACFOP, VM3ACFOPSettings
from algorithms.models.masked_categorical import check_some_available
from envs import EnvSpec
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

pytestmark = pytest.mark.usefixtures("one_thread")


OFFICIAL = dataclasses.asdict(params_run("fop").settings)
LATENT = dataclasses.asdict(params_run("vm3ac_fop").settings)
TINY = dict(batch_size=4, replay_size=20, env_copies=2, hidden=8, critic_hidden=8,
            mixing_embed_dim=4, target_update_interval=3, epsilon_anneal_steps=20)
LEARNERS = {
    "fop": (FOP, FOPSettings(**{**OFFICIAL, **TINY})),
    "vm3ac_fop": (VM3ACFOP, VM3ACFOPSettings(**{**LATENT, **TINY, "q_hidden": (8,)})),
}
SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 4)  # 3 agents, obs 5, state 4, 6 actions, limit 4


# ---- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("td_lambda", 1.5), ("gamma", 1.0), ("lr", 0.0), ("heads", 0), ("alpha_finish", 0.9),
     ("epsilon_finish", 1.1), ("obs_agent_id", "yes"), ("target_update_interval", 2.5)],
)
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        FOPSettings(**{**OFFICIAL, field: value})


@pytest.mark.parametrize("field, value", [("z_dim", 0), ("q_hidden", [])])
def test_latent_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        VM3ACFOPSettings(**{**LATENT, field: value})


# ---- the losses by hand --------------------------------------------------------------------
ALPHA, GAMMA, LAMBDA = 0.5, 0.5, 0.5


def constant(name: str, official: bool = False):
    """2 agents, 3 actions, every weight zero: the actor's logits are 0 (pi uniform over the
    available actions; no epsilon floor), online critics Q_i = 2 and 3 for every action,
    targets 1 and 4. Mixers: 4 heads with |key| = 2, sigmoid(0) = 1/2 for agents and actions,
    so lambda_i = 4 x 2 / 4 = 2 and Q_tot = sum_i (2 Q_i - V_i) + V(s), V(s) = 0.5 online and
    0.25 target; V_i = Q_i + alpha log K_i with K_i available actions. q_xi (VM3-AC) is
    uniform: log q = -log 3."""
    cls, settings = LEARNERS[name]
    settings = dataclasses.replace(
        settings, gamma=GAMMA, td_lambda=LAMBDA, alpha_start=ALPHA, alpha_finish=ALPHA,
        epsilon_start=0.0, epsilon_finish=0.0, target_update_interval=1000,
        soft_value_actions="all" if official else "available", terminal_entropy="keep" if official else "drop",
    )
    algo = cls(EnvSpec(2, 1, 1, True, 3, (), (), 2), [0], settings)
    with torch.no_grad():
        for p in algo.state_dict(keep_vars=True).values():
            if p.is_floating_point():
                p.zero_()
        for critics, values in ((algo.critics, (2.0, 3.0)), (algo.target_critics, (1.0, 4.0))):
            for critic, c in zip(critics, values):
                critic.layers[-1].bias.fill_(c)
        for mixers, v in ((algo.mixers, 0.5), (algo.target_mixers, 0.25)):
            for mixer in mixers:
                mixer.keys.layers[0].bias.fill_(2.0)
                mixer.V.layers[-1].bias.fill_(v)
    return algo


def expected_losses(mi: bool, official: bool = False) -> tuple[float, float]:
    """Critic 1's loss and the policy loss on conftest's ``hand_batch`` (episode 0: two steps
    cut by the limit; episode 1: one step, then its final row, where each agent has one legal
    action), with or without VM3-AC's MI term (N = 2, one partner: the term is
    -(1/2)(log q + log q) = +log 3 on every action). ``official``: V_i over all 3 actions
    (K_i = 3 everywhere) and the soft term kept after episode 1's termination (its final row's
    log pi is 0: one legal action, so only the MI term's extra remains)."""
    l2, l3 = math.log(2), math.log(3)
    extra = l3 if mi else 0.0  # what the MI term adds to log pi in the soft terms
    # online Q_tot = sum_i (2 x 2 - (2 + alpha log K_i)) + 0.5, whatever the actions
    q_tot = [4.5 - ALPHA * 2 * l3, 4.5 - ALPHA * (l2 + l3), 4.5 - ALPHA * 2 * l3]
    # target min_k Q_tot,k: the critic of Q = 1: sum_i (1 - alpha log K_i) + 0.25
    v1, v2 = 2.25 - ALPHA * (l2 + l3), 2.25  # ep 0 rows 1 and 2 (row 2: one action each)
    if official:
        q_tot = [4.5 - ALPHA * 2 * l3] * 3
        v1 = v2 = 2.25 - ALPHA * 2 * l3
    g1 = 2 + GAMMA * v2  # row 1: its successor is the final row (G = V there)
    g0 = 1 + GAMMA * ((1 - LAMBDA) * v1 + LAMBDA * g1)
    # minus alpha x the next row's mean soft term: -(log K_i) + extra, uniform pi
    y = [g0 - ALPHA * (-(l2 + l3) / 2 + extra), g1 - ALPHA * (0 + extra),
         4.0 - ALPHA * extra if official else 4.0]  # ep 1 ends
    loss_q = sum((q - t) ** 2 for q, t in zip(q_tot, y)) / 3
    # policy: sum_u pi(u) (alpha (log pi(u) + extra) - 2) = -alpha log K + alpha extra - 2,
    # mean over the 3 filled rows x 2 agents: K = (3, 3), (2, 3), (3, 3)
    logs = [l3, l3, l2, l3, l3, l3]
    loss_pi = sum(-ALPHA * lk + ALPHA * extra - 2 for lk in logs) / 6
    return loss_q, loss_pi


@pytest.mark.parametrize("official", [True, False])
@pytest.mark.parametrize("name", LEARNERS)
def test_losses_match_a_hand_computation(name, official):
    mi = name == "vm3ac_fop"
    loss_q, loss_pi = expected_losses(mi, official)
    algo = constant(name, official)
    first = algo.critic_losses(hand_batch())[0]
    assert first.item() == pytest.approx(loss_q, rel=1e-5)
    out = algo.update(hand_batch(), None)
    assert out["loss_pi"].item() == pytest.approx(loss_pi, rel=1e-5)
    if not mi:  # the actor's step changed nothing the critics read (uniform pi is optimal)
        assert out["loss_q"].item() == pytest.approx(loss_q, rel=1e-5)


def test_an_agent_with_no_legal_action_is_named():
    avail = torch.ones(2, 3, 4, dtype=torch.bool)
    avail[1, 2] = False
    with pytest.raises(ValueError, match="^action mask: an agent has no available action"):
        check_some_available(avail)
    algo = FOP(SPEC, [0], LEARNERS["fop"][1])
    obs = torch.zeros(1, 1, 3, SPEC.obs_dim)
    memory = algo.begin_episodes(None, torch.ones(1, 1, dtype=torch.bool), obs, None)
    no_move = torch.ones(1, 1, 3, SPEC.action_dim)
    no_move[0, 0, 1] = 0
    with pytest.raises(ValueError, match="no available action"):
        algo.act(obs, None, no_move, memory, "explore")


# ---- seeds ---------------------------------------------------------------------------------
def trained(name: str, seeds: list[int], env_steps: int = 40):
    cls, settings = LEARNERS[name]
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies)
    algo = cls(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(env_steps, env_steps, 1), lambda step, losses: None)
    return algo


@pytest.mark.parametrize("name", LEARNERS)
def test_a_seed_trains_the_same_alone_or_among_others(name):
    alone, among = trained(name, [3]), trained(name, list(range(5)))
    assert int(alone.updates[0]) >= 3  # past a target copy
    a, b = alone.seed_state(0), among.seed_state(3)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    other = among.seed_state(0)
    assert not torch.allclose(other["actor.agent.fc1.weight"], a["actor.agent.fc1.weight"])


@pytest.mark.parametrize("name", LEARNERS)
def test_seeds_outside_active_do_not_change(name):
    cls, settings = LEARNERS[name]
    # epsilon 0.1 at the start: at 1 the floored policy is uniform and the actor gets no gradient
    algo = cls(SPEC, [0, 1, 2], dataclasses.replace(settings, epsilon_start=0.1))  # targets every 3
    for seed in range(2):
        algo.update(random_batch(SPEC, 3, 5, seed), None)
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    active = torch.tensor([True, False, True])
    out = algo.update(random_batch(SPEC, 3, 5, seed=2), active)  # the 3rd: targets due
    assert all(torch.isfinite(v[active]).all() for v in out.values())
    after = algo.state_dict()
    for key, value in after.items():
        assert torch.equal(value[1], before[key][1]), key
    assert algo.updates.tolist() == [3, 2, 3]
    for k in (0, 2):
        assert not torch.equal(after["actor.agent.fc1.weight"][k], before["actor.agent.fc1.weight"][k])
        assert torch.equal(after["target_critics.0.layers.0.weight"][k], after["critics.0.layers.0.weight"][k])


# ---- learning ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LEARNERS)
def test_learns_a_monotone_matrix_game(name):
    """Payoff a_1 a_2 over actions (1, 2, 3): (C, C) pays 9. 3 seeds x 8 copies x 2000
    one-step episodes, epsilon annealed to 0 over 500 steps and alpha from 0.5 to 0.01 over
    1000 (faster than the official schedules, which are set for a million steps); every
    seed's greedy joint action (z = 0 and sampled z for VM3-AC) must pay the optimum 9."""
    cls, settings = LEARNERS[name]
    payoff = ((1, 2, 3), (2, 4, 6), (3, 6, 9))
    seeds = [0, 1, 2]
    settings = dataclasses.replace(
        settings, env_copies=8, batch_size=16, replay_size=500, hidden=32, critic_hidden=32,
        mixing_embed_dim=16, lr=0.005, critic_lr=0.005, target_update_interval=20,
        epsilon_finish=0.0, epsilon_anneal_steps=500, alpha_finish=0.01, alpha_anneal_steps=1000,
    )
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies, payoff=payoff)
    algo = cls(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(2000, 2000, 1), lambda step, losses: None)
    assert algo.updates.tolist() == [248] * 3
    for mode in cls.execution_modes(settings)[:2]:
        greedy = evaluate(algo, envs.make_batched("matrix_game", 3, payoff=payoff), seeds, [0], mode)
        np.testing.assert_array_equal(greedy.returns, [[9.0]] * 3, err_msg=mode)


def test_vm3ac_fop_executes_in_every_latent_mode():
    assert VM3ACFOP.execution_modes(LEARNERS["vm3ac_fop"][1]) == LATENT_MODES
    assert LATENT_MODES[0] == "zero"  # z = E[z] = 0 is the headline (§5)


def test_q_xi_of_every_own_action_equals_the_general_path():
    """The shared-first-layer evaluation of q_xi over all own actions gives what the general
    path gives with each one-hot candidate (two hidden layers, so the later layers count)."""
    cls, settings = LEARNERS["vm3ac_fop"]
    algo = cls(SPEC, [0, 1], dataclasses.replace(settings, q_hidden=(8, 7)))
    obs = torch.randn(2, 10, SPEC.n_agents, SPEC.obs_dim, generator=torch.Generator().manual_seed(0))
    A = SPEC.action_dim
    every = torch.eye(A).view(1, 1, A, 1, A).expand(2, 10, A, SPEC.n_agents, A)
    torch.testing.assert_close(algo.every_own_action_log_probs(obs), algo.partner_log_probs(obs, every))


OFFICIAL_FOP = json.loads((Path(__file__).parent / "fixtures/official/fop_targets.json").read_text())


def load_official_mixer(mixer, weights: dict) -> None:
    """The official FOPMixer's per-head nn.Linear layers into ours (heads side by side)."""
    w = {k: torch.tensor(v) for k, v in weights.items()}
    H = mixer.heads
    with torch.no_grad():
        keys, agents, actions = mixer.keys.layers[0], mixer.agents.layers[0], mixer.actions.layers[0]
        keys.weight[0, 0] = torch.cat([w[f"key_extractors.{h}.weight"] for h in range(H)]).T
        keys.bias[0, 0, 0] = torch.cat([w[f"key_extractors.{h}.bias"] for h in range(H)])
        agents.weight[0, 0] = torch.cat([w[f"agents_extractors.{h}.weight"] for h in range(H)]).T
        agents.bias[0, 0, 0] = torch.cat([w[f"agents_extractors.{h}.bias"] for h in range(H)])
        actions.weight[0, 0] = torch.cat([w[f"action_extractors.{h}.weight"] for h in range(H)]).T
        actions.bias[0, 0, 0] = torch.cat([w[f"action_extractors.{h}.bias"] for h in range(H)])
        mixer.V.layers[0].weight[0, 0] = w["V.0.weight"].T
        mixer.V.layers[0].bias[0, 0, 0] = w["V.0.bias"]
        mixer.V.layers[1].weight[0, 0] = w["V.2.weight"].T
        mixer.V.layers[1].bias[0, 0, 0] = w["V.2.bias"]


def test_critic_targets_are_the_official_fops():
    """liyheng/FOP e100a97, train_critic on a fixed batch (numbers in the fixture): the floored
    pi, V_i over all actions, both target mixers, TD(lambda) and the soft term kept on episode
    1's terminal step. Rows past an episode's end count nothing in either code."""
    c, given, want = OFFICIAL_FOP["constants"], OFFICIAL_FOP["inputs"], OFFICIAL_FOP["outputs"]
    t = lambda name, src=given: torch.tensor(src[name]["value"]).unsqueeze(0)  # noqa: E731  [1, B, ...]
    settings = dataclasses.replace(LEARNERS["fop"][1], heads=c["n_head"], mixing_embed_dim=c["mixing_embed_dim"],
                                   gamma=c["gamma"], td_lambda=c["td_lambda"], epsilon_start=c["epsilon_floor"],
                                   epsilon_finish=c["epsilon_floor"])
    algo = FOP(EnvSpec(c["n_agents"], 1, c["state_dim"], True, c["n_actions"], (), (), 5), [0], settings)
    for mixer, key in zip(algo.target_mixers, ("target_mixer1_state_dict", "target_mixer2_state_dict")):
        load_official_mixer(mixer, given[key]["value"])
    T = c["T_transitions"]
    avail = t("avail_actions").bool()
    mask = t("mask", want)[..., 0]
    live = avail.any(-1).all(-1)  # rows the official code fills; ours pads the rest with all actions
    available = avail | ~avail.any(-1, keepdim=True)
    log_pi = algo.floored(t("agent_logits"), available)
    torch.testing.assert_close(log_pi.exp()[live], t("pi", want)[live], rtol=1e-5, atol=1e-6)
    u_next = t("next_actions", want).long()
    soft = log_pi.gather(-1, u_next.unsqueeze(-1)).squeeze(-1).mean(-1)
    y = algo.soft_targets([t("target_q_vals1"), t("target_q_vals2")], u_next, soft, available, t("state"),
                          t("reward")[:, :, :T, 0], t("terminated")[:, :, :T, 0].bool(), mask,
                          torch.tensor([c["alpha"]]))
    torch.testing.assert_close(y[mask > 0], t("targets", want)[..., 0][mask > 0], rtol=1e-5, atol=1e-5)
