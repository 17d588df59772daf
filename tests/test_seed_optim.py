"""SeedAdam is torch's Adam applied to each seed alone: same numbers for one seed, no mixing
of seeds through bias correction or clipping, and masked seeds left exactly as they were."""

from __future__ import annotations

import torch
from torch import nn

from algorithms.components.seed_optim import SeedAdam, hard_copy, polyak


def params(S: int, seed: int = 0) -> list[nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [nn.Parameter(torch.randn(S, 3, 4, generator=g)), nn.Parameter(torch.randn(S, 3, 1, 4, generator=g))]


def grads(S: int, step: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(S, 3, 4, generator=g) * 5, torch.randn(S, 3, 1, 4, generator=g) * 5]


def run_seed_adam(S, steps, active=None, **kwargs):
    ps = params(S)
    opt = SeedAdam(ps, lr=0.01, **kwargs)
    for t in range(steps):
        for p, g in zip(ps, grads(S, t)):
            p.grad = g.clone()
        opt.step(active(t) if active else None)
    return ps, opt


def run_torch_adam(seed_slice, steps, clip=None):
    """torch.optim.Adam on one seed's slice of the same parameters and gradients."""
    ps = [nn.Parameter(p.detach()[seed_slice].clone()) for p in params(2)]
    opt = torch.optim.Adam(ps, lr=0.01)
    for t in range(steps):
        for p, g in zip(ps, grads(2, t)):
            p.grad = g[seed_slice].clone()
        if clip:
            torch.nn.utils.clip_grad_norm_(ps, clip)
        opt.step()
    return ps


def test_each_seed_gets_torch_adam():
    ps, _ = run_seed_adam(2, 5)
    for k in range(2):
        for got, want in zip(ps, run_torch_adam(k, 5)):
            torch.testing.assert_close(got[k], want, rtol=1e-6, atol=1e-7)


def test_a_masked_seed_is_left_exactly_as_it_was_and_its_steps_do_not_count():
    # Seed 1 steps only at t = 0, 2, 4: its three steps are Adam's first three steps.
    ps, opt = run_seed_adam(2, 5, active=lambda t: torch.tensor([True, t % 2 == 0]))
    assert opt.steps.tolist() == [5.0, 3.0]
    ref = [nn.Parameter(p.detach()[1].clone()) for p in params(2)]
    adam = torch.optim.Adam(ref, lr=0.01)
    for t in (0, 2, 4):
        for p, g in zip(ref, grads(2, t)):
            p.grad = g[1].clone()
        adam.step()
    for got, want in zip(ps, ref):
        torch.testing.assert_close(got[1], want, rtol=1e-6, atol=1e-7)
    for got, want in zip(ps, run_torch_adam(0, 5)):
        torch.testing.assert_close(got[0], want, rtol=1e-6, atol=1e-7)


def test_seed_clipping_is_clip_grad_norm_on_each_seed_alone():
    ps, _ = run_seed_adam(2, 3, clip=0.5, clip_scope="seed")
    for k in range(2):
        for got, want in zip(ps, run_torch_adam(k, 3, clip=0.5)):
            torch.testing.assert_close(got[k], want, rtol=1e-6, atol=1e-7)


def test_variable_clipping_bounds_every_seed_and_agent_slice():
    ps = params(2)
    opt = SeedAdam(ps, lr=0.01, clip=0.5, clip_scope="variable")
    for p, g in zip(ps, grads(2, 0)):
        p.grad = g.clone()
    clipped, _ = opt._grads(None)
    for g in clipped:
        norms = g.flatten(2).norm(dim=2)  # [S, N]
        torch.testing.assert_close(norms, torch.full_like(norms, 0.5), rtol=1e-4, atol=1e-5)


def test_variable_clipping_treats_each_critic_members_first_layer_as_its_own_variable():
    """MADDPG's centralised critic stores its members' first layers stacked, [S, M * H, in]:
    the reference code (openai/maddpg, tf clip_by_norm per variable) clips member m's layer as
    one variable, so with member 0's gradient large and member 1's small, member 0's whole
    [H, in] block is scaled to norm 0.5 and member 1's is left alone. Row by row (each hidden
    unit alone), it was up to sqrt(H) looser."""
    from algorithms.components.seeding import SeedStreams
    from algorithms.models.centralised_critic import CentralisedCritic

    critic = CentralisedCritic(SeedStreams([0, 1], "init"), 2, 3, 2, (8, 8))
    opt = SeedAdam(critic.parameters(), lr=0.01, clip=0.5, clip_scope="variable")
    H = 8
    for p in critic.parameters():
        p.grad = torch.zeros_like(p)
    g = torch.Generator().manual_seed(0)
    big, small = torch.randn(2, H, 7, generator=g), torch.randn(2, H, 7, generator=g) * 1e-3
    critic.w_in.grad = torch.cat([big, small], 1)  # rows 0..7: member 0, rows 8..15: member 1
    clipped = opt._grads(None)[0][0]  # w_in comes first
    member = clipped.reshape(2, 2, -1).norm(dim=2)  # [S, M]
    torch.testing.assert_close(member[:, 0], torch.full((2,), 0.5), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(clipped[:, H:], small)
    rows = clipped[:, :H].norm(dim=2)
    assert (rows < 0.5).all() and rows.pow(2).sum(1).sqrt().allclose(torch.full((2,), 0.5), atol=1e-4)


def test_polyak_and_hard_copy_respect_the_mask():
    target, source = nn.Linear(2, 2), nn.Linear(2, 2)
    for p in (*target.parameters(), *source.parameters()):
        p.data = torch.randn(2, *p.shape)  # a seed axis of 2
    before = [p.detach().clone() for p in target.parameters()]
    polyak(target, source, 0.25, torch.tensor([True, False]))
    for old, new, src in zip(before, target.parameters(), source.parameters()):
        torch.testing.assert_close(new[0], old[0] + 0.25 * (src[0] - old[0]))
        assert torch.equal(new[1], old[1])
    hard_copy(target, source)
    for new, src in zip(target.parameters(), source.parameters()):
        assert torch.equal(new, src)
