"""The learner protocol (algorithms/learner.py) as every registered learner implements it:
per-seed tensors everywhere, checkpoints that round-trip, and loops that never ask which
algorithm they hold."""

from __future__ import annotations

import ast
import dataclasses

import pytest
import torch
from conftest import REPO

import envs
from algorithms import FAMILIES, learner
from algorithms.components.seeding import SeedStreams
from algorithms.learner import EXPLORE
from pipeline.design.params import load_runs

SEEDS = list(range(7))


def one_run_per_family(monkeypatch):
    monkeypatch.chdir(REPO)
    _, runs = load_runs()
    return {r.family: r for r in reversed(runs.values())}


@pytest.fixture
def built(monkeypatch, request):
    run = one_run_per_family(monkeypatch)[request.param]
    env = envs.make_batched(run.task_id, len(SEEDS), **run.task_kwargs)
    return run, env, learner(run.family)(env.spec, SEEDS, run.settings)


@pytest.mark.parametrize("built", sorted(FAMILIES), indirect=True)
def test_every_checkpointed_tensor_has_the_seed_axis_and_round_trips(built):
    run, env, algo = built
    with torch.no_grad():
        for tensor in algo.state_dict().values():
            assert tensor.shape[0] == len(SEEDS)
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor))  # every seed's tensors now differ
            else:
                tensor.add_(torch.arange(len(SEEDS)).view(-1, *[1] * (tensor.dim() - 1)).to(tensor.dtype))
    slices = [algo.seed_state(k) for k in range(len(SEEDS))]
    # Through a file, as the stages do, with torch.load's safe mode.
    fresh = learner(run.family)(env.spec, SEEDS, run.settings)
    fresh.load_seed_states([torch.load(_saved(s), weights_only=True) for s in slices])
    for name, tensor in algo.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    alone = learner(run.family)(env.spec, [3], run.settings)
    alone.load_seed_states([slices[3]])
    for name, tensor in algo.state_dict().items():
        assert torch.equal(alone.state_dict()[name][0], tensor[3]), name


def _saved(tensors: dict):
    import io

    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("built", sorted(FAMILIES), indirect=True)
def test_acting_gives_actions_in_the_task_space_for_every_mode(built):
    run, env, algo = built
    obs, state, avail = env.reset(SEEDS)
    view = lambda x: None if x is None else torch.from_numpy(x).unsqueeze(1)  # noqa: E731
    started = torch.ones(len(SEEDS), 1, dtype=torch.bool)
    for mode in (EXPLORE, *type(algo).execution_modes(run.settings)):
        noise = SeedStreams(SEEDS, f"execution-{mode}")
        # each mode's episodes begin in that mode (a drawing mode's latents are made here)
        memory = algo.begin_episodes(None, started, view(obs), view(state), mode, noise)
        action, _ = algo.act(view(obs), view(state), view(avail), memory, mode, noise)
        if env.spec.discrete:
            assert action.shape == (len(SEEDS), 1, env.spec.n_agents)
            chosen = torch.gather(view(avail), -1, action.unsqueeze(-1))
            assert bool((chosen == 1).all())
        else:
            assert action.shape == (len(SEEDS), 1, env.spec.n_agents, env.spec.action_dim)
            assert bool((action >= torch.tensor(env.spec.action_low)).all())
            assert bool((action <= torch.tensor(env.spec.action_high)).all())


def test_bad_settings_of_every_learner_name_the_field(monkeypatch):
    for family, run in one_run_per_family(monkeypatch).items():
        with pytest.raises(ValueError, match="^batch_size: "):
            dataclasses.replace(run.settings, batch_size=0)
        with pytest.raises(ValueError, match="^gamma: "):
            dataclasses.replace(run.settings, gamma=1.5)


@pytest.mark.parametrize(
    "module", ["runtime/loops", "stages/train", "stages/evaluate", "stages/aggregate", "runtime/build"]
)
def test_the_pipeline_never_asks_which_algorithm_it_holds(module):
    """No family name, learner class or learner-specific attribute appears in the stages."""
    tree = ast.parse((REPO / "pipeline" / f"{module}.py").read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    classes = {path.split(":")[1] for path in FAMILIES.values()}
    assert not (names | strings) & (set(FAMILIES) | classes | {"z_dim", "latent_dim", "q_xi"})
    assert "isinstance" not in names and "getattr" not in names


def test_jax_is_imported_only_by_stages_that_run_smac():
    """Every stage checks all of params.yaml (SMAC runs included) without importing JAX; a
    run on a particle task builds and trains without it too."""
    import subprocess
    import sys

    code = (
        "import sys, dataclasses\n"
        "import pipeline.stages.aggregate, pipeline.stages.figures, pipeline.stages.evaluate, pipeline.stages.train\n"
        "from pipeline.design.params import load_runs\n"
        "from pipeline.runtime.build import build\n"
        "_, runs = load_runs()\n"
        "assert 'qmix-smac_3m' in runs\n"
        "algo, env = build(runs['vm3ac-cooperative_navigation_n3'], 2)\n"
        "print('jax' in sys.modules, 'jaxmarl' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
