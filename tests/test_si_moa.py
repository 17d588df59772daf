"""SI-MOA on MA-AC (algorithms/learners/si_moa.py): the influence reward, the model of other agents and
the shaped critic targets on small batches worked out by hand or by quadrature; the shared
partner model against VM3-AC's q_xi; seeds, checkpoints, and learning on Simple World."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import constant, continuous_spec, simple_world_start

import envs
from algorithms.components.seeding import SeedStreams
from algorithms.learners.si_moa import SIMOA, SIMOASettings, mixture_kl
from algorithms.learners.vm3ac import VM3AC, VM3ACSettings
from algorithms.models.partner_model import PartnerModel, partners_of
from algorithms.models.stacked_mlp import StackedMLP
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

SIGMA, GAMMA, W = 0.5, 0.9, 0.3

SPEC = continuous_spec(n_agents=3, obs_dim=2, state_dim=3)

BASE = dict(
    batch_size=2,
    replay_size=10,
    learning_starts=0,
    update_every=1,
    update_unit="step",
    gradient_steps=1,
    gradient_steps_per="phase",
    env_copies=1,
    beta=0.0,
    mutual_information=True,
    z_dim=0,
    q_sigma=1.0,
    hidden=(4,),
    gamma=GAMMA,
    tau=0.5,
    lr_actor=1e-3,
    lr_critic=1e-3,
    log_std_min=-20.0,
    log_std_max=2.0,
)
SI = dict(influence_weight=W, counterfactuals=4, influence_samples=8, moa_sigma=SIGMA,
          moa_sigma_learned=False, moa_sigma_min=0.05, influence_clip=1e6)


pytestmark = pytest.mark.usefixtures("one_thread")


def make(seeds=(0,), spec=SPEC, **changes) -> SIMOA:
    return SIMOA(spec, list(seeds), SIMOASettings(**{**BASE, **SI, **changes}))



def linear_moa(moa: StackedMLP, slopes) -> None:
    """mu_i(a_i, o_i, o_j) = slopes[i] * a_i exactly (one-hidden-layer MOA, action dim 1): hidden
    unit 0 holds a_i + 10 (> 0 for |a_i| <= 1, so the ReLU passes it), the output reads
    slopes[i] * (unit 0 - 10)."""
    first, last = moa.layers
    s = torch.as_tensor(slopes, dtype=torch.float32).view(1, -1)
    with torch.no_grad():
        for p in (first.weight, first.bias, last.weight, last.bias):
            p.zero_()
        first.weight[:, :, 0, 0] = 1.0  # input column 0 is a_i
        first.bias[:, :, 0, 0] = 10.0
        last.weight[:, :, 0, 0] = s
        last.bias[:, :, 0, 0] = -10.0 * s


OBS = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]], [[0.9, 1.0], [1.1, 1.2]]]])
ACTIONS = torch.tensor([[[[0.2], [-0.6]], [[-0.4], [0.9]], [[0.7], [0.1]]]])  # [S=1,N=3,B=2,A=1]


def normal_pdf(x, mean, sigma):
    return np.exp(-((x - mean) ** 2) / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma**2)


# ---- the KL estimator ------------------------------------------------------------------------
def test_mixture_kl_matches_quadrature_zero_and_single_component():
    g = torch.Generator().manual_seed(0)
    L = 200_000
    eps = torch.randn(L, 1, generator=g)
    mean, comps = 0.3, [-0.5, 0.8]
    got = mixture_kl(torch.tensor([mean]), torch.tensor([[c] for c in comps]), SIGMA, eps)
    x = np.linspace(mean - 12 * SIGMA, mean + 12 * SIGMA, 200_001)
    p = normal_pdf(x, mean, SIGMA)
    q = np.mean([normal_pdf(x, c, SIGMA) for c in comps], axis=0)
    exact = np.trapezoid(p * (np.log(p) - np.log(q)), x)
    assert exact > 0.1
    assert abs(float(got) - exact) < 0.01 * exact + 4 * 1.5 / math.sqrt(L)  # a few std errors
    # Every component equal to the conditional: exactly no influence, whatever the draws.
    same = mixture_kl(torch.tensor([mean]), torch.tensor([[mean]] * 5), SIGMA, eps[:100])
    assert abs(float(same)) < 1e-6
    # K = 1: the Gaussian KL |d|^2 / (2 sigma^2) in expectation.
    eps2 = torch.randn(L, 2, generator=g)
    one = mixture_kl(torch.tensor([mean, 0.0]), torch.tensor([[-0.5, 0.4]]), SIGMA, eps2)
    assert abs(float(one) - (0.8**2 + 0.4**2) / (2 * SIGMA**2)) < 0.02


# ---- the influence reward on small batches ---------------------------------------------------
def test_influence_is_zero_when_the_model_ignores_the_own_action():
    algo = make(seeds=(0, 1))
    constant(algo.moa, [[0.5], [-0.1], [0.3]])  # predictions independent of a_i (and o)
    c = algo.influence(OBS.repeat(2, 1, 1, 1), ACTIONS.repeat(2, 1, 1, 1))
    assert c.shape == (2, 3, 2)
    torch.testing.assert_close(c, torch.zeros_like(c), atol=1e-6, rtol=0)


def test_influence_of_a_linear_model_with_deterministic_policies_is_the_gaussian_kl():
    """mu_i = s_i a_i and pi_i concentrated at tanh(m_i): the marginal is N(s_i tanh(m_i),
    sigma^2), so c_i = (N-1) s_i^2 (a_i - tanh(m_i))^2 / (2 sigma^2) (two partners each)."""
    algo = make(influence_samples=20_000)
    slopes, m = [1.5, -2.0, 0.5], [0.3, -0.2, 0.0]
    linear_moa(algo.moa, slopes)
    constant(algo.actor.net, [[mi, -20.0] for mi in m])  # log std -20: a_i^k = tanh(m_i)
    c = algo.influence(OBS, ACTIONS)
    a = ACTIONS[0, :, :, 0]
    centre = torch.tanh(torch.tensor(m)).unsqueeze(1)
    s = torch.tensor(slopes).unsqueeze(1)
    expected = 2 * s**2 * (a - centre) ** 2 / (2 * SIGMA**2)
    # Monte Carlo: per partner the std error is |d| / (sigma sqrt(L)); allow 4 of them.
    tolerance = 4 * 2 * (s * (a - centre)).abs() / (SIGMA * math.sqrt(20_000)) + 1e-5
    assert ((c[0] - expected).abs() <= tolerance).all(), (c[0], expected)
    assert (expected > 0.005).all()


def test_influence_with_a_stochastic_policy_matches_quadrature():
    """N = 2, mu_1 = s a_1, pi_1 = tanh of N(m, 0.5^2): many counterfactuals and draws give the
    KL to the exact marginal int pi_1(a') N(a_2; s a', sigma^2) da' (by quadrature)."""
    spec = SimpleNamespace(**{**vars(SPEC), "n_agents": 2})
    algo = make(spec=spec, counterfactuals=3000, influence_samples=3000)
    s, m, log_std = 1.5, 0.2, math.log(0.5)
    linear_moa(algo.moa, [s, s])
    constant(algo.actor.net, [[m, log_std], [m, log_std]])
    a = torch.tensor([[[[0.8]], [[-0.3]]]])  # [S=1, N=2, B=1, A=1]
    c = algo.influence(OBS[:, :2, :1], a)[0, :, 0]
    u = np.linspace(m - 8 * 0.5, m + 8 * 0.5, 4001)
    pu = normal_pdf(u, m, 0.5)
    pu /= np.trapezoid(pu, u)
    x = np.linspace(-6, 6, 4001)
    given_u = normal_pdf(x[:, None], s * np.tanh(u)[None, :], SIGMA)  # p(a_2 = x | a_1 = tanh u)
    marginal = np.trapezoid(pu[None, :] * given_u, u, axis=1)
    for i, ai in enumerate([0.8, -0.3]):
        p = normal_pdf(x, s * ai, SIGMA)
        exact = np.trapezoid(p * (np.log(p + 1e-300) - np.log(marginal + 1e-300)), x)
        assert abs(float(c[i]) - exact) < 0.05 * exact + 0.02, (i, float(c[i]), exact)


