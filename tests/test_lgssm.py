"""Smoother, statistics, ELBO and VB-EM of pyrxaif.inference.lgssm against independent computations:
dense joint-Gaussian conditioning of z_{0:T-1} on the expected LDS, per-sequence vs batched runs,
sequential vs parallel, parameter recovery on synthetic data."""

import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.distributions import KroneckerSumNormal, MvNormal, Wishart
from pyrxaif.inference import lgssm
from pyrxaif.rules import transition as tr

LOG2PI = np.log(2 * np.pi)


def _random_problem(rng, d=2, m=1, T=6, full=False, ab_var=0.05):
    n = d + m
    mean = rng.normal(size=d * n) * 0.5
    r = rng.normal(size=(d * n, d * n))
    cov = ab_var * (r @ r.T / (d * n) + 0.2 * np.eye(d * n))
    q_ab = MvNormal.from_mean_cov(mean, cov)
    s = rng.normal(size=(d, d))
    q_w = Wishart.from_mean(s @ s.T + d * np.eye(d), 6.0 + d)
    init = MvNormal.from_mean_cov(rng.normal(size=d), np.eye(d) * 0.7 + 0.1)
    mu = rng.normal(size=(T, d))
    if full:
        a = rng.normal(size=(T, d, d))
        lam = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
    else:
        lam = rng.uniform(0.3, 3.0, size=(T, d))
    u = rng.normal(size=(T, m))
    return mu, lam, u, q_ab, q_w, init


def _expected_logdet_w(q_w):
    from scipy.special import digamma
    d = q_w.dim
    nu = float(q_w.df)
    return sum(digamma((nu - j) / 2) for j in range(d)) + d * np.log(2) - np.linalg.slogdet(np.asarray(q_w.inv_scale))[1]


def _dense(mu, lam, u, q_ab, q_w, init, drop_obs=None):
    """Joint quadratic exponent of z_{0:T-1}: -1/2 z'Jz + h'z + c; returns (J, h, c)."""
    T, d = mu.shape
    m = u.shape[1]
    n = d + m
    lam = np.asarray(lam)
    if lam.ndim == 2:
        lam = np.stack([np.diag(x) for x in lam])
    hbar = np.asarray(q_ab.mean).reshape(d, n)
    sig = np.asarray(q_ab.cov)
    wbar = np.asarray(q_w.mean())
    # K = E[H^T W H] entry by entry: E[sum_ij H_ia W_ij H_jb] = sum_ij W_ij (E[H_ia]E[H_jb] + Cov)
    K = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            K[a, b] = sum(wbar[i, j] * (hbar[i, a] * hbar[j, b] + sig[i * n + a, j * n + b])
                          for i in range(d) for j in range(d))
    J = np.zeros((T * d, T * d))
    h = np.zeros(T * d)
    blk = lambda t: slice(t * d, (t + 1) * d)  # noqa: E731
    V1inv = np.asarray(init.precision)
    m1 = np.linalg.solve(V1inv, np.asarray(init.xi))
    J[blk(0), blk(0)] += V1inv
    h[blk(0)] += V1inv @ m1
    c = -0.5 * d * LOG2PI + 0.5 * np.linalg.slogdet(V1inv)[1] - 0.5 * m1 @ V1inv @ m1
    for t in range(T):
        if t == drop_obs:
            continue
        J[blk(t), blk(t)] += lam[t]
        h[blk(t)] += lam[t] @ mu[t]
        c += -0.5 * d * LOG2PI + 0.5 * np.linalg.slogdet(lam[t])[1] - 0.5 * mu[t] @ lam[t] @ mu[t]
    elw = _expected_logdet_w(q_w)
    for t in range(T - 1):
        # -1/2 [z'W z' - 2 z'W H x + x'K x], x = [z_t; u_t]
        idx = blk(t)
        J[blk(t + 1), blk(t + 1)] += wbar
        wh = wbar @ hbar
        J[blk(t + 1), idx] -= wh[:, :d]
        J[idx, blk(t + 1)] -= wh[:, :d].T
        h[blk(t + 1)] += wh[:, d:] @ u[t]
        J[idx, idx] += K[:d, :d]
        h[idx] -= K[:d, d:] @ u[t]
        c += -0.5 * d * LOG2PI + 0.5 * elw - 0.5 * u[t] @ K[d:, d:] @ u[t]
    return J, h, c


def _dense_posterior(*args, **kw):
    J, h, c = _dense(*args, **kw)
    S = np.linalg.inv(J)
    mean = S @ h
    logz = c + 0.5 * h @ mean - 0.5 * np.linalg.slogdet(J)[1] + 0.5 * len(h) * LOG2PI
    return mean, S, logz


# the parallel smoother is checked against the same dense reference in the batched test below
# (one compilation of it keeps the default suite fast); the slow marker adds the other combinations
@pytest.mark.parametrize("full, method", [(False, "sequential"), (True, "sequential"),
                                          pytest.param(False, "parallel", marks=pytest.mark.slow),
                                          pytest.param(True, "parallel", marks=pytest.mark.slow)])
