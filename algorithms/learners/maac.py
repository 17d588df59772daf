"""MAAC, Multi-Actor-Attention-Critic (Iqbal & Sha, ICML 2019, §3.2 and appendix Algorithm 1),
for continuous actions, batched over seeds.

Per agent i: a soft policy pi_theta_i(a_i | o_i) (a squashed Gaussian), its Q-value
Q_i^psi(o, a) from the shared attention critic (eqs. 5-6; ``algorithms/models/attention_critic.py``)
trained on agent i's own reward r_i (eq. 7), and target copies theta-bar, psi-bar of both that
follow by polyak averaging after every update (Algorithm 1 line 20). The temperature is
alpha = 1 / reward_scale, as the official code (shariqiqbal2810/MAAC) divides log pi by
``reward_scale``.

The official code is discrete-action (§4.1: "we use discrete action spaces"); the IAC paper
(AAMAS 2021, §5.2) runs MAAC on continuous tasks, which this module is for. The policy gradient
of eq. 8 becomes its pathwise (reparameterised) form: a_i = f_theta_i(eps; o_i) and agent i
descends E[alpha log pi_i(a_i | o_i) - Q_i(o, a)]. eq. 8's baseline b(o, a_\\i) (eqs. 9-10; for
continuous policies §3.2 suggests sampling it) only lowers the variance of the score-function
estimator: the pathwise one needs none.

What follows the official code rather than the paper's text, each a setting or noted where made:
critic gradients of the shared modules scaled by 1/N (``scale_shared_grads``), clipped to a
norm of 10 N, Adam weight decay 1e-3 on the critic, a 1e-3 penalty on the attention logits, a
1e-3 penalty on the policy's output, policy gradients clipped to 0.5 per agent. Not taken over:
the BatchNorm on every network's inputs and the leaky ReLUs (our shared networks use ReLU).

The official code collects with 12 rollout threads and runs 4 updates whenever 100 transitions
(counted over all threads) have come in. Here each seed plays one env copy (``env_copies: 1``):
the parallelism is spent on the seeds, which are batched, and the loop counts a seed's steps
over its copies, so 4 gradient steps per 100 transitions keeps the official ratio.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from algorithms.components.seed_optim import SeedAdam, clip_grads_, polyak
from algorithms.components.seeding import SeedStreams
from algorithms.components.settings import (
    Schedule,
    check,
    check_hidden,
    check_integer,
    check_positive,
)
from algorithms.components.storage import Field
from algorithms.learner import EXPLORE, Learner
from algorithms.models.attention_critic import QUERIES, AttentionCritic
from algorithms.models.squashed_gaussian import SquashedGaussianActor


@dataclass(frozen=True)
class MAACSettings(Schedule):
    hidden: tuple[int, ...]  # policy hidden layers (official code: two of pol_hidden_dim 128)
    critic_hidden: int  # attention critic width, split among the heads (critic_hidden_dim 128)
    heads: int  # attention heads (attend_heads 4)
    critic_query: str  # the attention query's input: "obs" (the official code) | "obs_action"
    gamma: float
    tau: float  # polyak rate of target policies and critic, after every update
    lr_actor: float  # Adam (pi_lr)
    lr_critic: float  # Adam (q_lr)
    reward_scale: float  # alpha = 1 / reward_scale (eq. 7's temperature)
    attention_reg: float  # weight of the mean squared attention logits in the critic loss
    policy_reg: float  # weight of the mean squared pre-squash policy mean in the policy loss
    critic_weight_decay: float  # Adam's L2 weight decay on the critic (official code 1e-3)
    critic_grad_clip: float  # per agent: the critic's gradient norm is clipped to this x N
    actor_grad_clip: float  # gradient norm bound of each agent's policy
    log_std_min: float
    log_std_max: float

    def __post_init__(self):
        super().__post_init__()
        check_hidden(self)
        check_integer(self, "critic_hidden", "heads")
        check_positive(self, "critic_hidden", "heads", "tau", "lr_actor", "lr_critic")
        check_positive(self, "reward_scale", "critic_grad_clip", "actor_grad_clip")
        problem = f"must divide critic_hidden {self.critic_hidden}"
        check(self.critic_hidden % self.heads == 0, "heads", problem, self.heads)
        check(self.critic_query in QUERIES, "critic_query", f"must be one of {', '.join(QUERIES)}", self.critic_query)
        check(0 <= self.gamma < 1, "gamma", "must be in [0, 1)", self.gamma)
        check(self.tau <= 1, "tau", "must be in (0, 1]", self.tau)
        for name in ("attention_reg", "policy_reg", "critic_weight_decay"):
            value = getattr(self, name)
            check(isinstance(value, (int, float)) and value >= 0, name, "must be >= 0", value)
        check(
            self.log_std_min < self.log_std_max,
            "log_std_min",
            "must be < log_std_max",
            self.log_std_min,
        )


@torch.no_grad()
def clip_per_agent_(grads: list[torch.Tensor], clip: float) -> None:
    """Scale ``[S, N, ...]`` gradients in place so that each (seed, agent)'s norm, taken over
    all the tensors together, is at most ``clip``: torch.nn.utils.clip_grad_norm_ (with its
    + 1e-6) on each agent's policy alone, as the official code clips each agent's policy
    (``clip_grad_norm(curr_agent.policy.parameters(), 0.5)``)."""
    norm = torch.stack([g.flatten(2).pow(2).sum(2) for g in grads]).sum(0).sqrt()  # [S, N]
    coef = (clip / (norm + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, [coef.view(*coef.shape, *[1] * (g.dim() - 2)) for g in grads])


class MAAC(Learner):
    """All seeds of one run in lockstep: every parameter has a leading seed axis."""

    Settings = MAACSettings
    loop = "transitions"

    def __init__(self, spec, seeds: Sequence[int], settings: MAACSettings):
        super().__init__(settings)
        if spec.discrete:
            raise ValueError("maac: this module is MAAC for continuous actions (IAC §5.2)")
        st = settings
        N, A, obs = spec.n_agents, spec.action_dim, spec.obs_dim
        self.n_agents, self.action_dim = N, A
        init = SeedStreams(seeds, "init")
        bounds = (st.log_std_min, st.log_std_max)
        low, high = spec.action_low, spec.action_high
        self.actor = SquashedGaussianActor(init, N, obs, 0, low, high, st.hidden, bounds)
        # Q_i sees o and a only (§3.2: no global state in MAAC's experiments).
        self.critic = AttentionCritic(init, N, obs, A, st.critic_hidden, st.heads, query=st.critic_query)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # Clipping is done in update(): per agent for the policies, after the shared-gradient
        # scaling and before the weight decay for the critic (the official code's order).
        self.actor_opt = SeedAdam(self.actor.parameters(), lr=st.lr_actor)
        self.critic_opt = SeedAdam(self.critic.parameters(), lr=st.lr_critic)
        # The official critic's ``shared_modules``: keys, selectors, values and the per-agent
        # state-action encoders g_j, whose e_j reaches every other agent's Q through keys and
        # values. Not the heads f_i (each Q_i's own).
        c = self.critic
        self.shared = [c.W_k, c.W_q, *c.V.parameters(), *c.encoder.parameters()]
        self.explore_noise = SeedStreams(seeds, "explore")
        self.update_noise = SeedStreams(seeds, "update")

    def fields(self, spec) -> dict[str, Field]:
        N = spec.n_agents
        return {
            "obs": Field((N, spec.obs_dim)),
            "action": Field((N, spec.action_dim)),
            "rewards": Field((N,)),  # each agent's own r_i (eq. 7)
            "terminated": Field((), torch.bool),
        }

    # ---- acting -------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs, state, avail, memory, mode: str, noise=None, acting=None):
        """obs ``[S,E,N,obs]`` -> actions ``[S,E,N,A]``: a_i ~ pi_i(. | o_i) in training
        (Algorithm 1 line 7), the mean action tanh(mu_i(o_i)) at evaluation."""
        if mode not in (EXPLORE, "deterministic"):
            raise ValueError(f"maac: unknown execution mode '{mode}' (modes: deterministic)")
        o = obs.transpose(1, 2)
        eps = None
        if mode == EXPLORE:
            drawing = None if acting is None else acting.any(1)  # seeds whose copies step
            shape = (self.n_agents, o.shape[2], self.action_dim)
            eps = self.explore_noise.normal(*shape, active=drawing)
        action, _ = self.actor(o, None, eps)
        return action.transpose(1, 2), None

    # ---- learning -----------------------------------------------------------------------
    def attention_penalty(self, logits: torch.Tensor) -> torch.Tensor:
        """The official critic's regulariser per seed ``[S]``: attention_reg x sum over agents i
        and heads of mean_{b, j != i} logit^2, on the logits before the 1/sqrt(d) scaling (the
        code squares ``attend_logits``, not ``scaled_attend_logits``). ``logits``
        ``[S, heads, B, N, N]`` are scaled and zero on the diagonal."""
        _, _, B, N, _ = logits.shape
        raw_sq = logits.pow(2) * self.critic.d  # (sqrt(d) x scaled)^2
        return self.settings.attention_reg * raw_sq.sum((1, 2, 3, 4)) / (B * (N - 1))

    def critic_loss(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None):
        """eq. 7, L_Q(psi) = sum_i E[(Q_i(o, a) - y_i)^2], plus the attention penalty, per seed.

        y_i = r_i + gamma (1 - terminated) (Qbar_i(o', a') - alpha log pibar_i(a'_i | o'_i))
        with a' ~ pi_theta-bar(o'): the target policies (eq. 7 and Algorithm 1 UPDATECRITIC line 4;
        the official code samples ``self.target_policies`` too). The official code leaves the
        entropy term outside gamma (1 - done); eq. 7 puts it inside, which is followed here.
        """
        st = self.settings
        o, o_next = batch["obs"].transpose(1, 2), batch["next_obs"].transpose(1, 2)  # [S,N,B,obs]
        with torch.no_grad():
            shape = (self.n_agents, o.shape[2], self.action_dim)
            eps = self.update_noise.normal(*shape, active=active)
            a_next, log_pi_next = self.actor_target(o_next, None, eps)
            q_next, _ = self.critic_target(o_next, a_next)  # [S,N,B]
            not_done = ~batch["terminated"].unsqueeze(1)
            alpha = 1.0 / st.reward_scale
            r = batch["rewards"].transpose(1, 2)  # [S,N,B]
            y = r + st.gamma * not_done * (q_next - alpha * log_pi_next)
        q, logits = self.critic(o, batch["action"].transpose(1, 2))
        # MSE over the batch (the official MSELoss), summed over agents (eq. 7).
        return (q - y).pow(2).mean(2).sum(1) + self.attention_penalty(logits)

    def own_action_q(self, o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Q_i(o, a) ``[S,N,B]`` whose gradient reaches a only through agent i's own a_i: eq. 8
        moves theta_i by agent i's term alone, the other agents' actions (samples of their
        current policies) held fixed in agent i's gradient (AttentionCritic's
        ``own_gradient_only``)."""
        return self.critic(o, a, own_gradient_only=True)[0]

    def policy_loss(self, o, a: torch.Tensor, log_pi: torch.Tensor, mu: torch.Tensor):
        """eq. 8 in pathwise form, per seed ``[S]``: sum_i E[alpha log pi_i(a_i | o_i) - Q_i(o, a)]
        with every a_j ~ pi_j from the current policies (§3.2, after eq. 8: not from the replay
        buffer, unlike MADDPG), plus the official code's policy regulariser on mu (the
        pre-squash mean: what the categorical policy's logits are to the discrete code)."""
        st = self.settings
        self.critic.requires_grad_(False)  # psi is not trained by eq. 8
        q = self.own_action_q(o, a)
        self.critic.requires_grad_(True)
        entropy_and_q = (log_pi / st.reward_scale - q).mean(2).sum(1)
        return entropy_and_q + st.policy_reg * mu.pow(2).mean((2, 3)).sum(1)

    def update(self, batch: dict[str, torch.Tensor], active: torch.Tensor | None = None):
        """One pass of Algorithm 1 lines 13-20 for the seeds in ``active``: UPDATECRITIC, then
        UPDATEPOLICIES on the same minibatch (as the official code), then the targets.
        Per-seed losses ``[S]``; seeds outside ``active`` draw no noise and do not move."""
        st, N = self.settings, self.n_agents
        loss_q = self.critic_loss(batch, active)
        self.critic_opt.zero_grad()
        loss_q.sum().backward()  # seeds' losses summed: each seed's slice gets its own gradient
        with torch.no_grad():
            for p in self.shared:  # official scale_shared_grads: the shared modules receive
                p.grad.mul_(1.0 / N)  # a gradient from each of the N Q_i
            grads = [p.grad for p in self.critic.parameters()]
            clip_grads_(grads, st.critic_grad_clip * N, "seed")  # clip_grad_norm(critic, 10 N)
            # Adam(weight_decay=wd) adds wd p to the clipped gradient inside its step.
            torch._foreach_add_(grads, list(self.critic.parameters()), alpha=st.critic_weight_decay)
        self.critic_opt.step(active)

        o = batch["obs"].transpose(1, 2)
        eps = self.update_noise.normal(N, o.shape[2], self.action_dim, active=active)
        a, log_pi = self.actor(o, None, eps)  # a = f_theta(eps; o), reparameterised
        # The actor returns a and log pi only; one more pass of the small policy MLP gives mu
        # for the regulariser.
        mu = self.actor.net(o)[..., : self.action_dim]
        loss_pi = self.policy_loss(o, a, log_pi, mu)  # with the critic just updated
        self.actor_opt.zero_grad()
        loss_pi.sum().backward()
        clip_per_agent_([p.grad for p in self.actor.parameters()], st.actor_grad_clip)
        self.actor_opt.step(active)

        polyak(self.critic_target, self.critic, st.tau, active)  # Algorithm 1 line 20
        polyak(self.actor_target, self.actor, st.tau, active)
        return {"loss_q": loss_q.detach(), "loss_pi": loss_pi.detach()}