# ---- the model of other agents ---------------------------------------------------------------
NEXT = torch.tensor([[[[0.6], [-0.2]], [[0.1], [0.4]], [[-0.9], [0.3]]]])  # a^{t+1}, [S,N,B,A]


def test_moa_loss_is_the_negative_log_likelihood_of_partners_next_actions():
    """Only rows whose episode goes on count (row 1 here ended: its successor is another
    episode's first action)."""
    algo = make()
    preds = [0.5, -0.1, 0.3]  # agent i predicts every partner's next action as preds[i]
    constant(algo.moa, [[p] for p in preds])
    loss = algo.moa_loss(OBS, ACTIONS, NEXT, torch.tensor([[True, False]]))
    a = NEXT[0, :, :, 0].tolist()
    expected = 0.0
    for i in range(3):
        for j in range(3):
            if j != i:
                log_p = -((a[j][0] - preds[i]) ** 2) / (2 * SIGMA**2) - 0.5 * math.log(2 * math.pi * SIGMA**2)
                expected -= log_p  # the one row that counts
    torch.testing.assert_close(loss, torch.tensor([expected]))
    none = algo.moa_loss(OBS, ACTIONS, NEXT, torch.tensor([[False, False]]))
    assert float(none.detach()) == 0.0


def fit_moa(algo, next_of, steps=400, B=256):
    """Train only the MOA on rows where a^{t+1} = next_of(a^t, generator); o is noise."""
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        o = torch.randn(1, 2, B, 2, generator=g)
        a = torch.rand(1, 2, B, 1, generator=g) * 2 - 1
        loss = algo.moa_loss(o, a, next_of(a, g), torch.ones(1, B, dtype=torch.bool))
        algo.moa_opt.zero_grad()
        loss.sum().backward()
        algo.moa_opt.step()
    o = torch.randn(1, 2, B, 2, generator=g)
    a = torch.rand(1, 2, B, 1, generator=g) * 2 - 1
    return algo.influence(o, a)


