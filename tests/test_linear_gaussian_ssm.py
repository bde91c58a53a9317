"""LinearGaussianSSM (dynamax conventions) against an independent NumPy Kalman filter / RTS smoother
with emission matrices, inputs, biases and missing rows; sampling moments; VB learning.
(dynamax itself cannot be imported with jax 0.10.2: see docs/lgssm.md.)"""

import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.models import LinearGaussianSSM


def _kalman(p, y, u):
    """Textbook Kalman filter + RTS in NumPy (u_t enters y_t and z_{t-1} -> z_t); NaN rows skipped."""
    A, B, b, Q = (np.asarray(p.dynamics_weights), np.asarray(p.dynamics_input_weights),
                  np.asarray(p.dynamics_bias), np.asarray(p.dynamics_covariance))
    H, Dm, d, R = (np.asarray(p.emission_weights), np.asarray(p.emission_input_weights),
                   np.asarray(p.emission_bias), np.asarray(p.emission_covariance))
    T, D = len(y), A.shape[0]
    m, S = np.asarray(p.initial_mean), np.asarray(p.initial_covariance)
    fm, fs, pm, ps, ll = np.zeros((T, D)), np.zeros((T, D, D)), np.zeros((T, D)), np.zeros((T, D, D)), 0.0
    for t in range(T):
        pm[t], ps[t] = m, S
        if not np.any(np.isnan(y[t])):
            r = y[t] - H @ m - Dm @ u[t] - d
            Sy = H @ S @ H.T + R
            ll += -0.5 * (len(r) * np.log(2 * np.pi) + np.linalg.slogdet(Sy)[1] + r @ np.linalg.solve(Sy, r))
            K = S @ H.T @ np.linalg.inv(Sy)
            m, S = m + K @ r, S - K @ Sy @ K.T
        fm[t], fs[t] = m, S
        if t + 1 < T:
            m, S = A @ m + B @ u[t + 1] + b, A @ S @ A.T + Q
    sm, ss, cc = fm.copy(), fs.copy(), np.zeros((T - 1, D, D))
    for t in range(T - 2, -1, -1):
        pred_m, pred_s = A @ fm[t] + B @ u[t + 1] + b, A @ fs[t] @ A.T + Q
        G = fs[t] @ A.T @ np.linalg.inv(pred_s)
        sm[t] = fm[t] + G @ (sm[t + 1] - pred_m)
        ss[t] = fs[t] + G @ (ss[t + 1] - pred_s) @ G.T
        cc[t] = G @ ss[t + 1] + np.outer(sm[t], sm[t + 1])                  # E[z_t z_{t+1}ᵀ]
    return ll, fm, fs, sm, ss, cc


def _random_model(seed, D=3, P=2, U=2):
    rng = np.random.default_rng(seed)
    model = LinearGaussianSSM(D, P, U)
    a = rng.normal(size=(D, D))
    spd = lambda k: (lambda x: x @ x.T / k + 0.3 * np.eye(k))(rng.normal(size=(k, k)))   # noqa: E731
    params = model.initialize(initial_mean=rng.normal(size=D), initial_covariance=spd(D),
                              dynamics_weights=0.9 * a / np.max(np.abs(np.linalg.eigvals(a))),
                              dynamics_input_weights=rng.normal(size=(D, U)), dynamics_bias=rng.normal(size=D),
                              dynamics_covariance=spd(D), emission_weights=rng.normal(size=(P, D)),
                              emission_input_weights=rng.normal(size=(P, U)), emission_bias=rng.normal(size=P),
                              emission_covariance=spd(P))
    return model, params, rng


@pytest.mark.parametrize("method", ["sequential", "parallel"])
@pytest.mark.parametrize("seed", [0, 1])
def test_filter_and_smoother_equal_a_numpy_kalman_smoother(method, seed):
    model, params, rng = _random_model(seed)
    T = 25
    u = rng.normal(size=(T, 2))
    _, y = model.sample(params, jax.random.PRNGKey(seed), T, inputs=u)
    y = np.array(y)
    y[[3, 10, 11]] = np.nan                                                 # missing rows
    ll, fm, fs, sm, ss, cc = _kalman(params, y, u)
    post = model.smoother(params, y, u, method=method)
    filt = model.filter(params, y, u, method=method)
    # the known dynamics enter the core as posteriors of precision 1e12: agreement to ~1e-8
    np.testing.assert_allclose(float(post.marginal_loglik), ll, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(float(filt.marginal_loglik), ll, rtol=1e-9, atol=1e-7)
    for got, want in ((filt.filtered_means, fm), (filt.filtered_covariances, fs), (post.filtered_means, fm),
                      (post.smoothed_means, sm), (post.smoothed_covariances, ss),
                      (post.smoothed_cross_covariances, cc)):
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-8)


