"""Every task entry of params.yaml builds, through the batched wrapper, and steps."""

from __future__ import annotations

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
