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

import jax
import jax.numpy as jnp
import numpy as np

import pyrxaif  # noqa: F401
from pyrxaif.agents import jopa
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
    from pyrxaif.commands.pendulum import _config
    cfg = _config(args.task, quick=False)                    # the `pyrxaif pendulum|digits` defaults
    cfg.n_traj = args.n_traj or cfg.n_traj
    images = None
    if args.task == "digits":
        from pyrxaif.data import load_digits
        images, labels = load_digits()
        images = images[labels == 7]
    t0 = time.perf_counter()
    frames, actions, _ = jopa.collect(cfg, 0, images=images)
    t_collect = time.perf_counter() - t0
    K, d = cfg.frames, cfg.latent_dim
    wins = jopa.windows_of(frames, K)
    acts = actions[:, K - 1:]
    S, Tw = wins.shape[:2]
    flat = wins.reshape(S * Tw, *wins.shape[2:])
    params = vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(d, K, per_frame=cfg.per_frame and K > 1))
    opt = vae.make_optimizer(cfg.lr)
    st = opt.init(params)
    pm, pP, ring = jopa.pretraining_prior(cfg, S * Tw)                   # the command's pre-training prior
    key = jax.random.PRNGKey(1)
    params, st, _ = vae.train_epoch(params, st, key, flat, pm, pP, latent_dim=d, beta=1.0, optimizer=opt,
                                    ring=ring)  # compile
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        key, k = jax.random.split(key)
        params, st, _ = vae.train_epoch(params, st, k, flat, pm, pP, latent_dim=d, beta=1.0, optimizer=opt, ring=ring)
    t_epoch = (time.perf_counter() - t0) / args.epochs
    lds = em.init_lds(d, 1, cfg.a_prior_precision)
    e_times, m_times = [], []
    for it in range(args.em_iters + 1):                       # first iteration includes compilation
        t0 = time.perf_counter()
        mu, var = jopa._encode_seqs(params, cfg, wins)
        lds, _ = em.fit_lds(lds, mu, var, acts, iters=cfg.lds_iters_per_em)
        cm, cP = em.cavity_moments(em.e_step(lds, mu, var, acts))
        cm, cP = np.asarray(cm).reshape(S * Tw, d), np.asarray(cP).reshape(S * Tw, d, d)
        t1 = time.perf_counter()
        for _ in range(cfg.vae_epochs_per_em):
            key, k = jax.random.split(key)
            params, st, _ = vae.train_epoch(params, st, k, flat, cm, cP, latent_dim=d, beta=1.0, optimizer=opt)
        t2 = time.perf_counter()
        if it > 0:
            e_times.append(t1 - t0)
            m_times.append(t2 - t1)
    mu, var = jopa._encode_seqs(params, cfg, wins)
    t0 = time.perf_counter()
    local = em.fit_local(mu, var, acts, n_local=cfg.n_local, key=jax.random.PRNGKey(2),
                         bandwidth_scale=cfg.bandwidth_scale, action_weight=cfg.gate_action_weight)
    jax.block_until_ready(local)
    t_local = time.perf_counter() - t0
    model = jopa.JopaModel(cfg, params, lds, local)
    local = model.planning_model()
    H = cfg.horizon
    mask = np.r_[0.0, np.ones(H - 1)]
    goal = np.pi if args.task == "pendulum" else 0.5
    zg, _ = model.encode(jopa.goal_window(cfg, goal, None if images is None else images[0])[None])
    times = []
    u_nom = jnp.zeros((H, 1))
    for i in range(args.replans + 1):
        t0 = time.perf_counter()
        z, _ = model.encode(wins[i % S, i % Tw][None])
        res = plan_local(local, jnp.asarray(z[0]), jnp.asarray(zg[0]), np.full(d, 1 / cfg.goal_var),
                         np.full(1, 1 / cfg.prior_scale ** 2), mask, model.nominals(u_nom), iters=cfg.plan_iters)
        u_nom = jnp.concatenate([res.actions[1:], res.actions[-1:]])
        res.actions.block_until_ready()
        if i > 0:
            times.append(time.perf_counter() - t0)
    n_epochs = cfg.pretrain_epochs + cfg.em_iters * cfg.vae_epochs_per_em
    # closed-loop refit: refit_episodes × (traj_len − 1) re-plans and one more fit of the experts
    t_refit = cfg.refit_episodes * (cfg.traj_len - 1) * np.mean(times) + (t_local if cfg.refit_episodes else 0.0)
    est = t_collect + n_epochs * t_epoch + cfg.em_iters * np.mean(e_times) + t_local + t_refit
    print(f"data: {S} trajectories x {cfg.traj_len} frames ({S * Tw} windows of {K} frames), latent dim {d}")
    print(f"collect data                 {t_collect:8.2f} s")
    print(f"VAE pre-training             {t_epoch:8.2f} s / epoch")
    print(f"EM iteration: E-step (LDS)   {np.mean(e_times):8.2f} s   M-step (VAE, {cfg.vae_epochs_per_em} epochs) "
          f"{np.mean(m_times):8.2f} s")
    print(f"local planning model ({cfg.n_local} experts, incl. compile) {t_local:8.2f} s")
    print(f"closed-loop refit ({cfg.refit_episodes} episodes x {cfg.traj_len - 1} re-plans + experts) "
          f"{t_refit:8.2f} s")
    starts = 4 if cfg.plan_multistart else 1
    print(f"re-plan (encode + plan, H={H}, {starts} nominals x {cfg.plan_iters} damped linearisations) "
          f"{1e3 * np.mean(times):8.2f} ms   (reference ~{REFERENCE['per_replan_s']:.0f} s, "
          f"speed-up x{REFERENCE['per_replan_s'] / np.mean(times):.0f})")
    print(f"training estimate at this data size, {n_epochs} epochs: {est / 60:6.1f} min   (reference end to end "
          f"~{REFERENCE['end_to_end_s'] / 60:.0f} min)")


if __name__ == "__main__":
    main()
