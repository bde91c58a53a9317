"""pyrxaif.distributions against scipy.stats closed forms, Monte Carlo and Bayes' rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import digamma

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.distributions import Categorical, Dirichlet, MatrixDirichlet, MvNormal, Wishart


def _spd(rng, d, jitter=0.5):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + jitter * np.eye(d)


# ------------------------------------------------------------------------------------- MvNormal
def test_mvnormal_moments_entropy_logprob_kl_vs_scipy():
    rng = np.random.default_rng(0)
    d = 3
    m1, S1 = rng.normal(size=d), _spd(rng, d)
    m2, S2 = rng.normal(size=d), _spd(rng, d)
    p, q = MvNormal.from_mean_cov(m1, S1), MvNormal.from_mean_cov(m2, S2)
    np.testing.assert_allclose(p.mean, m1, atol=1e-12)
    np.testing.assert_allclose(p.cov, S1, atol=1e-12)
    np.testing.assert_allclose(p.second_moment(), S1 + np.outer(m1, m1), atol=1e-12)
    ref = stats.multivariate_normal(m1, S1)
    assert float(p.entropy()) == pytest.approx(ref.entropy(), abs=1e-12)
    x = rng.normal(size=(4, d))
    np.testing.assert_allclose(p.log_prob(jnp.asarray(x)), ref.logpdf(x), atol=1e-12)
    # KL closed form vs Monte Carlo of log p − log q
    xs = ref.rvs(size=200_000, random_state=rng)
    lr = ref.logpdf(xs) - stats.multivariate_normal(m2, S2).logpdf(xs)
    assert abs(float(p.kl(q)) - lr.mean()) < 5 * lr.std() / np.sqrt(len(lr))
    assert float(p.kl(p)) == pytest.approx(0.0, abs=1e-12)


def test_mvnormal_product_is_density_product_and_flat_is_identity():
    rng = np.random.default_rng(1)
    d = 2
    p = MvNormal.from_mean_cov(rng.normal(size=d), _spd(rng, d))
    q = MvNormal.from_mean_cov(rng.normal(size=d), _spd(rng, d))
    r = p * q
    xs = rng.normal(size=(5, d))
    diff = np.asarray(p.log_prob(xs) + q.log_prob(xs) - r.log_prob(xs))
    np.testing.assert_allclose(diff, diff[0], atol=1e-10)   # log p + log q − log(pq) is constant
    flat = MvNormal.flat(d)
    np.testing.assert_allclose((p * flat).xi, p.xi)
    np.testing.assert_allclose((p * flat).precision, p.precision)


def test_mvnormal_sample_matches_moments_and_seed_reproducible():
    m, S = np.array([1.0, -2.0]), np.array([[2.0, 0.6], [0.6, 0.5]])
    p = MvNormal.from_mean_cov(m, S)
    key = jax.random.PRNGKey(0)
    x = np.asarray(p.sample(key, (100_000,)))
    np.testing.assert_allclose(x.mean(0), m, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), S, atol=0.03)
    np.testing.assert_array_equal(np.asarray(p.sample(key, (3,))), np.asarray(p.sample(key, (3,))))


def test_mvnormal_validation():
    with pytest.raises(ValueError, match="cov.*positive-definite"):
        MvNormal.from_mean_cov(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="cov.*symmetric"):
        MvNormal.from_mean_cov(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov: expected shape"):
        MvNormal.from_mean_cov(np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="mean.*finite"):
        MvNormal.from_mean_cov(np.array([np.nan, 0.0]), np.eye(2))
    with pytest.raises(ValueError, match="precision.*semi-definite"):
        MvNormal.from_mean_precision(np.zeros(2), -np.eye(2))
    with pytest.raises(TypeError, match="mean"):
        MvNormal.from_mean_cov(None, np.eye(2))


# -------------------------------------------------------------------------------------- Wishart
def test_wishart_against_scipy_and_monte_carlo():
    rng = np.random.default_rng(2)
    d, nu = 3, 6.5
    S = _spd(rng, d)
    w = Wishart.create(nu, np.linalg.inv(S))
    ref = stats.wishart(df=nu, scale=S)
    np.testing.assert_allclose(w.mean(), nu * S, atol=1e-10)
    assert float(w.entropy()) == pytest.approx(ref.entropy(), abs=1e-9)
    X = ref.rvs(size=3, random_state=rng)
    np.testing.assert_allclose([float(w.log_prob(jnp.asarray(x))) for x in X], ref.logpdf(np.moveaxis(X, 0, -1)),
                               atol=1e-9)
    # E[log|W|]: closed form against the digamma formula written independently and Monte Carlo
    closed = sum(digamma((nu - j) / 2) for j in range(d)) + d * np.log(2) + np.linalg.slogdet(S)[1]
    assert float(w.expected_logdet()) == pytest.approx(closed, abs=1e-10)
    samples = ref.rvs(size=100_000, random_state=rng)
    ld = np.linalg.slogdet(samples)[1]
    assert abs(float(w.expected_logdet()) - ld.mean()) < 5 * ld.std() / np.sqrt(len(ld))


def test_wishart_kl_vs_monte_carlo_and_from_mean():
    rng = np.random.default_rng(3)
    d = 2
    S1, S2 = _spd(rng, d), _spd(rng, d)
    p, q = Wishart.create(7.0, np.linalg.inv(S1)), Wishart.create(5.0, np.linalg.inv(S2))
    X = stats.wishart(df=7.0, scale=S1).rvs(size=20_000, random_state=rng)
    lr = stats.wishart(df=7.0, scale=S1).logpdf(np.moveaxis(X, 0, -1)) - \
        stats.wishart(df=5.0, scale=S2).logpdf(np.moveaxis(X, 0, -1))
    assert abs(float(p.kl(q)) - lr.mean()) < 5 * lr.std() / np.sqrt(len(lr))
    assert float(p.kl(p)) == pytest.approx(0.0, abs=1e-10)
    target = _spd(rng, d)
    np.testing.assert_allclose(Wishart.from_mean(target, 9.0).mean(), target, atol=1e-12)


def test_wishart_validation():
    with pytest.raises(ValueError, match="df"):
        Wishart.create(0.5, np.eye(2))
    with pytest.raises(ValueError, match="inv_scale.*positive-definite"):
        Wishart.create(5.0, -np.eye(2))
    with pytest.raises(ValueError, match="inv_scale.*finite"):
        Wishart.create(5.0, np.full((2, 2), np.inf))


# --------------------------------------------------------------------------- discrete families
def test_categorical_entropy_kl_product():
    rng = np.random.default_rng(4)
    p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
    cp, cq = Categorical.from_probs(p), Categorical.from_probs(q)
    assert float(cp.entropy()) == pytest.approx(stats.entropy(p), abs=1e-12)
    assert float(cp.kl(cq)) == pytest.approx(stats.entropy(p, q), abs=1e-12)
    np.testing.assert_allclose((cp * cq).probs, p * q / np.sum(p * q), atol=1e-12)
    # impossible states: 0 log 0 = 0, and logits with -inf
    c = Categorical.from_logits(np.array([0.0, -np.inf, 1.0]))
    assert float(c.entropy()) == pytest.approx(stats.entropy([1, 0, np.e]), abs=1e-12)
    with pytest.raises(ValueError, match="probs"):
        Categorical.from_probs(np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="logits"):
        Categorical.from_logits(np.array([-np.inf, -np.inf]))


def test_dirichlet_against_scipy_and_monte_carlo():
    rng = np.random.default_rng(5)
    a, b = rng.uniform(0.5, 4.0, size=4), rng.uniform(0.5, 4.0, size=4)
    da, db = Dirichlet.create(a), Dirichlet.create(b)
    assert float(da.entropy()) == pytest.approx(stats.dirichlet(a).entropy(), abs=1e-10)
    np.testing.assert_allclose(da.mean(), stats.dirichlet(a).mean(), atol=1e-12)
    x = stats.dirichlet(a).rvs(size=200_000, random_state=rng)
    el = np.log(x).mean(0)
    np.testing.assert_allclose(da.expected_log(), el, atol=5 * np.log(x).std(0).max() / np.sqrt(len(x)))
    h = -(x * np.log(x)).sum(1)
    assert abs(float(da.expected_entropy_of_sample()) - h.mean()) < 5 * h.std() / np.sqrt(len(h))
    lr = stats.dirichlet(a).logpdf(x[:20_000].T) - stats.dirichlet(b).logpdf(x[:20_000].T)
    assert abs(float(da.kl(db)) - lr.mean()) < 5 * lr.std() / np.sqrt(len(lr))


def test_dirichlet_conjugate_update_is_bayes_rule():
    """Posterior after categorical counts n: p(θ|n) ∝ Dir(θ|α) Π θ_i^{n_i}."""
    rng = np.random.default_rng(6)
    a = rng.uniform(0.5, 3.0, size=3)
    counts = np.array([3.0, 0.0, 5.0])
    post = Dirichlet.create(a).update(counts)
    thetas = rng.dirichlet(np.ones(3), size=4)
    diff = [float(post.log_prob(t) - Dirichlet.create(a).log_prob(t)) - np.sum(counts * np.log(t)) for t in thetas]
    np.testing.assert_allclose(diff, diff[0], atol=1e-10)
    with pytest.raises(ValueError, match="concentration.*positive"):
        Dirichlet.create(np.array([1.0, 0.0]))


def test_matrix_dirichlet_columns():
    rng = np.random.default_rng(7)
    a = rng.uniform(0.5, 3.0, size=(3, 4))
    md = MatrixDirichlet.create(a)
    np.testing.assert_allclose(md.mean().sum(0), 1.0, atol=1e-12)
    for j in range(4):
        col = Dirichlet.create(a[:, j])
        np.testing.assert_allclose(md.expected_log()[:, j], col.expected_log(), atol=1e-12)
        assert float(md.column_entropies()[j]) == pytest.approx(stats.dirichlet(a[:, j]).entropy(), abs=1e-10)
    # exact E[h(A)] against Monte Carlo
    samples = np.stack([rng.dirichlet(a[:, j], size=100_000) for j in range(4)], axis=-1)  # (S, 3, 4)
    h = -(samples * np.log(samples)).sum(1)
    np.testing.assert_allclose(md.expected_column_entropy(), h.mean(0), atol=5 * h.std(0).max() / np.sqrt(len(h)))
    np.testing.assert_allclose(md.update(np.ones((3, 4))).concentration, a + 1.0)
    with pytest.raises(ValueError, match="concentration"):
        MatrixDirichlet.create(np.ones(3))


def test_small_spd_inverse_logdet_and_sweep_match_numpy():
    from pyrxaif.distributions.linalg import UNROLL_MAX_DIM, spd_inverse_logdet, sweep
    rng = np.random.default_rng(7)
    for d in (1, 3, 8, UNROLL_MAX_DIM + 2):                               # unrolled and LAPACK paths
        x = rng.normal(size=(4, d, d))
        s = x @ x.transpose(0, 2, 1) + 0.1 * np.eye(d)
        inv, logdet = jax.jit(spd_inverse_logdet)(jnp.asarray(s))
        np.testing.assert_allclose(inv, np.linalg.inv(s), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(logdet, np.linalg.slogdet(s)[1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(spd_inverse_logdet(jnp.asarray(s), inverse=False)[1], logdet, atol=1e-12)
    # sweep of [[P, R], [R^T, Q]] on the first p pivots: [[-P^-1, P^-1 R], [R^T P^-1, Q - R^T P^-1 R]]
    p, q = 5, 3
    x = rng.normal(size=(p + q, p + q))
    a = x @ x.T + np.eye(p + q)
    out = np.asarray(jax.jit(sweep, static_argnums=1)(jnp.asarray(a), p))
    pinv = np.linalg.inv(a[:p, :p])
    r = a[:p, p:]
    np.testing.assert_allclose(out[:p, :p], -pinv, atol=1e-12)
    np.testing.assert_allclose(out[:p, p:], pinv @ r, atol=1e-12)
    np.testing.assert_allclose(out[p:, :p], r.T @ pinv, atol=1e-12)
    np.testing.assert_allclose(out[p:, p:], a[p:, p:] - r.T @ pinv @ r, atol=1e-12)
    np.testing.assert_allclose(out, out.T, atol=1e-12)


def test_dirichlet_update_refuses_negative_or_non_finite_counts():
    from pyrxaif.distributions import Dirichlet, MatrixDirichlet
    d = Dirichlet.create(np.ones(3))
    md = MatrixDirichlet.create(np.ones((3, 2)))
    for bad in (np.array([1.0, -0.5, 0.0]), np.array([1.0, np.nan, 0.0]), np.array([np.inf, 0.0, 0.0])):
        with pytest.raises(ValueError, match="counts"):
            d.update(bad)
    with pytest.raises(ValueError, match="counts: expected non-negative"):
        md.update(-np.ones((3, 2)))
    with pytest.raises(ValueError, match="counts: shape"):
        md.update(np.ones((4, 2)))
    np.testing.assert_allclose(d.update(np.array([0.0, 2.0, 0.5])).concentration, [1.0, 3.0, 1.5])
