"""LinearGaussianSSM equals dynamax.linear_gaussian_ssm (the peer library) to 1e-8 in float64:
filtered / smoothed means and covariances, lag-one cross-covariances and the marginal
log-likelihood, on random models with emission matrices, inputs, biases and missing rows."""

import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.models import LinearGaussianSSM

dx = pytest.importorskip("dynamax.linear_gaussian_ssm", reason="dynamax (dev extra) not installed")


def _random(seed, D, P, U):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(D, D))
    spd = lambda k: (lambda x: x @ x.T / k + 0.3 * np.eye(k))(rng.normal(size=(k, k)))   # noqa: E731
    kw = dict(initial_mean=rng.normal(size=D), initial_covariance=spd(D),
              dynamics_weights=0.9 * a / np.max(np.abs(np.linalg.eigvals(a))),
              dynamics_input_weights=rng.normal(size=(D, U)), dynamics_bias=rng.normal(size=D),
              dynamics_covariance=spd(D), emission_weights=rng.normal(size=(P, D)),
              emission_input_weights=rng.normal(size=(P, U)), emission_bias=rng.normal(size=P),
              emission_covariance=spd(P))
    return kw, rng


@pytest.mark.parametrize("seed, D, P, U, missing", [(0, 3, 2, 2, False), (1, 4, 2, 1, True), (2, 2, 3, 0, True)])
@pytest.mark.parametrize("method", ["sequential", "parallel"])
def test_equals_dynamax(seed, D, P, U, missing, method):
    kw, rng = _random(seed, D, P, U)
    T = 30
    ours = LinearGaussianSSM(D, P, U)
    params = ours.initialize(**kw)
    u = rng.normal(size=(T, U))
    _, y = ours.sample(params, jax.random.PRNGKey(seed), T, inputs=u if U else None)
    y = np.array(y)
    rows = [2, 7, 8, 20] if missing else []
    y[rows] = np.nan
    # dynamax has no missing-data convention: give it time-varying emission weights that are zero on
    # the missing rows (y_t = d there), which adds log N(d | d, R) per missing row to its log-likelihood
    H, Dm = np.repeat(kw["emission_weights"][None], T, 0), np.repeat(kw["emission_input_weights"][None], T, 0)
    H[rows], Dm[rows] = 0.0, 0.0
    y_dx = y.copy()
    y_dx[rows] = kw["emission_bias"]
    R = kw["emission_covariance"]
    offset = len(rows) * (-0.5 * P * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(R)[1])
    theirs = dx.LinearGaussianSSM(D, P, U)
    kw_dx = dict(kw, emission_weights=H, emission_input_weights=Dm)
    p_dx, _ = theirs.initialize(jax.random.PRNGKey(0), **{k: jax.numpy.asarray(v) for k, v in kw_dx.items()})
    ref = dx.lgssm_smoother(p_dx, jax.numpy.asarray(y_dx), jax.numpy.asarray(u) if U else None)
    post = ours.smoother(params, y, u if U else None, method=method)
    filt = ours.filter(params, y, u if U else None, method=method)
    want_ll = float(ref.marginal_loglik) - offset
    np.testing.assert_allclose(float(post.marginal_loglik), want_ll, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(float(filt.marginal_loglik), want_ll, rtol=1e-10, atol=1e-8)
    for field in ("filtered_means", "filtered_covariances", "smoothed_means", "smoothed_covariances",
                  "smoothed_cross_covariances"):
        np.testing.assert_allclose(np.asarray(getattr(post, field)), np.asarray(getattr(ref, field)), atol=1e-8,
                                   err_msg=field)
    np.testing.assert_allclose(np.asarray(filt.filtered_means), np.asarray(ref.filtered_means), atol=1e-8)