def test_more_states_than_emissions_and_batches():
    model, params, rng = _random_model(2, D=4, P=1, U=0)
    ys = np.stack([np.asarray(model.sample(params, jax.random.PRNGKey(k), 15)[1]) for k in range(3)])
    post = model.smoother(params, ys)
    for k in range(3):
        ll, fm, fs, sm, ss, cc = _kalman(params, ys[k], np.zeros((15, 0)))
        np.testing.assert_allclose(float(post.marginal_loglik[k]), ll, rtol=1e-9, atol=1e-7)
        np.testing.assert_allclose(np.asarray(post.smoothed_means[k]), sm, atol=1e-8)
        np.testing.assert_allclose(np.asarray(post.smoothed_covariances[k]), ss, atol=1e-8)


def test_sample_moments_match_the_model():
    model, params, _ = _random_model(3, D=2, P=2, U=0)
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    states, ys = jax.vmap(lambda k: model.sample(params, k, 3))(keys)
    A, b = np.asarray(params.dynamics_weights), np.asarray(params.dynamics_bias)
    m1 = A @ np.asarray(params.initial_mean) + b
    c1 = A @ np.asarray(params.initial_covariance) @ A.T + np.asarray(params.dynamics_covariance)
    se = np.sqrt(np.diag(c1) / len(keys))                                   # standard error of the mean
    assert np.all(np.abs(np.asarray(states[:, 1]).mean(0) - m1) < 4 * se)
    np.testing.assert_allclose(np.cov(np.asarray(states[:, 1]).T), c1, rtol=0.1, atol=0.1 * np.max(np.diag(c1)))
    H = np.asarray(params.emission_weights)
    cy = H @ c1 @ H.T + np.asarray(params.emission_covariance)
    np.testing.assert_allclose(np.cov(np.asarray(ys[:, 1]).T), cy, rtol=0.1, atol=0.1 * np.max(np.diag(cy)))


def test_fit_vb_recovers_the_dynamics_and_elbo_increases():
    model, params, rng = _random_model(4, D=2, P=3, U=1)
    params = params._replace(dynamics_weights=np.array([[0.85, -0.2], [0.2, 0.85]]))
    T = 400
    u = rng.normal(size=(T, 1))
    _, y = model.sample(params, jax.random.PRNGKey(4), T, inputs=u)
    start = params._replace(dynamics_weights=0.5 * np.eye(2), dynamics_input_weights=np.zeros((2, 1)),
                            dynamics_bias=np.zeros(2))
    fit = model.fit_vb(start, y, u, num_iters=30, fit_emissions=False)
    assert np.all(np.diff(fit.elbo) > -1e-6 * np.abs(fit.elbo[:-1]))
    np.testing.assert_allclose(np.asarray(fit.params.dynamics_weights), np.asarray(params.dynamics_weights), atol=0.15)
    np.testing.assert_allclose(np.asarray(fit.params.dynamics_input_weights),
                               np.asarray(params.dynamics_input_weights), atol=0.2)
    # the learned model explains the data as well as the true one (within a few nats), far better than the start
    ll_fit, ll_true = float(model.marginal_log_prob(fit.params, y, u)), float(model.marginal_log_prob(params, y, u))
    assert ll_fit > ll_true - 5 and ll_fit > float(model.marginal_log_prob(start, y, u)) + 20


def test_fit_vb_with_emission_learning_increases_the_elbo():
    model, params, rng = _random_model(5, D=2, P=3, U=0)
    _, y = model.sample(params, jax.random.PRNGKey(5), 300)
    start = model.initialize(jax.random.PRNGKey(9))
    fit = model.fit_vb(start, y, num_iters=15)
    assert np.all(np.diff(fit.elbo) > -1e-6 * np.abs(fit.elbo[:-1]))
    assert fit.elbo[-1] > fit.elbo[0] + 10


