"""IAC and its §5.2 ablations (algorithms/learners/iac.py): the joint Gaussian against a brute-force
multivariate normal, the covariance's shape and samples, the attention critic, the losses of
every variant recomputed from the networks by the paper's equations, seeds, checkpoints, and
learning a one-step task."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import continuous_spec
from scipy import stats

import envs
from algorithms.components.seeding import SeedStreams
from algorithms.learners.iac import IAC, IACSettings
from algorithms.models.attention_critic import AttentionCritic
from algorithms.models.joint_gaussian import JointGaussianPolicy
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

SPEC = continuous_spec(n_agents=3, obs_dim=2, state_dim=3)
BASE = dict(
    batch_size=4, replay_size=10, learning_starts=0, update_every=1, update_unit="step",
    gradient_steps=1, gradient_steps_per="phase", env_copies=1,
    exploration="joint", rank=2, attention=True, actor_objective="q_tot", hidden=(8,),
    critic_hidden=8, heads=2, critic_shared=True, critic_query="obs", mixing_embed_dim=4, hypernet_layers=1, hypernet_embed=4,
    gamma=0.9, lr_actor=1e-3, lr_critic=1e-3, alpha_start=0.1, alpha_decay=0.01, alpha_min=0.05,
    target_update_interval=3, noise_std=0.1, log_std_min=-5.0, log_std_max=0.0, fixed_variance=None,
    mean_jitter=0.0,
)  # fmt: skip
VARIANTS = {  # IAC §5.2 (params.yaml): exploration, rank, attention
    "iac": dict(),
    "sq": dict(attention=False),
    "siaq": dict(exploration="individual", rank=0),
    "siq": dict(exploration="individual", rank=0, attention=False),
    "attn_qmix": dict(exploration="deterministic", rank=0),
    "ddpg_mix": dict(exploration="deterministic", rank=0, attention=False),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def make(variant="iac", seeds=(0,), spec=SPEC, **changes) -> IAC:
    return IAC(spec, list(seeds), IACSettings(**{**BASE, **VARIANTS[variant], **changes}))


def policy(rank=2, seeds=(0, 1), N=3, A=2, low=-1.0, high=1.0) -> JointGaussianPolicy:
    return JointGaussianPolicy(
        SeedStreams(list(seeds), "init"), N, 4, 5, (low,) * A, (high,) * A, (16,), rank, (-3.0, 0.5)
    )


def batch(S=1, B=4, N=3, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return {
        "obs": r(S, B, N, 2),
        "next_obs": r(S, B, N, 2),
        "state": r(S, B, 3),
        "next_state": r(S, B, 3),
        "action": r(S, B, N, 1).clamp(-1, 1),
        "reward": r(S, B),
        "terminated": torch.tensor([[False, True, False, False]] * S)[:, :B],
    }


# ---- the joint Gaussian (eqs. 10-14) -----------------------------------------------------------
def test_joint_log_probability_is_the_multivariate_normal_density():
    pi = policy(low=-2.0, high=2.0)
    obs, state = torch.randn(2, 3, 5, 4), torch.randn(2, 5, 5)
    streams = SeedStreams([0, 1], "test")
    u, log_pi, log_pi_i = pi.sample(obs, state, streams.normal(3, 5, 2), streams.normal(5, 2))
    assert log_pi_i is None  # with L the agents' actions are not independent
    mu = pi.mean(obs)
    sigma = pi.covariance(obs, state).double().detach().numpy()
    for k in range(2):
        for b in range(5):
            x = u[k, :, b].reshape(-1).double().detach().numpy()  # agent-major joint vector
            m = mu[k, :, b].reshape(-1).double().detach().numpy()
            expected = stats.multivariate_normal(m, sigma[k, b]).logpdf(x)  # eq. 10, brute force
            assert float(log_pi[k, b]) == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_rank_zero_is_independent_agents_whose_densities_add_up():
    pi = policy(rank=0)
    obs = torch.randn(2, 3, 5, 4)
    eps = SeedStreams([0, 1], "test").normal(3, 5, 2)
    u, log_pi, log_pi_i = pi.sample(obs, None, eps, None)
    torch.testing.assert_close(log_pi, log_pi_i.sum(1))  # eq. 11: sum of individual log pi_i
    mu, sigma, L = pi.parts(obs, None)
    assert L is None
    expected = stats.norm(mu.detach().numpy(), sigma.detach().numpy()).logpdf(u.detach().numpy()).sum(-1)
    np.testing.assert_allclose(log_pi_i.detach().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_covariance_is_symmetric_positive_definite_and_l_lt_plus_d():
    pi = policy()
    obs, state = torch.randn(2, 3, 6, 4), torch.randn(2, 6, 5)
    sigma = pi.covariance(obs, state)
    torch.testing.assert_close(sigma, sigma.transpose(-1, -2))
    assert (torch.linalg.eigvalsh(sigma) > 0).all()
    mu, sd, L = pi.parts(obs, state)
    D = torch.diag_embed(sd.transpose(1, 2).reshape(2, 6, 6).pow(2))
    torch.testing.assert_close(sigma, L @ L.transpose(-1, -2) + D)  # eq. 12
    assert L.shape == (2, 6, 6, 2)  # (N A) x m
    assert (L.abs() > 1e-3).any() and (sigma - D).abs().max() > 1e-3  # off-diagonal terms exist


def test_samples_have_the_stated_mean_and_covariance():
    """Many draws at one (o, s): the empirical covariance is Sigma (eq. 12)."""
    pi = policy(seeds=(0,), low=-3.0, high=3.0)
    n = 40000
    obs, state = torch.randn(1, 3, 1, 4).expand(1, 3, n, 4), torch.randn(1, 1, 5).expand(1, n, 5)
    streams = SeedStreams([5], "test")
    with torch.no_grad():
        u, _, _ = pi.sample(obs, state, streams.normal(3, n, 2), streams.normal(n, 2))
        x = u[0].transpose(0, 1).reshape(n, 6).double()
        sigma = pi.covariance(obs[..., :1, :], state[:, :1])[0, 0].double()
        mu = pi.mean(obs[..., :1, :])[0, :, 0].reshape(6).double()
    torch.testing.assert_close(x.mean(0), mu, atol=4 * float(sigma.diag().max().sqrt()) / math.sqrt(n), rtol=0)
    empirical = torch.cov(x.T)
    scale = torch.sqrt(torch.outer(sigma.diag(), sigma.diag()))  # sd of an entry ~ scale * sqrt(2/n)
    assert ((empirical - sigma).abs() / scale).max() < 6 * math.sqrt(2 / n)


def test_execution_is_each_agents_own_mean():
    algo = make(seeds=(0, 1))
    obs = torch.randn(2, 4, 3, 2)
    action, _ = algo.act(obs, torch.randn(2, 4, 3), None, None, "deterministic")
    torch.testing.assert_close(action, algo.actor.mean(obs.transpose(1, 2)).clamp(-1, 1).transpose(1, 2))
    other_state, _ = algo.act(obs, torch.randn(2, 4, 3), None, None, "deterministic")
    torch.testing.assert_close(action, other_state)  # decentralised: the state plays no part


# ---- the attention critic (eqs. 19-21) -------------------------------------------------------
def test_attention_weights_exclude_the_agent_itself_and_q_i_reads_every_agent():
    critic = AttentionCritic(SeedStreams([0], "init"), 3, 2, 1, 8, 2)
    obs, act = torch.randn(1, 3, 5, 2), torch.randn(1, 3, 5, 1, requires_grad=True)
    q, logits = critic(obs, act)
    assert q.shape == (1, 3, 5) and logits.shape == (1, 2, 5, 3, 3)
    assert (logits.diagonal(dim1=-2, dim2=-1) == 0).all()
    grad = torch.autograd.grad(q[0, 0].sum(), act)[0]  # Q_1 depends on u_1 (eq. 19) and u_2, u_3 (eq. 20)
    assert (grad[0, :, :, 0].abs().sum(-1) > 0).all()
    alone = AttentionCritic(SeedStreams([0], "init"), 3, 2, 1, 8, 2, attend=False)
    q_alone, _ = alone(obs, act)
    grad = torch.autograd.grad(q_alone[0, 0].sum(), act)[0]  # Q_1(o_1, u_1) only
    assert grad[0, 0].abs().sum() > 0 and (grad[0, 1:] == 0).all()


def test_the_critic_is_one_network_shared_by_the_agents_as_the_official_codes():
    critic = make().critic
    obs, act = torch.randn(1, 3, 5, 2), torch.randn(1, 3, 5, SPEC.action_dim)
    swap = [1, 0, 2]
    with torch.no_grad():
        q, _ = critic(obs, act)
        q_swapped, _ = critic(obs[:, swap], act[:, swap])
    # shared modules: exchanging two agents' inputs exchanges their Q values
    torch.testing.assert_close(q_swapped, q[:, swap])


def test_an_agents_attention_does_not_depend_on_its_own_action_as_the_official_codes():
    critic = make().critic
    obs, act = torch.randn(1, 3, 5, 2), torch.randn(1, 3, 5, SPEC.action_dim, requires_grad=True)
    _, logits = critic(obs, act)
    # the query of agent 0 is built from o_0 alone: its logits over the others do not move with u_0
    grad = torch.autograd.grad(logits[..., 0, :].sum(), act)[0]
    assert (grad[0, 0] == 0).all()


def test_the_per_agent_layout_with_action_queries_is_a_setting():
    critic = make(critic_shared=False, critic_query="obs_action").critic
    obs, act = torch.randn(1, 3, 5, 2), torch.randn(1, 3, 5, SPEC.action_dim, requires_grad=True)
    q, logits = critic(obs, act)
    swap = [1, 0, 2]
    q_swapped, _ = critic(obs[:, swap], act[:, swap])
    assert not torch.allclose(q_swapped, q[:, swap])  # each agent its own encoder and head
    grad = torch.autograd.grad(logits[..., 0, :].sum(), act)[0]
    assert grad[0, 0].abs().sum() > 0  # the query reads (o_0, u_0)


@pytest.mark.parametrize("field,value", [("critic_query", "state"), ("critic_shared", "yes")])
def test_a_bad_critic_layout_stops_with_its_name(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        make(**{field: value})


# ---- the losses of every variant --------------------------------------------------------------
def expected_losses(algo: IAC, b: dict, seeds=(0,)) -> tuple[torch.Tensor, torch.Tensor]:
    """The critic and policy losses recomputed from the module's networks (before the update)
    by eqs. 15, 22-24 and 26, with the same noise draws as the update."""
    st, t = algo.settings, algo.targets
    noise = SeedStreams(list(seeds), "update")
    alpha = st.alpha_start
    o, o2 = b["obs"].transpose(1, 2), b["next_obs"].transpose(1, 2)
    N, B = o.shape[1], o.shape[2]

    def draw():
        if st.exploration == "deterministic":
            return None, None
        return noise.normal(N, B, 1), noise.normal(B, st.rank) if st.rank else None

    def soft(actor, critic, mixer, obs, s, eps):
        if st.exploration == "deterministic":
            return mixer(critic(obs, actor(obs)[0])[0].transpose(1, 2), s)
        u, log_pi, log_pi_i = actor.sample(obs, s, *eps)
        q_i = critic(obs, u)[0]
        if st.exploration == "individual":  # eq. 26: MIX(Q_i - alpha log pi_i)
            return mixer((q_i - alpha * log_pi_i).transpose(1, 2), s)
        return mixer(q_i.transpose(1, 2), s) - alpha * log_pi  # eqs. 15, 24

    with torch.no_grad():
        y = b["reward"] + st.gamma * (~b["terminated"]) * soft(t["actor"], t["critic"], t["mixer"], o2, b["next_state"], draw())
        q_tot = algo.mixer(algo.critic(o, b["action"].transpose(1, 2))[0].transpose(1, 2), b["state"])
        loss_q = (y - q_tot).pow(2).mean(1)  # eq. 23
    eps = draw()
    with torch.no_grad():  # the policy steps first (official agent.py 110-116), on the critics as they are
        value = soft(algo.actor, algo.critic, algo.mixer, o, b["state"], eps)
    return loss_q, -value.mean(1), eps


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_losses_follow_the_papers_equations(variant):
    algo = make(variant)
    b = batch()
    loss_q, loss_pi, _ = expected_losses(algo, b)
    losses = algo.update(b)
    torch.testing.assert_close(losses["loss_q"], loss_q)
    torch.testing.assert_close(losses["loss_pi"], loss_pi)
    assert float(losses["alpha"]) == pytest.approx(0.1)


def test_actor_objective_mean_q_i_is_the_repositorys_loss():
    """IAC repository agent.py 107-108: mean over the batch of alpha log pi - mean_i Q_i, the
    individual attention critics on the joint sample, before the critic's step."""
    algo = make("iac", actor_objective="mean_q_i")
    b = batch()
    _, _, eps = expected_losses(algo, b)
    with torch.no_grad():
        o = b["obs"].transpose(1, 2)
        u, log_pi, _ = algo.actor.sample(o, b["state"], *eps)
        expected = (0.1 * log_pi - algo.critic(o, u)[0].mean(1)).mean(1)
    losses = algo.update(b)
    torch.testing.assert_close(losses["loss_pi"], expected)


