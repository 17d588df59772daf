"""Shared helpers for the environment tests (seeded random rollouts of a ParallelEnv), and the
order test files run in."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

import pipeline  # noqa: F401  (first: the stages' numeric kernels and threads, pipeline/__init__.py)

# The slowest files first (the CI log's --durations, 2026-12-06: the end-to-end file's tests take
# about 560 s together, the next ones 100-200 s each). pytest-xdist hands whole files to its
# workers in collection order; started last, they kept one worker busy long after the other had
# finished (16.5 min of tests on 2 workers for about 27 min of work).
SLOW_FIRST = (
    "test_pipeline_end_to_end.py", "test_slurm.py", "test_resume_dvc.py", "test_code_digests.py",
    "test_training_reproducibility.py", "test_matrix_tables.py", "test_learning.py", "test_dvc_stages.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: files stay whole


def sample_action(space: spaces.Space, rng: np.random.Generator):
    """A random action drawn from ``rng`` (not the space's own sampler), so tests control it."""
    if isinstance(space, spaces.Discrete):
        return int(rng.integers(space.n))
    return rng.uniform(space.low, space.high).astype(space.dtype)


def run_episode(env, seed: int, steps: int, action_seed: int = 0) -> list[np.ndarray]:
    """Reset with ``seed``, take ``steps`` random steps; every obs/reward/done as flat arrays."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out = [np.asarray(obs[a]) for a in env.agents]
    for _ in range(steps):
        if not env.agents:
            break
        live = list(env.agents)
        actions = {a: sample_action(env.action_space(a), rng) for a in live}
        obs, rew, term, trunc, _ = env.step(actions)
        out += [np.asarray(obs[a]) for a in live]
        out += [np.array([rew[a], term[a], trunc[a]], float) for a in live]
    return out


@pytest.fixture
def episode():
    return run_episode


@pytest.fixture
def one_thread():
    """Tiny networks on a shared 2-core machine: with two OpenMP threads torch's thread barriers
    slow them tenfold and more, so a module of them runs on one thread
    (``pytestmark = pytest.mark.usefixtures("one_thread")``); restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def continuous_spec(n_agents: int = 2, obs_dim: int = 2, state_dim: int = 3):
    """A tiny continuous task's spec (one action in [-1, 1], 5-step episodes) for loss tests."""
    from types import SimpleNamespace

    return SimpleNamespace(
        n_agents=n_agents,
        obs_dim=obs_dim,
        state_dim=state_dim,
        discrete=False,
        action_dim=1,
        action_low=(-1.0,),
        action_high=(1.0,),
        episode_limit=5,
    )


def constant(net, values) -> None:
    """Make a network output ``values[i]`` for member i whatever its input: agent i of a
    StackedMLP, member ``head * N + i`` of a CentralisedCritic (values listed head by head)."""
    import torch

    if hasattr(net, "layers"):  # StackedMLP: weights [S, N, in, out], biases [S, N, 1, out]
        weight, bias = net.layers[-1].weight, net.layers[-1].bias
        shape = (1, -1, 1, bias.shape[-1])
    else:  # CentralisedCritic, feature-major: weights [S, M, out, in], biases [S, M, 1, 1]
        weight, bias = net.weights[-1], net.biases[-1]
        shape = (1, -1, 1, 1)
    with torch.no_grad():
        weight.zero_()
        bias.copy_(torch.as_tensor(values, dtype=torch.float32).view(shape))


def hand_batch():
    """An episode batch to check losses by hand (EpisodeReplay.sample's layout): one seed, 2
    agents, 3 actions, limit 2. Episode 0 is cut by the time limit after 2 steps (row 2 is its
    final observation); episode 1 terminates after 1 step, and its row 1 is unfilled padding
    with a reward of 100 that must not count."""
    import torch

    ones = [1, 1, 1]
    avail = [
        [[ones, ones], [[1, 0, 1], ones], [[0, 0, 1], [1, 0, 0]]],
        [[ones, ones], [[0, 1, 0], [0, 1, 0]], [[0, 0, 0], [0, 0, 0]]],
    ]
    return {
        "obs": torch.zeros(1, 2, 3, 2, 1),
        "state": torch.ones(1, 2, 3, 1),
        "avail": torch.tensor([avail], dtype=torch.float32),
        "action": torch.tensor([[[[1, 2], [0, 0], [0, 0]], [[2, 1], [1, 1], [0, 0]]]]),
        "reward": torch.tensor([[[1.0, 2.0, 0.0], [4.0, 100.0, 0.0]]], dtype=torch.float64),
        "terminated": torch.tensor([[[False, False, False], [True, False, False]]]),
        "filled": torch.tensor([[[True, True], [True, False]]]),
    }


def random_batch(spec, S: int, B: int, seed: int = 0):
    """LatestEpisodes.sample's layout: episodes of random lengths, each ending in a
    termination or the time limit, legal actions, garbage past the end (as tests/test_qmix.py)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    N, A, T = spec.n_agents, spec.action_dim, spec.episode_limit
    length = torch.randint(1, T + 1, (S, B), generator=g)
    avail = torch.rand(S, B, T + 1, N, A, generator=g) < 0.5
    avail[..., 0] = True
    last = torch.arange(T + 1) == (length - 1).unsqueeze(-1)
    terminated = torch.zeros(S, B, T + 1, dtype=torch.bool)
    terminated[last] = torch.rand(S, B, generator=g).flatten() < 0.5
    action = torch.randint(0, A, (S, B, T + 1, N), generator=g)
    avail.scatter_(-1, action.unsqueeze(-1), True)  # the actions taken were available
    return {
        "obs": torch.randn(S, B, T + 1, N, spec.obs_dim, generator=g),
        "state": torch.randn(S, B, T + 1, spec.state_dim, generator=g),
        "avail": avail,
        "action": action,
        "reward": torch.randn(S, B, T + 1, generator=g),
        "terminated": terminated,
        "filled": torch.arange(T) < length.unsqueeze(-1),
    }


def params_run(algorithm: str, task: str = "smac_3m"):
    """The run params.yaml resolves for ``algorithm`` on ``task``: its family and the settings
    a test starts from before shrinking them."""
    from pipeline.design.params import load, resolve_runs

    params = load(REPO / "params.yaml")
    params["runs"] = {"probe": {"algorithm": algorithm, "task": task}}
    return resolve_runs(params)["probe"]


# ---- pipeline tests -------------------------------------------------------------------------

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def shrink(params: dict) -> dict:
    """params.yaml cut to a budget that trains, updates and evaluates in seconds."""
    params["profiles"]["smoke"] = {
        "seeds": 3, "env_steps": 50, "curve_interval": 25, "curve_episodes": 1, "eval_episodes": 2
    }  # fmt: skip
    params["resume"]["every_env_steps"]["smoke"] = 20  # points at steps 20 and 40, and the end
    for snapshot in params.get("snapshots", {}).values():  # `every` stays; lists keep two steps
        step = snapshot["step"]["smoke"]
        snapshot["step"]["smoke"] = step if step == "every" else [0, 50] if isinstance(step, list) else 50
    for algorithm in params["algorithms"].values():
        if "family" in algorithm:  # entries that inherit keep their parent's schedule
            algorithm.update(learning_starts=25, batch_size=8)
    return params


@pytest.fixture
def tiny_params() -> dict:
    """The repository's params.yaml, shrunk (runs, tasks and algorithms as they are)."""
    import yaml

    return shrink(yaml.safe_load((REPO / "params.yaml").read_text()))


def small_design(params: dict) -> dict:
    """params.yaml's design cut to a few cheap runs that still hold every kind of stage: one
    learning-curve figure of the four continuous learners on CN (N=3), Table 1 on one task, the
    Fig. 6 snapshot, IAC's matrix-game tables, snapshots and comparison on one-step games, and
    one declared run."""
    params["figures"] = {"cn3_learners": params["figures"]["cn3_learners"]}
    table = params["tables"]["table1"]
    table["columns"] = {"PP (N=2)": "predator_prey_n2"}
    table["reported"] = {mode: values[:1] for mode, values in table["reported"].items()}
    params["snapshots"]["fig6"]["task"] = "predator_prey_n2"
    # IAC's stages on Simple World only (one-step episodes): the trajectory, exploration and
    # covariance snapshots of IAC and DDPG-MIX, and Fig. 7's comparison between the two.
    params["snapshots"]["iac_fig2"]["rows"] = {"DDPG-MIX": "ddpg_mix", "IAC": "iac"}
    params["snapshots"]["iac_fig5"]["task"] = "simple_world"
    comparison = params["comparisons"]["iac_fig7"]
    comparison["algorithms"] = {"IAC": "iac"}
    comparison["reach"] = {"task": "simple_world", "threshold": 0.5}
    comparison["final"] = {"task": "simple_world", "last_points": 2}
    comparison["reported"] = {"steps_saved_k": {"IAC": 295}}
    params["runs"] = {"probe": {"algorithm": "ma_ac", "task": "cooperative_navigation_n3"}}
    return params


def small_claims(claims: dict) -> dict:
    """claims.yaml cut to what the small design can decide, plus one claim on CN (N=3) and one
    whose runs the small design does not train (`no data yet`)."""
    kept = {k: claims["claims"][k] for k in ("vm3ac_fig6_groups", "iac_matrix_qmix_suboptimal", "iac_matrix_qmixs_optimal")}
    cn3 = {"paper": "vm3ac", "source": "§6", "shown_in": "cn3_learners", "words": "VM3-AC outperforms the baselines.", "budget": "paper",
           "test": {"kind": "beats", "algorithms": ["vm3ac"], "baselines": ["maddpg", "ma_ac"], "tasks": ["cooperative_navigation_n3"]}}
    absent = {**cn3, "test": {**cn3["test"], "baselines": ["maven", "si_moa"]}}
    return {"claims": {**kept, "cn3": cn3, "cn3_absent": absent}}


def simple_world_start(copies: int):
    """Simple World's first observation and state for ``copies`` seeds of one copy each,
    ``[S, 1, N, obs]`` and ``[S, 1, state]``: each agent observes its own index."""
    import torch

    import envs

    obs, state, _ = envs.make_batched("simple_world", copies).reset(list(range(copies)))
    return torch.from_numpy(obs).unsqueeze(1), torch.from_numpy(state).unsqueeze(1)
