"""MAAC (algorithms/learners/maac.py): eq. 7's critic loss with the attention penalty and eq. 8's policy
loss on a small batch worked out by hand; agent i's gradient through its own action only; the
official code's gradient handling (shared gradients / N, clipping, weight decay); seeds, masks,
checkpoints, and learning a one-step task."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from conftest import constant, continuous_spec, simple_world_start

import envs
from algorithms import learner
from algorithms.learners.maac import MAAC, MAACSettings, clip_per_agent_
from pipeline.design.budget import Budget
from pipeline.runtime.loops import evaluate, train

GAMMA, RS, PREG, AREG, WD = 0.9, 4.0, 0.01, 0.1, 0.001
SPEC = continuous_spec(n_agents=3, obs_dim=2, state_dim=3)

BASE = dict(
    batch_size=2, replay_size=10, learning_starts=0, update_every=1, update_unit="step",
    gradient_steps=1, gradient_steps_per="phase", env_copies=1, hidden=(4,), critic_hidden=8,
    heads=2, critic_query="obs", gamma=GAMMA, tau=0.25, lr_actor=1e-3, lr_critic=1e-3, reward_scale=RS,
    attention_reg=AREG, policy_reg=PREG, critic_weight_decay=WD, critic_grad_clip=10.0,
    actor_grad_clip=0.5, log_std_min=-20.0, log_std_max=2.0,
)  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def make(seeds=(0,), spec=SPEC, **changes) -> MAAC:
    return MAAC(spec, list(seeds), MAACSettings(**{**BASE, **changes}))


def fixed_noise(algo: MAAC, draws: list[torch.Tensor]) -> None:
    """The update's draws in order (target policies' eps for eq. 7, then the policies' eps for
    eq. 8), given instead of drawn."""
    queue = list(draws)
    algo.update_noise.normal = lambda *shape, active=None: queue.pop(0)


def random_batch(S: int, B: int, spec=SPEC, seed: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    N, obs = spec.n_agents, spec.obs_dim
    return {
        "obs": torch.randn(S, B, N, obs, generator=g),
        "next_obs": torch.randn(S, B, N, obs, generator=g),
        "action": torch.rand(S, B, N, 1, generator=g) * 2 - 1,
        "rewards": torch.randn(S, B, N, generator=g),
        "terminated": torch.rand(S, B, generator=g) < 0.3,
    }


def log_pi(m: float, log_std: float, eps: float) -> float:
    """log-density of a = tanh(m + exp(log_std) eps) on [-1, 1], written out."""
    u = m + math.exp(log_std) * eps
    return -0.5 * eps**2 - log_std - 0.5 * math.log(2 * math.pi) - math.log(1 - math.tanh(u) ** 2)


@torch.no_grad()
def raw_attention_penalty(critic, obs, act) -> float:
    """sum_i sum_heads mean_{b, j != i} (W_q s_i . W_k e_j)^2 for seed 0, from the critic's
    parts, agent by agent (the official code's regulariser, before the 1/sqrt(d) scaling), with
    the query's input s_i = g_s,i(o_i) (the official code's) or e_i."""
    B, N, _ = obs.shape
    W, b = critic.encoder.weight[0], critic.encoder.bias[0]
    e = [torch.relu(torch.cat([obs[:, i], act[:, i]], -1) @ W[i] + b[i]) for i in range(N)]
    s = e
    if critic.query == "obs":
        W_s, b_s = critic.query_encoder.weight[0], critic.query_encoder.bias[0]
        s = [torch.relu(obs[:, i] @ W_s[i] + b_s[i]) for i in range(N)]
    q = [(x @ critic.W_q[0]).view(B, critic.heads, critic.d) for x in s]
    k = [(x @ critic.W_k[0]).view(B, critic.heads, critic.d) for x in e]
    total = 0.0
    for i in range(N):
        for h in range(critic.heads):
            logits = torch.stack([(q[i][:, h] * k[j][:, h]).sum(-1) for j in range(N) if j != i])
            total += float(logits.pow(2).mean())
    return total


# ---- the losses on a hand-checked batch ------------------------------------------------------
BATCH = {
    "obs": torch.tensor(
        [[[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], [[0.7, 0.8], [0.9, 1.0], [1.1, 1.2]]]]
    ),  # [S=1, B=2, N=3, obs=2]
    "next_obs": torch.tensor(
        [[[[0.2, 0.1], [0.4, 0.3], [0.6, 0.5]], [[0.8, 0.7], [1.0, 0.9], [1.2, 1.1]]]]
    ),
    "action": torch.tensor([[[[0.2], [-0.6], [0.1]], [[-0.4], [0.9], [0.5]]]]),  # [S=1,B=2,N=3,A=1]
    "rewards": torch.tensor([[[1.0, -1.0, 0.5], [2.0, 0.5, -3.0]]]),  # each agent's own r_i
    "terminated": torch.tensor([[False, True]]),
}
EPS_NEXT = torch.tensor([[[[0.5], [-1.0]], [[1.5], [0.2]], [[-0.3], [0.8]]]])  # [S,N,B,A]
EPS = torch.tensor([[[[-0.4], [1.1]], [[0.6], [-1.2]], [[0.9], [0.0]]]])
Q, Q_TARGET = [1.0, -0.5, 2.0], [3.0, 2.0, -1.0]
TARGET_POLICY = [(0.3, -1.0), (-0.2, -0.5), (0.0, 0.2)]  # (mu, log std) per agent
POLICY = [(0.5, -0.7), (-1.0, 0.1), (0.2, -2.0)]


def test_losses_follow_eqs_7_and_8_with_each_agents_reward_and_the_target_policies():
    algo = make()
    algo.critic_opt.lr = 1e-12  # eq. 8 comes after the critic's step; keep the critic as set
    constant(algo.critic.head, [[v] for v in Q])
    constant(algo.critic_target.head, [[v] for v in Q_TARGET])
    constant(algo.actor_target.net, [list(p) for p in TARGET_POLICY])
    constant(algo.actor.net, [list(p) for p in POLICY])
    penalty = raw_attention_penalty(algo.critic, BATCH["obs"][0], BATCH["action"][0])
    fixed_noise(algo, [EPS_NEXT, EPS])
    losses = algo.update(BATCH)

    expected_q = 0.0
    for i in range(3):
        for b in range(2):
            m, ls = TARGET_POLICY[i]
            soft = Q_TARGET[i] - log_pi(m, ls, float(EPS_NEXT[0, i, b])) / RS  # alpha = 1/scale
            not_done = 1.0 - float(BATCH["terminated"][0, b])
            y = float(BATCH["rewards"][0, b, i]) + GAMMA * not_done * soft  # eq. 7
            expected_q += (Q[i] - y) ** 2 / 2  # mean over the batch, summed over agents
    assert AREG * penalty > 0.01  # the penalty counts in the total
    torch.testing.assert_close(losses["loss_q"], torch.tensor([expected_q + AREG * penalty]))

    expected_pi = 0.0
    for i, (m, ls) in enumerate(POLICY):  # alpha log pi_i - Q_i, plus the penalty on mu_i
        expected_pi += sum(log_pi(m, ls, float(EPS[0, i, b])) / RS - Q[i] for b in range(2)) / 2
        expected_pi += PREG * m**2
    torch.testing.assert_close(losses["loss_pi"], torch.tensor([expected_pi]))


def test_agent_i_moves_only_its_own_action_in_its_q():
    """The batched policy loss has the gradient of eq. 8 written agent by agent: Q_i on the
    joint action with a_i live and every other sampled action held fixed; and it differs
    from letting every action carry its gradient into every Q_i."""
    algo = make(seeds=(0, 1))
    g = torch.Generator().manual_seed(5)
    o, eps = torch.randn(2, 3, 4, 2, generator=g), torch.randn(2, 3, 4, 1, generator=g)
    params = list(algo.actor.parameters())

    def sample():
        a, lp = algo.actor(o, None, eps)
        return a, lp, algo.actor.net(o)[..., :1]

    a, lp, mu = sample()
    got = torch.autograd.grad(algo.policy_loss(o, a, lp, mu).sum(), params)
    a, lp, mu = sample()
    reference = (PREG * mu.pow(2).mean((2, 3))).sum()
    for i in range(3):
        joint = torch.cat([a[:, :i].detach(), a[:, i : i + 1], a[:, i + 1 :].detach()], 1)
        reference = reference + (lp[:, i] / RS - algo.critic(o, joint)[0][:, i]).mean(-1).sum()
    want = torch.autograd.grad(reference, params)
    a, lp, mu = sample()
    everyone = (lp / RS - algo.critic(o, a)[0]).mean(2).sum()
    everyone = everyone + (PREG * mu.pow(2).mean((2, 3))).sum()
    naive = torch.autograd.grad(everyone, params)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y)
    assert any(not torch.allclose(x, y, rtol=1e-3, atol=1e-6) for x, y in zip(naive, want))
    assert all(p.grad is None for p in algo.critic.parameters())  # psi is not trained by eq. 8


# ---- the official code's gradient handling ---------------------------------------------------
def test_critic_gradients_scaled_on_shared_modules_clipped_per_seed_then_decayed():
    """What the critic's Adam receives: shared-module gradients / N (scale_shared_grads), the
    whole critic clipped to critic_grad_clip x N per seed, then + weight_decay x psi."""
    clip = 1e-3
    batch = random_batch(2, 4)
    draws = [torch.randn(2, 3, 4, 1, generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    reference, algo = make((0, 1), critic_grad_clip=clip), make((0, 1), critic_grad_clip=clip)
    fixed_noise(reference, draws)
    fixed_noise(algo, draws)
    names, params = zip(*reference.critic.named_parameters())
    raw = torch.autograd.grad(reference.critic_loss(batch, None).sum(), params)
    shared = [n.split(".")[0] in ("W_k", "W_q", "V", "encoder") for n in names]
    assert sum(shared) == 6 and not all(shared)  # W_k, W_q, V's and g's weight and bias; not f_i
    scaled = [r / 3 if s else r for r, s in zip(raw, shared)]
    norm = torch.stack([s.flatten(1).pow(2).sum(1) for s in scaled]).sum(0).sqrt()  # per seed
    coef = clip * 3 / (norm + 1e-6)
    assert (coef < 1).all()  # clipping is active in both seeds
    expected = [s * coef.view(-1, *[1] * (s.dim() - 1)) + WD * p for s, p in zip(scaled, params)]

    seen = {}
    step = algo.critic_opt.step

    def capture(active=None):
        seen["grads"] = [p.grad.clone() for p in algo.critic.parameters()]
        step(active)

    algo.critic_opt.step = capture
    algo.update(batch)
    for got, want in zip(seen["grads"], expected):
        torch.testing.assert_close(got, want)


def test_policy_gradients_are_clipped_per_seed_and_agent():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 1, 5, generator=g) * 0.01]
    grads[0][1, 2] *= 1e-3  # one (seed, agent) below the bound: left as it is
    ours = [x.clone() for x in grads]
    clip_per_agent_(ours, 0.5)
    for k in range(2):
        for i in range(3):
            alone = [torch.nn.Parameter(x[k, i].clone()) for x in grads]
            for p, x in zip(alone, grads):
                p.grad = x[k, i].clone()
            torch.nn.utils.clip_grad_norm_(alone, 0.5)
            for p, x in zip(alone, ours):
                torch.testing.assert_close(x[k, i], p.grad)
    torch.testing.assert_close(ours[0][1, 2], grads[0][1, 2])


def test_update_clips_each_agents_policy_gradient():
    algo = make((0, 1), actor_grad_clip=1e-4)
    seen = {}
    step = algo.actor_opt.step

    def capture(active=None):
        seen["grads"] = [p.grad.clone() for p in algo.actor.parameters()]
        step(active)

    algo.actor_opt.step = capture
    algo.update(random_batch(2, 4))
    norm = torch.stack([x.flatten(2).pow(2).sum(2) for x in seen["grads"]]).sum(0).sqrt()
    torch.testing.assert_close(norm, torch.full((2, 3), 1e-4), rtol=1e-3, atol=0)


def test_targets_follow_by_polyak_after_every_update():
    algo = make()
    targets = [*algo.actor_target.parameters(), *algo.critic_target.parameters()]
    before = [p.clone() for p in targets]
    algo.update(random_batch(1, 4))
    after = [*algo.actor_target.parameters(), *algo.critic_target.parameters()]
    online = [*algo.actor.parameters(), *algo.critic.parameters()]
    for old, new, now in zip(before, after, online):
        torch.testing.assert_close(new, old + 0.25 * (now - old))


# ---- acting ----------------------------------------------------------------------------------
def test_exploration_samples_in_the_bounds_and_evaluation_is_the_mean():
    algo = make()
    constant(algo.actor.net, [[3.0, 0.0], [-3.0, 0.0], [0.5, 0.0]])
    obs = torch.zeros(1, 200, 3, 2)
    explored, _ = algo.act(obs, None, None, None, "explore")
    assert explored.abs().max() <= 1.0 and (explored.std(1) > 0.05).all()
    mean, _ = algo.act(obs, None, None, None, "deterministic")
    torch.testing.assert_close(mean[0, 0, :, 0], torch.tanh(torch.tensor([3.0, -3.0, 0.5])))
    with pytest.raises(ValueError, match="unknown execution mode"):
        algo.act(obs, None, None, None, "sampled")


# ---- seeds, masks, checkpoints ---------------------------------------------------------------
TINY = dict(
    batch_size=16, replay_size=200, learning_starts=20, hidden=(8, 8), critic_hidden=8,
    lr_actor=3e-3, lr_critic=3e-3,
)  # fmt: skip


def trained(algo, seeds, steps=80):
    env = envs.make_batched("simple_world", len(seeds))
    train(algo, env, seeds, Budget(steps, steps, 1), lambda points, losses: None)
    return algo


def test_seed_trained_alone_equals_seed_trained_among_three():
    spec = envs.make_batched("simple_world", 1).spec
    together = trained(make((0, 1, 2), spec, **TINY), [0, 1, 2])
    alone = trained(make((1,), spec, **TINY), [1])
    moved = make((1,), spec, **TINY).state_dict()
    for name, tensor in together.state_dict().items():
        torch.testing.assert_close(alone.state_dict()[name][0], tensor[1], rtol=1e-5, atol=1e-6)
        assert not torch.equal(moved[name][0], tensor[1]), name  # 60 updates moved every tensor


def test_a_seed_outside_active_draws_nothing_and_keeps_everything():
    """Even a batch of NaNs for the idle seed (it drew none) leaves it, and the others, alone."""
    algo = make((0, 1, 2))
    algo.update(random_batch(3, 4, seed=4))  # online and target networks now differ
    batch = random_batch(3, 4)
    batch["rewards"][1] = float("nan")
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    stream = algo.update_noise.generators[1].get_state()
    moments = [x[1].clone() for opt in (algo.actor_opt, algo.critic_opt) for x in (*opt.m, *opt.v)]
    algo.update(batch, torch.tensor([True, False, True]))
    moved = set()
    for name, tensor in algo.state_dict().items():
        assert torch.equal(tensor[1], before[name][1]), name
        assert torch.isfinite(tensor).all(), name
        if not torch.equal(tensor[0], before[name][0]):
            moved.add(name.split(".")[0])
    assert moved == {"actor", "critic", "actor_target", "critic_target"}
    assert torch.equal(algo.update_noise.generators[1].get_state(), stream)
    for opt in (algo.actor_opt, algo.critic_opt):
        assert opt.steps.tolist() == [2, 1, 2]
    now = [x[1] for opt in (algo.actor_opt, algo.critic_opt) for x in (*opt.m, *opt.v)]
    assert all(torch.equal(a, b) for a, b in zip(now, moments))


def test_checkpoint_round_trips_into_a_one_seed_learner():
    algo = make((0, 1, 2))
    with torch.no_grad():
        for tensor in algo.state_dict().values():
            assert tensor.shape[0] == 3
            tensor.add_(torch.randn_like(tensor))
    prefixes = {name.split(".")[0] for name in algo.state_dict()}
    assert prefixes == {"actor", "critic", "actor_target", "critic_target"}
    buffer = io.BytesIO()
    torch.save(algo.seed_state(2), buffer)
    buffer.seek(0)
    alone = make((7,))
    alone.load_seed_states([torch.load(buffer, weights_only=True)])
    for name, tensor in algo.state_dict().items():
        assert torch.equal(alone.state_dict()[name][0], tensor[2]), name


@pytest.mark.parametrize(
    "field,value",
    [
        ("heads", 3),
        ("critic_hidden", 0),
        ("reward_scale", 0.0),
        ("attention_reg", -0.1),
        ("critic_weight_decay", -1e-3),
        ("actor_grad_clip", 0),
        ("tau", 1.5),
        ("gamma", 1.0),
        ("hidden", []),
        ("log_std_min", 3.0),
        ("gradient_steps", 0),
    ],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        MAACSettings(**{**BASE, field: value})


def test_registered_as_a_family_and_refuses_discrete_actions():
    assert learner("maac") is MAAC
    discrete = continuous_spec()
    discrete.discrete = True
    with pytest.raises(ValueError, match="continuous"):
        MAAC(discrete, [0], MAACSettings(**BASE))


# ---- learning --------------------------------------------------------------------------------
SEEDS = [0, 1, 2]
ONE_BUMP = dict(means=((4.0, 3.0),), variances=(5.0,), scale=10 * 2 * math.pi * 5.0)  # peak +10


def test_maac_finds_the_optimum_of_a_one_bump_simple_world():
    """As tests/test_learning.py's cases: the proposed settings, shrunk in size and schedule
    (small nets and batches, an update per step) with faster learning rates; the target
    networks play no part (one-step episodes end in termination: y_i = r_i)."""
    proposed = dict(
        critic_hidden=32, heads=4, gamma=0.99, tau=0.001, reward_scale=100.0,
        attention_reg=1e-3, policy_reg=1e-3, critic_weight_decay=1e-3, critic_grad_clip=10.0,
        actor_grad_clip=0.5,
    )  # fmt: skip
    small = dict(
        batch_size=64, replay_size=2000, learning_starts=100, update_every=1, update_unit="step",
        gradient_steps=1, gradient_steps_per="phase", hidden=(32, 32), lr_actor=3e-3,
        lr_critic=3e-3,
    )  # fmt: skip
    env = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    algo = MAAC(env.spec, SEEDS, MAACSettings(**{**BASE, **proposed, **small}))
    probe = envs.make_batched("simple_world", len(SEEDS), **ONE_BUMP)
    first = evaluate(algo, probe, SEEDS, [0], "deterministic").returns[:, 0]
    train(algo, env, SEEDS, Budget(600, 600, 1), lambda points, losses: None)
    last = evaluate(algo, probe, SEEDS, [0], "deterministic").returns[:, 0]
    assert (first < 5).all(), "the untrained policy should not already sit on the bump"
    assert (last > 9).all(), last
    action, _ = algo.act(simple_world_start(3)[0], None, None, None, "deterministic", None)
    np.testing.assert_allclose(action.squeeze(1).squeeze(-1).numpy(), [[4.0, 3.0]] * 3, atol=0.6)