@pytest.mark.parametrize("learned", [True, False])
def test_influence_is_positive_when_the_partners_next_action_follows_mine_and_zero_otherwise(learned):
    """Hand-made dynamics, N = 2, a stochastic policy (tanh of N(0, 1)): (1) a_j^{t+1} = a_i^t
    (agent i steers its partner's next move): the fitted MOA gives c_i well above 0;
    (2) a_j^{t+1} drawn independently of a_i^t: c_i is 0 up to the model's error."""
    spec = SimpleNamespace(**{**vars(SPEC), "n_agents": 2})
    settings = dict(spec=spec, hidden=(32,), lr_actor=1e-2, counterfactuals=16, influence_samples=16,
                    moa_sigma_learned=learned, moa_sigma=0.3)
    follows = fit_moa(make(**settings), lambda a, g: a.flip(1))  # partner's next = my action now
    noise = fit_moa(make(**settings), lambda a, g: torch.rand(a.shape, generator=g) * 2 - 1)
    assert float(follows.mean()) > 0.5, follows.mean()
    assert float(noise.mean().abs()) < 0.05, noise.mean()


def test_partner_model_is_vm3acs_q_xi():
    """Built from the same stream it draws what VM3-AC's plain q_xi network draws, and its
    log-density reproduces VM3AC._log_q's term (b) (N = 3, two seeds)."""
    seeds = [0, 5]
    plain = StackedMLP(SeedStreams(seeds, "init"), 3, 1 + 2 * 2, (4, 4), 1)
    shared = PartnerModel(SeedStreams(seeds, "init"), 3, 2, 1, (4, 4), SIGMA)
    assert plain.state_dict().keys() == shared.state_dict().keys()
    for name, tensor in plain.state_dict().items():
        assert torch.equal(shared.state_dict()[name], tensor), name

    changes = {"beta": 0.4, "z_dim": 1, "q_sigma": SIGMA, "hidden": (4, 4)}
    settings = VM3ACSettings(**{**BASE, **changes})
    vm3ac = VM3AC(SPEC, seeds, settings)
    model = PartnerModel(SeedStreams([9, 9], "other"), 3, 2, 1, (4, 4), SIGMA)
    model.load_state_dict(vm3ac.q_xi.state_dict())  # strict: the same keys
    g = torch.Generator().manual_seed(1)
    o, a = torch.randn(2, 3, 5, 2, generator=g), torch.rand(2, 3, 5, 1, generator=g) * 2 - 1
    term_b, _ = vm3ac._log_q(o, a)
    got = model.log_prob(o, a, model.partners(a))
    torch.testing.assert_close(got, term_b, rtol=1e-6, atol=1e-6)
    assert partners_of(3).tolist() == [[1, 2], [0, 2], [0, 1]]


