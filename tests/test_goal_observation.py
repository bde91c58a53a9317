"""Goal-observation node rules against brute-force minimisation of the local free energy."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from scipy import integrate, optimize

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.distributions import MatrixDirichlet
from pyrxaif.rules import goal_observation as go

rng = np.random.default_rng(0)


def _rand_A(m, n, rng):
    A = rng.gamma(1.0, size=(m, n)) + 0.05
    return A / A.sum(0, keepdims=True)


def _rand_p(n, rng):
    p = rng.gamma(1.0, size=n) + 0.05
    return p / p.sum()


def _softmax(v):
    v = v - v.max()
    e = np.exp(v)
    return e / e.sum()


def _min_simplex(f, n, seed=0):
    """Minimise f over the simplex (softmax parametrisation, several starts)."""
    best = None
    r = np.random.default_rng(seed)
    for _ in range(6):
        res = optimize.minimize(lambda u: f(_softmax(u)), r.normal(size=n), method="BFGS",
                                options={"gtol": 1e-10, "maxiter": 5000})
        if best is None or res.fun < best.fun:
            best = res
    return _softmax(best.x), best.fun


def _kl(s, d):
    return float(np.sum(s * (np.log(s) - np.log(d))))


def _h(A):
    return -np.sum(A * np.log(A), axis=0)


def test_bethe_missing_energy_is_min_over_x_and_message_is_vmp():
    m, n = 4, 3
    A = _rand_A(m, n, rng)
    LA = np.log(A)
    lc = np.log(_rand_p(m, rng))
    s = _rand_p(n, rng)
    # U = min_q(x) Σ_x q(x)[−(L̄s)_x − ℓ_x + log q(x)]
    qx, fmin = _min_simplex(lambda q: float(q @ (-(LA @ s) - lc + np.log(q))), m)
    assert np.isclose(float(go.bethe_average_energy(s, LA, lc)), fmin, atol=1e-7)
    np.testing.assert_allclose(go.bethe_internal_x(s, LA, lc), qx, atol=1e-5)
    # message to z: exp(E_q(x)[log A(x|z)]), i.e. ∝ exp(−∂/∂s of the average energy at fixed q(x))
    grad = -(LA.T @ qx)
    np.testing.assert_allclose(np.exp(go.bethe_message_z(s, LA, lc).logits), _softmax(-grad), atol=1e-5)
    np.testing.assert_allclose(go.bethe_message_A(s, LA, lc).concentration, np.outer(qx, s) + 1, atol=1e-5)
    np.testing.assert_allclose(go.bethe_message_c(s, LA, lc).concentration, qx + 1, atol=1e-5)


def test_bethe_coordinate_descent_matches_joint_minimum():
    """Iterating the Bethe messages with an incoming d reaches the minimum of the local BFE."""
    m, n = 3, 3
    A = _rand_A(m, n, rng)
    LA = np.log(A)
    lc = np.log(_rand_p(m, rng))
    d = _rand_p(n, rng)
    s = np.full(n, 1 / n)
    for _ in range(300):
        s = _softmax(np.log(d) + go.bethe_message_z(s, LA, lc).logits)
    f = lambda s_: float(go.bethe_average_energy(s_, LA, lc)) + _kl(s_, d)  # noqa: E731
    s_opt, fmin = _min_simplex(f, n)
    assert f(s) <= fmin + 1e-7
    np.testing.assert_allclose(s, s_opt, atol=1e-4)


def test_observed_rules_enumeration():
    m, n = 4, 3
    A = _rand_A(m, n, rng)
    LA = np.log(A)
    lc = np.log(_rand_p(m, rng))
    s = _rand_p(n, rng)
    x = np.eye(m)[2]
    U = sum(-x[i] * s[j] * LA[i, j] for i in range(m) for j in range(n)) - lc[2]
    assert np.isclose(float(go.observed_average_energy(x, s, LA, lc)), U)
    # q(z) ∝ d·μ(z) minimises U(s) + KL(s‖d)
    d = _rand_p(n, rng)
    s_opt, _ = _min_simplex(lambda s_: float(go.observed_average_energy(x, s_, LA, lc)) + _kl(s_, d), n)
    q = _softmax(np.log(d) + np.asarray(go.observed_message_z(x, LA).logits))
    np.testing.assert_allclose(q, s_opt, atol=1e-5)
    np.testing.assert_allclose(go.observed_message_A(x, s).concentration, np.outer(x, s) + 1)
    np.testing.assert_allclose(go.observed_message_c(x).concentration, x + 1)


def test_gfe_energy_enumeration_and_decomposition():
    m, n = 4, 3
    A = _rand_A(m, n, rng)
    lc = np.log(_rand_p(m, rng))
    s = _rand_p(n, rng)
    st = go.a_stats_point(A)
    # explicit enumeration of E_{q(z)p(x|z)}[−log p(x|z)] + Σ_x p(x) log(p(x)/c(x))
    amb = sum(-s[j] * A[i, j] * np.log(A[i, j]) for i in range(m) for j in range(n))
    px = [sum(A[i, j] * s[j] for j in range(n)) for i in range(m)]
    risk = sum(px[i] * (np.log(px[i]) - lc[i]) for i in range(m))
    assert np.isclose(float(go.gfe_average_energy(s, st.mean, st.entropy, lc)), amb + risk)
    # ∂U_G/∂ℓ = −Ās  → the VMP message to c is Dir(Ās + 1)
    g = jax.grad(lambda l_: go.gfe_average_energy(jnp.asarray(s), st.mean, st.entropy, l_))(jnp.asarray(lc))
    np.testing.assert_allclose(-np.asarray(g), A @ s, atol=1e-12)
    np.testing.assert_allclose(go.gfe_message_c(s, A).concentration, A @ s + 1)


def test_gfe_direct_message_is_negative_gradient():
    m, n = 4, 3
    A = _rand_A(m, n, rng)
    lc = np.log(_rand_p(m, rng))
    s = _rand_p(n, rng)
    st = go.a_stats_point(A)
    eps = 1e-6
    U = lambda s_: float(go.gfe_average_energy(s_, st.mean, st.entropy, lc))  # noqa: E731
    grad = np.array([(U(s + eps * e) - U(s - eps * e)) / (2 * eps) for e in np.eye(n)])
    np.testing.assert_allclose(np.exp(go.gfe_message_z_direct(s, A, st.entropy, lc).logits), _softmax(-grad),
                               atol=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gfe_newton_fixed_point_and_brute_force(seed):
    r = np.random.default_rng(seed)
    m, n = 5, 4
    A = _rand_A(m, n, r)
    lc = np.log(_rand_p(m, r))
    d = _rand_p(n, r)
    st = go.a_stats_point(A)
    s_star = np.asarray(go.gfe_marginal_z_newton(np.log(d), np.full(n, 1 / n), A, st.entropy, lc))
    # fixed-point equation s = σ(−h̄ + Āᵀℓ − Āᵀ log(Ās) + log d)
    rhs = _softmax(-st.entropy + A.T @ lc - A.T @ np.log(A @ s_star) + np.log(d))
    np.testing.assert_allclose(s_star, rhs, atol=1e-10)
    # = minimiser of U_G(s) + KL(s‖d)
    f = lambda s_: float(go.gfe_average_energy(s_, A, st.entropy, lc)) + _kl(s_, d)  # noqa: E731
    s_opt, _ = _min_simplex(f, n, seed)
    np.testing.assert_allclose(s_star, s_opt, atol=1e-5)
    # the outgoing message combined with d gives back s*
    rho = np.exp(go.gfe_message_z_newton(np.log(d), np.full(n, 1 / n), A, st.entropy, lc).logits)
    np.testing.assert_allclose(_softmax(np.log(d) + np.log(rho)), s_star, atol=1e-9)


def test_newton_jacobian_matches_autodiff():
    r = np.random.default_rng(4)
    m, n = 5, 4
    A = _rand_A(m, n, r)
    lc = np.log(_rand_p(m, r))
    log_d = np.log(_rand_p(n, r))
    h = go.a_stats_point(A).entropy

    def g(u):
        s = jax.nn.softmax(u)
        return u - jax.nn.log_softmax(-h + A.T @ lc - A.T @ jnp.log(A @ s) + log_d)

    u = jnp.asarray(r.normal(size=n))
    s = jax.nn.softmax(u)
    q = jax.nn.softmax(-h + A.T @ lc - A.T @ jnp.log(A @ s) + log_d)
    J = go._newton_jacobian(s, A @ s, q, jnp.asarray(A))
    np.testing.assert_allclose(np.asarray(J), np.asarray(jax.jacfwd(g)(u)), atol=1e-12)


def _direct_is(a_post, noise, s, lc, Abar, mask):
    """Importance sampling of q(A) ∝ Dir(a_post)·Π_k μ_k(A)^mask_k written out in NumPy."""
    from scipy.special import logsumexp
    lg = np.asarray(go.log_gamma_from_noise(jnp.asarray(a_post), noise))
    ls = lg - logsumexp(lg, axis=1, keepdims=True)                  # (N, m, n)
    A = np.exp(ls)
    h = -np.sum(A * ls, axis=1)                                      # (N, n)
    log_mu = np.zeros(A.shape[0])
    for k in range(s.shape[0]):
        v = lc[k] - np.log(Abar @ s[k])
        log_mu += mask[k] * (np.einsum("nij,j,i->n", A, s[k], v) - h @ s[k])
    w = np.exp(log_mu - logsumexp(log_mu))
    return dict(mean=np.einsum("n,nij->ij", w, A), log_mean=np.einsum("n,nij->ij", w, np.maximum(ls, go.LOG_FLOOR)),
                entropy=w @ h, lm=np.einsum("n,nij->ij", w, ls), kl=np.sum(w * np.log(len(w) * w)))


@pytest.mark.parametrize("rows", [(), (2,), (1, 1), (0, 3)])
def test_incremental_importance_sampler_equals_direct(rows):
    """Prepared fixed rows + per-call changing rows = the plain estimator on the full proposal."""
    r = np.random.default_rng(len(rows) + 10)
    m, n, K, N = 5, 3, 2, 40
    a = r.uniform(0.1, 3.0, (m, n))
    a_post = a.copy()
    for i in set(rows):
        a_post[i] += r.uniform(0.0, 2.0, n)
    s = np.stack([_rand_p(n, r) for _ in range(K)])
    lc = np.log(np.stack([_rand_p(m, r) for _ in range(K)]))
    Abar = _rand_A(m, n, r)
    mask = np.array([1.0, 0.0]) if rows else np.ones(K)
    noise = go.gamma_noise(jax.random.PRNGKey(len(rows)), (N, m, n))
    idx = jnp.asarray(rows, jnp.int32)
    prep = jax.jit(go.is_prepare)(jnp.asarray(a), noise, idx)
    res = jax.jit(go.is_posterior_rows)(prep, jnp.asarray(a_post)[idx], s, lc, Abar, weight_mask=mask)
    want = _direct_is(a_post, noise, s, lc, Abar, mask)
    np.testing.assert_allclose(np.asarray(res.stats.mean), want["mean"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(np.asarray(res.stats.log_mean), want["log_mean"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(res.stats.entropy), want["entropy"], rtol=1e-10)
    np.testing.assert_allclose(float(res.kl_to_proposal), want["kl"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(res.log_mean_rows), want["lm"][list(rows)], rtol=1e-10)
    # the public one-shot estimator agrees on the same draws
    from scipy.special import logsumexp
    lg = np.asarray(go.log_gamma_from_noise(jnp.asarray(a_post), noise))
    isp = go.gfe_posterior_A(None, MatrixDirichlet(jnp.asarray(a_post)), s, lc, Abar, weight_mask=mask,
                             log_samples=jnp.asarray(lg - logsumexp(lg, axis=1, keepdims=True)))
    np.testing.assert_allclose(np.asarray(isp.stats.mean), want["mean"], rtol=1e-10, atol=1e-13)
    # the Dirichlet normaliser ratio restricted to the changed rows
    from scipy.special import gammaln

    def log_b(c):                                       # Σ_columns log B(c_j), the Dirichlet normalisers
        return np.sum(gammaln(c)) - np.sum(gammaln(np.sum(c, axis=0)))
    want_ratio = log_b(np.asarray(a_post)) - log_b(np.asarray(a))
    got = float(go.log_normalizer_ratio_rows(jnp.asarray(a), idx, prep.row_weight, jnp.asarray(a_post)[idx]))
    assert np.isclose(got, want_ratio, atol=1e-10)


def test_gfe_log_message_A_formula():
    m, n = 3, 2
    A, Abar = _rand_A(m, n, rng), _rand_A(m, n, rng)
    s = _rand_p(n, rng)
    lc = np.log(_rand_p(m, rng))
    want = (A @ s) @ (lc - np.log(Abar @ s)) - s @ _h(A)
    assert np.isclose(float(go.gfe_log_message_A(A, s, Abar, lc)), want)


def test_log_gamma_sampler_moments():
    key = jax.random.PRNGKey(0)
    for a in (0.1, 1.0, 7.0):
        lg = go.log_gamma_from_noise(jnp.asarray(a), go.gamma_noise(key, (100_000,)))
        g = np.exp(np.asarray(lg))
        assert abs(g.mean() - a) < 0.02 * max(a, 1.0) + 0.005
        assert abs(g.var() - a) < 0.05 * max(a, 1.0) + 0.01


def test_importance_sampled_q_A_matches_quadrature():
    """2×1 matrix (one Beta column): E_q[A] and E_q[h(A)] under q ∝ Beta(a)·μ(A) by quadrature."""
    a = np.array([[2.0], [1.5]])
    s = np.array([[1.0]])
    lc = np.log(np.array([[0.8, 0.2]]))
    Abar = a / a.sum(0)
    v = lc[0] - np.log(Abar[:, 0])

    def unnorm(p):
        Acol = np.array([p, 1 - p])
        h = -np.sum(Acol * np.log(Acol))
        return p ** (a[0, 0] - 1) * (1 - p) ** (a[1, 0] - 1) * np.exp(Acol @ v - h)

    Z = integrate.quad(unnorm, 0, 1)[0]
    mean_p = integrate.quad(lambda p: p * unnorm(p), 0, 1)[0] / Z
    mean_h = integrate.quad(lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p)) * unnorm(p), 0, 1)[0] / Z
    isp = go.gfe_posterior_A(jax.random.PRNGKey(3), MatrixDirichlet(jnp.asarray(a)), s, lc, Abar,
                             num_samples=30_000)
    assert abs(float(isp.stats.mean[0, 0]) - mean_p) < 6e-3
    assert abs(float(isp.stats.entropy[0]) - mean_h) < 6e-3
    # same key -> identical estimate
    isp2 = go.gfe_posterior_A(jax.random.PRNGKey(3), MatrixDirichlet(jnp.asarray(a)), s, lc, Abar,
                              num_samples=30_000)
    assert float(isp.stats.mean[0, 0]) == float(isp2.stats.mean[0, 0])


def test_dirichlet_stats_exact():
    a = np.array([[2.0, 0.5], [1.0, 3.0], [0.7, 0.2]])
    st = go.a_stats_dirichlet(MatrixDirichlet(jnp.asarray(a)))
    np.testing.assert_allclose(st.mean, a / a.sum(0))
    samples = np.asarray(MatrixDirichlet(jnp.asarray(a)).sample(jax.random.PRNGKey(0), (40_000,)))
    h = -np.sum(np.where(samples > 0, samples * np.log(np.maximum(samples, 1e-300)), 0), axis=1)
    np.testing.assert_allclose(st.entropy, h.mean(0), atol=1e-2)


def test_bad_inputs():
    A = _rand_A(3, 2, rng)
    s = np.array([0.5, 0.5])
    lc = np.log(np.full(3, 1 / 3))
    with pytest.raises(ValueError, match="s"):
        go.gfe_average_energy(np.array([0.5, 0.6]), A, _h(A), lc)
    with pytest.raises(ValueError, match="s"):
        go.gfe_average_energy(np.array([1.0, 0, 0]), A, _h(A), lc)
    with pytest.raises(ValueError, match="log_c"):
        go.gfe_average_energy(s, A, _h(A), lc[:2])
    with pytest.raises(ValueError, match="A_bar"):
        go.gfe_average_energy(s, np.full((3, 2), np.nan), _h(A), lc)
    with pytest.raises(ValueError, match="x"):
        go.observed_average_energy(np.array([0.0, 0.5, 0.2]), s, np.log(A), lc)
    with pytest.raises(TypeError, match="proposal"):
        go.gfe_posterior_A(jax.random.PRNGKey(0), A, s[None], lc[None], A)
    with pytest.raises(ValueError, match="A"):
        go.a_stats_point(np.ones((3, 2)))
    with pytest.raises(ValueError, match="log_d"):
        go.gfe_marginal_z_newton(np.zeros(3), s, A, _h(A), lc)
