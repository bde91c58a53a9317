"""Benchmark: LDS smoothing and one VB-EM step, pyrxaif (jitted JAX) vs a plain NumPy loop over t.

    python benchmarks/lgssm.py [--sizes 100 1000 10000] [--dim 8] [--control-dim 1] [--repeats 5]
    python benchmarks/lgssm.py --sizes 1000 --batch 1 8 32    # per-sequence cost of a vmapped batch

Both sides do the same computation on the expected LDS under q([A B]) q(W): the information
filter with the covariance-correction potential Ψ, the RTS pass with lag-one covariances, the
log-normaliser, the sufficient statistics and the q([A B]), q(W) updates. The NumPy reference
below is a straightforward per-time-step implementation (one Python iteration per t); its results
are checked against pyrxaif's before timing. Times are medians after a warm-up call (which
includes JAX compilation, reported separately).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import pyrxaif  # noqa: F401  (float64)
import jax
from pyrxaif.distributions import MvNormal, Wishart
from pyrxaif.inference import lgssm
from pyrxaif.rules import transition as tr

LOG2PI = np.log(2 * np.pi)


# ------------------------------------------------------------------ NumPy per-time-step reference
def numpy_smooth(mu, lam_diag, u, ab_mean, ab_cov, w_df, w_inv_scale, m1, v1):
    """Expected-LDS smoother, one Python iteration per time step (moment-free information filter
    + RTS), returns means, covs, cross-covs (Cov(z_{t+1}, z_t)) and log Z."""
    from scipy.special import digamma
    T, d = mu.shape
    n = ab_mean.shape[1]
    W = w_df * np.linalg.inv(w_inv_scale)
    A, B = ab_mean[:, :d], ab_mean[:, d:]
    C = ab_cov.reshape(d, n, d, n)
    psi = np.zeros((n, n))
    for i in range(d):
        for j in range(d):
            psi += W[i, j] * C[i, :, j, :]
    elogdet = sum(digamma((w_df - k) / 2) for k in range(d)) + d * np.log(2) - np.linalg.slogdet(w_inv_scale)[1]
    c_w = 0.5 * elogdet - 0.5 * np.linalg.slogdet(W)[1]
    logdet_w = np.linalg.slogdet(W)[1]
    WA = W @ A
    ata = A.T @ WA
    prec_p = np.linalg.inv(v1)
    xi_p = prec_p @ m1
    g_p = -0.5 * d * LOG2PI - 0.5 * np.linalg.slogdet(v1)[1] - 0.5 * m1 @ xi_p
    gains, ks, pinvs = np.zeros((T, d, d)), np.zeros((T, d)), np.zeros((T, d, d))
    for t in range(T):
        lam = np.diag(lam_diag[t])
        g = -0.5 * d * LOG2PI + 0.5 * np.sum(np.log(lam_diag[t])) - 0.5 * mu[t] @ lam @ mu[t]
        xi, prec = lam @ mu[t], lam.copy()
        if t < T - 1:
            g += c_w - 0.5 * u[t] @ psi[d:, d:] @ u[t]
            xi -= psi[:d, d:] @ u[t]
            prec += psi[:d, :d]
        g_f, xi_f, prec_f = g_p + g, xi_p + xi, prec_p + prec
        if t == T - 1:
            break
        P = prec_f + ata
        L = np.linalg.cholesky(P)
        c = B @ u[t]
        a = xi_f - WA.T @ c
        pinv = np.linalg.inv(P)
        k = pinv @ a
        gain = pinv @ WA.T
        gains[t], ks[t], pinvs[t] = gain, k, pinv
        xi_p = W @ c + gain.T @ a
        prec_p = W - WA @ gain
        g_p = g_f + 0.5 * logdet_w - 0.5 * c @ W @ c + 0.5 * a @ k - np.sum(np.log(np.diag(L)))
    cov_last = np.linalg.inv(prec_f)
    m_last = cov_last @ xi_f
    log_z = g_f + 0.5 * xi_f @ m_last + 0.5 * np.linalg.slogdet(cov_last)[1] + 0.5 * d * LOG2PI
    means, covs, cross = np.zeros((T, d)), np.zeros((T, d, d)), np.zeros((T, d, d))
    means[-1], covs[-1] = m_last, cov_last
    for t in range(T - 2, -1, -1):
        means[t] = ks[t] + gains[t] @ means[t + 1]
        covs[t] = pinvs[t] + gains[t] @ covs[t + 1] @ gains[t].T
        cross[t] = covs[t + 1] @ gains[t].T
    return means, covs, cross, log_z


def numpy_em_step(mu, lam_diag, u, ab_mean, ab_cov, w_df, w_inv_scale, m1, v1, prior_ab_prec, prior_ab_xi,
                  prior_df, prior_inv_scale):
    """Smoothing, then statistics (loop over t) and the q([A B]), q(W) updates."""
    means, covs, cross, log_z = numpy_smooth(mu, lam_diag, u, ab_mean, ab_cov, w_df, w_inv_scale, m1, v1)
    T, d = means.shape
    n = d + u.shape[1]
    xx, zx, zz = np.zeros((n, n)), np.zeros((d, n)), np.zeros((d, d))
    for t in range(T - 1):
        x = np.r_[means[t], u[t]]
        xx += np.outer(x, x)
        xx[:d, :d] += covs[t]
        zx += np.outer(means[t + 1], x)
        zx[:, :d] += cross[t]
        zz += covs[t + 1] + np.outer(means[t + 1], means[t + 1])
    W = w_df * np.linalg.inv(w_inv_scale)
    prec = prior_ab_prec + np.kron(W, xx)
    cov = np.linalg.inv(prec)
    mean = cov @ (prior_ab_xi + (W @ zx).reshape(-1))
    H = mean.reshape(d, n)
    Cr = cov.reshape(d, n, d, n)
    e_hxh = H @ xx @ H.T + np.einsum("ab,iajb->ij", xx, Cr)
    R = zz - H @ zx.T - zx @ H.T + e_hxh
    return mean, prior_df + (T - 1), prior_inv_scale + R, log_z


# ------------------------------------------------------------------ problem and timing
def make_problem(T, d, m, seed=0):
    rng = np.random.default_rng(seed)
    n = d + m
    A = 0.9 * np.linalg.qr(rng.normal(size=(d, d)))[0]
    ab_mean = np.c_[A, 0.3 * rng.normal(size=(d, m))]
    ab_cov = 1e-3 * np.eye(d * n)
    q_ab = MvNormal.from_mean_cov(ab_mean.reshape(-1), ab_cov)
    q_w = Wishart.from_mean(10.0 * np.eye(d), 50.0)
    init = MvNormal.from_mean_cov(np.zeros(d), np.eye(d))
    mu = rng.normal(size=(T, d))
    lam = rng.uniform(1.0, 10.0, size=(T, d))
    u = rng.normal(size=(T, m))
    prior = lgssm.make_prior(d, m, ab_precision=1.0)
    return dict(mu=mu, lam=lam, u=u, q_ab=q_ab, q_w=q_w, init=init, prior=prior,
                ab_mean=ab_mean, ab_cov=ab_cov)


def numpy_inputs(p, d):
    """(arguments of ``numpy_smooth``, extra prior arguments of ``numpy_em_step``) for a ``make_problem`` dict."""
    q_w, prior = p["q_w"], p["prior"]
    args = (p["mu"], p["lam"], p["u"], p["ab_mean"], p["ab_cov"], float(q_w.df), np.asarray(q_w.inv_scale),
            np.zeros(d), np.eye(d))
    prior_args = (np.asarray(prior.q_ab.precision), np.asarray(prior.q_ab.xi), float(prior.q_w.df),
                  np.asarray(prior.q_w.inv_scale))
    return args, prior_args


def timed(fn, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times), min(times)


def run(sizes, d, m, repeats, numpy_max_t, parallel_max_t):
    print(f"latent dim d={d}, control dim m={m}; medians of {repeats} runs after warm-up; times in ms; "
          "last columns: ratio of the fastest runs (smooth, EM step), less sensitive to other load")
    header = (f"{'T':>6} | {'jax smooth':>10} {'parallel':>9} {'numpy':>9} {'ratio':>7} | "
              f"{'jax EM step':>11} {'numpy':>9} {'ratio':>7} | {'compile s':>9} | best-of ratios")
    print(header)
    print("-" * len(header))
    rows = []
    for T in sizes:
        p = make_problem(T, d, m)
        q_w = p["q_w"]
        np_args, np_prior = numpy_inputs(p, d)
        prior = p["prior"]
        post = lgssm.DynamicsPosterior(p["q_ab"], q_w)
        seq = lambda: lgssm.smooth(p["mu"], p["lam"], p["u"], p["q_ab"], q_w, p["init"])  # noqa: E731
        par = lambda: lgssm.smooth(p["mu"], p["lam"], p["u"], p["q_ab"], q_w, p["init"], method="parallel")  # noqa
        em = lambda: lgssm.vb_em(p["mu"], p["lam"], p["u"], prior, p["init"], num_iters=1, posterior=post)  # noqa
        c1, t_seq, b_seq = timed(seq, repeats)
        c2, t_par, _ = timed(par, repeats) if T <= parallel_max_t else (0.0, float("nan"), 0.0)
        c3, t_em, b_em = timed(em, repeats)
        # correctness of the reference against pyrxaif before timing it
        res = seq()
        ref = numpy_smooth(*np_args)
        err = max(np.max(np.abs(ref[0] - np.asarray(res.mean))), abs(ref[3] - float(res.log_normalizer)) / abs(ref[3]))
        assert err < 1e-6, f"NumPy reference disagrees with pyrxaif (max error {err:.2e})"
        new_post, _ = em()
        ref_em = numpy_em_step(*np_args, *np_prior)
        err = np.max(np.abs(ref_em[0] - np.asarray(new_post.q_ab.mean)))
        assert err < 1e-6, f"NumPy EM step disagrees with pyrxaif (max error {err:.2e})"
        if T <= numpy_max_t:
            r = max(1, min(repeats, 3 if T > 1000 else repeats))
            _, t_np, b_np = timed(lambda: numpy_smooth(*np_args), r)
            _, t_np_em, b_np_em = timed(lambda: numpy_em_step(*np_args, *np_prior), r)
        else:
            t_np = t_np_em = b_np = b_np_em = float("nan")
        row = dict(T=T, smooth=t_seq, parallel=t_par, numpy=t_np, em=t_em, numpy_em=t_np_em,
                   compile=c1 + c2 + c3 - t_seq - (0.0 if t_par != t_par else t_par) - t_em,
                   best_ratio_smooth=b_np / b_seq, best_ratio_em=b_np_em / b_em)
        rows.append(row)
        print(f"{T:>6} | {1e3 * t_seq:>10.2f} {1e3 * t_par:>9.2f} {1e3 * t_np:>9.1f} {t_np / t_seq:>6.0f}x | "
              f"{1e3 * t_em:>11.2f} {1e3 * t_np_em:>9.1f} {t_np_em / t_em:>6.0f}x | {row['compile']:>9.1f} | "
              f"{row['best_ratio_smooth']:>5.1f}x {row['best_ratio_em']:>5.1f}x")
    return rows


def run_batched(T, d, m, batches, repeats):
    """Per-sequence time of one vmapped call on N sequences of length T (N in ``batches``) against the
    NumPy loop's time for one sequence: does batching amortise XLA's per-step cost?"""
    p = make_problem(T, d, m)
    q_w, prior = p["q_w"], p["prior"]
    np_args, np_prior = numpy_inputs(p, d)
    _, t_np, _ = timed(lambda: numpy_smooth(*np_args), repeats)
    _, t_np_em, _ = timed(lambda: numpy_em_step(*np_args, *np_prior), repeats)
    print(f"T={T}, d={d}, m={m}; NumPy loop per sequence: smooth {1e3 * t_np:.1f} ms, EM step {1e3 * t_np_em:.1f} ms")
    post = lgssm.DynamicsPosterior(p["q_ab"], q_w)
    rng = np.random.default_rng(1)
    for n in batches:
        mu = p["mu"][None] + 0.01 * rng.normal(size=(n, T, d))
        lam = np.repeat(p["lam"][None], n, axis=0)
        u = np.repeat(p["u"][None], n, axis=0)
        _, t_s, _ = timed(lambda: lgssm.smooth(mu, lam, u, p["q_ab"], q_w, p["init"]), repeats)
        _, t_e, _ = timed(lambda: lgssm.vb_em(mu, lam, u, prior, p["init"], num_iters=1, posterior=post), repeats)
        print(f"batch {n:>4}: smooth {1e3 * t_s:9.2f} ms = {1e3 * t_s / n:7.2f} ms/sequence ({n * t_np / t_s:5.1f}x) | "
              f"EM step {1e3 * t_e:9.2f} ms = {1e3 * t_e / n:7.2f} ms/sequence ({n * t_np_em / t_e:5.1f}x)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--control-dim", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--numpy-max-t", type=int, default=10000, help="skip the NumPy loop above this T")
    ap.add_argument("--parallel-max-t", type=int, default=1000,
                    help="skip the parallel smoother above this T (its XLA compilation is slow at T = 10000)")
    ap.add_argument("--batch", type=int, nargs="+", default=None,
                    help="instead: per-sequence times of vmapped batches of these sizes at each T")
    args = ap.parse_args(argv)
    if args.batch:
        for T in args.sizes:
            run_batched(T, args.dim, args.control_dim, args.batch, args.repeats)
        return
    run(args.sizes, args.dim, args.control_dim, args.repeats, args.numpy_max_t, args.parallel_max_t)


if __name__ == "__main__":
    main()
