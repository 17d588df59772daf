"""benchmarks.paper_cost: a replay learner's timed steps carry its own update schedule, and the
model of an episode learner's update (a real batch holds episodes of many lengths, padded to the
longest) (issue 28)."""

from __future__ import annotations

import dataclasses

import torch
from conftest import params_run

from algorithms.components.storage import trim_episodes
from algorithms.learners.qmix import QMIX
from benchmarks.paper_cost import episode_batch, seconds_per_step
from envs import EnvSpec

SPEC = EnvSpec(3, 5, 4, True, 6, (), (), 60)  # 3m's shapes: 60 steps at most


def test_a_batch_runs_to_the_longest_of_the_measured_lengths_it_draws():
    algo = QMIX(SPEC, [0, 1, 2], dataclasses.replace(params_run("qmix").settings, hidden=8))
    # mostly short episodes and the odd long one, as 3m's exploring policy plays them
    measured = torch.tensor([18] * 95 + [60] * 5)
    batch = episode_batch(algo, SPEC, 3, 32, measured)
    lengths = batch["filled"].sum(-1)
    assert set(lengths.unique().tolist()) == {18, 60}
    # padded to the longest of all seeds' episodes, as an update on sampled episodes is
    assert trim_episodes(batch)["filled"].shape[-1] == 60
    assert batch["obs"].shape[2] == SPEC.episode_limit + 1


def test_the_timed_steps_of_a_replay_learner_update_at_its_own_rate():
    # IAC updates once per env step once its storage holds a batch of 256 transitions: a
    # 30-step window timed from a fixed early step (as until 2026-12-06) held no update at all
    run = dataclasses.replace(params_run("iac", "simple_world"), seeds=(0, 1))
    assert run.settings.batch_size > 30 and run.settings.update_every == 1
    per_step, updates_per_step = seconds_per_step(run, 30)
    assert updates_per_step == 1.0
    assert per_step > 0
