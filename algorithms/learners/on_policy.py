"""What the on-policy discrete actor-critics (LICA, VDAC) share: the schedule that keeps their
updates on-policy, the fields they store, and an episode batch unpacked with its masks.

Both follow PyMARL's parallel runner: ``batch_size_run`` env copies play one episode each with
the current policy, then one update reads exactly those episodes (``buffer_size = batch_size =
batch_size_run``). Here that is ``loop = "on_policy"`` (``algorithms.components.storage.LatestEpisodes``)
with one update phase after every episode of every copy.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from algorithms.components.settings import Schedule, check
from algorithms.components.storage import trim_episodes
from algorithms.models import masked_categorical as mc
from algorithms.models.recurrent_policy import padded_available


def check_on_policy(settings: Schedule) -> None:
    """A batch must hold only episodes the current policy played: phases counted in episodes,
    one gradient step per phase, and no more episodes per batch than one phase brings
    (``env_copies x update_every``), all of them kept (``replay_size >= batch_size``)."""
    check(settings.update_unit == "episode", "update_unit",
          "must be 'episode' for an on-policy learner", settings.update_unit)
    check(settings.gradient_steps_per == "phase", "gradient_steps_per",
          "must be 'phase' for an on-policy learner", settings.gradient_steps_per)
    fresh = settings.env_copies * settings.update_every
    check(settings.batch_size <= fresh, "batch_size",
          f"must be <= env_copies x update_every ({fresh}): older episodes are off-policy",
          settings.batch_size)
    check(settings.replay_size >= settings.batch_size, "replay_size",
          f"must be >= batch_size ({settings.batch_size})", settings.replay_size)


class Episodes(NamedTuple):
    """An episode batch cut after its longest episode (``T`` steps), rows 0..T."""

    obs: torch.Tensor  # [S, B, T + 1, N, obs]
    state: torch.Tensor  # [S, B, T + 1, state]
    available: torch.Tensor  # [S, B, T + 1, N, A] bool, every action on padding rows
    action: torch.Tensor  # [S, B, T + 1, N] long; rows from an episode's end on are garbage
    reward: torch.Tensor  # [S, B, T] float
    terminated: torch.Tensor  # [S, B, T] bool
    mask: torch.Tensor  # [S, B, T] float: 1 on the rows where an action was taken
    length: torch.Tensor  # [S, B] steps of each episode: row ``length`` is its final observation

    @property
    def taken(self) -> torch.Tensor:
        """The actions of rows 0..T-1 ``[S, B, T, N]``."""
        return self.action[:, :, : self.mask.shape[-1]]


def episodes(batch: dict[str, torch.Tensor]) -> Episodes:
    """``LatestEpisodes.sample``'s batch, trimmed (PyMARL's ``max_t_filled``) and unpacked. The
    mask is PyMARL's ``filled[:, :-1]`` with ``mask[:, 1:] *= 1 - terminated[:, :-1]``: our
    ``filled`` already stops at an episode's last step."""
    batch = trim_episodes(batch)
    T = batch["filled"].shape[-1]
    return Episodes(
        obs=batch["obs"],
        state=batch["state"],
        available=padded_available(batch["avail"]),
        action=batch["action"].long(),
        reward=batch["reward"][:, :, :T].float(),
        terminated=batch["terminated"][:, :, :T].bool(),
        mask=batch["filled"].float(),
        length=batch["filled"].sum(-1),
    )


def final_actions(b: Episodes, log_pi: torch.Tensor, streams, active) -> torch.Tensor:
    """The joint actions of every row ``[S, B, T + 1, N]``: the taken ones, and at each
    episode's final row (its last observation) a draw from the current pi ``log_pi``. PyMARL's
    runner picks an action there too (never sent to the env); it is the target critic's input
    for the bootstrap of an episode cut by its time limit. One draw per episode and agent from
    ``streams``, however long the batch, so a seed's stream does not depend on the other seeds."""
    final = b.length.view(*b.length.shape, 1, 1, 1).expand(-1, -1, 1, *log_pi.shape[-2:])
    last = log_pi.detach().gather(2, final).squeeze(2)  # [S, B, N, A]
    drawn = mc.sample(streams, last, active)  # [S, B, N]
    at = b.length.view(*b.length.shape, 1, 1).expand_as(drawn[:, :, None])
    return b.action.scatter(2, at, drawn[:, :, None])


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per seed ``[S]``: the mean of ``values`` over the entries where ``mask`` (broadcast to
    ``values``) is 1, PyMARL's ``(x * mask).sum() / mask.sum()``. Unmasked entries count
    nothing even when they are not finite (log pi of a garbage action on a padding row)."""
    mask = mask.expand_as(values)
    kept = torch.where(mask > 0, values, torch.zeros_like(values))
    dims = tuple(range(1, values.dim()))
    return kept.sum(dims) / mask.sum(dims).clamp(min=1)


__all__ = [
    "Episodes",
    "check_on_policy",
    "episodes",
    "final_actions",
    "masked_mean",
]