def test_the_factored_first_layer_is_the_network_on_the_concatenated_input():
    """PartnerModel.mean sums the first layer's parts on the rows each varies over; it equals
    the plain network on [a_i, o_i, o_j] for every (i, j, m, b), gradients included."""
    S, N, M, B, obs, A = 2, 4, 3, 5, 6, 2
    model = PartnerModel(SeedStreams([0, 1], "init"), N, obs, A, (8, 7), SIGMA)
    g = torch.Generator().manual_seed(0)
    o = torch.randn(S, N, B, obs, generator=g, requires_grad=True)
    own = torch.randn(S, N, M, B, A, generator=g, requires_grad=True)
    got = model.mean(o, own)
    P = N - 1
    inputs = torch.cat([
        own.unsqueeze(2).expand(S, N, P, M, B, A),
        o[:, :, None, None].expand(S, N, P, M, B, obs),
        model.partners(o).unsqueeze(3).expand(S, N, P, M, B, obs),
    ], -1).flatten(2, 4)  # fmt: skip
    want = StackedMLP.forward(model, inputs).unflatten(2, (P, M, B))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(got.square().sum(), [o, own, *model.parameters()])
    wants = torch.autograd.grad(want.square().sum(), [o, own, *model.parameters()])
    for a, b in zip(grads, wants):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ---- the shaped critics ----------------------------------------------------------------------
def test_each_agent_critic_learns_the_team_reward_plus_its_weighted_influence(monkeypatch):
    algo = make()
    constant(algo.q, [[1.0], [1.5], [-0.5], [2.0], [0.5], [0.0]])  # Q_1 of agents 1-3, then Q_2
    constant(algo.v, [[0.5], [0.0], [1.0]])
    constant(algo.v_target, [[3.0], [-1.0], [2.0]])
    influence = torch.tensor([[[0.2, 0.4], [1.0, 0.0], [0.5, 3.0]]])  # c_i per sample
    monkeypatch.setattr(algo, "influence", lambda o, a, active=None: influence)
    batch = {
        "obs": OBS.transpose(1, 2),
        "state": torch.zeros(1, 2, 3),
        "next_state": torch.zeros(1, 2, 3),
        "action": ACTIONS.transpose(1, 2),
        "reward": torch.tensor([[1.0, -2.0]]),
        "terminated": torch.tensor([[False, True]]),
        "next_action": NEXT.transpose(1, 2),
        "has_next_action": torch.tensor([[True, False]]),
    }
    losses = algo.update(batch)
    expected_v = expected_q = 0.0
    nets = [(1.0, 2.0, 0.5, 3.0), (1.5, 0.5, 0.0, -1.0), (-0.5, 0.0, 1.0, 2.0)]  # Q1 Q2 V V_bar
    for i, (q1, q2, v, v_bar) in enumerate(nets):
        for b in range(2):
            expected_v += 0.5 * (v - min(q1, q2)) ** 2 / 2  # eqs. 16-17 with beta = 0
            r_i = float(batch["reward"][0, b]) + W * float(influence[0, i, b])
            q_hat = r_i + GAMMA * (1 - float(batch["terminated"][0, b])) * v_bar  # eq. 19
            expected_q += 0.5 * ((q1 - q_hat) ** 2 + (q2 - q_hat) ** 2) / 2  # eq. 18
    torch.testing.assert_close(losses["loss_v"], torch.tensor([expected_v]))
    torch.testing.assert_close(losses["loss_q"], torch.tensor([expected_q]))
    torch.testing.assert_close(losses["influence"], influence.mean((1, 2)))
    assert set(losses) == {"loss_v", "loss_q", "loss_pi", "loss_moa", "influence"}


