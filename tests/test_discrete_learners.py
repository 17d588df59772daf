"""What every discrete learner of sparse SMAC must do, checked the same way for each: no
illegal action, ever, over many random masks in every mode, and a short SMAX 3m run with its
masks (dead agents, terminations, time limits) that updates every seed with finite losses.
Each learner's own file checks its losses by hand, its seeds and its learning."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import params_run

import envs
from algorithms import learner
from algorithms.components.seeding import SeedStreams
from algorithms.learner import EXPLORE
from envs import EnvSpec
from pipeline.design.budget import Budget
from pipeline.runtime.loops import train

pytestmark = pytest.mark.usefixtures("one_thread")

# Small networks and batches; on-policy learners keep replay = batch = copies.
SHRINK = {
    "fop": dict(batch_size=4, replay_size=20, hidden=8, critic_hidden=8, mixing_embed_dim=4),
    "vm3ac_fop": dict(batch_size=4, replay_size=20, hidden=8, critic_hidden=8, mixing_embed_dim=4,
                      q_hidden=(8,)),
    "dop": dict(batch_size=2, on_buffer_size=4, off_batch_size=2, replay_size=8, hidden=8, critic_hidden=8,
                mixing_embed_dim=4),
    "lica": dict(batch_size=2, replay_size=2, hidden=8, mixing_embed_dim=4),
    "vdac": dict(batch_size=2, replay_size=2, hidden=8, mixing_embed_dim=4, hypernet_embed=8),
    "maven_qmix": dict(batch_size=4, replay_size=20, hidden=8, mixing_embed_dim=4, discrim_size=8),
}
SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 4)  # 3 agents, obs 5, state 4, 6 actions, limit 4


def small(algorithm: str, copies: int = 2):
    run = params_run(algorithm)
    return learner(run.family), dataclasses.replace(run.settings, env_copies=copies, **SHRINK[algorithm])


@pytest.mark.parametrize("algorithm", SHRINK)
def test_a_continuous_task_is_refused_in_one_line(algorithm):
    cls, settings = small(algorithm)
    spec = EnvSpec(2, 3, 4, False, 2, (-1.0, -1.0), (1.0, 1.0), 10)
    with pytest.raises(ValueError, match=r"^\w+: .*needs a discrete action space"):
        cls(spec, [0], settings)


@pytest.mark.parametrize("algorithm", SHRINK)
def test_no_illegal_action_over_many_random_masks_in_every_mode(algorithm):
    cls, settings = small(algorithm)
    S, E, N, A = 2, 64, SPEC.n_agents, SPEC.action_dim
    algo = cls(SPEC, [0, 1], settings)
    g = torch.Generator().manual_seed(0)
    for mode in (EXPLORE, *cls.execution_modes(settings)):
        obs = torch.randn(S, E, N, SPEC.obs_dim, generator=g)
        started = torch.ones(S, E, dtype=torch.bool)
        memory = algo.begin_episodes(None, started, obs, None, mode, SeedStreams([0, 1], "execution"))
        for _ in range(25):
            avail = torch.rand(S, E, N, A, generator=g) < 0.3
            avail[..., torch.randint(0, A, (1,), generator=g)] = True  # one legal action at least
            obs = torch.randn(S, E, N, SPEC.obs_dim, generator=g)
            action, memory = algo.act(obs, None, avail.float(), memory, mode)
            assert avail.gather(-1, action.unsqueeze(-1)).all(), mode


@pytest.mark.parametrize("algorithm", SHRINK)
def test_trains_on_smax_3m_with_its_action_masks(algorithm):
    seeds, E = [0, 1], 2
    cls, settings = small(algorithm, E)
    env = envs.make_batched("sparse_smac", len(seeds) * E, map_name="3m")
    algo = cls(env.spec, seeds, settings)
    act, update, taken, losses = algo.act, algo.update, [], []

    def checked_act(obs, state, avail, memory, mode, noise=None, acting=None):
        action, memory = act(obs, state, avail, memory, mode, noise, acting)
        legal = avail.gather(-1, action.unsqueeze(-1)).squeeze(-1) == 1
        taken.append(bool(legal[acting].all()))  # waiting copies' actions are never taken
        return action, memory

    def checked_update(batch, active):
        out = update(batch, active)
        losses.extend(v if active is None else v[active] for v in out.values())
        return out

    algo.act, algo.update = checked_act, checked_update
    train(algo, env, seeds, Budget(300, 300, 1), lambda step, loss: None)
    assert taken and all(taken)
    assert losses and torch.isfinite(torch.cat(losses)).all()
