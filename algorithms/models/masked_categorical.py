"""Categorical policies over discrete actions with availability masks (SMAC's ``avail``).

Every discrete learner takes its actions and log-probabilities from here, so an unavailable
action gets probability exactly 0 (its logit is -inf, PyMARL's ``masked_fill``) in training,
in evaluation and in every loss. An agent left with no available action is an error of the
task, named in one line, never a NaN.
"""

from __future__ import annotations

import torch

from algorithms.components.seeding import SeedStreams


def check_some_available(available: torch.Tensor) -> None:
    """Every agent ``available [..., A]`` has at least one legal action (SMAC's no-op for the
    dead): a row of zeros would make every probability NaN."""
    if not bool(available.any(-1).all()):
        raise ValueError("action mask: an agent has no available action (its avail row is all 0)")


def masked_argmax(values: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Argmax over the last axis among ``available`` entries (PyMARL masks with -inf)."""
    return values.masked_fill(~available, -float("inf")).argmax(-1)


def masked_log_softmax(logits: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """log pi over the last axis, -inf on unavailable actions."""
    return torch.log_softmax(logits.masked_fill(~available, -float("inf")), -1)


def probabilities(log_pi: torch.Tensor) -> torch.Tensor:
    """pi from ``masked_log_softmax``: exactly 0 where masked."""
    return log_pi.exp()


def zero_masked(log_pi: torch.Tensor) -> torch.Tensor:
    """log pi with the masked (-inf) entries replaced by 0, for sums ``pi * log pi`` and
    ``pi * Q`` where pi = 0 must contribute nothing (0 * -inf is NaN)."""
    return log_pi.masked_fill(torch.isinf(log_pi), 0.0)


def entropy(log_pi: torch.Tensor) -> torch.Tensor:
    """H(pi) over the last axis."""
    return -(probabilities(log_pi) * zero_masked(log_pi)).sum(-1)


def epsilon_floored(
    logits: torch.Tensor, available: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """log pi_eps ``[S, ..., A]`` with ``eps`` per seed ``[S]``: (1 - eps) softmax(logits) +
    eps / A over all actions (PyMARL's controllers with ``mask_before_softmax: False``, as FOP and VDAC configure them), then zero on the
    unavailable actions and renormalised (the selector's ``Categorical`` and the learner's
    renormalisation), -inf where unavailable. Every term is > 0 before the mask, so no
    gradient meets log 0."""
    e = eps.view(-1, *[1] * (logits.dim() - 1))
    p = (1 - e) * torch.softmax(logits, -1) + e / logits.shape[-1]
    total = p.masked_fill(~available, 0.0).sum(-1, keepdim=True)
    return (torch.log(p) - torch.log(total)).masked_fill(~available, -float("inf"))


def sample(
    streams: SeedStreams, log_pi: torch.Tensor, active: torch.Tensor | None = None
) -> torch.Tensor:
    """One action per row of ``log_pi [S, ..., A]`` (masked entries -inf), each seed from its
    own stream: the Gumbel-max trick, argmax(log pi + G) with G = -log(-log U), is a draw
    from pi. Seeds outside ``active`` (``[S]`` bool) draw nothing (their rows are then the
    greedy action, which the caller discards)."""
    u = streams.uniform(0, 1, *log_pi.shape[1:], active=active)
    gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
    return (log_pi + gumbel).argmax(-1)


def multinomial_select(streams: SeedStreams, log_pi: torch.Tensor, available: torch.Tensor,
                       eps: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
    """PyMARL's ``multinomial`` selector in training, actions ``[S, E, N]``: with probability
    ``eps`` (per seed ``[S]``) an action uniform over the available ones, else a draw from
    ``log_pi [S, E, N, A]``. Every draw happens every step, so a seed's stream never depends on
    its epsilon; seeds outside ``active`` draw nothing."""
    S, E, N, A = log_pi.shape
    drawn = sample(streams, log_pi, active)
    pick = streams.uniform(0, 1, E, N, active=active) < eps.view(S, 1, 1)
    scores = streams.uniform(0, 1, E, N, A, active=active)  # the largest is uniform among legal
    return torch.where(pick, masked_argmax(scores, available), drawn)


__all__ = [
    "check_some_available",
    "entropy",
    "epsilon_floored",
    "masked_argmax",
    "masked_log_softmax",
    "multinomial_select",
    "probabilities",
    "sample",
    "zero_masked",
]