def test_smoother_matches_dense_conditioning(full, method):
    rng = np.random.default_rng(1 + full)
    T, d = 6, 2
    mu, lam, u, q_ab, q_w, init = _random_problem(rng, d=d, T=T, full=full)
    res = lgssm.smooth(mu, lam, u, q_ab, q_w, init, method=method)
    mean, S, logz = _dense_posterior(mu, lam, u, q_ab, q_w, init)
    np.testing.assert_allclose(res.mean, mean.reshape(T, d), atol=1e-8)
    for t in range(T):
        np.testing.assert_allclose(res.cov[t], S[t * d:(t + 1) * d, t * d:(t + 1) * d], atol=1e-8)
    for t in range(T - 1):
        np.testing.assert_allclose(res.cross_cov[t], S[(t + 1) * d:(t + 2) * d, t * d:(t + 1) * d], atol=1e-8)
    np.testing.assert_allclose(res.cross_cov[T - 1], 0.0)
    assert abs(float(res.log_normalizer) - logz) < 1e-8


def test_covariance_correction_changes_the_answer():
    """Dropping the Ψ term (point estimate of [A B]) gives a different posterior: the dense
    reference and the smoother both see it."""
    rng = np.random.default_rng(3)
    mu, lam, u, q_ab, q_w, init = _random_problem(rng, ab_var=0.5)
    point = MvNormal(q_ab.xi * 1e6, q_ab.precision * 1e6)  # same mean, ~zero covariance
    a = lgssm.smooth(mu, lam, u, q_ab, q_w, init)
    b = lgssm.smooth(mu, lam, u, point, q_w, init)
    assert np.max(np.abs(np.asarray(a.mean) - np.asarray(b.mean))) > 1e-2
    np.testing.assert_allclose(b.mean, _dense_posterior(mu, lam, u, point, q_w, init)[0].reshape(a.mean.shape),
                               atol=1e-7)


def test_cavity_is_posterior_without_own_observation():
    rng = np.random.default_rng(4)
    T, d = 6, 2
    mu, lam, u, q_ab, q_w, init = _random_problem(rng, T=T, full=True)
    res = lgssm.smooth(mu, lam, u, q_ab, q_w, init)
    for t in range(T):
        mean, S, _ = _dense_posterior(mu, lam, u, q_ab, q_w, init, drop_obs=t)
        st = S[t * d:(t + 1) * d, t * d:(t + 1) * d]
        np.testing.assert_allclose(res.cavity.precision[t], np.linalg.inv(st), atol=1e-7)
        np.testing.assert_allclose(res.cavity.mean[t], mean[t * d:(t + 1) * d], atol=1e-8)


def test_unobserved_dimensions_and_steps():
    """Zero precision (flat observation message) = that observation left out of the dense model."""
    rng = np.random.default_rng(5)
    T, d = 6, 2
    mu, lam, u, q_ab, q_w, init = _random_problem(rng, T=T)
    lam[2] = 0.0
    res = lgssm.smooth(mu, lam, u, q_ab, q_w, init)
    mean, S, logz = _dense_posterior(mu, lam + 0.0, u, q_ab, q_w, init, drop_obs=2)
    np.testing.assert_allclose(res.mean, mean.reshape(T, d), atol=1e-8)
    assert abs(float(res.log_normalizer) - logz) < 1e-8
    full = np.stack([np.diag(x) for x in lam])
    res_full = lgssm.smooth(mu, full, u, q_ab, q_w, init)
    np.testing.assert_allclose(res_full.mean, res.mean, atol=1e-10)
    assert abs(float(res_full.log_normalizer) - logz) < 1e-8


