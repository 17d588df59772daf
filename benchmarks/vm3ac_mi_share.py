"""How much VM3-AC's mutual-information term weighs in its actor loss at each sigma of q_xi.

Not a timing: a measurement behind the default ``q_sigma`` (issue 24). For each sigma and task,
VM3-AC (params.yaml's ``vm3ac`` entry with ``q_sigma`` replaced) trains its seeds for
``--env-steps`` steps, then on ``--batches`` replayed batches the actor loss of eq. 20 is split
into its three terms,

    -Q_theta_i,1(x, a)   +   beta log pi(a_i | o_i, z)   -   beta / N sum_j log q^(i,j)  (eq. 21),

and each term's gradient norm with respect to the policy's parameters is taken on its own. The
MI term's share is its gradient norm over the sum of the three; the value share is reported
beside it (its constant -log(2 pi sigma^2) / 2 per dimension moves the value, not the gradient),
and so is the policy's own spread (the std of a_i over fresh noise, per row and dimension): the
fixed-sigma q_xi can only be a tight variational bound when sigma is of that order.

    python -m benchmarks.vm3ac_mi_share [--sigmas 0.05 0.1 0.2 0.5 1.0]
        [--tasks predator_prey_n4 multiwalker_n4] [--env-steps 3000] [--batches 5]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

import envs
from algorithms.learners.vm3ac import VM3AC
from pipeline.design.budget import Budget
from pipeline.design.params import load, resolve_runs
from pipeline.runtime.loops import Training

REPO = Path(__file__).resolve().parents[1]


def split_actor_loss(algo: VM3AC, batch: dict) -> dict[str, float]:
    """The three terms of eq. 20 on ``batch``: their values and their gradient norms w.r.t.
    the policy's parameters (summed over seeds and agents, as the update sums them)."""
    st, N = algo.settings, algo.n_agents
    B = batch["reward"].shape[1]
    o = batch["obs"].transpose(1, 2)
    z = algo.update_noise.normal(B, st.z_dim) if st.z_dim else None
    a_new, log_pi = algo.actor(o, z, algo.update_noise.normal(N, B, algo.action_dim))
    term_b, term_a = algo._log_q(o, a_new)
    q1 = algo.q(batch["state"], a_new.detach().transpose(1, 2), own=a_new, head=0)
    terms = {
        "q": (-q1).mean(2).sum(),
        "entropy": (st.beta * log_pi).mean(2).sum(),
        "mi": (-st.beta / N * (term_b + term_a.detach()).sum(2)).mean(2).sum(),
    }
    params = list(algo.actor.parameters())
    with torch.no_grad():  # the policy's own spread: the std of a_i over fresh eps (and z) per row
        draws = torch.stack([algo.actor(o, algo.update_noise.normal(B, st.z_dim) if st.z_dim else None,
                                        algo.update_noise.normal(N, B, algo.action_dim))[0] for _ in range(8)])
    out = {"action_std": float(draws.std(0).mean())}
    for name, value in terms.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        out[f"{name}_value"] = float(value.detach())
        out[f"{name}_grad"] = float(torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None), torch.tensor(0.0))))
    return out


def measure(task: str, sigma: float, env_steps: int, batches: int, seeds=(0, 1, 2)) -> dict[str, float]:
    params = load(REPO / "params.yaml")
    params["runs"] = {"probe": {"algorithm": "vm3ac", "task": task}}
    run = resolve_runs(params)["probe"]
    settings = dataclasses.replace(run.settings, q_sigma=sigma)
    env = envs.make_batched(run.task_id, len(seeds) * settings.env_copies, **run.task_kwargs)
    algo = VM3AC(env.spec, list(seeds), settings)
    training = Training(algo, env, list(seeds), Budget(env_steps, env_steps, 1))
    while not training.finished:
        training.advance(lambda points, losses: None)
    parts = [split_actor_loss(algo, training.storage.sample(settings.batch_size)) for _ in range(batches)]
    mean = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    grads = mean["q_grad"] + mean["entropy_grad"] + mean["mi_grad"]
    values = abs(mean["q_value"]) + abs(mean["entropy_value"]) + abs(mean["mi_value"])
    return {**mean, "mi_grad_share": mean["mi_grad"] / grads, "mi_value_share": abs(mean["mi_value"]) / values}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.5, 1.0])
    parser.add_argument("--tasks", nargs="+", default=["predator_prey_n4", "multiwalker_n4"])
    parser.add_argument("--env-steps", type=int, default=3000, help="training steps per seed before measuring")
    parser.add_argument("--batches", type=int, default=5, help="replayed batches the terms are averaged over")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("task, sigma, grad |Q|, grad |beta log pi|, grad |MI|, MI grad share, MI value share, policy action std")
    for task in args.tasks:
        for sigma in args.sigmas:
            m = measure(task, sigma, args.env_steps, args.batches)
            print(f"{task}, {sigma}, {m['q_grad']:.4g}, {m['entropy_grad']:.4g}, {m['mi_grad']:.4g}, "
                  f"{m['mi_grad_share']:.3f}, {m['mi_value_share']:.3f}, {m['action_std']:.3f}", flush=True)


if __name__ == "__main__":
    main()