def test_alpha_decays_to_its_floor_and_targets_copy_every_interval():
    algo = make("iac")
    b = batch()
    alphas = [float(algo.update(b)["alpha"]) for _ in range(8)]
    assert alphas == pytest.approx([0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.05, 0.05])
    online = dict(algo.critic.named_parameters())
    for name, p in algo.targets["critic"].named_parameters():  # copied at update 6, moved after
        assert not torch.equal(p, online[name])
    algo.update(b)  # update 9: a copy
    for name, p in algo.targets["critic"].named_parameters():
        assert torch.equal(p, online[name]), name


# ---- seeds, masks, checkpoints ------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["iac", "siaq", "ddpg_mix"])
def test_seed_trained_alone_equals_seed_trained_among_three(variant):
    together, alone = make(variant, seeds=(4, 5, 6)), make(variant, seeds=(5,))
    for step in range(4):
        b = batch(S=3, seed=step)
        together.update(b)
        alone.update({k: v[1:2] for k, v in b.items()})
    for name, tensor in alone.state_dict().items():
        torch.testing.assert_close(together.state_dict()[name][1:2], tensor, rtol=1e-5, atol=1e-6)


def test_an_inactive_seed_keeps_its_parameters_and_counters():
    algo = make("iac", seeds=(0, 1))
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    algo.update(batch(S=2), active=torch.tensor([True, False]))
    for name, tensor in algo.state_dict().items():
        assert torch.equal(tensor[1], before[name][1]), name
    assert algo.updates.tolist() == [1, 0]