@pytest.mark.slow
def test_parallel_equals_sequential_long():
    rng = np.random.default_rng(6)
    mu, lam, u, q_ab, q_w, init = _random_problem(rng, d=3, m=2, T=64)
    a = lgssm.smooth(mu, lam, u, q_ab, q_w, init, method="sequential")
    b = lgssm.smooth(mu, lam, u, q_ab, q_w, init, method="parallel")
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(x, y, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_batched_masked_equals_per_sequence(method):
    """Sequences of lengths 6, 3, 1, 5 padded to T = 6 in one call: each equals its own dense
    posterior (and the full-length one its own unbatched call); statistics pool."""
    rng = np.random.default_rng(7)
    d, m, T = 2, 1, 6
    lengths = [6, 3, 1, 5]
    _, _, _, q_ab, q_w, init = _random_problem(rng, d=d, m=m, T=T)
    mu = rng.normal(size=(4, T, d))
    lam = rng.uniform(0.5, 2.0, size=(4, T, d))
    u = rng.normal(size=(4, T, m))
    mask = np.array([[1.0] * L + [0.0] * (T - L) for L in lengths])
    res = lgssm.smooth(mu, lam, u, q_ab, q_w, init, mask=mask, method=method)
    stats = lgssm.sufficient_statistics(res, u, mask)
    xx = np.zeros((d + m, d + m))
    for i, L in enumerate(lengths):
        mean, S, logz = _dense_posterior(mu[i, :L], lam[i, :L], u[i, :L], q_ab, q_w, init)
        np.testing.assert_allclose(res.mean[i, :L], mean.reshape(L, d), atol=1e-8)
        for t in range(L):
            np.testing.assert_allclose(res.cov[i, t], S[t * d:(t + 1) * d, t * d:(t + 1) * d], atol=1e-8)
        for t in range(L - 1):
            np.testing.assert_allclose(res.cross_cov[i, t], S[(t + 1) * d:(t + 2) * d, t * d:(t + 1) * d],
                                       atol=1e-8)
            x = np.r_[mean[t * d:(t + 1) * d], u[i, t]]
            xx += np.outer(x, x)
            xx[:d, :d] += S[t * d:(t + 1) * d, t * d:(t + 1) * d]
        assert abs(float(res.log_normalizer[i]) - logz) < 1e-8
        np.testing.assert_allclose(res.mean[i, L:], 0.0)
        np.testing.assert_allclose(res.cross_cov[i, L - 1:], 0.0)
    np.testing.assert_allclose(stats.xx, xx, atol=1e-8)
    assert float(stats.count) == sum(L - 1 for L in lengths)
    one = lgssm.smooth(mu[0], lam[0], u[0], q_ab, q_w, init)   # unbatched call, sequential
    for x, y in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(res)):
        np.testing.assert_allclose(x, y[0], atol=1e-9)
    # padding content does not matter
    mu2 = mu.copy()
    mu2[mask == 0] = 1e3
    res2 = lgssm.smooth(mu2, lam, u, q_ab, q_w, init, mask=mask, method=method)
    np.testing.assert_allclose(res2.log_normalizer, res.log_normalizer, atol=1e-10)


def test_sufficient_statistics_match_dense_moments():
    rng = np.random.default_rng(8)
    T, d, m = 6, 2, 1
    mu, lam, u, q_ab, q_w, init = _random_problem(rng, d=d, m=m, T=T)
    res = lgssm.smooth(mu, lam, u, q_ab, q_w, init)
    mean, S, _ = _dense_posterior(mu, lam, u, q_ab, q_w, init)
    E2 = S + np.outer(mean, mean)
    blk = lambda t: slice(t * d, (t + 1) * d)  # noqa: E731
    xx = np.zeros((d + m, d + m))
    zx = np.zeros((d, d + m))
    zz = np.zeros((d, d))
    for t in range(T - 1):
        xx[:d, :d] += E2[blk(t), blk(t)]
        xx[:d, d:] += np.outer(mean[blk(t)], u[t])
        xx[d:, :d] += np.outer(u[t], mean[blk(t)])
        xx[d:, d:] += np.outer(u[t], u[t])
        zx[:, :d] += E2[blk(t + 1), blk(t)]
        zx[:, d:] += np.outer(mean[blk(t + 1)], u[t])
        zz += E2[blk(t + 1), blk(t + 1)]
    st = lgssm.sufficient_statistics(res, u)
    np.testing.assert_allclose(st.xx, xx, atol=1e-8)
    np.testing.assert_allclose(st.zx, zx, atol=1e-8)
    np.testing.assert_allclose(st.zz, zz, atol=1e-8)
    assert float(st.count) == T - 1


def test_elbo_is_a_bound_and_tight_for_point_dynamics():
    """With q(H), q(W) nearly point masses equal to the prior means... the ELBO approaches the
    exact log-evidence of the (Kalman) model computed densely with those parameters."""
    rng = np.random.default_rng(9)
    mu, lam, u, q_ab, q_w, init = _random_problem(rng)
    sharp_ab = MvNormal(q_ab.xi * 1e8, q_ab.precision * 1e8)
    sharp_w = Wishart(q_w.df * 1e6, q_w.inv_scale * 1e6)
    res = lgssm.smooth(mu, lam, u, sharp_ab, sharp_w, init)
    # exact evidence: same dense model with zero parameter uncertainty
    _, _, logz = _dense_posterior(mu, lam, u, sharp_ab, sharp_w, init)
    assert abs(float(res.log_normalizer) - logz) < 1e-7
    post = lgssm.DynamicsPosterior(sharp_ab, sharp_w)
    assert float(lgssm.elbo(res, post, post)) == pytest.approx(float(res.log_normalizer), abs=1e-9)


def _simulate(rng, A, B, W, N, T):
    d, m = B.shape
    L = np.linalg.cholesky(np.linalg.inv(W))
    z = np.zeros((N, T, d))
    u = rng.normal(size=(N, T, m))
    z[:, 0] = rng.normal(size=(N, d))
    for t in range(T - 1):
        z[:, t + 1] = z[:, t] @ A.T + u[:, t] @ B.T + rng.normal(size=(N, d)) @ L.T
    return z, u


A_TRUE = np.array([[0.9, 0.2], [-0.3, 0.8]])
B_TRUE = np.array([[0.0], [0.5]])
W_TRUE = np.linalg.inv(np.array([[0.05, 0.01], [0.01, 0.04]]))


