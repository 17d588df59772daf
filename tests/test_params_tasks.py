"""Every task entry of params.yaml builds, through the batched wrapper, and steps."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from conftest import REPO

import envs

TASKS = yaml.safe_load((REPO / "params.yaml").read_text())["tasks"]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_params_task_entry_builds_and_steps(name):
    entry = TASKS[name]
    batch = envs.make_batched(entry["id"], 2, **entry.get("kwargs", {}))
    spec = batch.spec
    obs, state, avail = batch.reset([0, 1])
    assert obs.shape == (2, spec.n_agents, spec.obs_dim) and state.shape == (2, spec.state_dim)
    rng = np.random.default_rng(0)
    if spec.discrete:
        # A random available action per agent (the no-op is always available).
        actions = np.array([[rng.choice(np.flatnonzero(m)) for m in copy] for copy in avail])
    else:
        actions = rng.uniform(
            spec.action_low, spec.action_high, (2, spec.n_agents, spec.action_dim)
        ).astype(np.float32)
    step = batch.step(actions)
    assert step.reward.shape == (2,) and np.isfinite(step.reward).all()
    # The limit params.yaml states (max_cycles, or SMAC's episode_limit) is the one the batch uses.
    kwargs = entry.get("kwargs", {})
    stated = kwargs.get("max_cycles", kwargs.get("episode_limit"))
    if stated is not None:
        assert spec.episode_limit == stated


def test_the_paper_profile_gives_iac_tasks_the_official_codes_budget():
    """IAC's official code trains 2e6 env steps and evaluates every 1,000 (Fig. 7 counts saved
    steps in thousands); other tasks keep the profile's own budget."""
    from conftest import REPO

    from pipeline.design.params import load, resolve_runs

    params = load(REPO / "params.yaml")
    params["profile"] = "paper"
    runs = resolve_runs(params)
    assert (runs["iac-iac_predator_prey"].budget.env_steps, runs["iac-iac_predator_prey"].budget.curve_interval) == (2_000_000, 1000)
    assert runs["siaq-multi_pendulum_n3"].budget.curve_interval == 1000
    own = params["profiles"]["paper"]
    assert runs["vm3ac-multiwalker_n3"].budget.env_steps == own["env_steps"]
    assert runs["vm3ac-multiwalker_n3"].budget.curve_interval == own["curve_interval"]


# How few agents each task takes (README, Tasks): refused where cooperation is the task, a
# single-agent task where one agent can do it alone.
TOO_FEW = {
    "multiwalker": ({"N": 1}, "multiwalker: N must be >= 2 walkers"),
    "vm3ac_predator_prey": ({"N": 1}, "vm3ac_predator_prey: N=1 is too few agents"),
    "treasure_collection": ({"N": 2}, "treasure_collection: N=2 agents cannot hold 2 deposit(s)"),
    "multi_pendulum": ({"N": 0}, "multi_pendulum: N must be >= 1 pendulum"),
    "cooperative_navigation": ({"N": 0}, "cooperative_navigation: N must be >= 1 agent"),
    "iac_predator_prey": ({"num_predators": 0}, "iac_predator_prey: num_predators must be >= 1"),
}
ONE_AGENT = {"cooperative_navigation": {"N": 1}, "iac_predator_prey": {"num_predators": 1}, "multi_pendulum": {"N": 1}}


@pytest.mark.parametrize("task", sorted(TOO_FEW))
def test_too_few_agents_stop_in_one_line_naming_the_task(task):
    kwargs, message = TOO_FEW[task]
    with pytest.raises(ValueError, match=re.escape(message)):
        envs.make(task, **kwargs)


@pytest.mark.parametrize("task", sorted(ONE_AGENT))
def test_one_agent_is_a_valid_single_agent_task_where_it_can_do_it_alone(task):
    batch = envs.make_batched(task, 1, **ONE_AGENT[task])
    assert batch.spec.n_agents == 1
    batch.reset([0])
    step = batch.step(np.zeros((1, 1, batch.spec.action_dim), np.float32))
    assert np.isfinite(step.reward).all()
