"""VM3-AC's losses (eqs. 16-21) on small batches whose values are worked out by hand."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from conftest import constant, continuous_spec

from algorithms.learners.vm3ac import VM3AC, VM3ACSettings

SIGMA, BETA, GAMMA = 0.5, 0.4, 0.9


SPEC = continuous_spec(n_agents=2, obs_dim=2, state_dim=3)


def make_vm3ac(beta: float = BETA, z_dim: int = 1) -> VM3AC:
    settings = VM3ACSettings(
        batch_size=2,
        replay_size=10,
        learning_starts=0,
        update_every=1,
        update_unit="episode",
        gradient_steps=1,
        gradient_steps_per="env_step",
        env_copies=1,
        beta=beta,
        mutual_information=True,
        z_dim=z_dim,
        q_sigma=SIGMA,
        hidden=(4,),
        gamma=GAMMA,
        tau=0.5,
        lr_actor=1e-3,
        lr_critic=1e-3,
        log_std_min=-5.0,
        log_std_max=2.0,
    )
    return VM3AC(SPEC, [0], settings)



OBS = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]]])  # [S=1,N=2,B=2,obs]
ACTIONS = torch.tensor([[[[0.2], [-0.6]], [[-0.4], [0.9]]]])  # [S,N,B,A]: a_1 and a_2 per sample


def test_q_term_is_a_scaled_squared_error_plus_a_constant():
    algo = make_vm3ac()
    constant(algo.q_xi, [[0.5], [-0.1]])  # mu_xi_1 = 0.5 predicts a_2; mu_xi_2 = -0.1 predicts a_1
    term_b, term_a = algo._log_q(OBS, ACTIONS)
    const = -0.5 * math.log(2 * math.pi * SIGMA**2)  # -(A/2) log(2 pi sigma^2), A = 1
    # Agent 1 predicts a_2 = (-0.4, 0.9) with 0.5; agent 2 predicts a_1 = (0.2, -0.6) with -0.1.
    expected_b = torch.tensor(
        [
            [
                [[-(0.9**2) / 0.5 + const, -(0.4**2) / 0.5 + const]],
                [[-(0.3**2) / 0.5 + const, -(0.5**2) / 0.5 + const]],
            ]
        ]
    )
    torch.testing.assert_close(term_b, expected_b)
    # Term (a) of agent i with partner j is agent j's term (b): a_i predicted from a_j.
    torch.testing.assert_close(term_a, expected_b.flip(1))


def test_critic_losses_follow_eqs_16_to_19():
    algo = make_vm3ac()
    constant(algo.q, [[1.0], [1.5], [2.0], [0.5]])  # Q_1 of agents 1, 2, then Q_2 of both
    constant(algo.v, [[0.5], [0.0]])
    constant(algo.v_target, [[3.0], [-1.0]])
    batch = {
        "state": torch.zeros(1, 2, 3),
        "next_state": torch.zeros(1, 2, 3),
        "action": ACTIONS.transpose(1, 2),
        "reward": torch.tensor([[1.0, -2.0]]),
        "terminated": torch.tensor([[False, True]]),
    }
    log_pi = torch.tensor([[[0.3, -0.2], [0.1, 0.0]]])  # [S,N,B]
    term_b = torch.tensor([[[[-1.0, -2.0]], [[-0.5, -0.25]]]])  # [S,N,N-1,B]
    term_a = term_b.flip(1)
    loss_v, loss_q = algo.critic_losses(batch, ACTIONS, log_pi, term_a, term_b)
    expected_v = expected_q = 0.0
    for i, (q1, q2, v, v_bar) in enumerate([(1.0, 2.0, 0.5, 3.0), (1.5, 0.5, 0.0, -1.0)]):
        for b in range(2):
            mi = term_a[0, i, 0, b] + term_b[0, i, 0, b]
            v_hat = min(q1, q2) - BETA * log_pi[0, i, b] + BETA / 2 * mi  # eq. 17
            expected_v += 0.5 * (v - v_hat) ** 2 / 2  # eq. 16, mean over the batch of 2
            q_hat = (
                batch["reward"][0, b] + GAMMA * (1 - batch["terminated"][0, b].float()) * v_bar
            )  # eq. 19
            expected_q += 0.5 * ((q1 - q_hat) ** 2 + (q2 - q_hat) ** 2) / 2  # eq. 18
    torch.testing.assert_close(loss_v, expected_v.view(1))
    torch.testing.assert_close(loss_q, expected_q.view(1))


def reference_policy_gradients(algo, state, actions, log_pi):
    """Eq. 20 written out agent by agent: agent i moves only a_i; its MI gradient comes from
    term (b), log q_xi_i(a_j | a_i, o_i, o_j), alone. Q_i,1 is evaluated on agent i's own copy
    of the joint action, without the critic's shared-input shortcut."""
    a = actions.clone().requires_grad_(True)
    total = 0.0
    for i in range(2):
        j = 1 - i
        joint = [a[:, 0] if i == 0 else a[:, 0].detach(), a[:, 1] if i == 1 else a[:, 1].detach()]
        q1 = algo.q(state, torch.stack(joint, 1).transpose(1, 2), head=0)[:, i]  # [S,B]
        mu = algo.q_xi(
            torch.cat([a[:, i], OBS[:, i], OBS[:, j]], -1).unsqueeze(1).expand(-1, 2, -1, -1)
        )[:, i]
        log_q_b = -(a[:, j].detach() - mu).pow(2).sum(-1) / (2 * SIGMA**2) - 0.5 * math.log(
            2 * math.pi * SIGMA**2
        )
        total = total + (-q1 + BETA * log_pi[:, i] - BETA / 2 * log_q_b).mean()
    total.sum().backward()
    return a.grad, [p.grad.clone() for p in algo.q_xi.parameters()]