def _em_data(seed=10, N=8, T=60, obs_var=0.01):
    rng = np.random.default_rng(seed)
    z, u = _simulate(rng, A_TRUE, B_TRUE, W_TRUE, N, T)
    obs = z + np.sqrt(obs_var) * rng.normal(size=z.shape)
    lam = np.full(z.shape, 1.0 / obs_var)
    prior = lgssm.make_prior(2, 1, ab_precision=1.0, w_df=4.0, w_mean=np.eye(2))
    init = MvNormal.from_mean_cov(np.zeros(2), np.eye(2))
    return obs, lam, u, prior, init


def _check_recovery(post, trace):
    trace = np.asarray(trace)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:])), np.diff(trace).min()
    assert trace[-1] > trace[0] + 10.0
    H = np.asarray(tr.expected_ab(post.q_ab, 2, 3))
    np.testing.assert_allclose(H[:, :2], A_TRUE, atol=0.08)
    np.testing.assert_allclose(H[:, 2:], B_TRUE, atol=0.08)
    np.testing.assert_allclose(np.linalg.inv(np.asarray(post.q_w.mean())), np.linalg.inv(W_TRUE), atol=0.02)
    # the posterior on [A B] is concentrated: its standard deviations are small
    assert np.max(np.sqrt(np.diag(np.asarray(post.q_ab.cov)))) < 0.05


def test_vb_em_recovers_dynamics_elbo_never_decreases_and_matches_manual_steps():
    obs, lam, u, prior, init = _em_data()
    # the isotropic prior runs vb_em's structured loop (KroneckerSumNormal q([A B])); the steps by hand are dense
    assert isinstance(lgssm.structured_prior(prior).q_ab, KroneckerSumNormal)
    post, trace = lgssm.vb_em(obs, lam, u, prior, init, num_iters=40)
    _check_recovery(post, trace)
    # the jitted loop = smooth -> elbo -> sufficient_statistics -> update_dynamics by hand
    p = prior
    for k in range(2):
        res = lgssm.smooth(obs, lam, u, p.q_ab, p.q_w, init)
        assert float(lgssm.elbo(res, p, prior)) == pytest.approx(float(trace[k]), rel=1e-10)
        p = lgssm.update_dynamics(lgssm.sufficient_statistics(res, u), prior, p)


@pytest.mark.slow
def test_vb_em_parallel_recovers_dynamics():
    obs, lam, u, prior, init = _em_data()
    _check_recovery(*lgssm.vb_em(obs, lam, u, prior, init, num_iters=40, method="parallel"))


def test_repeated_calls_do_not_retrace():
    rng = np.random.default_rng(12)
    mu, lam, u, q_ab, q_w, init = _random_problem(rng)
    lgssm.smooth(mu, lam, u, q_ab, q_w, init)
    n0 = lgssm._smooth_batch._cache_size()
    lgssm.smooth(mu + 1.0, lam * 2.0, u, q_ab, q_w, init)
    assert lgssm._smooth_batch._cache_size() == n0


# ----------------------------------------------------------------------------- validation
def test_validation_errors():
    rng = np.random.default_rng(13)
    mu, lam, u, q_ab, q_w, init = _random_problem(rng, T=4)
    with pytest.raises(ValueError, match="obs_mean"):
        lgssm.smooth(mu[0], lam, u, q_ab, q_w, init)
    bad = mu.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="obs_mean.*finite"):
        lgssm.smooth(bad, lam, u, q_ab, q_w, init)
    with pytest.raises(ValueError, match="obs_precision"):
        lgssm.smooth(mu, lam[:3], u, q_ab, q_w, init)
    with pytest.raises(ValueError, match="obs_precision.*non-negative"):
        lgssm.smooth(mu, -lam, u, q_ab, q_w, init)
    full = np.stack([np.diag(x) for x in lam])
    full[0, 0, 1] = 0.3
    with pytest.raises(ValueError, match="obs_precision.*symmetric"):
        lgssm.smooth(mu, full, u, q_ab, q_w, init)
    full = np.stack([np.array([[1.0, 2.0], [2.0, 1.0]])] * 4)
    with pytest.raises(ValueError, match="obs_precision"):
        lgssm.smooth(mu, full, u, q_ab, q_w, init)
    with pytest.raises(ValueError, match="controls"):
        lgssm.smooth(mu, lam, np.zeros((4, 2)), q_ab, q_w, init)
    with pytest.raises(ValueError, match="controls"):
        lgssm.smooth(mu, lam, u[:3], q_ab, q_w, init)
    with pytest.raises(ValueError, match="method"):
        lgssm.smooth(mu, lam, u, q_ab, q_w, init, method="fast")
    with pytest.raises(ValueError, match="mask.*prefix"):
        lgssm.smooth(mu, lam, u, q_ab, q_w, init, mask=np.array([1, 0, 1, 1]))
    with pytest.raises(ValueError, match="mask"):
        lgssm.smooth(mu, lam, u, q_ab, q_w, init, mask=np.ones(3))
    with pytest.raises(ValueError, match="q_w.df"):
        lgssm.smooth(mu, lam, u, q_ab, Wishart(np.float64(-1.0), q_w.inv_scale), init)
    with pytest.raises(ValueError, match="q_w.inv_scale.*positive-definite"):
        lgssm.smooth(mu, lam, u, q_ab, Wishart(q_w.df, -q_w.inv_scale), init)
    with pytest.raises(ValueError, match="q_ab"):
        lgssm.smooth(mu, lam, u, MvNormal(q_ab.xi[:5], q_ab.precision[:5, :5]), q_w, init)
    with pytest.raises(TypeError, match="q_w"):
        lgssm.smooth(mu, lam, u, q_ab, np.eye(2), init)
    with pytest.raises(ValueError, match="init"):
        lgssm.smooth(mu, lam, u, q_ab, q_w, MvNormal.from_mean_cov(np.zeros(3), np.eye(3)))
    prior = lgssm.make_prior(2, 1)
    with pytest.raises(ValueError, match="num_iters"):
        lgssm.vb_em(mu, lam, u, prior, init, num_iters=0)
    with pytest.raises(ValueError, match="ab_precision"):
        lgssm.make_prior(2, 1, ab_precision=-1.0)
    with pytest.raises(ValueError, match="ab_mean"):
        lgssm.make_prior(2, 1, ab_mean=np.zeros((2, 2)))
    with pytest.raises(TypeError, match="prior"):
        lgssm.vb_em(mu, lam, u, (q_ab, q_w), init)