# ---- seeds, checkpoints, MA-AC ---------------------------------------------------------------
TINY = dict(
    batch_size=16, replay_size=200, learning_starts=20, hidden=(8, 8), counterfactuals=3,
    influence_samples=4, moa_sigma=1.0, moa_sigma_learned=True, lr_actor=3e-3, lr_critic=3e-3,
)  # fmt: skip


def trained(algo, seeds, steps=80):
    env = envs.make_batched("simple_world", len(seeds))
    train(algo, env, seeds, Budget(steps, steps, 1), lambda points, losses: None)
    return algo


def test_seed_trained_alone_equals_seed_trained_among_three():
    spec = envs.make_batched("simple_world", 1).spec
    together = trained(make((0, 1, 2), spec, **TINY), [0, 1, 2])
    alone = trained(make((1,), spec, **TINY), [1])
    for name, tensor in together.state_dict().items():
        torch.testing.assert_close(alone.state_dict()[name][0], tensor[1], rtol=1e-5, atol=1e-6)


def test_a_seed_outside_active_draws_nothing_and_keeps_its_parameters():
    algo = make((0, 1, 2))
    g = torch.Generator().manual_seed(3)
    batch = {
        "obs": torch.randn(3, 2, 3, 2, generator=g),
        "state": torch.randn(3, 2, 3, generator=g),
        "next_state": torch.randn(3, 2, 3, generator=g),
        "action": torch.rand(3, 2, 3, 1, generator=g) * 2 - 1,
        "reward": torch.randn(3, 2, generator=g),
        "terminated": torch.zeros(3, 2, dtype=torch.bool),
        "next_action": torch.rand(3, 2, 3, 1, generator=g) * 2 - 1,
        "has_next_action": torch.ones(3, 2, dtype=torch.bool),
    }
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    streams = [s.generators[1].get_state() for s in (algo.influence_noise, algo.update_noise)]
    algo.update(batch, torch.tensor([True, False, True]))
    moved = set()
    for name, tensor in algo.state_dict().items():
        assert torch.equal(tensor[1], before[name][1]), name
        if not torch.equal(tensor[0], before[name][0]):
            moved.add(name.split(".")[0])
    assert moved == {"actor", "q", "v", "moa"}  # the target V moves only at the phase's end
    for stream, state in zip((algo.influence_noise, algo.update_noise), streams):
        assert torch.equal(stream.generators[1].get_state(), state)


def test_checkpoint_round_trips_into_a_one_seed_learner():
    algo = make((0, 1, 2))
    with torch.no_grad():
        for tensor in algo.state_dict().values():
            assert tensor.shape[0] == 3
            tensor.add_(torch.randn_like(tensor))
    assert any(name.startswith("moa.") for name in algo.state_dict())
    buffer = io.BytesIO()
    torch.save(algo.seed_state(2), buffer)
    buffer.seek(0)
    alone = make((7,))
    alone.load_seed_states([torch.load(buffer, weights_only=True)])
    for name, tensor in algo.state_dict().items():
        assert torch.equal(alone.state_dict()[name][0], tensor[2]), name