def test_policy_gradient_flows_through_term_b_only():
    algo = make_vm3ac()
    state = torch.tensor([[[0.1, -0.2, 0.3], [0.0, 0.5, -0.5]]])
    log_pi = torch.tensor([[[0.3, -0.2], [0.1, 0.0]]])
    expected_a, expected_xi = reference_policy_gradients(algo, state, ACTIONS, log_pi)
    algo.zero_grad(set_to_none=True)

    a = ACTIONS.clone().requires_grad_(True)
    term_b, term_a = algo._log_q(OBS, a)
    algo.policy_loss(state, a, log_pi, term_a, term_b).sum().backward()
    torch.testing.assert_close(a.grad, expected_a)
    for got, want in zip(algo.q_xi.parameters(), expected_xi):
        torch.testing.assert_close(got.grad, want)
    assert all(p.grad is None for p in algo.q.parameters()), "eq. 20 must not train Q"

    # Had term (a) carried a gradient, a_j and xi_j would get more: the check above can fail.
    algo.zero_grad(set_to_none=True)
    a = ACTIONS.clone().requires_grad_(True)
    term_b, term_a = algo._log_q(OBS, a)
    leaky = algo.policy_loss(state, a, log_pi, torch.zeros_like(term_a), term_b + term_a)
    leaky.sum().backward()
    assert not torch.allclose(a.grad, expected_a)


@pytest.mark.parametrize("beta,mi", [(0.0, True), (0.4, False)], ids=["ma_ac", "ma_sac"])
def test_ma_ac_and_ma_sac_have_no_variational_network_and_no_mi_term(beta, mi):
    algo = make_vm3ac(beta=beta, z_dim=0)
    algo = VM3AC(SPEC, [0], dataclasses.replace(algo.settings, mutual_information=mi))
    assert algo.q_xi is None
    term_b, term_a = algo._log_q(OBS, ACTIONS)
    assert not term_b.any() and not term_a.any()


def test_ma_sac_keeps_the_entropy_term():
    """MA-SAC (MI off, beta > 0): V_hat = min Q - beta log pi (eq. 17 without the q terms)."""
    base = make_vm3ac(z_dim=0).settings
    algo = VM3AC(SPEC, [0], dataclasses.replace(base, mutual_information=False))
    constant(algo.q, [[1.0], [1.5], [2.0], [0.5]])
    constant(algo.v, [[0.0], [0.0]])
    batch = {
        "state": torch.zeros(1, 2, 3),
        "next_state": torch.zeros(1, 2, 3),
        "action": ACTIONS.transpose(1, 2),
        "reward": torch.zeros(1, 2),
        "terminated": torch.ones(1, 2, dtype=torch.bool),
    }
    log_pi = torch.tensor([[[0.3, -0.2], [0.1, 0.0]]])
    zeros = torch.zeros(1, 2, 1, 2)
    loss_v, _ = algo.critic_losses(batch, ACTIONS, log_pi, zeros, zeros)
    v_hat = torch.tensor([[1.0, 1.0], [0.5, 0.5]]) - BETA * log_pi[0]
    torch.testing.assert_close(loss_v, (0.5 * v_hat.pow(2)).mean(1).sum().view(1))


def test_update_returns_finite_per_seed_losses_and_moves_target_by_tau():
    algo = make_vm3ac()
    batch = {
        "obs": OBS.transpose(1, 2),
        "state": torch.rand(1, 2, 3),
        "action": ACTIONS.transpose(1, 2),
        "reward": torch.tensor([[1.0, -1.0]]),
        "next_state": torch.rand(1, 2, 3),
        "terminated": torch.zeros(1, 2, dtype=torch.bool),
    }
    losses = algo.update(batch)
    assert set(losses) == {"loss_v", "loss_q", "loss_pi"}
    assert all(v.shape == (1,) and torch.isfinite(v).all() for v in losses.values())
    algo.update(batch)
    before = [p.clone() for p in algo.v_target.parameters()]
    algo.end_phase()  # two gradient steps at tau = 0.5 per step: w = 1 - 0.5^2
    for old, new, online in zip(before, algo.v_target.parameters(), algo.v.parameters()):
        torch.testing.assert_close(new, old + 0.75 * (online - old))
    before = [p.clone() for p in algo.v_target.parameters()]
    algo.end_phase()  # no step since: the target stays
    for old, new in zip(before, algo.v_target.parameters()):
        assert torch.equal(old, new)


def test_the_target_rate_compounds_per_gradient_step_whatever_the_phase_length():
    """k steps at rate tau then one phase-end average = k per-step averages towards the same V:
    a 100-step episode's phase moves the target as far as 4 phases of 25 steps."""
    algo = make_vm3ac()
    tau = algo.settings.tau
    with torch.no_grad():
        for p in algo.v.parameters():
            p.add_(1.0)
    start = [p.clone() for p in algo.v_target.parameters()]
    algo.phase_steps.fill_(3)
    algo.end_phase()
    for old, new, online in zip(start, algo.v_target.parameters(), algo.v.parameters()):
        stepwise = old.clone()
        for _ in range(3):
            stepwise = stepwise + tau * (online - stepwise)
        torch.testing.assert_close(new, stepwise)


@pytest.mark.parametrize(
    "field,value",
    [("beta", -0.1), ("z_dim", -1), ("gamma", 1.0), ("batch_size", 0), ("hidden", ())],
)
def test_bad_settings_name_the_field(field, value):
    good = make_vm3ac().settings
    with pytest.raises(ValueError, match=f"^{field}: "):
        VM3ACSettings(**{**good.__dict__, field: value})
