"""Returns for whole-episode batches ``[S, B, T]`` (PyMARL ``utils/rl_utils.py``)."""

from __future__ import annotations

import torch


def td_lambda_targets(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    mask: torch.Tensor,
    values: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """TD(lambda) targets ``[S, B, T]`` (PyMARL ``build_td_lambda_targets``), computed backwards:

        G_t = r_t + gamma (1 - d_t) [(1 - lambda) V_{t+1} + lambda G_{t+1}],

    with ``values [S, B, T + 1]`` the (target) values of rows 0..T, ``d_t`` the termination of
    step t and ``mask`` the filled rows. The last filled row of an episode cut by its time limit
    bootstraps from V of the row after it (the final observation); rows past the end count
    nothing (G = V there, so the recursion stays finite).
    """
    T = reward.shape[-1]
    mask, terminated = mask.to(values.dtype), terminated.to(values.dtype)
    returns = values.clone()
    # Past an episode's last row the recursion reads G = V(row after the last): the
    # time-limit bootstrap (zeroed by 1 - d_t after a termination).
    for t in range(T - 1, -1, -1):
        bootstrap = (1 - lam) * values[..., t + 1] + lam * returns[..., t + 1]
        g = reward[..., t] + gamma * (1 - terminated[..., t]) * bootstrap
        returns[..., t] = torch.where(mask[..., t] > 0, g, values[..., t])
    return returns[..., :T]


def tree_backup_targets(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    mask: torch.Tensor,
    q_taken: torch.Tensor,
    expected_q: torch.Tensor,
    pi_taken: torch.Tensor,
    gamma: float,
    lam: float,
    steps: int,
) -> torch.Tensor:
    """DOP's off-policy tree-backup targets ``[S, B, T]`` (Wang et al. 2021 §4.1; the official
    ``build_target_q`` and ``OffPGLearner.train_critic_best``):

        y_t = Q(s_t, a_t) + sum_{k=0}^{n-1} (gamma lambda)^k (prod_{j=1}^{k} c_{t+j}) delta_{t+k},
        delta_t = r_t + gamma E_pi[Q(s_{t+1}, .)] - Q(s_t, a_t),

    with ``q_taken [S, B, T + 1]`` the target Q_tot of the replayed joint actions of rows 0..T,
    ``expected_q [S, B, T + 1]`` its expectation under the current policy, ``pi_taken
    [S, B, T + 1]`` the current policy's joint probability of the replayed action (the trace
    c), ``mask`` the filled rows. As the official code: both Q's are zeroed past an episode's
    last row and, on the final row T, after a termination anywhere in the episode (the time-
    limit bootstrap stays); deltas past row T - 1 count 0; n = ``steps``.
    """
    T = reward.shape[-1]
    mask, ended = mask.to(q_taken.dtype), terminated.to(q_taken.dtype).sum(-1, keepdim=True)
    alive = torch.cat([mask, 1 - ended], -1)  # [S, B, T + 1]
    q, expected = q_taken * alive, expected_q * alive
    delta = (reward + gamma * expected[..., 1:] - q[..., :T]) * mask  # [S, B, T]
    trace = pi_taken[..., :T]
    tree, term, coeff = torch.zeros_like(delta), delta, 1.0
    for _ in range(steps):
        tree = tree + coeff * term
        term = torch.cat([(term * trace)[..., 1:], torch.zeros_like(term[..., :1])], -1)
        coeff *= gamma * lam
    return q[..., :T] + tree
