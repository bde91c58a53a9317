"""`pyrxaif pendulum`: learn a pendulum model from pixels (VAE + LDS by variational EM), validate the
checkpoint on held-out sequences, then swing up from hanging by planning as inference and try to stay
upright. This module also holds the driver shared with `pyrxaif digits`
(collect → train → validate → plan → plots)."""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def add_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    parser.add_argument("--out", default=os.path.join(".", "pyrxaif-output", task), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny data and training (smoke test, < 2 min)")
    parser.add_argument("--episodes", type=int, default=10, help="number of start states to evaluate")
    parser.add_argument("--steps", type=int, default=None, help="control steps per episode")
    parser.add_argument("--checkpoint", default=None, help="load this checkpoint instead of training")
    parser.add_argument("--no-validate", action="store_true", help="plan even if the checkpoint fails validation")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--engine", default=None,
                        help="planning engine: 'jax' (default, or $PYRXAIF_ENGINE) or 'julia' (RxInfer solves "
                             "each linearised plan; learning stays in JAX)")
    if task == "digits":
        parser.add_argument("--digit", type=int, default=7, choices=range(-1, 10),
                            help="digit class to rotate (held-out instances are used for control); -1: all classes")
        parser.add_argument("--mnist", default=None, help="path to a local MNIST (.npz or idx) instead of mnist_5k")


def _config(task: str, quick: bool):
    from pyrxaif.agents.jopa import JopaConfig
    if task == "pendulum":
        # closed-loop refit: the experts learn the top of the swing from the controller's own episodes
        cfg = JopaConfig(task="pendulum", n_traj=40, data_action_scale=0.5, pretrain_epochs=15, em_iters=4,
                         vae_epochs_per_em=4, refit_episodes=8)
    else:   # single-frame encoder: the digit's angle has no velocity to carry
        cfg = JopaConfig(task="digits", latent_dim=6, frames=1, n_traj=120, traj_len=20, data_action_scale=1.0,
                         data_scale_spread=0.0, horizon=8, pretrain_epochs=15, em_iters=4, vae_epochs_per_em=3,
                         max_recon_mse=0.06, n_local=64, gate_action_weight=2.0, plan_noise_scale=1e-3,
                         a_prior_precision=1e6)   # an integrator latent: z' = z + B u + noise
    if quick:
        # about 800 frames for either task (pendulum 10 × 80, digits 40 × 20), 3 + 2 epochs
        cfg.n_traj = 10 if task == "pendulum" else 40
        cfg.pretrain_epochs, cfg.em_iters, cfg.vae_epochs_per_em = 3, 2, 1
        cfg.refit_episodes = min(cfg.refit_episodes, 2)
        cfg.max_pred_nmse, cfg.max_recon_mse = np.inf, np.inf   # smoke run: report, do not refuse
    return cfg