def test_with_zero_influence_weight_policies_and_critics_are_ma_acs():
    """w = 0: the actor, critics and target follow MA-AC (VM3AC with beta = 0, z_dim = 0)
    exactly; only the model of other agents is added."""
    spec = envs.make_batched("simple_world", 1).spec
    si = trained(make((0, 1), spec, **{**TINY, "influence_weight": 0.0}), [0, 1])
    ma_settings = VM3ACSettings(**{**BASE, **{k: v for k, v in TINY.items() if k in BASE}})
    ma = trained(VM3AC(spec, [0, 1], ma_settings), [0, 1])
    added = set(si.state_dict()) - set(ma.state_dict())
    assert added and all(name.startswith("moa.") for name in added)
    for name, tensor in ma.state_dict().items():
        assert torch.equal(si.state_dict()[name], tensor), name


@pytest.mark.parametrize(
    "field,value",
    [
        ("influence_weight", -0.1),
        ("counterfactuals", 0),
        ("counterfactuals", 2.5),
        ("influence_samples", 0),
        ("moa_sigma", 0.0),
        ("moa_sigma_min", 0.0),
        ("moa_sigma_learned", "yes"),
        ("influence_clip", 0.0),
        ("beta", 0.1),
        ("z_dim", 2),
        ("batch_size", 0),
    ],
)
def test_bad_settings_name_the_field(field, value):
    good = {**BASE, **SI}
    with pytest.raises(ValueError, match=f"^{field}: "):
        SIMOASettings(**{**good, field: value})


# ---- learning --------------------------------------------------------------------------------
SEEDS = [0, 1, 2]
ONE_BUMP = dict(means=((4.0, 3.0),), variances=(5.0,), scale=10 * 2 * math.pi * 5.0)  # peak +10


def test_si_moa_finds_the_optimum_of_a_one_bump_simple_world():
    """As tests/test_learning.py's MA-AC case (small nets and batches, an update per step), with
    the influence reward on at the proposed weight, counterfactuals, draws and sigma."""
    small = dict(
        batch_size=64, replay_size=2000, learning_starts=100, update_every=1, update_unit="step",
        gradient_steps=1, gradient_steps_per="phase", hidden=(32, 32), gamma=0.95, tau=0.05,
        lr_actor=3e-3, lr_critic=3e-3,
    )  # fmt: skip
    proposed = dict(influence_weight=0.1, counterfactuals=10, influence_samples=10, moa_sigma=1.0,
                    moa_sigma_learned=True, moa_sigma_min=0.05, influence_clip=10.0)
    settings = SIMOASettings(**{**BASE, **small, **proposed})
    env = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    algo = SIMOA(env.spec, SEEDS, settings)
    probe = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    first = evaluate(algo, probe, SEEDS, [0], "deterministic").returns[:, 0]
    influence = []  # each seed's mean influence reward between curve points

    def on_curve(points, losses):
        influence.extend(seed["influence"] for seed in losses.values() if "influence" in seed)

    train(algo, env, SEEDS, Budget(600, 100, 1), on_curve)
    last = evaluate(algo, probe, SEEDS, [0], "deterministic").returns[:, 0]
    assert (first < 5).all(), "the untrained policy should not already sit on the bump"
    assert (last > 9).all(), last
    action, _ = algo.act(simple_world_start(3)[0], None, None, None, "deterministic", None)
    np.testing.assert_allclose(action.squeeze(1).squeeze(-1).numpy(), [[4.0, 3.0]] * 3, atol=0.6)
    assert len(influence) == 5 * len(SEEDS) and np.isfinite(influence).all(), influence
