"""The pieces every discrete learner shares: masked categorical policies (algorithms/
masked_categorical.py), TD(lambda) returns and DOP's tree-backup targets (algorithms/components/returns.py),
the last two against the official code's numbers (tests/fixtures/official)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from algorithms.components.returns import td_lambda_targets, tree_backup_targets
from algorithms.components.seeding import SeedStreams
from algorithms.models import masked_categorical as mc


def test_draws_follow_pi_and_never_take_a_masked_action():
    """Gumbel-max draws per seed: frequencies within 0.01 of pi over 40,000 draws, masked
    actions never drawn, and each seed's draws are its own stream's."""
    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0], [0.5, 0.5, 0.5, 0.5]])
    available = torch.tensor([[True, True, False, True], [False, True, True, True]])
    log_pi = mc.masked_log_softmax(logits, available)  # [S = 2, A]
    pi = mc.probabilities(log_pi)
    assert torch.equal(pi == 0, ~available)
    draws = mc.sample(SeedStreams([0, 1], "t"), log_pi.unsqueeze(1).expand(2, 40000, 4))
    freq = torch.stack([torch.bincount(d, minlength=4) for d in draws]).float() / 40000
    torch.testing.assert_close(freq, pi, atol=0.01, rtol=0)
    alone = mc.sample(SeedStreams([1], "t"), log_pi[1:].unsqueeze(1).expand(1, 40000, 4))
    assert torch.equal(alone[0], draws[1])


def test_entropy_ignores_masked_actions():
    log_pi = mc.masked_log_softmax(torch.zeros(1, 4), torch.tensor([[True, False, True, True]]))
    assert mc.entropy(log_pi).item() == pytest.approx(torch.log(torch.tensor(3.0)).item())


def pymarl_td_lambda(rewards, terminated, mask, target_qs, gamma, td_lambda):
    """PyMARL utils/rl_utils.py build_td_lambda_targets, written as PyMARL does (B, T)."""
    ret = target_qs.new_zeros(*target_qs.shape)
    ret[:, -1] = target_qs[:, -1] * (1 - torch.sum(terminated, dim=1))
    for t in range(ret.shape[1] - 2, -1, -1):
        ret[:, t] = td_lambda * gamma * ret[:, t + 1] + mask[:, t] * (
            rewards[:, t] + (1 - td_lambda) * gamma * target_qs[:, t + 1] * (1 - terminated[:, t])
        )
    return ret[:, 0:-1]


def test_td_lambda_matches_pymarl_on_full_length_episodes():
    """Episodes that fill the whole batch (PyMARL's case, where its recursion is exact): a
    terminated one and one cut by the limit (bootstrapped from the final row)."""
    g = torch.Generator().manual_seed(0)
    T = 6
    rewards, values = torch.randn(2, T, generator=g), torch.randn(2, T + 1, generator=g)
    terminated = torch.zeros(2, T)
    terminated[0, -1] = 1
    mask = torch.ones(2, T)
    ours = td_lambda_targets(rewards[None], terminated[None].bool(), mask[None], values[None], 0.9, 0.8)
    torch.testing.assert_close(ours[0], pymarl_td_lambda(rewards, terminated, mask, values, 0.9, 0.8))


def test_td_lambda_bootstraps_a_short_cut_episode_from_its_final_row():
    """An episode of 2 steps in a batch of 4 rows, cut by the limit: G_1 = r_1 + gamma V_2,
    G_0 = r_0 + gamma ((1 - lambda) V_1 + lambda G_1); padding rows keep V."""
    r = torch.tensor([[[1.0, 2.0, 50.0, 50.0]]])
    v = torch.tensor([[[0.5, 1.5, 3.0, 70.0, 80.0]]])
    mask = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    g = td_lambda_targets(r, torch.zeros(1, 1, 4, dtype=torch.bool), mask, v, 0.5, 0.5)
    g1 = 2 + 0.5 * 3.0
    g0 = 1 + 0.5 * (0.5 * 1.5 + 0.5 * g1)
    torch.testing.assert_close(g[0, 0, :2], torch.tensor([g0, g1]))


OFFICIAL_DOP = json.loads((Path(__file__).parent / "fixtures/official/dop_targets.json").read_text())


@pytest.mark.parametrize("steps,key", [(5, "tree_backup_target_q"), (1, "tree_backup_target_q_step1"),
                                       (50, "tree_backup_target_q_step50")])
def test_tree_backup_targets_are_the_official_dops(steps, key):
    """DOP's build_target_q and train_critic_best (TonghanWang/DOP 2016199, numbers in the
    fixture) on 2 episodes: one cut by its time limit (it bootstraps), one terminated at t = 2."""
    given, p = OFFICIAL_DOP["inputs"], OFFICIAL_DOP["params"]
    t = lambda name: torch.tensor(given[name], dtype=torch.float64).squeeze(-1)  # noqa: E731
    y = tree_backup_targets(t("rewards"), t("terminated"), t("mask"), t("targets_taken_raw"), t("exp_q_raw"),
                            t("critic_mac"), p["gamma"], p["tb_lambda"], steps)
    expected = torch.tensor(OFFICIAL_DOP["outputs"][key], dtype=torch.float64).squeeze(-1)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)


def test_td_lambda_targets_are_the_official_dops_on_the_filled_rows():
    given, p = OFFICIAL_DOP["inputs"], OFFICIAL_DOP["params"]
    t = lambda name: torch.tensor(given[name], dtype=torch.float64).squeeze(-1)  # noqa: E731
    g = td_lambda_targets(t("rewards"), t("terminated"), t("mask"), t("targets_taken_raw"), p["gamma"],
                          p["td_lambda_on_policy"])
    expected = torch.tensor(OFFICIAL_DOP["outputs"]["td_lambda_targets_lambda0p8"], dtype=torch.float64).squeeze(-1)
    mask = t("mask") > 0  # unfilled rows count nothing in either code
    torch.testing.assert_close(g[mask], expected[mask], rtol=1e-12, atol=1e-12)
