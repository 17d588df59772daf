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