def test_checkpoint_round_trips_and_the_covariance_is_read_back():
    algo = make("iac", seeds=(0, 1, 2))
    with torch.no_grad():
        for tensor in algo.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor))
    buffer = io.BytesIO()
    torch.save(algo.seed_state(2), buffer)
    buffer.seek(0)
    alone = make("iac", seeds=(9,))
    alone.load_seed_states([torch.load(buffer, weights_only=True)])
    obs, state = torch.randn(3, 2, 3, 2), torch.randn(3, 2, 3)
    torch.testing.assert_close(alone.covariance(obs[2:], state[2:]), algo.covariance(obs, state)[2:])
    assert IAC.has_covariance(algo.settings) and not IAC.has_covariance(make("ddpg_mix").settings)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("exploration", "greedy", "^exploration: must be one of"),
        ("rank", 0, "^rank: must be >= 1 for joint"),
        ("heads", 3, "^heads: must divide critic_hidden"),
        ("alpha_min", 0.5, "^alpha_min: must be in"),
        ("actor_objective", "v", "^actor_objective: must be one of"),
    ],
)
def test_bad_settings_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        IACSettings(**{**BASE, field: value})


def test_attention_needs_two_agents():
    with pytest.raises(ValueError, match="at least two agents"):
        make("iac", spec=continuous_spec(n_agents=1))