def test_smooth_under_jit_and_grad_fisher_identity():
    """Traced inputs (inside a VAE loss) skip validation; d log Z̃ / d μ_t = Λ_t (E[z_t] − μ_t)."""
    rng = np.random.default_rng(14)
    mu, lam, u, q_ab, q_w, init = _random_problem(rng)

    def log_z(m):
        return lgssm.smooth(m, lam, u, q_ab, q_w, init).log_normalizer

    grad = np.asarray(jax.jit(jax.grad(log_z))(jax.numpy.asarray(mu)))
    res = lgssm.smooth(mu, lam, u, q_ab, q_w, init)
    np.testing.assert_allclose(grad, lam * (np.asarray(res.mean) - mu), atol=1e-8)


def test_weighted_statistics_and_posterior_from_statistics():
    """Weights select transitions (0/1 weights = a subset of sequences; G weightings = G separate
    calls); the VB posterior for fixed statistics is a fixed point of update_dynamics and, with W
    known (a near-point Wishart), equals the conjugate Gaussian posterior of [A B]."""
    obs, lam, u, prior, init = _em_data(N=4, T=20)
    res = lgssm.smooth(obs, lam, u, prior.q_ab, prior.q_w, init)
    w = np.zeros(obs.shape[:2])
    w[:2] = 1.0
    got = lgssm.sufficient_statistics(res, u, weights=w)
    sub = jax.tree_util.tree_map(lambda a: a[:2], res)
    want = lgssm.sufficient_statistics(sub, u[:2])
    for g, h in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(h), atol=1e-10)
    rng = np.random.default_rng(0)
    ws = rng.uniform(0, 1, (3,) + obs.shape[:2])
    grouped = lgssm.sufficient_statistics(res, u, weights=ws)
    for k in range(3):
        one = lgssm.sufficient_statistics(res, u, weights=ws[k])
        for g, h in zip(grouped, one):
            np.testing.assert_allclose(np.asarray(g)[k], np.asarray(h), atol=1e-10)
    # a weight scales a transition's statistics: w = 2 everywhere doubles everything
    two = lgssm.sufficient_statistics(res, u, weights=2 * np.ones(obs.shape[:2]))
    for g, h in zip(two, lgssm.sufficient_statistics(res, u)):
        np.testing.assert_allclose(np.asarray(g), 2 * np.asarray(h), rtol=1e-12)
    # fixed point, per group
    post = lgssm.posterior_from_statistics(grouped, prior, num_iters=50)
    for k in range(3):
        st_k = jax.tree_util.tree_map(lambda a: a[k], grouped)
        q_k = jax.tree_util.tree_map(lambda a: a[k], post)
        again = lgssm.update_dynamics(st_k, prior, q_k)
        for g, h in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(q_k)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(h), rtol=1e-8, atol=1e-8)
    # W known: q(H) = p(H) · N(vec H; Λ = W ⊗ Σxx, ξ = vec(W Σzx)) (row-major vec), closed form
    W = np.array([[20.0, 3.0], [3.0, 25.0]])
    known = lgssm.DynamicsPosterior(prior.q_ab, Wishart.from_mean(W, 1e12))
    q = lgssm.posterior_from_statistics(got, known, num_iters=1)
    prec = np.asarray(prior.q_ab.precision) + np.kron(W, np.asarray(got.xx))
    xi = np.asarray(prior.q_ab.xi) + (W @ np.asarray(got.zx)).reshape(-1)
    np.testing.assert_allclose(np.asarray(q.q_ab.mean), np.linalg.solve(prec, xi), rtol=1e-9)
    with pytest.raises(ValueError, match="weights"):
        lgssm.sufficient_statistics(res, u, weights=-w)
    with pytest.raises(ValueError, match="weights"):
        lgssm.sufficient_statistics(res, u, weights=np.ones(5))
    with pytest.raises(ValueError, match="num_iters"):
        lgssm.posterior_from_statistics(got, prior, num_iters=0)


