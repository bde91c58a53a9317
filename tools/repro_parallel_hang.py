"""Repro of the parallel-smoother hang (issue 20 item 0). Run ONE process per trial, under `timeout`:

    for i in $(seq 20); do timeout 60 python tools/repro_parallel_hang.py --calls 5; echo rc=$?; done

rc 124 = hung. ``--level`` picks how much of pyrxaif is involved (see docs/lgssm.md, "parallel hang").
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def lds_data(T, d, m, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    a = 0.9 * a / np.max(np.abs(np.linalg.eigvals(a)))
    b = rng.normal(size=(d, m))
    u = rng.normal(size=(T, m))
    z = np.zeros((T, d))
    for t in range(T - 1):
        z[t + 1] = a @ z[t] + b @ u[t] + 0.1 * rng.normal(size=d)
    lam = np.full((T, d), 25.0)
    mu = z + rng.normal(size=(T, d)) / 5.0
    return a, b, u, mu, lam


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--T", type=int, default=1000)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--m", type=int, default=1)
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--method", default="parallel")
    args = p.parse_args()
    import pyrxaif  # noqa: F401
    import jax.numpy as jnp
    from pyrxaif.distributions import MvNormal, Wishart
    from pyrxaif.inference import lgssm
    a, b, u, mu, lam = lds_data(args.T, args.d, args.m)
    d, m = args.d, args.m
    ab = np.concatenate([a, b], 1).reshape(-1)
    q_ab = MvNormal.from_mean_precision(jnp.asarray(ab), 1e8 * jnp.eye(d * (d + m)))
    q_w = Wishart.from_mean(100.0 * np.eye(d), 1e8)
    init = MvNormal.from_mean_cov(jnp.zeros(d), jnp.eye(d))
    for k in range(args.calls):
        t0 = time.perf_counter()
        r = lgssm.smooth(mu, lam, u, q_ab, q_w, init, method=args.method)
        r.mean.block_until_ready()
        print(f"call {k}: {time.perf_counter() - t0:.3f}s logZ={float(r.log_normalizer):.6f}", flush=True)


if __name__ == "__main__":
    main()