# ---- learning ----------------------------------------------------------------------------------
SEEDS = [0, 1, 2]
ONE_BUMP = dict(means=((4.0, 3.0),), variances=(5.0,), scale=10 * 2 * math.pi * 5.0)  # peak +10


@pytest.mark.parametrize("variant", ["iac", "siaq", "ddpg_mix"])
def test_finds_the_optimum_of_a_one_bump_simple_world(variant):
    """Simple World with one bump (peak +10 at [4, 3]): every seed's execution action ends near it."""
    small = dict(
        batch_size=64, replay_size=2000, learning_starts=100, hidden=(32, 32), critic_hidden=32,
        heads=4, mixing_embed_dim=16, lr_actor=3e-3, lr_critic=3e-3, alpha_decay=0.0,
        target_update_interval=50, log_std_max=-1.0, noise_std=0.3,
    )  # fmt: skip
    env = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    algo = IAC(env.spec, SEEDS, IACSettings(**{**BASE, **VARIANTS[variant], **small, **({"rank": 1} if variant == "iac" else {})}))
    probe = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    first = evaluate(algo, probe, SEEDS, [0], "deterministic").returns[:, 0]
    train(algo, env, SEEDS, Budget(600, 100, 1), lambda points, losses: None)
    last = evaluate(algo, probe, SEEDS, [0], "deterministic").returns[:, 0]
    assert (first < 5).all(), "the untrained policy should not already sit on the bump"
    assert (last > 8.5).all(), last  # within about 1.2 of [4, 3]