# ----------------------------------------------------------------------------- bad input (issue 20 item 4)
def _small_problem():
    rng = np.random.default_rng(3)
    d, m, T = 2, 1, 60
    a = np.array([[0.9, -0.2], [0.1, 0.8]])
    b = np.array([[0.5], [-0.3]])
    u = rng.normal(size=(T, m))
    z = np.zeros((T, d))
    for t in range(T - 1):
        z[t + 1] = a @ z[t] + b @ u[t] + 0.3 * rng.normal(size=d)
    return z + 0.1 * rng.normal(size=(T, d)), np.full((T, d), 100.0), u, MvNormal.from_mean_cov(np.zeros(d), np.eye(d))


@pytest.mark.parametrize("precision", [1e16, 1e20, 1e300])
@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_smooth_refuses_precisions_float64_cannot_combine(precision, method):
    mu, lam, u, init = _small_problem()
    prior = lgssm.make_prior(2, 1)
    with pytest.raises(ValueError, match="obs_precision: largest entry"):
        lgssm.smooth(mu, np.full_like(lam, precision), u, prior.q_ab, prior.q_w, init, method=method)
    full = np.einsum("ti,ij->tij", np.full_like(lam, precision), np.eye(2))
    with pytest.raises(ValueError, match="obs_precision"):
        lgssm.smooth(mu, full, u, prior.q_ab, prior.q_w, init, method=method)


def test_smooth_accepts_large_but_representable_precisions():
    # at 1e8 x the model's precisions both smoothers still agree (log Z to 1e-5)
    mu, lam, u, init = _small_problem()
    prior = lgssm.make_prior(2, 1)
    r1 = lgssm.smooth(mu, np.full_like(lam, 1e8), u, prior.q_ab, prior.q_w, init)
    r2 = lgssm.smooth(mu, np.full_like(lam, 1e8), u, prior.q_ab, prior.q_w, init, method="parallel")
    assert np.isfinite(float(r1.log_normalizer))
    assert abs(float(r1.log_normalizer) - float(r2.log_normalizer)) < 1e-4
    np.testing.assert_allclose(r1.mean, mu, atol=1e-6)                 # pinned to the observations


def test_vb_em_warns_when_the_prior_cannot_fit_the_data_scale():
    mu, lam, u, init = _small_problem()
    prior = lgssm.make_prior(2, 1)
    with pytest.warns(UserWarning, match="Rescale the data"):
        lgssm.vb_em(mu * 1e6, lam / 1e12, u, prior, init, num_iters=2)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                    # unit-scale data: no warning
        lgssm.vb_em(mu, lam, u, prior, init, num_iters=2)


@pytest.mark.parametrize("w_df", [0, 1.0, -3, float("nan")])
def test_make_prior_blames_w_df(w_df):
    with pytest.raises(ValueError, match="^w_df"):
        lgssm.make_prior(2, 1, w_df=w_df)


# ----------------------------------------------------------------------------- structured q([A B]) (issue 21 item 7)
def _kron_problem(d, m, prior_kind, seed=0, T=40):
    """Simulated data and a prior on vec [A B] that is isotropic, a non-isotropic Kronecker product R ⊗ C,
    or general (a random diagonal: not a Kronecker product)."""
    rng = np.random.default_rng(seed)
    n = d + m
    a = 0.8 * np.eye(d) + 0.1 * rng.normal(size=(d, d))
    b = rng.normal(size=(d, m))
    u = rng.normal(size=(T, m))
    z = np.zeros((T, d))
    for t in range(T - 1):
        z[t + 1] = a @ z[t] + b @ u[t] + 0.3 * rng.normal(size=d)
    obs, lam = z + 0.2 * rng.normal(size=(T, d)), rng.uniform(10.0, 40.0, size=(T, d))
    if prior_kind == "isotropic":
        prec = 2.0
    elif prior_kind == "kronecker":
        r, c = rng.normal(size=(d, d)), rng.normal(size=(n, n))
        prec = np.kron(r @ r.T / d + 0.5 * np.eye(d), c @ c.T / n + 0.5 * np.eye(n))
    else:
        prec = np.diag(rng.uniform(0.5, 3.0, d * n))
    prior = lgssm.make_prior(d, m, ab_mean=0.1 * rng.normal(size=(d, n)), ab_precision=prec, w_df=d + 3.0)
    return obs, lam, (u if m else None), prior, MvNormal.from_mean_cov(np.zeros(d), np.eye(d))


