"""Adam and RMSprop for seed-batched parameters: every tensor's leading axis is the seed.

torch's optimisers see one tensor and would mix seeds in two places: the bias correction counts
one step for the whole tensor, and gradient clipping takes one norm over all of it. Here each
seed has its own step count and its own clipping norm, and a mask says which seeds step at all
(a seed whose update phase is not due keeps its parameters and moments exactly). The step is a
handful of ``torch._foreach`` calls over all tensors (the "fused optimiser step").
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def _per_seed(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A ``[S]`` (or ``[S, N]``) tensor viewed to broadcast against ``like``."""
    return values.view(*values.shape, *([1] * (like.dim() - values.dim())))


def clip_grads_(grads: list[torch.Tensor], clip: float, clip_scope: str, members=None) -> None:
    """Scale ``grads`` (seed-leading tensors) in place so their norms are at most ``clip``.

    ``"seed"``: one norm over all of a seed's tensors (``torch.nn.utils.clip_grad_norm_``
    applied to each seed alone, with its ``+ 1e-6``); ``"variable"``: every ``[S, N, ...]``
    tensor per (seed, agent) on its own, where N is ``members[k]`` for the k-th tensor when
    given (a tensor that stacks M members along its axis 1, such as the centralised critic's
    first layer ``[S, M * H, in]``, is clipped member by member), else its axis 1.
    """
    if clip_scope == "seed":
        S = grads[0].shape[0]
        norm = torch.stack([g.reshape(S, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
        coef = (clip / (norm + 1e-6)).clamp(max=1.0)
        torch._foreach_mul_(grads, [_per_seed(coef, g) for g in grads])
    else:
        S = grads[0].shape[0]
        for g, m in zip(grads, members or [None] * len(grads)):
            per = g.reshape(S, m or g.shape[1], -1)  # one row per (seed, member)
            coef = (clip / (per.norm(dim=2, keepdim=True) + 1e-6)).clamp(max=1.0)
            g.copy_((per * coef).view_as(g))


class _SeedOptimiser:
    """What both optimisers share: the parameters, the seeds' gradients (a seed outside
    ``active`` contributes none, even a non-finite one from a batch it did not draw) and their
    clipping. ``clip`` bounds gradient norms: ``clip_scope="seed"`` takes one norm over all of a
    seed's tensors (``torch.nn.utils.clip_grad_norm_`` applied to each seed alone, PyMARL's
    habit); ``"variable"`` clips every variable of every seed and agent on its own (each
    ``[S, N, ...]`` tensor per (seed, agent): TensorFlow's ``clip_by_norm`` per variable, as
    the MADDPG reference code does)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, eps: float, clip, clip_scope):
        self.params = list(params)
        if clip_scope not in ("seed", "variable"):
            name = type(self).__name__
            raise ValueError(f"{name}: clip_scope must be 'seed' or 'variable', got {clip_scope}")
        self.lr, self.eps, self.clip, self.clip_scope = lr, eps, clip, clip_scope
        self.S = self.params[0].shape[0]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _grads(self, active: torch.Tensor | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The (clipped) gradients, zero for seeds outside ``active``, and the mask as floats."""
        on = torch.ones(self.S, dtype=torch.bool) if active is None else active.bool()
        grads = [
            torch.zeros_like(p)
            if p.grad is None
            else p.grad
            if active is None
            else torch.where(_per_seed(on, p), p.grad, 0.0)
            for p in self.params
        ]
        if self.clip is not None:
            members = [getattr(p, "members", None) for p in self.params]
            clip_grads_(grads, self.clip, self.clip_scope, members)
        return grads, on.to(self.params[0].dtype)

    def _view(self, values: torch.Tensor) -> list[torch.Tensor]:
        """A ``[S]`` tensor viewed against every parameter."""
        return [_per_seed(values, p) for p in self.params]


class SeedAdam(_SeedOptimiser):
    """Adam (Kingma & Ba 2015, torch's defaults) with per-seed steps, masks and clipping."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),  # torch's defaults
        eps: float = 1e-8,
        clip: float | None = None,
        clip_scope: str = "seed",
    ):
        super().__init__(params, lr, eps, clip, clip_scope)
        self.betas = betas
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.steps = torch.zeros(self.S)

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """One Adam step for the seeds in ``active`` (``[S]`` bool; all seeds if None)."""
        grads, on = self._grads(active)
        b1, b2 = self.betas
        self.steps += on
        steps = self.steps.clamp(min=1)
        # A masked seed gets decay 1 and increment 0: its moments stay as they were.
        keep1, keep2 = 1 - (1 - b1) * on, 1 - (1 - b2) * on
        step_size = self.lr * on / (1 - b1**steps)
        inv_bias2 = 1 / (1 - b2**steps).sqrt()
        torch._foreach_mul_(self.m, self._view(keep1))
        torch._foreach_addcmul_(self.m, grads, self._view(1 - keep1))
        torch._foreach_mul_(self.v, self._view(keep2))
        torch._foreach_addcmul_(self.v, torch._foreach_mul(grads, self._view(1 - keep2)), grads)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_mul_(denom, self._view(inv_bias2))
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(self.m, denom)
        torch._foreach_mul_(update, self._view(step_size))
        torch._foreach_sub_(self.params, update)


class SeedRMSprop(_SeedOptimiser):
    """RMSprop (``torch.optim.RMSprop``: no momentum, not centred, no weight decay; PyMARL's
    optimiser) with per-seed masks and clipping.

    square_avg <- alpha square_avg + (1 - alpha) g^2;  p <- p - lr g / (sqrt(square_avg) + eps).
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        alpha: float = 0.99,  # torch's default
        eps: float = 1e-8,
        clip: float | None = None,
        clip_scope: str = "seed",
    ):
        super().__init__(params, lr, eps, clip, clip_scope)
        self.alpha = alpha
        self.square_avg = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """One RMSprop step for the seeds in ``active`` (``[S]`` bool; all seeds if None)."""
        grads, on = self._grads(active)
        # A masked seed gets decay 1 and increment 0: its square average stays as it was.
        keep = 1 - (1 - self.alpha) * on
        torch._foreach_mul_(self.square_avg, self._view(keep))
        torch._foreach_addcmul_(self.square_avg, torch._foreach_mul(grads, self._view(1 - keep)), grads)
        denom = torch._foreach_sqrt(self.square_avg)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(grads, denom)
        torch._foreach_mul_(update, self._view(self.lr * on))
        torch._foreach_sub_(self.params, update)


@torch.no_grad()
def polyak(target: torch.nn.Module, source: torch.nn.Module, tau, active=None) -> None:
    """target <- (1 - tau) target + tau source, per seed (``tau`` a float or a ``[S]`` tensor);
    seeds outside ``active`` keep theirs."""
    t, s = list(target.parameters()), list(source.parameters())
    if active is None and not isinstance(tau, torch.Tensor):
        torch._foreach_lerp_(t, s, tau)
        return
    w = tau * (1.0 if active is None else active.float())
    for a, b in zip(t, s):
        a.lerp_(b, _per_seed(w, a))


@torch.no_grad()
def hard_copy(target: torch.nn.Module, source: torch.nn.Module, active=None) -> None:
    """target <- source for the seeds in ``active`` (all if None)."""
    polyak(target, source, 1.0, active)


@torch.no_grad()
def count_and_copy(updates: torch.Tensor, interval: int, active, *pairs) -> None:
    """Count one update for each seed in ``active`` (all if None) in ``updates [S]``, and
    hard-copy each ``(target, source)`` pair for the seeds whose count reaches a multiple of
    ``interval`` (PyMARL's target_update_interval, timed by each seed's own updates)."""
    stepped = torch.ones_like(updates, dtype=torch.bool) if active is None else active
    updates += stepped.long()
    due = stepped & (updates % interval == 0)
    if due.any():
        for target, source in pairs:
            hard_copy(target, source, due)
