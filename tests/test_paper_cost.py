"""benchmarks.paper_cost: a replay learner's timed steps carry its own update schedule, and the
model of an episode learner's update (a real batch holds episodes of many lengths, padded to the
longest) (issue 28)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import params_run

from algorithms.components.storage import trim_episodes
from algorithms.learners.qmix import QMIX
import envs
from algorithms import learner
from benchmarks.paper_cost import counting_lengths, episode_batch, gradient_steps_per_env_step, replay_learner_cost
from pipeline.design.budget import Budget
from pipeline.runtime.loops import train
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


@pytest.mark.parametrize("algorithm", ["iac", "maddpg", "maac", "vm3ac"])
def test_the_gradient_steps_counted_are_those_the_training_loop_takes(algorithm):
    # per env step (IAC), per 100 steps (MADDPG 1, MAAC 4), after each episode one per step of
    # it (VM3-AC): from a small batch on, over whole 25-step episodes of 2 seeds
    st = dataclasses.replace(params_run(algorithm, "iac_predator_prey").settings, batch_size=8, learning_starts=0)
    if st.update_unit == "step":
        assert 100 % st.update_every == 0
    env = envs.make_batched("iac_predator_prey", 2, max_cycles=25)
    lengths = counting_lengths(env)
    algo = learner(params_run(algorithm, "iac_predator_prey").family)(env.spec, [0, 1], st)
    updates, update = [0], algo.update
    algo.update = lambda *a, **k: (updates.__setitem__(0, updates[0] + 1), update(*a, **k))[1]
    # 210 steps: the 8th episode's phase (at step 200) falls inside; a run's last, cut, does not
    train(algo, env, [0, 1], Budget(210, 210, 1), lambda points, losses: None)
    ready_at = 9  # the storage holds 8 closed rows after 9 steps; each episode's 25 steps count
    expected = gradient_steps_per_env_step(st, sum(lengths) / len(lengths))
    counted = updates[0] / (210 - ready_at if st.update_unit == "step" else 200)
    assert counted == pytest.approx(expected, rel=0.1)


def test_a_replay_learners_cost_counts_the_gradient_steps_of_a_paper_run():
    # IAC updates once per env step once its storage holds a batch of 256 transitions: the
    # 300-step window timed until 2026-12-06 (from its 30th step) held updates in a sixth of it
    run = dataclasses.replace(params_run("iac", "simple_world"), seeds=(0, 1))
    per_step, per_update, rate, hours, updates = replay_learner_cost(run, 30, 1000)
    assert rate == 1.0 and updates == 1000 - run.settings.learning_starts
    assert per_step > 0 and per_update > 0
    assert hours * 3600 == pytest.approx(1000 * per_step + updates * per_update)