def _dense_update(stats, prior, q_w):
    """One VB step in NumPy on the dense (d·n)-dimensional vec [A B]: q(H) ∝ p(H)·N(ξ = vec(W̄ Σzx), W̄ ⊗ Σxx),
    then q(W) from the expected residual outer product; returns q(H)'s mean, covariance blocks (d, n, d, n),
    q(W)'s (df, inv_scale) and KL(q(H)‖p(H))."""
    xx, zx, zz, count = (np.asarray(x) for x in stats)
    d, n = zx.shape
    w0 = np.asarray(q_w.mean())
    p0, xi0 = np.asarray(prior.q_ab.precision), np.asarray(prior.q_ab.xi)
    prec = p0 + np.kron(w0, xx)
    cov = np.linalg.inv(prec)
    mean = cov @ (xi0 + (w0 @ zx).reshape(-1))
    h, blocks = mean.reshape(d, n), cov.reshape(d, n, d, n)
    resid = zz - h @ zx.T - zx @ h.T + h @ xx @ h.T + np.einsum("ab,iajb->ij", xx, blocks)
    df, inv_scale = float(prior.q_w.df) + float(count), np.asarray(prior.q_w.inv_scale) + resid
    m0 = np.linalg.solve(p0, xi0)
    kl = 0.5 * (np.trace(p0 @ cov) + (m0 - mean) @ p0 @ (m0 - mean) - d * n + np.linalg.slogdet(prec)[1]
                - np.linalg.slogdet(p0)[1])
    return h, blocks, df, inv_scale, kl


@pytest.mark.parametrize("d, m, prior_kind", [(2, 0, "isotropic"), (3, 1, "kronecker"), (4, 2, "isotropic"),
                                              (5, 0, "kronecker")])
def test_structured_update_equals_the_dense_closed_form(d, m, prior_kind):
    """One VB step from a Kronecker prior (``structured_prior``: q([A B]) a KroneckerSumNormal, O(d³ + n³))
    against the dense step in NumPy: E[[A B]], the E-step's Ψ = Σ W̄_ij Cov(row_i, row_j) and E[H S Hᵀ],
    q(W), and the KL of q([A B])."""
    n = d + m
    rng = np.random.default_rng(d)
    _, _, _, prior, _ = _kron_problem(d, m, prior_kind, seed=d, T=2)
    structured = lgssm.structured_prior(prior)
    assert isinstance(structured.q_ab, KroneckerSumNormal)
    x = np.concatenate([rng.normal(size=(30, d)), np.ones((30, 1)), rng.normal(size=(30, m - 1))], 1)[:, :n] \
        if m else rng.normal(size=(30, d))                            # a constant input when m > 0: Σxx near-singular
    stats = tr.stats_from_points(x, x[:, :d] @ rng.normal(size=(d, d)) + 0.3 * rng.normal(size=(30, d)))
    q_w = Wishart.from_mean(np.diag(rng.uniform(1.0, 5.0, d)), d + 4.0)
    h, blocks, df, inv_scale, kl_ab = _dense_update(stats, prior, q_w)
    s = np.asarray(stats.xx)
    w_new = df * np.linalg.inv(inv_scale)

    @jax.jit
    def structured_step(stats, structured, q_w):
        kron = lgssm.update_dynamics(stats, structured, lgssm.DynamicsPosterior(structured.q_ab, q_w))
        return (kron.q_w.df, kron.q_w.inv_scale, tr.expected_ab(kron.q_ab, d, n),
                tr.quadratic_correction(kron.q_ab, w_new, d, n), tr.expected_outer(kron.q_ab, s, d, n),
                lgssm.dynamics_kl(kron, structured) - kron.q_w.kl(structured.q_w))

    got = structured_step(stats, structured, q_w)
    want = (df, inv_scale, h, np.einsum("ij,iajb->ab", w_new, blocks),
            h @ s @ h.T + np.einsum("ab,iajb->ij", s, blocks), kl_ab)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-9, atol=1e-12)
    assert kl_ab > 1.0                                                 # the step moved q away from the prior


def test_a_general_prior_keeps_the_dense_path():
    obs, lam, u, _, init = _em_data()
    rng = np.random.default_rng(0)
    prior = lgssm.make_prior(2, 1, ab_precision=np.diag(rng.uniform(0.5, 2.0, 6)), w_df=4.0)
    assert lgssm.structured_prior(prior) is prior                  # not a Kronecker product: left dense
    post, trace = lgssm.vb_em(obs, lam, u, prior, init, num_iters=2)
    p = prior
    for k in range(2):
        res = lgssm.smooth(obs, lam, u, p.q_ab, p.q_w, init)
        assert float(lgssm.elbo(res, p, prior)) == pytest.approx(float(trace[k]), rel=1e-10)
        p = lgssm.update_dynamics(lgssm.sufficient_statistics(res, u), prior, p)
    np.testing.assert_allclose(post.q_ab.xi, p.q_ab.xi, rtol=1e-10)
    # a structured q([A B]) is internal to the compiled loops: refused where it arrives concretely
    with pytest.raises(TypeError, match="prior.q_ab: a KroneckerSumNormal"):
        lgssm.update_dynamics(lgssm.sufficient_statistics(res, u), lgssm.structured_prior(lgssm.make_prior(2, 1)), p)
    with pytest.raises(TypeError, match="prior: expected a DynamicsPosterior"):
        lgssm.structured_prior(prior.q_ab)


