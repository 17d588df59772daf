"""What the discrete actor-critics of sparse SMAC (FOP, VM3-AC on FOP, DOP, LICA, VDAC) share:
PyMARL's common settings and their checks, and the learner skeleton (discrete masked actions,
episode fields, one greedy execution mode, the multinomial selector's epsilon clock)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from algorithms.components.settings import (
    Schedule,
    check,
    check_integer,
    check_positive,
    check_unit_interval,
    linear_schedule,
)
from algorithms.components.storage import Field
from algorithms.learner import Learner

GREEDY = "greedy"  # PyMARL's test mode (test_greedy): the most probable available action


def _in_unit_open(settings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        check(isinstance(value, (int, float)) and 0 <= value < 1, name, "must be in [0, 1)", value)


@dataclass(frozen=True)
class RecurrentSettings(Schedule):
    """PyMARL's settings every one of these learners has (values in params.yaml, each with
    its source: the official repository's config/default.yaml and its algorithm's yaml)."""

    hidden: int  # the agents' GRU size (rnn_hidden_dim)
    gamma: float
    td_lambda: float
    lr: float  # the actor's learning rate (VDAC: its one optimiser's)
    grad_norm_clip: float  # per seed and optimiser
    obs_last_action: bool  # the agent's input includes its last action
    obs_agent_id: bool  # ... and its one-hot id

    def __post_init__(self):
        super().__post_init__()
        check_integer(self, "hidden")
        check_positive(self, "hidden", "lr", "grad_norm_clip")
        _in_unit_open(self, "gamma")
        check_unit_interval(self, "td_lambda")
        for name in ("obs_last_action", "obs_agent_id"):
            value = getattr(self, name)
            check(isinstance(value, bool), name, "must be true or false", value)


def check_rmsprop(settings) -> None:
    """PyMARL's RMSprop: alpha in [0, 1), eps > 0."""
    _in_unit_open(settings, "optim_alpha")
    check_positive(settings, "optim_eps")


def check_epsilon(settings) -> None:
    """The multinomial selector's epsilon, linear from start down to finish."""
    check_unit_interval(settings, "epsilon_start", "epsilon_finish")
    check(settings.epsilon_finish <= settings.epsilon_start, "epsilon_finish",
          f"must be <= epsilon_start ({settings.epsilon_start})", settings.epsilon_finish)
    check_integer(settings, "epsilon_anneal_steps")
    check_positive(settings, "epsilon_anneal_steps")


def refuse_continuous(name: str, spec) -> None:
    if not spec.discrete:
        raise ValueError(f"{name}: needs a discrete action space, this task's is continuous")


def episode_fields(spec) -> dict[str, Field]:
    """What the storage keeps: observations and state (actor and critic inputs), the masks,
    the joint action and the team reward, and terminations (no bootstrap past them)."""
    N, A = spec.n_agents, spec.action_dim
    return {
        "obs": Field((N, spec.obs_dim)),
        "state": Field((spec.state_dim,)),
        "avail": Field((N, A), torch.bool),
        "action": Field((N,), torch.int64),
        "reward": Field(()),
        "terminated": Field((), torch.bool),
    }


class DiscreteLearner(Learner):
    """The skeleton: sizes, the refusal of continuous tasks, fields, the greedy mode."""

    discrete_actions = True
    name = "discrete"

    def __init__(self, spec, seeds, settings):
        super().__init__(settings)
        refuse_continuous(self.name, spec)
        self.n_seeds, self.n_agents, self.n_actions = len(seeds), spec.n_agents, spec.action_dim

    @classmethod
    def execution_modes(cls, settings) -> tuple[str, ...]:
        return (GREEDY,)

    def fields(self, spec) -> dict[str, Field]:
        return episode_fields(spec)

    def epsilon(self) -> torch.Tensor:
        """The selector's epsilon per seed ``[S]`` on the seed's env-step clock (``env_steps``)."""
        st = self.settings
        return linear_schedule(st.epsilon_start, st.epsilon_finish, st.epsilon_anneal_steps, self.env_steps)
