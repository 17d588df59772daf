"""Transition and episode storage: what is sampled is exactly what was stored, the next
observation comes from the following row (or, at a time-limit cut, from the kept final one),
nothing is stored twice, and each seed samples on its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from algorithms.components.storage import STORAGES, EpisodeReplay, Field, TransitionReplay, nbytes

S, E, N, OBS = 2, 3, 2, 4
FIELDS = {
    "obs": Field((N, OBS)),
    "state": Field((5,)),
    "action": Field((N,), torch.int64),
    "reward": Field(()),
    "terminated": Field((), torch.bool),
}


def observation(t: int) -> dict:
    """Row contents that encode (seed, copy, t) so a sample can be traced back."""
    code = torch.arange(S)[:, None] * 1000 + torch.arange(E)[None] * 100 + t  # [S, E]
    return {
        "obs": code[..., None, None].float().expand(S, E, N, OBS),
        "state": code[..., None].float().expand(S, E, 5),
        "avail": torch.ones(S, E, N, 3),
    }


def fill(storage, steps: int, limit: int, terminate_at=None):
    """Episodes of ``limit`` steps (truncated), or terminated at step ``terminate_at``."""
    storage.open(**observation(0))
    t_in = 0
    for t in range(1, steps + 1):
        t_in += 1
        term = torch.full((S, E), terminate_at is not None and t_in == terminate_at)
        trunc = torch.full((S, E), t_in == limit) & ~term
        nxt = observation(t)
        final = {k: v + 0.5 for k, v in nxt.items()}  # the final obs differs from the reset obs
        storage.close(
            trunc,
            final,
            action=torch.full((S, E, N), t),
            reward=torch.full((S, E), float(t)),
            terminated=term,
        )
        storage.open(**nxt)
        if bool(term.any() or trunc.any()):
            t_in = 0


def test_transitions_give_the_next_row_or_the_kept_final_observation():
    limit = 4
    replay = TransitionReplay(range(S), 30, FIELDS, E, limit)
    fill(replay, 9, limit)
    batch = replay.sample(200)
    t = batch["reward"].long()  # the step that produced each sampled row
    assert t.min() >= 1 and t.max() <= 9
    obs_t = batch["obs"][..., 0, 0] % 100
    assert torch.equal(obs_t.long(), t - 1)  # row t-1's observation led to step t
    cut = t % limit == 0  # steps that hit the time limit: next obs is the final one (+0.5)
    next_t = batch["next_obs"][..., 0, 0] % 100
    assert torch.equal(next_t[~cut], t[~cut].float())
    assert torch.equal(next_t[cut], t[cut].float() + 0.5)
    assert cut.any() and (~cut).any()
    seeds = (batch["obs"][..., 0, 0] // 1000).long()
    assert torch.equal(seeds, torch.arange(S)[:, None].expand_as(seeds))  # each seed its own


@pytest.mark.parametrize("terminate_at", [None, 3])
def test_next_action_is_the_following_rows_within_an_episode(terminate_at):
    """SI-MOA's target: row t+1's joint action, valid only where the episode goes on after t
    (not at a termination or a time-limit cut) and row t+1 is closed."""
    limit = 4
    fields = {**FIELDS, "next_action": Field((N,), torch.int64)}
    replay = TransitionReplay(range(S), 30, fields, E, limit)
    fill(replay, 9, limit, terminate_at)
    batch = replay.sample(300)
    t = batch["reward"].long()  # the step that produced each sampled row; its action is t
    assert torch.equal(batch["action"][..., 0], t)
    in_episode = (t - 1) % (terminate_at or limit) + 1  # step within its episode
    valid = (in_episode < (terminate_at or limit)) & (t < 9)  # step 9's successor is open
    assert torch.equal(batch["has_next_action"], valid)
    assert torch.equal(batch["next_action"][..., 0][valid], t[valid] + 1)
    assert valid.any() and (~valid).any()


def test_next_action_exists_only_with_transitions_and_the_action():
    with pytest.raises(ValueError, match="transition storage"):
        EpisodeReplay(range(S), 4, {**FIELDS, "next_action": Field((N,), torch.int64)}, E, 4)
    without = {k: v for k, v in FIELDS.items() if k != "action"}
    with pytest.raises(ValueError, match="needs the action"):
        TransitionReplay(range(S), 4, {**without, "next_action": Field((N,))}, E, 4)


def test_transition_ring_keeps_the_newest_rows_and_refuses_an_early_cut():
    replay = TransitionReplay(range(S), 6, FIELDS, E, 4)  # 2 closed rows per copy
    fill(replay, 9, 4)
    t = replay.sample(100)["reward"].long()
    assert set(t.unique().tolist()) == {8, 9}
    early = TransitionReplay(range(S), 6, FIELDS, E, 10)
    try:
        fill(early, 5, 3)  # truncated at 3 steps though the limit is 10
    except RuntimeError as err:
        assert "truncated before the time limit" in str(err)
    else:
        raise AssertionError("a truncation before the limit must not pass silently")


def test_inactive_seeds_draw_nothing():
    replay = TransitionReplay(range(S), 30, FIELDS, E, 4)
    fill(replay, 9, 4)
    twin = TransitionReplay(range(S), 30, FIELDS, E, 4)
    fill(twin, 9, 4)
    replay.sample(5, active=torch.tensor([True, False]))
    a = replay.sample(5)["reward"]
    twin.sample(5)
    b = twin.sample(5)["reward"]
    assert torch.equal(a[0], b[0])  # seed 0 drew twice in both
    assert not torch.equal(a[1], b[1])  # seed 1 drew once less in the first


def test_episodes_hold_whole_episodes_with_a_filled_mask():
    limit = 5
    replay = EpisodeReplay(range(S), 8, {**FIELDS, "avail": Field((N, 3), torch.bool)}, E, limit)
    fill(replay, 7, limit, terminate_at=3)  # episodes of 3 steps, ending terminated
    assert replay.episodes().tolist() == [2 * E, 2 * E]
    assert bool(replay.ready(6).all()) and not bool(replay.ready(7).any())
    batch = replay.sample(50)
    filled = batch["filled"]
    assert filled.shape == (S, 50, limit)
    assert filled[..., :3].all() and not filled[..., 3:].any()
    assert torch.equal(batch["terminated"][..., :3].sum(-1), torch.ones(S, 50, dtype=torch.long))
    step = batch["reward"][..., :3]
    assert ((step == torch.tensor([1.0, 2.0, 3.0])) | (step == torch.tensor([4.0, 5.0, 6.0]))).all(-1).all()
    # row 3 holds the final observation (+0.5), after the three observations of the episode
    final = batch["obs"][..., 3, 0, 0] % 100
    assert torch.equal(final, step[..., 2] + 0.5)


def test_one_million_transitions_of_seven_seeds_fit_this_machine():
    """A learner's declared fields (VM3-AC's) on the largest continuous task of both papers."""
    spec = envs.make_batched("treasure_collection", 1, N=5, num_deposits=2).spec
    fields = {
        "obs": Field((spec.n_agents, spec.obs_dim)),
        "state": Field((spec.state_dim,)),
        "action": Field((spec.n_agents, spec.action_dim)),
        "reward": Field(()),
        "terminated": Field((), torch.bool),
    }
    replay = TransitionReplay(range(7), 10**6, fields, 1, 100)  # torch.empty: pages untouched
    per_seed = replay.bytes_per_seed
    assert per_seed < 2.2e9
    assert 7 * per_seed < 20 * 2**30  # this machine has 24 GiB
    assert nbytes(fields) == 4 * (5 * spec.obs_dim + spec.state_dim + 5 * spec.action_dim + 1) + 1
    np.testing.assert_allclose(per_seed / 10**6, nbytes(fields) + 4, rtol=0.02)


def test_a_waiting_copy_writes_nothing_and_its_rows_stay_in_order():
    """Copies advance on their own (pipeline/runtime/loops.py lets some wait): copy 0 of each seed
    steps every time, copy 1 only every other time; every sampled row's next observation is
    still the observation its own copy saw next."""
    replay = TransitionReplay(range(S), 60, FIELDS, E, 100)
    seen = torch.zeros(S, E)  # what each copy observes now: its own step count
    replay.open(**observation(0))
    for t in range(1, 13):
        active = torch.ones(S, E, dtype=torch.bool)
        active[:, 1] = t % 2 == 0
        seen = seen + active
        nxt = {k: v.clone() for k, v in observation(0).items()}
        nxt["obs"] = nxt["obs"] + seen[..., None, None]  # code + own step count
        replay.close(
            torch.zeros(S, E, dtype=torch.bool),
            nxt,
            active,
            action=torch.zeros(S, E, N),
            reward=seen.clone(),
            terminated=torch.zeros(S, E, dtype=torch.bool),
        )
        replay.open(active, **nxt)
    assert replay.closed.tolist() == [[12, 6, 12], [12, 6, 12]]
    batch = replay.sample(300)
    own_step = batch["reward"]  # the copy's own step count when it produced the row
    assert torch.equal(batch["obs"][..., 0, 0] % 100 + 1, own_step)
    assert torch.equal(batch["next_obs"][..., 0, 0] % 100, own_step)


def test_latest_episodes_are_the_newest_in_order_without_a_draw():
    """On-policy storage: the batch is each seed's newest finished episodes, oldest first, and
    sampling moves no generator (nothing is drawn)."""
    from algorithms.components.storage import LatestEpisodes, trim_episodes

    limit = 5
    store = LatestEpisodes(range(S), E, {**FIELDS, "avail": Field((N, 3), torch.bool)}, E, limit)
    fill(store, 9, limit, terminate_at=3)  # three rounds of E episodes, 3 steps each
    state = [g.get_state() for g in store.sampler.generators]
    batch = store.sample(E)
    assert all(torch.equal(a, g.get_state()) for a, g in zip(state, store.sampler.generators))
    # the newest round: steps 7, 8, 9 of every copy (rewards are the global step numbers)
    assert torch.equal(batch["reward"][..., :3], torch.tensor([7.0, 8.0, 9.0]).expand(S, E, 3))
    two = store.sample(2 * E)["reward"][..., 0]  # the last two rounds, the older first
    assert torch.equal(two, torch.tensor([4.0] * E + [7.0] * E).expand(S, 2 * E))
    trimmed = trim_episodes(batch)
    assert trimmed["filled"].shape[-1] == 3 and trimmed["obs"].shape[2] == 4  # + the final row


@pytest.mark.parametrize("kind", sorted(STORAGES))
def test_the_bytes_needed_before_allocation_are_those_allocated(kind):
    """What the train stage checks against the free memory is what the storage then holds."""
    fields = {"obs": Field((3, 5)), "state": Field((4,)), "action": Field((3, 2)), "reward": Field(()),
              "terminated": Field((), torch.bool)}  # fmt: skip
    storage = STORAGES[kind](range(2), 4000, fields, 3, 7)
    held = [t for t in vars(storage).values() if isinstance(t, torch.Tensor)]
    held += [t for group in ("data", "final") for t in getattr(storage, group, {}).values()]
    allocated = sum(t.numel() * t.element_size() for t in held if t.dim() >= 2 and t.shape[0] == 2)
    needed = STORAGES[kind].bytes_needed(4000, fields, 3, 7)
    assert needed == storage.bytes_per_seed
    assert 2 * needed == pytest.approx(allocated, rel=0.02)  # per-copy counters are not counted


@pytest.mark.parametrize("kind", sorted(STORAGES))
def test_a_pickled_storage_keeps_what_was_written_and_samples_alike(kind):
    """Resume points pickle the storage without its unwritten rows; unpickled, it holds the
    same written rows, and the same draws sample the same batches, before and after more rows."""
    import pickle

    limit = 5
    store = STORAGES[kind](range(S), 4000, {**FIELDS, "avail": Field((N, 3), torch.bool)}, E, limit)
    fill(store, 12, limit, terminate_at=3)
    raw = pickle.dumps(store)
    # most rows are unwritten (the ring of truncation finals is kept whole: with this short time
    # limit of 5 steps it has a fifth as many rows as the ring of transitions)
    assert len(raw) < 0.2 * S * store.bytes_per_seed
    copy = pickle.loads(raw)
    for name in store.data:
        assert copy.data[name].shape == store.data[name].shape
    for storage in (store, copy):
        fill(storage, 7, limit, terminate_at=3)
    first, second = store.sample(4), copy.sample(4)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