@pytest.mark.parametrize("d, m", [(2, 0), (3, 2), (5, 1)])
def test_make_prior_structured_equals_the_dense_prior(d, m):
    """make_prior(structured=True) builds λI_d ⊗ I_n as a KroneckerSumNormal without the (d·n)² matrix: the
    same matrix normal as structured_prior of the dense build (mean, log|Λ|), both equal to the dense prior
    when converted back; structured_prior passes it through; a matrix ab_precision is refused by name."""
    rng = np.random.default_rng(d + m)
    kw = dict(ab_mean=rng.normal(size=(d, d + m)), ab_precision=2.5, w_df=d + 3.0, w_mean=np.diag(rng.uniform(1, 2, d)))
    dense = lgssm.make_prior(d, m, **kw)
    built = lgssm.make_prior(d, m, structured=True, **kw)
    assert isinstance(built.q_ab, KroneckerSumNormal) and built.dims == (d, m)
    converted = lgssm.structured_prior(dense).q_ab      # the factors' scale may sit on either side: compare the law
    np.testing.assert_allclose(built.q_ab.mean, converted.mean, rtol=1e-12, atol=1e-14)
    assert float(built.q_ab.logdet_precision()) == pytest.approx(float(converted.logdet_precision()), rel=1e-12)
    for q_ab in (built.q_ab, converted):
        as_dense = q_ab.to_mvnormal()
        np.testing.assert_allclose(as_dense.precision, dense.q_ab.precision, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(as_dense.xi, dense.q_ab.xi, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(built.q_w.inv_scale, dense.q_w.inv_scale, rtol=1e-14)
    assert lgssm.structured_prior(built) is built
    with pytest.raises(ValueError, match="ab_precision: structured=True"):
        lgssm.make_prior(d, m, ab_precision=np.eye(d * (d + m)), structured=True)
    with pytest.raises(TypeError, match="structured"):
        lgssm.make_prior(d, m, structured="yes")


@pytest.mark.slow                    # the dense loop compiles for 10-40 s per shape; fast variants above
@pytest.mark.parametrize("d, m, prior_kind", [(2, 0, "isotropic"), (3, 1, "kronecker"), (4, 2, "isotropic"),
                                              (5, 0, "kronecker")])
def test_structured_vb_em_equals_the_dense_loop(d, m, prior_kind):
    """vb_em from a Kronecker prior (started at the prior) keeps q([A B]) as a KroneckerSumNormal; its ELBO
    trace and final posterior equal the dense loop's (started from a copy of the prior, which vb_em does
    not structure)."""
    obs, lam, u, prior, init = _kron_problem(d, m, prior_kind, seed=d)
    post, trace = lgssm.vb_em(obs, lam, u, prior, init, num_iters=3)
    dense, dense_trace = lgssm.vb_em(obs, lam, u, prior, init, num_iters=3, posterior=lgssm.DynamicsPosterior(*prior))
    assert isinstance(post.q_ab, MvNormal)
    np.testing.assert_allclose(trace, dense_trace, rtol=1e-10)
    assert trace[-1] > trace[0]
    np.testing.assert_allclose(post.q_ab.precision, dense.q_ab.precision, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(post.q_ab.xi, dense.q_ab.xi, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(post.q_w.inv_scale, dense.q_w.inv_scale, rtol=1e-9)


@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_initial_state_in_moment_form_equals_the_natural_form(method):
    """filter_information / smooth_information from init = GaussianMoments(m, P) equal the same calls from
    MvNormal.from_mean_cov(m, P) (the sequential filter starts from the moments, the parallel one converts);
    a malformed GaussianMoments is refused by name."""
    rng = np.random.default_rng(4)
    d, m, T = 3, 1, 12
    spd = lambda k: (lambda x: x @ x.T / k + 0.5 * np.eye(k))(rng.normal(size=(k, k)))   # noqa: E731
    h = rng.normal(size=(2, d))
    prec = np.broadcast_to(h.T @ h, (T, d, d)).copy()                   # rank 2 of 3: an emission with P < D
    xi, g = rng.normal(size=(T, d)), rng.normal(size=T)
    dyn = lgssm.KnownDynamics(np.concatenate([0.5 * spd(d), rng.normal(size=(d, m))], 1), spd(d))
    controls = rng.normal(size=(T, m))
    mean, cov = rng.normal(size=d), spd(d)
    for run in (lgssm.filter_information, lgssm.smooth_information):
        got = run(g, xi, prec, controls, dyn, lgssm.GaussianMoments(mean, cov), method=method)
        want = run(g, xi, prec, controls, dyn, MvNormal.from_mean_cov(mean, cov), method=method)
        for a, b in zip(got, want):
            if a is not None:
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="init.cov"):
        lgssm.filter_information(g, xi, prec, controls, dyn, lgssm.GaussianMoments(mean, -cov))
    with pytest.raises(ValueError, match="init.mean"):
        lgssm.filter_information(g, xi, prec, controls, dyn, lgssm.GaussianMoments(mean[:2], cov))
    with pytest.raises(TypeError, match="init: expected an MvNormal or GaussianMoments"):
        lgssm.filter_information(g, xi, prec, controls, dyn, (mean, cov))
