"""Each discrete learner's behaviour policy against its official code's (issue 24): on fixed
agent outputs, the distribution our ``act(..., "explore")`` draws from must equal the one the
official controller and selector draw from. The official probabilities were computed once by
running the official code (tests/fixtures/official/selectors.json names repository, commit,
files and lines); no official code is here. DOP used to draw like FOP (with an extra uniform
pick), which this test rejects: official [0.615, 0.128, 0.128, 0.128], that [0.43, 0.19, ...]."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import params_run

from algorithms import learner
from algorithms.learner import EXPLORE
from algorithms.learners.qmix import QMIX
from envs import EnvSpec

pytestmark = pytest.mark.usefixtures("one_thread")

OFFICIAL = json.loads((Path(__file__).parent / "fixtures/official/selectors.json").read_text())
# Our learner -> the official code base whose selector it follows (VM3-AC on FOP has no code of
# its own: it is built on FOP, VM3-AC §6; MAVEN on QMIX is MAVEN's noisemix).
LEARNERS = {"qmix": "qmix", "maven_qmix": "maven", "lica": "lica", "vdac": "vdac", "fop": "fop",
            "vm3ac_fop": "fop", "dop": "dop"}
DRAWS = 20_000  # env copies in one call; 2 agents each


def fixed_outputs(algo, outputs: torch.Tensor, monkeypatch) -> None:
    """Make every agent output ``outputs`` whatever it sees: QMIX's agent step returns them as
    Q-values; a policy's recurrent agent gets a zero output layer with them as its bias."""
    A = outputs.shape[0]
    if isinstance(algo, QMIX):
        def agent_step(agent, inputs, hidden, memory):
            q = outputs.expand(*inputs.shape[:-1], A).clone()
            return q.squeeze(1), hidden
        monkeypatch.setattr(algo, "_agent_step", agent_step)
        return
    agent = algo.actor.agent if hasattr(algo, "actor") else algo.agent
    with torch.no_grad():
        agent.fc2.weight.zero_()
        agent.fc2.bias[..., :A] = outputs


@pytest.mark.parametrize("case", ["A", "B"])
@pytest.mark.parametrize("algorithm", LEARNERS)
def test_behaviour_distribution_is_the_official_selectors(algorithm, case, monkeypatch):
    given, expected = OFFICIAL["cases"][case], torch.tensor(OFFICIAL[LEARNERS[algorithm]][case])
    outputs = torch.tensor(given["outputs"], dtype=torch.float32)
    A, eps = outputs.shape[0], given["epsilon"]
    run = params_run(algorithm)
    settings = run.settings  # the acting path does not depend on the batch shape
    if hasattr(settings, "epsilon_start"):
        settings = dataclasses.replace(settings, epsilon_start=eps, epsilon_finish=eps)
    spec = EnvSpec(2, 3, 4, True, A, (), (), 4)
    algo = learner(run.family)(spec, [0], settings)
    fixed_outputs(algo, outputs, monkeypatch)
    obs = torch.zeros(1, DRAWS, 2, 3)
    avail = torch.tensor(given["available"], dtype=torch.float32).expand(1, DRAWS, 2, A)
    memory = algo.begin_episodes(None, torch.ones(1, DRAWS, dtype=torch.bool), obs, torch.zeros(1, DRAWS, 4))
    action, _ = algo.act(obs, torch.zeros(1, DRAWS, 4), avail, memory, EXPLORE)
    frequencies = torch.bincount(action.flatten(), minlength=A).float() / action.numel()
    # 40,000 draws: a standard error of at most 0.0025 per action; allow 4 of them.
    torch.testing.assert_close(frequencies, expected.float(), atol=0.01, rtol=0)
