"""Pixels to control on a small budget: learn a pendulum's latent linear-Gaussian dynamics from 28×28
frames (a VAE whose latent space carries an LDS with controls, fitted by VB-EM) and swing it up by
planning as inference with a receding horizon. The controller sees only frames.

    python examples/pixel_pendulum.py [--budget small|quick] [--seed 0] [--episodes 3] [--steps 100]
                                      [--preset reference|underactuated]

Prints the held-out validation figures, then per episode the start angle, the final angle and the
share of steps within π/6 of upright (PC3's score), and the mean share. ``--budget small`` (default)
trains on the command's data with fewer epochs (a few minutes on 2 CPU cores); ``--budget quick`` is
the smoke-test budget of ``pyrxaif pendulum --quick`` (~800 frames, a few epochs: it does not learn
enough to swing up). The full budget, with validation and checkpoints, is ``pyrxaif pendulum``.
"""

from __future__ import annotations

import argparse

import numpy as np

from dataclasses import replace

from pyrxaif.agents import pixel_control as pc
from pyrxaif.agents.pixel_tasks import PendulumTask


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", default="small", choices=("small", "quick"))
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--preset", default="reference", choices=("reference", "underactuated"))
    args = parser.parse_args(argv)

    task = PendulumTask.preset(args.preset)
    config = pc.default_config(task, quick=args.budget == "quick")
    if args.budget == "small":                                      # the command's data, fewer epochs
        config = replace(config, learning=replace(config.learning, pretrain_epochs=8, em_iters=3,
                                                  vae_epochs_per_em=2, refit_episodes=4))
    frames, actions, _ = pc.collect(config, seed=args.seed)       # random-torque trajectories
    model, history = pc.train(config, frames, actions, seed=args.seed, progress=False)
    held = pc.collect(config, seed=args.seed + 1000, n_traj=5)    # held-out trajectories
    metrics = pc.validate(model, held[0], held[1])
    free_energies = ", ".join(f"{h['free_energy']:.2f}" for h in history["em"])
    print(f"free energy per EM iteration: {free_energies}")
    print(f"held-out latent one-step NMSE {metrics['pred_nmse']:.3f}, reconstruction MSE {metrics['recon_mse']:.4f}")

    env = task.make_env()
    rng = np.random.default_rng(args.seed + 1)
    shares = []
    for k in range(args.episodes):
        start, goal = task.evaluation_episode(rng, None)              # near hanging; goal θ = π
        episode = pc.run_episode(model, env, start=start, goal=goal, steps=args.steps)
        share = task.score(episode["states"], goal)["within_pi_6_pct"]
        shares.append(share)
        print(f"episode {k}: start θ {start['theta']:+.2f} rad, final θ {episode['states'][-1]:+.2f} rad, "
              f"within π/6 of upright {share:.1f} % of steps")
    print(f"mean within π/6 of upright: {np.mean(shares):.1f} % of steps over {args.episodes} episodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
