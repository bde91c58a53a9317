"""Wall-time benchmark of the pixels-to-control pipeline (pendulum or rotating digits).

Prints: VAE pre-training time per epoch, per EM iteration split into the E-step (encode all windows,
LDS forward-backward + M-step of [A B], W, cavity messages) and the VAE M-step, and the time per
re-plan (encode the current window + one planning-as-inference solve, as the agent does it: all
nominals, damped iterations), next to the reference implementation's figures (JOPA README: ~36 min
end to end, ~5 s per re-plan).

    python benchmarks/pixels.py [--task pendulum|digits] [--n-traj N] [--epochs 3] [--em-iters 2] [--replans 50]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np

import pyrxaif  # noqa: F401
from pyrxaif.agents import pixel_control as pc
from pyrxaif.inference import em
from pyrxaif.inference.planning import plan_local
from pyrxaif.nn import vae

REFERENCE = {"end_to_end_s": 36 * 60.0, "per_replan_s": 5.0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("pendulum", "digits"), default="pendulum")
    ap.add_argument("--n-traj", type=int, default=None, help="trajectories (default: the command's)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--em-iters", type=int, default=2)
    ap.add_argument("--replans", type=int, default=50)
    args = ap.parse_args(argv)
    if args.n_traj is not None and args.n_traj < 1:
        ap.error(f"--n-traj: expected a positive integer, got {args.n_traj}")
    cfg = pc.default_config(args.task)                       # the `pyrxaif pendulum|digits` defaults
    cfg = replace(cfg, data=replace(cfg.data, n_traj=args.n_traj or cfg.data.n_traj))
    images, _ = cfg.task.split_images(0)                     # training images (None for rendered tasks)
    t0 = time.perf_counter()
    frames, actions, _ = pc.collect(cfg, 0, images=images)
    t_collect = time.perf_counter() - t0
    K, d = cfg.model.frames, cfg.model.latent_dim
    wins = pc.windows_of(frames, K)
    acts = actions[:, K - 1:]
    S, Tw = wins.shape[:2]
    flat = wins.reshape(S * Tw, *wins.shape[2:])
    params = vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(d, K, per_frame=cfg.model.per_frame and K > 1))
    opt = vae.make_optimizer(cfg.learning.lr)
    st = opt.init(params)
    pm, pP, ring = pc.pretraining_prior(cfg, S * Tw)                   # the command's pre-training prior
    key = jax.random.PRNGKey(1)
    params, st, _ = vae.train_epoch(params, st, key, flat, pm, pP, latent_dim=d, beta=1.0, optimizer=opt,
                                    ring=ring)  # compile
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        key, k = jax.random.split(key)
        params, st, _ = vae.train_epoch(params, st, k, flat, pm, pP, latent_dim=d, beta=1.0, optimizer=opt, ring=ring)
    t_epoch = (time.perf_counter() - t0) / args.epochs
    lds = em.init_lds(d, 1, cfg.learning.a_prior_precision)
    e_times, m_times = [], []
    for it in range(args.em_iters + 1):                       # first iteration includes compilation
        t0 = time.perf_counter()
        mu, var = pc.encode_sequences(params, cfg, wins)
        lds, _ = em.fit_lds(lds, mu, var, acts, iters=cfg.learning.lds_iters_per_em)
        cm, cP = em.cavity_moments(em.e_step(lds, mu, var, acts))
        cm, cP = np.asarray(cm).reshape(S * Tw, d), np.asarray(cP).reshape(S * Tw, d, d)
        t1 = time.perf_counter()
        for _ in range(cfg.learning.vae_epochs_per_em):
            key, k = jax.random.split(key)
            params, st, _ = vae.train_epoch(params, st, k, flat, cm, cP, latent_dim=d, beta=1.0, optimizer=opt)
        t2 = time.perf_counter()
        if it > 0:
            e_times.append(t1 - t0)
            m_times.append(t2 - t1)
    mu, var = pc.encode_sequences(params, cfg, wins)
    t0 = time.perf_counter()
    local = em.fit_local(mu, var, acts, n_local=cfg.model.n_local, key=jax.random.PRNGKey(2),
                         bandwidth_scale=cfg.model.bandwidth_scale, action_weight=cfg.model.gate_action_weight)
    jax.block_until_ready(local)
    t_local = time.perf_counter() - t0
    model = pc.PixelControlModel(cfg, params, lds, local)
    local = model.planning_model()
    H = cfg.planner.horizon
    mask = np.r_[0.0, np.ones(H - 1)]
    _, goal = cfg.task.evaluation_episode(np.random.default_rng(0), None if images is None else len(images))
    zg, _ = model.encode(pc.goal_window(cfg, goal, None if images is None else images[0])[None])
    times = []
    u_nom = jnp.zeros((H, 1))
    for i in range(args.replans + 1):
        t0 = time.perf_counter()
        z, _ = model.encode(wins[i % S, i % Tw][None])
        res = plan_local(local, jnp.asarray(z[0]), jnp.asarray(zg[0]), np.full(d, 1 / cfg.planner.goal_var),
                         np.full(1, 1 / cfg.planner.prior_scale ** 2), mask, model.nominals(u_nom),
                         iters=cfg.planner.iters)
        u_nom = jnp.concatenate([res.actions[1:], res.actions[-1:]])
        res.actions.block_until_ready()
        if i > 0:
            times.append(time.perf_counter() - t0)
    lc = cfg.learning
    n_epochs = lc.pretrain_epochs + lc.em_iters * lc.vae_epochs_per_em
    # closed-loop refit: refit_episodes × (traj_len − 1) re-plans and one more fit of the experts
    t_refit = lc.refit_episodes * (cfg.data.traj_len - 1) * np.mean(times) + (t_local if lc.refit_episodes else 0.0)
    est = t_collect + n_epochs * t_epoch + lc.em_iters * np.mean(e_times) + t_local + t_refit
    print(f"data: {S} trajectories x {cfg.data.traj_len} frames ({S * Tw} windows of {K} frames), latent dim {d}")
    print(f"collect data                 {t_collect:8.2f} s")
    print(f"VAE pre-training             {t_epoch:8.2f} s / epoch")
    print(f"EM iteration: E-step (LDS)   {np.mean(e_times):8.2f} s   M-step (VAE, {lc.vae_epochs_per_em} epochs) "
          f"{np.mean(m_times):8.2f} s")
    print(f"local planning model ({cfg.model.n_local} experts, incl. compile) {t_local:8.2f} s")
    print(f"closed-loop refit ({lc.refit_episodes} episodes x {cfg.data.traj_len - 1} re-plans + experts) "
          f"{t_refit:8.2f} s")
    starts = 4 if cfg.planner.multistart else 1
    print(f"re-plan (encode + plan, H={H}, {starts} nominals x {cfg.planner.iters} damped linearisations) "
          f"{1e3 * np.mean(times):8.2f} ms   (reference ~{REFERENCE['per_replan_s']:.0f} s, "
          f"speed-up x{REFERENCE['per_replan_s'] / np.mean(times):.0f})")
    print(f"training estimate at this data size, {n_epochs} epochs: {est / 60:6.1f} min   (reference end to end "
          f"~{REFERENCE['end_to_end_s'] / 60:.0f} min)")


if __name__ == "__main__":
    main()
