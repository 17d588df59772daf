"""QMIX (algorithms/learners/qmix.py): settings, mixer monotonicity, the TD loss by hand, action masks,
per-seed independence and masks, checkpoints, the RMSprop step, and learning a matrix game."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import REPO, hand_batch

import envs
from algorithms.components.seed_optim import SeedRMSprop
from algorithms.components.seeding import SeedStreams
from algorithms.learners.qmix import QMIX, QMIXSettings
from algorithms.models.qmix_mixer import QMixer
from envs import EnvSpec
from pipeline.design.budget import Budget
from pipeline.design.params import load, resolve_runs
from pipeline.runtime.loops import evaluate, train

# PyMARL's values as params.yaml gives them; small networks and a short schedule for the tests
# that train.
PYMARL = {
    f.name: value
    for f, value in zip(
        dataclasses.fields(QMIXSettings),
        dataclasses.astuple(resolve_runs(load(REPO / "params.yaml"))["qmix-smac_3m"].settings),
    )
}
TINY = QMIXSettings(**{**PYMARL, **dict(
    batch_size=4,
    replay_size=20,
    env_copies=2,
    hidden=8,
    mixing_embed_dim=4,
    epsilon_anneal_steps=20,
    target_update_interval=3,
)})
SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 4)  # 3 agents, obs 5, state 4, 6 actions, limit 4


pytestmark = pytest.mark.usefixtures("one_thread")


def random_batch(spec: EnvSpec, S: int, B: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """EpisodeReplay.sample's layout: episodes of random lengths, each ending in a termination
    or the time limit, with garbage in the rows past the end (as a reused slot holds)."""
    g = torch.Generator().manual_seed(seed)
    N, A, T = spec.n_agents, spec.action_dim, spec.episode_limit
    length = torch.randint(1, T + 1, (S, B), generator=g)
    filled = torch.arange(T) < length.unsqueeze(-1)
    avail = torch.rand(S, B, T + 1, N, A, generator=g) < 0.5
    avail[..., 0] = True  # at least one action available (SMAC's no-op)
    terminated = torch.zeros(S, B, T + 1, dtype=torch.bool)
    last = torch.arange(T + 1) == (length - 1).unsqueeze(-1)
    terminated[last] = torch.rand(S, B, generator=g).flatten() < 0.5  # else: the time limit
    return {
        "obs": torch.randn(S, B, T + 1, N, spec.obs_dim, generator=g),
        "state": torch.randn(S, B, T + 1, spec.state_dim, generator=g),
        "avail": avail.float(),
        "action": torch.randint(0, A, (S, B, T + 1, N), generator=g),
        "reward": torch.randn(S, B, T + 1, generator=g).double(),
        "terminated": terminated,
        "filled": filled,
    }


# ---- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [
        ("epsilon_finish", 1.5),
        ("epsilon_start", -0.1),
        ("gamma", 1.0),
        ("lr", 0.0),
        ("optim_alpha", 1.0),
        ("optim_eps", -1e-5),
        ("grad_norm_clip", 0),
        ("hidden", 0),
        ("mixing_embed_dim", 2.5),
        ("hypernet_layers", 3),
        ("hypernet_embed", 0),
        ("epsilon_anneal_steps", 0),
        ("target_update_interval", 0),
        ("double_q", "yes"),
        ("obs_last_action", 1),
        ("obs_agent_id", None),
        ("batch_size", 0),  # Schedule's own checks still run
    ],
)
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValueError, match=f"^{field}: .*, got {value!r}$"):
        QMIXSettings(**{**PYMARL, field: value})


def test_settings_epsilon_finish_above_start():
    with pytest.raises(ValueError, match="^epsilon_finish: must be <= epsilon_start"):
        QMIXSettings(**{**PYMARL, "epsilon_start": 0.1, "epsilon_finish": 0.2})


def test_continuous_task_is_refused():
    spec = EnvSpec(2, 3, 4, False, 2, (-1.0, -1.0), (1.0, 1.0), 10)
    with pytest.raises(ValueError, match="^qmix: .*discrete"):
        QMIX(spec, [0], QMIXSettings(**PYMARL))


# ---- agent network -------------------------------------------------------------------------
def test_recurrent_agent_is_pymarls_rnn_agent_for_each_seed():
    """Seed k's slice of the stacked agent computes what PyMARL's RNNAgent (nn.Linear, ReLU,
    nn.GRUCell, nn.Linear) with the same weights computes, step by step."""
    from algorithms.models.recurrent_agent import RecurrentAgent

    S, T, M, in_dim, H, A = 3, 5, 4, 7, 8, 6
    agent = RecurrentAgent(SeedStreams(range(S), "init"), in_dim, H, A)
    x = torch.randn(S, T, M, in_dim, generator=torch.Generator().manual_seed(0))
    q, h_last = agent(x, agent.initial_hidden(S, M))
    for k in range(S):
        fc1, fc2, gru = torch.nn.Linear(in_dim, H), torch.nn.Linear(H, A), torch.nn.GRUCell(H, H)
        with torch.no_grad():
            for linear, stacked in ((fc1, agent.fc1), (fc2, agent.fc2)):
                linear.weight.copy_(stacked.weight[k, 0].T)
                linear.bias.copy_(stacked.bias[k, 0, 0])
            gru.weight_ih.copy_(agent.gru_input.weight[k, 0].T)
            gru.bias_ih.copy_(agent.gru_input.bias[k, 0, 0])
            gru.weight_hh.copy_(agent.gru_hidden.weight[k, 0].T)
            gru.bias_hh.copy_(agent.gru_hidden.bias[k, 0, 0])
        h = torch.zeros(M, H)
        for t in range(T):
            h = gru(torch.relu(fc1(x[k, t])), h)
            torch.testing.assert_close(q[k, t], fc2(h), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(h_last[k], h, rtol=1e-5, atol=1e-6)


# ---- mixer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("hypernet_layers", [1, 2])
def test_mixer_is_monotone_in_every_agent_q(hypernet_layers):
    """dQ_tot/dQ_i >= 0 (QMIX eq. 5) at random states and Q-values, for every seed."""
    S, N, state_dim, M = 3, 4, 6, 500
    mixer = QMixer(SeedStreams(range(S), "init"), N, state_dim, 8, hypernet_layers, 16)
    g = torch.Generator().manual_seed(0)
    q = (3 * torch.randn(S, M, N, generator=g)).requires_grad_()
    state = 3 * torch.randn(S, M, state_dim, generator=g)
    mixer(q, state).sum().backward()  # each Q_tot depends on its own row only
    assert (q.grad >= 0).all()
    assert (q.grad > 0).float().mean() > 0.5  # not trivially zero


def test_mixer_matches_a_hand_computation():
    """One seed, 2 agents, embed 2, state s = [2]; weights set by hand (PyMARL QMixer):
    |W1(s)| = |2 [1, -2, .5, 3] + [0, 1, 0, -1]| = [[2, 3], [1, 5]] (a row per agent),
    b1(s) = 2 [.5, -.5] + [.1, .2] = [1.1, -.8], q = [1, -2]:
    hidden = ELU([1*2 - 2*1 + 1.1, 1*3 - 2*5 - .8]) = [1.1, exp(-7.8) - 1],
    |w_final(s)| = |2 [-1, 1.25]| = [2, 2.5], V(s) = [3, 7] . ReLU(2 [1, -1]) + .25 = 6.25,
    Q_tot = 1.1 * 2 + (exp(-7.8) - 1) * 2.5 + 6.25."""
    mixer = QMixer(SeedStreams([0], "init"), 2, 1, 2, 1, 64)
    with torch.no_grad():
        for p in mixer.parameters():
            p.zero_()
        w1 = mixer.hyper_w1.layers[0]
        w1.weight[0, 0, 0] = torch.tensor([1.0, -2.0, 0.5, 3.0])
        w1.bias[0, 0, 0] = torch.tensor([0.0, 1.0, 0.0, -1.0])
        b1 = mixer.hyper_b1.layers[0]
        b1.weight[0, 0, 0] = torch.tensor([0.5, -0.5])
        b1.bias[0, 0, 0] = torch.tensor([0.1, 0.2])
        mixer.hyper_w_final.layers[0].weight[0, 0, 0] = torch.tensor([-1.0, 1.25])
        mixer.V.layers[0].weight[0, 0, 0] = torch.tensor([1.0, -1.0])
        mixer.V.layers[1].weight[0, 0, :, 0] = torch.tensor([3.0, 7.0])
        mixer.V.layers[1].bias[0, 0, 0] = torch.tensor([0.25])
    q_tot = mixer(torch.tensor([[[1.0, -2.0]]]), torch.tensor([[[2.0]]]))
    expected = 1.1 * 2 + (math.exp(-7.8) - 1) * 2.5 + 6.25
    assert q_tot.shape == (1, 1)
    assert q_tot.item() == pytest.approx(expected, rel=1e-6)


# ---- the TD loss ---------------------------------------------------------------------------
def constant_qmix(double_q: bool) -> QMIX:
    """2 agents, 3 actions, every weight zero: the GRU state stays 0, so every agent's Q is
    fc2's bias: online [1, 3, 2], target [2, 0, 1]. Mixer (embed 1): |W1| = [1, 1], b1 = 0,
    |w_final| = 1, V = 0, so Q_tot = ELU(Q_1 + Q_2) = Q_1 + Q_2 for positive sums."""
    spec = EnvSpec(2, 1, 1, True, 3, (), (), 2)
    settings = dataclasses.replace(
        TINY,
        mixing_embed_dim=1,
        hypernet_layers=1,
        gamma=0.5,
        double_q=double_q,
        target_update_interval=1000,
    )
    algo = QMIX(spec, [0], settings)
    with torch.no_grad():
        for p in algo.state_dict(keep_vars=True).values():
            if p.is_floating_point():
                p.zero_()
        algo.agent.fc2.bias[0, 0, 0] = torch.tensor([1.0, 3.0, 2.0])
        algo.target_agent.fc2.bias[0, 0, 0] = torch.tensor([2.0, 0.0, 1.0])
        for mixer in (algo.mixer, algo.target_mixer):
            mixer.hyper_w1.layers[0].bias.fill_(1.0)
            mixer.hyper_w_final.layers[0].bias.fill_(1.0)
    return algo


@pytest.mark.parametrize(
    "double_q, expected",
    [
        # Q_tot(taken) = [3 + 2, 1 + 1 | 2 + 3]; gamma = 0.5.
        # Double Q: u' by the online Q among available actions, valued by the target Q.
        #   ep 0 row 0 -> row 1: agent 0 {0, 2} online [1, ., 2] -> 2, target 1; agent 1 all
        #     -> 1, target 0: y = 1 + .5 (1 + 0) = 1.5, td = 5 - 1.5 = 3.5
        #   ep 0 row 1 -> final row 2 (time limit, bootstrapped): agent 0 {2} -> 1, agent 1
        #     {0} -> 2: y = 2 + .5 * 3 = 3.5, td = 2 - 3.5 = -1.5
        #   ep 1 row 0 terminated: y = 4, td = 5 - 4 = 1; ep 1 row 1 unfilled: masked
        (True, (3.5**2 + 1.5**2 + 1.0**2) / 3),
        # Plain max of the target Q over available actions: ep 0 row 0: agent 0 {0, 2}
        #   target [2, ., 1] -> 2, agent 1 -> 2: y = 1 + .5 * 4 = 3, td = 2; rows as above.
        (False, (2.0**2 + 1.5**2 + 1.0**2) / 3),
    ],
)
def test_td_loss_matches_a_hand_computation(double_q, expected):
    algo = constant_qmix(double_q)
    loss = algo.update(hand_batch(), None)["loss_td"]
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# ---- acting --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["explore", "greedy"])
def test_masked_actions_are_never_chosen(mode):
    S, E, N, A = 2, 64, SPEC.n_agents, SPEC.action_dim
    settings = dataclasses.replace(TINY, epsilon_finish=0.3, epsilon_anneal_steps=40 * E)
    algo = QMIX(SPEC, [0, 1], settings)
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(S, E, N, SPEC.obs_dim, generator=g)
    memory = algo.begin_episodes(None, torch.ones(S, E, dtype=torch.bool), obs, None)
    chosen = torch.zeros(A, dtype=torch.long)
    for _ in range(40):
        avail = (torch.rand(S, E, N, A, generator=g) < 0.3).float()
        one = torch.randint(0, A, (S, E, N, 1), generator=g)
        avail.scatter_(-1, one, 1.0)  # every agent has at least one available action
        obs = torch.randn(S, E, N, SPEC.obs_dim, generator=g)
        action, memory = algo.act(obs, None, avail, memory, mode)
        assert action.shape == (S, E, N) and action.dtype == torch.int64
        assert (avail.gather(-1, action.unsqueeze(-1)) == 1).all()
        chosen += torch.bincount(action.flatten(), minlength=A)
        started = torch.rand(S, E, generator=g) < 0.2
        memory = algo.begin_episodes(memory, started, obs, None)
    assert (chosen > 0).all()  # every action was available somewhere and got picked
    assert algo.env_steps.tolist() == ([40 * E] * S if mode == "explore" else [0] * S)


def test_epsilon_schedule_is_linear_then_flat():
    algo = QMIX(SPEC, [0, 1], dataclasses.replace(TINY, epsilon_anneal_steps=100))
    for steps, eps in [(0, 1.0), (50, 0.525), (100, 0.05), (1000, 0.05)]:
        algo.env_steps.fill_(steps)
        assert algo.epsilon().tolist() == pytest.approx([eps, eps])


# ---- seeds ---------------------------------------------------------------------------------
def trained(seeds: list[int], env_steps: int = 40) -> QMIX:
    env = envs.make_batched("matrix_game", len(seeds) * TINY.env_copies)
    algo = QMIX(env.spec, seeds, TINY)
    train(algo, env, seeds, Budget(env_steps, env_steps, 1), lambda step, losses: None)
    return algo


def test_a_seed_trains_the_same_alone_or_among_others():
    """Seed 3 alone and among seeds 0..6: equal to float tolerance (rtol 1e-5, atol 1e-6; the
    batched matmuls may sum in another order), over parameters, targets and counters."""
    alone, among = trained([3]), trained(list(range(7)))
    assert int(alone.updates[0]) >= 3  # it trained, past a target copy
    a, b = alone.seed_state(0), among.seed_state(3)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=name)
    other = among.seed_state(0)
    assert not torch.allclose(other["agent.fc1.weight"], a["agent.fc1.weight"])
    assert not torch.allclose(other["mixer.V.layers.1.weight"], a["mixer.V.layers.1.weight"])


def test_seeds_outside_active_do_not_change():
    algo = QMIX(SPEC, [0, 1, 2], TINY)  # target_update_interval 3
    for seed in range(2):  # two full updates: moments non-zero, targets behind the online nets
        algo.update(random_batch(SPEC, 3, 5, seed), None)
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    moments = [m.clone() for m in algo.optimiser.square_avg]
    active = torch.tensor([True, False, True])
    algo.update(random_batch(SPEC, 3, 5, seed=2), active)  # the 3rd update: targets due
    after = algo.state_dict()
    for name, value in after.items():
        assert torch.equal(value[1], before[name][1]), name
    for m, m0 in zip(algo.optimiser.square_avg, moments):
        assert torch.equal(m[1], m0[1])
    assert algo.updates.tolist() == [3, 2, 3]
    for k in (0, 2):  # the active seeds stepped and copied their targets
        assert not torch.equal(after["agent.fc1.weight"][k], before["agent.fc1.weight"][k])
        assert torch.equal(after["target_agent.fc1.weight"][k], after["agent.fc1.weight"][k])
        assert torch.equal(
            after["target_mixer.V.layers.0.bias"][k], after["mixer.V.layers.0.bias"][k]
        )
    assert not torch.equal(after["target_agent.fc1.weight"][1], after["agent.fc1.weight"][1])


def test_checkpoint_round_trip():
    algo = trained([0, 1, 2], env_steps=20)
    assert (algo.env_steps > 0).all() and (algo.updates > 0).all()
    slices = [algo.seed_state(k) for k in range(3)]
    fresh = QMIX(envs.make_batched("matrix_game", 1).spec, [7, 8, 9], TINY)
    assert not torch.equal(
        fresh.state_dict()["agent.fc1.weight"], algo.state_dict()["agent.fc1.weight"]
    )
    fresh.load_seed_states(slices)
    own, loaded = algo.state_dict(), fresh.state_dict()
    assert set(loaded) == set(own) and {"env_steps", "updates"} <= set(own)
    for name in own:
        assert torch.equal(loaded[name], own[name]), name


# ---- the optimiser -------------------------------------------------------------------------
def test_seed_rmsprop_matches_torch_per_seed():
    """Each active seed follows torch.optim.RMSprop after clip_grad_norm_ (PyMARL's step) on its
    own slice; the masked seed keeps its parameters."""
    S, steps, clip = 3, 4, 0.5
    g = torch.Generator().manual_seed(0)
    w = torch.randn(S, 4, 3, generator=g).requires_grad_()
    b = torch.randn(S, 3, generator=g).requires_grad_()
    xs = [torch.randn(S, 5, 4, generator=g) for _ in range(steps)]
    active = torch.tensor([True, False, True])
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt = SeedRMSprop([w, b], lr=0.01, alpha=0.9, eps=1e-5, clip=clip)
    for x in xs:
        opt.zero_grad()
        (torch.bmm(x, w) + b.unsqueeze(1)).pow(2).sum().backward()
        opt.step(active)
    assert torch.equal(w[1], w0[1]) and torch.equal(b[1], b0[1])
    for k in (0, 2):
        wk, bk = w0[k].clone().requires_grad_(), b0[k].clone().requires_grad_()
        ref = torch.optim.RMSprop([wk, bk], lr=0.01, alpha=0.9, eps=1e-5)
        for x in xs:
            ref.zero_grad()
            (x[k] @ wk + bk).pow(2).sum().backward()
            torch.nn.utils.clip_grad_norm_([wk, bk], clip)
            ref.step()
        torch.testing.assert_close(w[k], wk, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b[k], bk, rtol=1e-5, atol=1e-6)


# ---- learning ------------------------------------------------------------------------------
def test_learns_a_monotone_matrix_game():
    """Payoff a_1 a_2 over actions (1, 2, 3) (so (C, C) pays 9): monotone, so QMIX can
    represent it. 3 seeds x 8 copies x 2000 one-step episodes per seed, epsilon annealed over
    the first 500; the first update waits for a batch of 32 episodes and none follows the last episode, so
    246 updates per seed.
    Every seed's greedy joint action must pay the optimum 9."""
    payoff = ((1, 2, 3), (2, 4, 6), (3, 6, 9))
    seeds = [0, 1, 2]
    settings = dataclasses.replace(
        QMIXSettings(**PYMARL),
        env_copies=8,
        replay_size=500,
        epsilon_anneal_steps=500,
        target_update_interval=20,
        hidden=32,
        mixing_embed_dim=8,
        lr=0.005,
    )
    env = envs.make_batched("matrix_game", len(seeds) * settings.env_copies, payoff=payoff)
    algo = QMIX(env.spec, seeds, settings)
    train(algo, env, seeds, Budget(2000, 2000, 1), lambda step, losses: None)
    assert algo.updates.tolist() == [246] * 3
    greedy = evaluate(
        algo, envs.make_batched("matrix_game", 3, payoff=payoff), seeds, [0], "greedy"
    )
    np.testing.assert_array_equal(greedy.returns, [[9.0]] * 3)


def test_trains_on_smax_3m_with_its_action_masks():
    """A short run on SMAX 3m (multi-step episodes, dead agents' masks, terminations and time
    limits): every action taken is available and every active seed's loss is finite."""
    seeds, E = [0, 1], 2
    env = envs.make_batched("sparse_smac", len(seeds) * E, map_name="3m")
    settings = dataclasses.replace(TINY, env_copies=E, epsilon_anneal_steps=200)
    algo = QMIX(env.spec, seeds, settings)
    act, update, taken, losses = algo.act, algo.update, [], []

    def checked_act(obs, state, avail, memory, mode, noise=None, acting=None):
        action, memory = act(obs, state, avail, memory, mode, noise, acting)
        legal = avail.gather(-1, action.unsqueeze(-1)).squeeze(-1) == 1  # [S, E, N]
        taken.append(bool(legal[acting].all()))  # waiting copies' actions are never taken
        return action, memory

    def checked_update(batch, active):
        loss = update(batch, active)["loss_td"]
        losses.append(loss if active is None else loss[active])
        return {"loss_td": loss}

    algo.act, algo.update = checked_act, checked_update
    train(algo, env, seeds, Budget(300, 300, 1), lambda step, loss: None)
    assert taken and all(taken)
    assert (algo.updates > 0).all()
    assert torch.isfinite(torch.cat(losses)).all()