@pytest.mark.slow                     # the dense loop alone compiles for ~20 s; the structured step's fast tests
def test_fit_vb_structured_loop_equals_the_dense_one():  # are in test_lgssm.py / test_kronecker_normal.py
    """fit_vb's default (isotropic) prior runs q([A B b]) as a KroneckerSumNormal (issue 21 item 7); the
    ELBO trace, the fitted parameters and the returned dense posterior equal the loop on the dense prior."""
    from pyrxaif.inference import lgssm
    from pyrxaif.models import linear_gaussian_ssm as lg
    D, U = 2, 1
    model, params, rng = _random_model(12, D=D, P=2, U=U)
    u = rng.normal(size=(50, U))
    _, y = model.sample(params, jax.random.PRNGKey(3), 50, inputs=u)
    fit = model.fit_vb(params, y, u, num_iters=3)
    dense_params, dense_post, _, dense_trace = lg._fit_vb(  # noqa: SLF001  (the dense loop, for comparison)
        params, jax.numpy.asarray(y), jax.numpy.asarray(u), lgssm.make_prior(D, U + 1), 3, True, "sequential")
    np.testing.assert_allclose(fit.elbo, dense_trace, rtol=1e-10)
    assert fit.elbo[-1] > fit.elbo[0]
    ab = np.concatenate([fit.params.dynamics_weights, fit.params.dynamics_input_weights,
                         fit.params.dynamics_bias[:, None]], 1)
    np.testing.assert_allclose(ab.reshape(-1), dense_post.q_ab.mean, rtol=1e-9, atol=1e-12)
    for name in ("emission_weights", "emission_bias", "emission_covariance"):
        np.testing.assert_allclose(getattr(fit.params, name), getattr(dense_params, name), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.dynamics_posterior.q_ab.precision, dense_post.q_ab.precision, rtol=1e-10)
    np.testing.assert_allclose(fit.dynamics_posterior.q_ab.xi, dense_post.q_ab.xi, rtol=1e-9, atol=1e-12)


def test_bad_input_is_named():
    model, params, _ = _random_model(0)
    with pytest.raises(ValueError, match="emissions"):
        model.filter(params, np.zeros((5, 7)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="inputs"):
        model.filter(params, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="dynamics_covariance"):
        model.initialize(dynamics_covariance=-np.eye(3))
    with pytest.raises(ValueError, match="state_dim"):
        LinearGaussianSSM(0, 2)


def test_params_are_validated_once_per_immutable_object(monkeypatch):
    """filter/smoother skip the parameter checks for a ParamsLGSSM of JAX arrays already validated for a
    model of the same dimensions (its values cannot change); a ParamsLGSSM of NumPy arrays (mutable)
    is checked on every call, and parameters validated for other dimensions are checked again."""
    from pyrxaif.models import linear_gaussian_ssm as lg
    model, params, rng = _random_model(3, D=2, P=2, U=1)
    y, u = rng.normal(size=(20, 2)), rng.normal(size=(20, 1))
    calls = []
    check = lg._check_scales                                          # noqa: SLF001  (counting the expensive check)
    monkeypatch.setattr(lg, "_check_scales", lambda p, prefix: (calls.append(prefix), check(p, prefix))[1])
    first = model.filter(params, y, u)
    again = model.filter(params, y, u)
    assert calls == [] and float(first.marginal_loglik) == float(again.marginal_loglik)   # from initialize
    mutable = lg.ParamsLGSSM(*(np.array(v) for v in params))
    np.testing.assert_allclose(model.filter(mutable, y, u).filtered_means, first.filtered_means, rtol=1e-12)
    mutable.emission_covariance[:] = -np.eye(2)                       # invalid after its first use
    with pytest.raises(ValueError, match="params.emission_covariance"):
        model.filter(mutable, y, u)
    other = LinearGaussianSSM(3, 2, 1)
    with pytest.raises(ValueError, match="params.initial_mean"):
        other.filter(params, y, u)
    assert calls == ["params."]            # the NumPy params' first call; the later calls failed before this check