def drive(args: argparse.Namespace, task: str) -> int:
    from pyrxaif.agents import jopa
    from pyrxaif.data import load_digits
    from pyrxaif.engines import require_engine

    engine = require_engine(args.engine)  # start Julia (or say why not) before any work
    os.makedirs(args.out, exist_ok=True)
    print(f"pyrxaif {task}: writing to {os.path.abspath(args.out)}")
    progress = not args.no_progress
    train_images = test_images = None      # the pendulum renders its own frames
    if task == "digits":
        images, labels = load_digits(path=args.mnist)
        if args.digit >= 0:
            images = images[labels == args.digit]
        perm = np.random.default_rng(args.seed).permutation(len(images))
        n_train = int(0.8 * len(images))
        train_images, test_images = images[perm[:n_train]], images[perm[n_train:]]
    timings = {}
    if args.checkpoint:
        model = jopa.load(args.checkpoint)
        cfg = model.config
    else:
        cfg = _config(task, args.quick)
        t0 = time.perf_counter()
        frames, actions, _ = jopa.collect(cfg, args.seed, images=train_images)
        timings["collect_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model, history = jopa.train(cfg, frames, actions, seed=args.seed, progress=progress, images=train_images)
        timings["train_s"] = time.perf_counter() - t0
        print("free energy per EM iteration:", ", ".join(f"{h['free_energy']:.2f}" for h in history["em"]))
        jopa.save(model, os.path.join(args.out, "model.msgpack"))
    held = jopa.collect(cfg, args.seed + 1000, n_traj=max(3, cfg.n_traj // 5),
                        images=test_images)
    metrics = jopa.validate(model, held[0], held[1])
    print(f"held-out validation: latent one-step NMSE {metrics['pred_nmse']:.3f}, "
          f"reconstruction MSE {metrics['recon_mse']:.4f}")
    if not args.no_validate:
        try:
            jopa.check(model, metrics)
        except jopa.CheckpointRejected as exc:
            print(f"pyrxaif {task}: {exc}")
            return 1
    env = jopa.make_env(cfg, test_images)
    rng = np.random.default_rng(args.seed + 1)
    episodes, results = [], []
    t0 = time.perf_counter()
    n_plans = 0
    for i in range(args.episodes):
        if task == "pendulum":
            steps = args.steps or (60 if args.quick else 150)
            start = {"theta": float(rng.uniform(-0.3, 0.3)), "omega": float(rng.uniform(-0.5, 0.5))}
            goal = np.pi
        else:
            steps = args.steps or 12
            start = {"index": int(rng.integers(len(test_images))), "angle": float(rng.uniform(-1.2, 1.2))}
            goal = float(rng.uniform(-1.2, 1.2))
        tr = jopa.run_episode(model, env, start=start, goal=goal, steps=steps, engine=engine)
        n_plans += steps
        episodes.append(tr)
        if task == "pendulum":
            up, stable, best = jopa.pendulum_success(tr["states"])
            results.append({"start": start, "swung_up": up, "stabilised": stable, "longest_hold": best})
        else:
            err = abs(tr["states"][-1] - goal)
            results.append({"start": start, "goal": goal, "final_error_deg": float(np.degrees(err)),
                            "success": bool(np.degrees(err) < 15.0)})
    timings["per_replan_s"] = (time.perf_counter() - t0) / max(n_plans, 1)
    if task == "pendulum":
        summary = {"swing_up": sum(r["swung_up"] for r in results),
                   "stabilised": sum(r["stabilised"] for r in results), "episodes": len(results)}
        print(f"swing-up (within 0.3 rad of upright): {summary['swing_up']}/{len(results)}; "
              f"stabilised (>= 50 consecutive steps within 0.3 rad): {summary['stabilised']}/{len(results)}")
    else:
        summary = {"success": sum(r["success"] for r in results), "episodes": len(results),
                   "median_final_error_deg": float(np.median([r["final_error_deg"] for r in results]))}
        print(f"final angle within 15 degrees of the goal: {summary['success']}/{len(results)} "
              f"(median error {summary['median_final_error_deg']:.1f} deg)")
    report = {"task": task, "quick": bool(args.quick), "seed": args.seed, "validation": metrics,
              "summary": summary, "episodes": results, "timings": timings}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    save_summary(os.path.join(args.out, f"{task}.png"), task, episodes, results)
    save_gif(os.path.join(args.out, f"{task}.gif"), episodes[0]["frames"])
    print(f"saved {task}.png, {task}.gif, results.json and model.msgpack in {os.path.abspath(args.out)}")
    print("RESULTS " + json.dumps({"summary": summary, "validation": metrics}))
    return 0


def save_summary(path, task, episodes, results):
    """PNG: angle error and action over time for every episode, and the latent trajectories."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for tr, r in zip(episodes, results):
        if task == "pendulum":
            err = np.abs((np.asarray(tr["states"]) - np.pi + np.pi) % (2 * np.pi) - np.pi)
        else:
            err = np.degrees(np.abs(np.asarray(tr["states"]) - r["goal"]))
        ax[0].plot(err, lw=1)
        ax[1].plot(tr["actions"], lw=1)
        z = np.asarray(tr["latents"])
        ax[2].plot(z[:, 0], z[:, 1], lw=1)
        ax[2].plot(*tr["goal_latent"][:2], "k*", ms=10)
    if task == "pendulum":
        ax[0].axhline(0.3, color="k", ls="--")
        ax[0].set_ylabel("|θ − π| (rad)")
        ax[1].set_ylabel("torque")
    else:
        ax[0].axhline(15, color="k", ls="--")
        ax[0].set_ylabel("|angle − goal| (deg)")
        ax[1].set_ylabel("angular velocity (rad/step)")
    for a in ax[:2]:
        a.set_xlabel("control step")
    ax[2].set_xlabel("z₁")
    ax[2].set_ylabel("z₂")
    ax[2].set_title("latent trajectories (★ goal)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_gif(path, frames, scale: int = 4):
    """Animated GIF of the frames (pillow), upscaled ``scale``×."""
    from PIL import Image

    imgs = [Image.fromarray((np.clip(f, 0, 1) * 255).astype(np.uint8)).resize((28 * scale, 28 * scale),
                                                                             Image.NEAREST) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=50, loop=0)


def configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, "pendulum")


def run(args: argparse.Namespace) -> int:
    return drive(args, "pendulum")