def test_replace_keeps_settings_checked():
    with pytest.raises(ValueError, match="^gamma: "):
        dataclasses.replace(make().settings, gamma=1.0)


# ---- against the official code -----------------------------------------------------------------
OFFICIAL_IAC = json.loads((Path(__file__).parent / "fixtures/official/iac_joint_gaussian.json").read_text())


class Fixed(torch.nn.Module):
    """A network that outputs a stored tensor whatever it reads."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = value

    def forward(self, x):
        return self.value


@pytest.mark.parametrize("jitter", [False, True])
def test_joint_gaussian_is_the_official_actors(jitter):
    """YiqinYang/IAC 925dc26, ReparamGaussianPolicy.forward (numbers in the fixture): N = 3,
    A = 5, rank 1, D = 1e-6 I, with and without the mean's 0.05 U[0, 1) jitter: the sample
    loc + L eps_W + sqrt(D) eps_D, its joint log-density and the covariance L L^T + D, in
    float64 (with D = 1e-6 float32 log-densities are off by nats in either code)."""
    given = {k: torch.tensor(v, dtype=torch.float64) for k, v in OFFICIAL_IAC["inputs"].items()}
    want = OFFICIAL_IAC["outputs_with_jitter" if jitter else "outputs_without_jitter"]
    N, A, B = 3, 5, 4
    agents = lambda x: x.view(B, N, A).permute(1, 0, 2).unsqueeze(0)  # noqa: E731 [B, N*A] -> [1, N, B, A]
    pi = JointGaussianPolicy(SeedStreams([0], "init"), N, 2, 6, (-1.0,) * A, (1.0,) * A, (8,), 1, (-5.0, 0.0),
                             fixed_variance=1e-6).double()
    pi.individual = Fixed(agents(given["mu_pre"]))
    pi.collaborative = Fixed(given["L_pre_tanh"].view(1, 1, B, N * A))
    obs, state = torch.zeros(1, N, B, 2, dtype=torch.float64), torch.zeros(1, B, 6, dtype=torch.float64)
    shift = agents(0.05 * given["U_jitter_uniform01"]) if jitter else None
    u, log_pi, _ = pi.sample(obs, state, agents(given["eps_D"]), given["eps_W"].view(1, B, 1), shift)
    flat = u[0].permute(1, 0, 2).reshape(B, N * A)
    torch.testing.assert_close(flat, torch.tensor(want["rsample_float64_manual"], dtype=torch.float64))
    torch.testing.assert_close(log_pi[0], torch.tensor(want["log_prob_of_rsample_float64_lowrank"], dtype=torch.float64),
                               rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(pi.covariance(obs, state)[0], torch.tensor(want["covariance_matrix_float64"],
                                                                          dtype=torch.float64))
