"""Property-based tests (hypothesis) of the continuous side's public functions and environments, the
checkpoint format and the pixel-control agent's entry points: generated input, valid or not, gives a
ValueError/TypeError that names the offending argument or a finite result that agrees with an oracle
(dense Gaussian conditioning, closed forms, the saved arrays); never a NaN, never a JAX-internal error.

Runtime: every jitted call keeps the same few shapes (D = 2 states, P = 3 emissions, U = 1 input,
T = 4 steps), so each compiled program is built once per session."""

import dataclasses
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyrxaif  # noqa: F401  (float64)
from pyrxaif import checkpoint as ckpt
from pyrxaif.agents import pixel_control as pc
from pyrxaif.agents.pixel_tasks import PendulumTask
from pyrxaif.distributions import MvNormal, Wishart
from pyrxaif.envs.digits import RotatingDigits, rotate_image
from pyrxaif.envs.pendulum import PixelPendulum, pendulum_step, render_pendulum, wrap_angle
from pyrxaif.inference import em, lgssm
from pyrxaif.models import LinearGaussianSSM
from pyrxaif.models.linear_gaussian_ssm import ParamsLGSSM
from pyrxaif.nn import vae

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])
NAMED = (ValueError, TypeError)
D, P, U, T = 2, 3, 1, 4

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
small = st.floats(-3.0, 3.0)
special = st.sampled_from([np.nan, np.inf, -np.inf])
scales = st.sampled_from([10.0 ** k for k in (-320, -300, -200, -100, -20, -12, -8, -4, -1, 0, 1, 4, 8, 12, 20, 100, 200, 300)])
near_scales = st.sampled_from([0.01, 0.1, 1.0, 10.0])
model_scales = st.one_of(near_scales, near_scales, scales)
anything = st.one_of(st.integers(-5, 20), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2),
                     st.none(), st.lists(st.integers(0, 3), max_size=3))


def is_count(n):
    return isinstance(n, int) and not isinstance(n, bool) and n >= 1


def named(exc, *names):
    """The error message names one of ``names``."""
    assert any(n in str(exc) for n in names), f"{type(exc).__name__} does not name {names}: {exc}"


# ============================================================================ dense Gaussian oracle
def dense_posterior(params, y, u, per_entry=False):
    """Log-likelihood of the observed rows of y (T, P) (NaN rows missing; ``per_entry``: NaN entries
    missing), filtered and smoothed means of the LinearGaussianSSM by conditioning the joint Gaussian of
    (z_0..z_{T-1}, y_0..y_{T-1}) directly."""
    m0, P0, A, B, b, Q, H, Dm, d, R = (np.asarray(x, np.float64) for x in params)
    n_t, n_s = len(y), len(m0)
    mean = np.zeros((n_t, n_s))
    cov = np.zeros((n_t, n_s, n_t, n_s))
    mean[0], cov[0, :, 0, :] = m0, P0
    for t in range(1, n_t):
        mean[t] = A @ mean[t - 1] + B @ u[t] + b
        for s in range(t):
            cov[t, :, s, :] = A @ cov[t - 1, :, s, :]
            cov[s, :, t, :] = cov[t, :, s, :].T
        cov[t, :, t, :] = A @ cov[t - 1, :, t - 1, :] @ A.T + Q
    sz = cov.reshape(n_t * n_s, n_t * n_s)
    hb = np.kron(np.eye(n_t), H)
    ym = (mean @ H.T + u @ Dm.T + d).reshape(-1)
    sy = hb @ sz @ hb.T + np.kron(np.eye(n_t), R)
    szy = sz @ hb.T
    rows = ~np.isnan(y).reshape(-1) if per_entry else np.repeat(~np.any(np.isnan(y), -1), y.shape[1])

    def condition(keep):
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            return 0.0, mean.reshape(-1)
        s = sy[np.ix_(idx, idx)]
        r = np.nan_to_num(y.reshape(-1))[idx] - ym[idx]
        chol = np.linalg.cholesky(s)
        a = np.linalg.solve(chol, r)
        ll = -0.5 * idx.size * np.log(2 * np.pi) - np.sum(np.log(np.diag(chol))) - 0.5 * a @ a
        return ll, mean.reshape(-1) + szy[:, idx] @ np.linalg.solve(s, r)

    ll, zs = condition(rows)
    filt = np.stack([condition(rows & (np.arange(rows.size) < (t + 1) * y.shape[1]))[1].reshape(n_t, n_s)[t]
                     for t in range(n_t)])
    return ll, filt, zs.reshape(n_t, n_s)


# ============================================================================ LinearGaussianSSM
SHAPES = {"initial_mean": (D,), "initial_covariance": (D, D), "dynamics_weights": (D, D),
          "dynamics_input_weights": (D, U), "dynamics_bias": (D,), "dynamics_covariance": (D, D),
          "emission_weights": (P, D), "emission_input_weights": (P, U), "emission_bias": (P,),
          "emission_covariance": (P, P)}
COVARIANCES = ("initial_covariance", "dynamics_covariance", "emission_covariance")


@pytest.fixture(scope="module")
def ssm():
    return LinearGaussianSSM(D, P, U)


def spd(draw, n, scale):
    """scale · (L Lᵀ + I/10) for a drawn L: symmetric positive definite at any scale."""
    low = draw(hnp.arrays(np.float64, (n, n), elements=small))
    return scale * (low @ low.T + 0.1 * np.eye(n))


@st.composite
def keyword_values(draw):
    name = draw(st.sampled_from(sorted(SHAPES)))
    shape = SHAPES[name]
    kind = draw(st.sampled_from(["array", "shape", "spd", "asymmetric", "ints", "complex", "text", "ragged", "bool"]))
    if kind == "array":
        value = draw(hnp.arrays(np.float64, shape, elements=st.one_of(small, special)))
    elif kind == "shape":
        value = draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), elements=small))
    elif kind in ("spd", "asymmetric"):
        value = spd(draw, shape[0], draw(scales)) if len(shape) == 2 and shape[0] == shape[1] else np.ones(shape)
        if kind == "asymmetric":
            value = value + np.triu(np.ones_like(value), 1)
    elif kind == "ints":
        value = np.ones(shape, int) if len(shape) == 1 else np.eye(*shape, dtype=int) * 2
    elif kind == "complex":
        value = np.ones(shape) * (1 + 1j)
    elif kind == "bool":
        value = np.ones(shape, bool)
    else:
        value = {"text": "ab", "ragged": [[1.0], [1.0, 2.0]]}[kind]
    return name, value


@SETTINGS
@given(keyword=keyword_values())
def test_initialize_takes_each_keyword_or_refuses_it_by_name(ssm, keyword):
    name, value = keyword
    try:
        params = ssm.initialize(jax.random.PRNGKey(0), **{name: value})
    except NAMED as e:
        named(e, name)
        return
    got = np.asarray(getattr(params, name))
    np.testing.assert_array_equal(got, np.asarray(value, np.float64))
    assert not isinstance(value, (str, list)) and np.asarray(value).dtype.kind in "fiub"
    for cov in COVARIANCES:
        c = np.asarray(getattr(params, cov))
        assert np.all(np.isfinite(c)) and np.all(np.linalg.eigvalsh(c) > 0) and np.allclose(c, c.T)


@st.composite
def model_params(draw):
    """Keywords of a random model: stable dynamics, covariances at a drawn scale each."""
    a = draw(hnp.arrays(np.float64, (D, D), elements=st.floats(-0.6, 0.6)))
    return dict(initial_mean=draw(hnp.arrays(np.float64, D, elements=small)),
                initial_covariance=spd(draw, D, draw(model_scales)), dynamics_weights=a,
                dynamics_input_weights=draw(hnp.arrays(np.float64, (D, U), elements=small)),
                dynamics_bias=draw(hnp.arrays(np.float64, D, elements=small)),
                dynamics_covariance=spd(draw, D, draw(model_scales)),
                emission_weights=draw(hnp.arrays(np.float64, (P, D), elements=small)),
                emission_input_weights=draw(hnp.arrays(np.float64, (P, U), elements=small)),
                emission_bias=draw(hnp.arrays(np.float64, P, elements=small)),
                emission_covariance=spd(draw, P, draw(model_scales)))


@st.composite
def emissions_with_gaps(draw, shape=(T, P)):
    """Emissions in a normal range with whole rows missing (NaN) at random and, sometimes, one entry
    replaced by NaN (its row is then missing), ±inf or a magnitude beyond float64's squares."""
    y = draw(hnp.arrays(np.float64, shape, elements=small))
    y[draw(hnp.arrays(np.bool_, shape[:-1]))] = np.nan
    bad = draw(st.sampled_from([None, None, None, np.nan, np.inf, -np.inf, 1e200]))
    if bad is not None:
        y[tuple(draw(st.integers(0, n - 1)) for n in shape)] = bad
    return y


@SETTINGS
@given(kw=model_params(), y=emissions_with_gaps(),
       u=st.one_of(hnp.arrays(np.float64, (T, U), elements=small), hnp.arrays(np.float64, (T, U), elements=special),
                   st.sampled_from([None, np.zeros((T - 1, U)), np.zeros((T, U + 1)), np.zeros(T), np.full((T, U), 1e150)])))
def test_smoother_agrees_with_dense_conditioning_or_refuses_by_name(ssm, kw, y, u):
    try:
        params = ssm.initialize(**kw)
        post = ssm.smoother(params, y, u)
    except NAMED as e:
        named(e, *COVARIANCES, "emissions", "inputs")
        assert not str(e).startswith("emissions") or np.any(np.abs(y) > 1e100)
        assert not str(e).startswith("inputs") or u is None or u.shape != (T, U) or not np.all(np.abs(u) <= 1e100)
        return
    assert u is not None and u.shape == (T, U) and np.all(np.abs(u) <= 1e100)
    event("accepted")
    assert not np.any(np.abs(y) > 1e100), "inf or overflowing emissions were accepted"
    ll, filt, smooth = dense_posterior(params, y, u)
    fields = [np.asarray(x) for x in post]
    assert all(np.all(np.isfinite(x)) for x in fields), "non-finite result"
    # information form: log Z sums terms of size (largest precision) · |state|², so its absolute
    # precision is ~eps times that (not relative to log Z itself)
    scale = 1.0 + np.abs(smooth).max()
    state_prec = max(1.0 / np.linalg.eigvalsh(np.asarray(params[i])).min() for i in (1, 5))
    assert float(post.marginal_loglik) == pytest.approx(ll, rel=1e-6, abs=1e-6 + 1e-14 * state_prec * scale ** 2 * T)
    np.testing.assert_allclose(np.asarray(post.smoothed_means), smooth, atol=1e-6 * scale)
    np.testing.assert_allclose(np.asarray(post.filtered_means), filt, atol=1e-6 * scale)


def test_small_dynamics_noise_keeps_the_log_likelihood_exact(ssm):
    """Regression: known dynamics entered as q([A B b]) with isotropic precision 1e12 added a correction
    ~Q⁻¹/1e12 per step (log-likelihood off by 2e-3 at Q = 1e-8 I, by 0.2 at 1e-10 I)."""
    rng = np.random.default_rng(0)
    y, u = rng.normal(size=(T, P)), rng.normal(size=(T, U))
    for q in (1e-8, 1e-9):
        params = ssm.initialize(dynamics_covariance=q * np.eye(D), dynamics_input_weights=np.ones((D, U)),
                                emission_weights=rng.normal(size=(P, D)), emission_covariance=np.eye(P))
        ll, _, smooth = dense_posterior(params, y, u)
        post = ssm.smoother(params, y, u)
        assert float(post.marginal_loglik) == pytest.approx(ll, rel=1e-7)
        np.testing.assert_allclose(np.asarray(post.smoothed_means), smooth, atol=1e-6)


def counts_or(*good):
    """Iteration/step counts: the valid ``good`` ones (few: each may be a static shape) or anything else."""
    return st.one_of(st.sampled_from(good), st.integers(-3, 0), st.floats(allow_nan=True), st.booleans(),
                     st.text(max_size=2), st.none())


counts = counts_or(T)
keys = st.sampled_from([jax.random.PRNGKey(1), jax.random.key(1), 3, "key", None, np.zeros(3, np.uint32)])


@SETTINGS
@given(num_timesteps=counts, key=keys, inputs=st.one_of(st.none(), hnp.arrays(np.float64, st.sampled_from(
    [(T, U), (1, U), (T, U + 1), (T,)]), elements=st.one_of(small, special))))
def test_sample_follows_the_noiseless_recursion_or_refuses_by_name(ssm, num_timesteps, key, inputs):
    """All covariances 1e-60: the draw is the deterministic recursion z_t = A z_{t-1} + B u_t + b,
    y_t = H z_t + D u_t + d, up to noise of 1e-30."""
    rng = np.random.default_rng(0)
    params = ssm.initialize(initial_mean=rng.normal(size=D), initial_covariance=1e-60 * np.eye(D),
                            dynamics_weights=0.5 * rng.normal(size=(D, D)), dynamics_input_weights=rng.normal(size=(D, U)),
                            dynamics_bias=rng.normal(size=D), dynamics_covariance=1e-60 * np.eye(D),
                            emission_weights=rng.normal(size=(P, D)), emission_input_weights=rng.normal(size=(P, U)),
                            emission_bias=rng.normal(size=P), emission_covariance=1e-60 * np.eye(P))
    try:
        states, ys = ssm.sample(params, key, num_timesteps, inputs=inputs)
    except NAMED as e:
        named(e, "num_timesteps", "key", "inputs")
        return
    n = num_timesteps
    assert is_count(n)
    u = np.zeros((n, U)) if inputs is None else np.asarray(inputs)
    assert u.shape == (n, U) and np.all(np.isfinite(u))
    m0, _, A, B, b, _, H, Dm, d, _ = (np.asarray(x) for x in params)
    z = [m0]
    for t in range(1, n):
        z.append(A @ z[-1] + B @ u[t] + b)
    z = np.array(z)
    np.testing.assert_allclose(np.asarray(states), z, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ys), z @ H.T + u @ Dm.T + d, atol=1e-12)


@pytest.fixture(scope="module")
def sampled():
    """A model and 2 × T emissions drawn from it, with every third row missing (the shapes of the batch
    test: one compiled program)."""
    model = LinearGaussianSSM(D, P, U)
    params = model.initialize(jax.random.PRNGKey(0), dynamics_weights=np.array([[0.9, 0.1], [-0.1, 0.9]]),
                              dynamics_input_weights=np.ones((D, U)))
    u = np.random.default_rng(1).normal(size=(2, T, U))
    ys = np.stack([np.asarray(model.sample(params, jax.random.PRNGKey(i), T, inputs=u[i])[1]) for i in range(2)])
    ys.reshape(-1, P)[::3] = np.nan
    return model, params, ys, u


@settings(SETTINGS, max_examples=10)
@given(num_iters=counts, prior=st.sampled_from(["default", "ok", "wrong dims", "text", "nan", "malformed"]),
       fit_emissions=st.booleans())
def test_fit_vb_raises_the_elbo_or_refuses_by_name(sampled, num_iters, prior, fit_emissions):
    model, params, ys, u = sampled
    priors = {"default": None, "ok": lgssm.make_prior(D, U + 1, ab_precision=0.5), "wrong dims": lgssm.make_prior(D, U),
              "text": "prior", "nan": lgssm.make_prior(D, U + 1)._replace(q_w=Wishart(4.0, np.nan * np.eye(D))),
              "malformed": lgssm.make_prior(D, U + 1)._replace(q_w=Wishart(np.eye(D), 4.0))}
    try:
        fit = model.fit_vb(params, ys[0], u[0], num_iters=num_iters, prior=priors[prior], fit_emissions=fit_emissions)
    except NAMED as e:
        named(e, "num_iters", "prior", "emissions")
        # T = 4 steps cannot determine R next to 4 regression coefficients: fitting emissions is refused
        assert prior in ("wrong dims", "text", "nan", "malformed") or not is_count(num_iters) \
            or (fit_emissions and str(e).startswith("emissions:"))
        return
    assert prior in ("default", "ok") and len(fit.elbo) == num_iters
    assert np.all(np.isfinite(fit.elbo)) and np.all(np.diff(fit.elbo) >= -1e-6 * np.abs(fit.elbo[1:]))
    model.smoother(fit.params, ys[0], u[0])          # the fitted parameters pass every check of the model


@settings(SETTINGS, max_examples=10)
@given(y=emissions_with_gaps((2, T, P)))
def test_a_parallel_batch_is_its_sequences_one_by_one(ssm, y):
    """The parallel smoother on a batch equals the sequential one (checked against dense conditioning
    above) on each sequence: one compiled program per method."""
    params = ssm.initialize(jax.random.PRNGKey(2))
    u = np.ones((2, T, U))
    try:
        post = ssm.smoother(params, y, u, method="parallel")
    except NAMED as e:
        named(e, "emissions")
        assert np.any(np.abs(y) > 1e100)
        return
    for i in range(2):
        one = ssm.smoother(params, y[i], u[i])
        for a, b in zip(post, one):
            np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-7, atol=1e-7)


# ============================================================================ pyrxaif.inference.lgssm
def point_dynamics(a, b, q):
    """q([A B]) q(W) concentrated on (A, B) and W = Q⁻¹ (matrix-normal around them, as the model does)."""
    ab = np.concatenate([a, b], 1)
    w = np.linalg.inv(q)
    return (MvNormal.from_mean_precision(ab.reshape(-1), 1e150 * np.kron(w, np.eye(ab.shape[1]))),
            Wishart.from_mean(w, 1e12))


@SETTINGS
@given(mu=hnp.arrays(np.float64, (T, D), elements=small) | hnp.arrays(np.float64, (T, D), elements=st.one_of(small, special)),
       lam_scale=st.one_of(near_scales, scales, st.sampled_from([0.0, -1.0, np.nan, np.inf])),
       zero_dims=hnp.arrays(np.bool_, (T, D)),
       controls_len=st.sampled_from([T, T, T - 1, T + 1]))
def test_smooth_is_the_lds_posterior_or_refuses_by_name(mu, lam_scale, zero_dims, controls_len):
    """Concentrated q([A B]) q(W): smooth's pseudo-likelihood model is the LDS with identity emissions
    and R = diag(1/λ) (λ = 0: that entry unobserved), whose dense conditioning is the oracle."""
    rng = np.random.default_rng(3)
    a, b, q = 0.5 * rng.normal(size=(D, D)), rng.normal(size=(D, U)), 0.2 * np.eye(D)
    q_ab, q_w = point_dynamics(a, b, q)
    init = MvNormal.from_mean_cov(np.zeros(D), np.eye(D))
    lam = np.where(zero_dims, 0.0, lam_scale)
    controls = rng.normal(size=(controls_len, U))
    try:
        res = lgssm.smooth(mu, lam, controls, q_ab, q_w, init)
    except NAMED as e:
        named(e, "obs_mean", "obs_precision", "controls")
        assert not np.all(np.isfinite(mu)) or not np.all(np.isfinite(lam)) or np.any(lam < 0) \
            or controls_len != T or lam.max() > lgssm.MAX_PRECISION_RATIO * 5.0
        return
    event("accepted")
    assert controls_len == T and np.all(lam >= 0) and np.all(np.isfinite(mu))
    fields = [np.asarray(res.mean), np.asarray(res.cov), np.asarray(res.log_normalizer)]
    assert all(np.all(np.isfinite(x)) for x in fields), "non-finite result"
    observed = lam > 0
    r = 1.0 / lam_scale if lam_scale > 0 else 1.0
    assume(r < 1e100)                                  # beyond, the dense oracle itself overflows
    params = ParamsLGSSM(np.zeros(D), np.eye(D), a, b, np.zeros(D), q, np.eye(D), np.zeros((D, U)), np.zeros(D),
                         r * np.eye(D))
    u_model = np.concatenate([np.zeros((1, U)), controls[:-1]])   # the model's u_t drives z_{t-1} -> z_t
    ll, _, smooth = dense_posterior(params, np.where(observed, mu, np.nan), u_model, per_entry=True)
    np.testing.assert_allclose(np.asarray(res.mean), smooth, atol=1e-6 * (1 + np.abs(smooth).max()))
    assert float(res.log_normalizer) == pytest.approx(ll, rel=1e-6, abs=1e-6)


@st.composite
def prior_keywords(draw):
    name = draw(st.sampled_from(["d", "m", "ab_mean", "ab_precision", "w_df", "w_mean"]))
    good = {"d": D, "m": U, "ab_mean": np.ones((D, D + U)), "ab_precision": 2.0, "w_df": D + 1.5,
            "w_mean": 2.0 * np.eye(D)}[name]
    value = draw(st.one_of(st.just(good), anything, scales, special,
                           hnp.arrays(np.float64, st.sampled_from([(D, D), (D, D + U), (D * (D + U),) * 2, (3,)]),
                                      elements=st.one_of(small, special))))
    return name, value


@settings(SETTINGS, max_examples=25)
@given(keyword=prior_keywords())
def test_make_prior_sets_each_keyword_or_refuses_it_by_name(keyword):
    name, value = keyword
    kw = {"d": D, "m": U, name: value}
    try:
        prior = lgssm.make_prior(kw.pop("d"), kw.pop("m"), **kw)
    except NAMED as e:
        named(e, name)
        return
    d, m = (value, U) if name == "d" else (D, value) if name == "m" else (D, U)
    default = value is None and name in ("ab_mean", "w_df", "w_mean")
    assert prior.dims == (d, m) and is_count(d) and isinstance(m, int) and not isinstance(m, bool) and m >= 0
    mean_ab, w_mean = np.asarray(prior.q_ab.mean), np.asarray(prior.q_w.mean())
    assert np.all(np.isfinite(mean_ab)) and np.all(np.isfinite(w_mean)) and np.all(np.linalg.eigvalsh(w_mean) > 0)
    if default:
        return
    if name == "ab_mean":
        np.testing.assert_allclose(mean_ab, np.asarray(value).reshape(-1), rtol=1e-9)
    if name == "w_mean":
        np.testing.assert_allclose(w_mean, value, rtol=1e-9)
    if name == "w_df":
        assert float(prior.q_w.df) == float(value) and float(value) > D - 1
    if name == "ab_precision" and np.ndim(value) == 0:
        np.testing.assert_allclose(np.asarray(prior.q_ab.precision), float(value) * np.eye(D * (D + U)))


@settings(SETTINGS, max_examples=15)
@given(num_iters=counts_or(2), data_scale=st.sampled_from([1.0, 1e6]), controls_len=st.sampled_from([T, T - 1]))
def test_vb_em_raises_the_elbo_warns_about_scale_or_refuses_by_name(num_iters, data_scale, controls_len):
    rng = np.random.default_rng(4)
    mu = data_scale * np.cumsum(rng.normal(size=(T, D)), 0)
    prior, init = lgssm.make_prior(D, U), MvNormal.from_mean_cov(np.zeros(D), np.eye(D))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            post, trace = lgssm.vb_em(mu, np.ones((T, D)), rng.normal(size=(controls_len, U)), prior, init,
                                      num_iters=num_iters)
        except NAMED as e:
            named(e, "num_iters", "controls")
            assert not is_count(num_iters) or controls_len != T
            return
    assert is_count(num_iters) and controls_len == T
    assert any("obs_mean" in str(w.message) for w in caught) == (data_scale > 1)
    trace = np.asarray(trace)
    assert len(trace) == num_iters and np.all(np.isfinite(trace))
    assert np.all(np.diff(trace) >= -1e-6 * np.abs(trace[1:]))
    assert np.all(np.isfinite(np.asarray(post.q_ab.mean))) and np.all(np.isfinite(np.asarray(post.q_w.mean())))


# ============================================================================ pixel environments

option_values = st.one_of(small, st.floats(-20.0, 20.0), special, st.integers(-3, 5), st.booleans(), st.text(max_size=2),
                          st.none(), st.lists(small, max_size=2), st.just(1 + 1j), st.just(1e300))
actions = st.one_of(small, st.floats(-100.0, 100.0), special, st.text(max_size=2), st.none(),
                    hnp.arrays(np.float64, st.sampled_from([(1,), (2,), (), (1, 1), (0,)]),
                               elements=st.one_of(small, special)))


def reset_options(keys):
    return st.one_of(st.none(), st.dictionaries(st.sampled_from(keys + ("other",)), option_values, max_size=3),
                     st.lists(small, max_size=2), st.text(max_size=2), st.integers())


def finite_real(v):
    return (isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and np.isfinite(v)) \
        or isinstance(v, bool)


@pytest.fixture(scope="module")
def pendulum():
    return PixelPendulum()


@SETTINGS
@given(options=reset_options(("theta", "omega")), steps=st.lists(actions, max_size=3))
def test_pendulum_resets_and_steps_by_its_physics_or_refuses_by_name(pendulum, options, steps):
    env = pendulum
    try:
        frame, info = env.reset(seed=0, options=options)
    except NAMED as e:
        named(e, "options")
        assert not isinstance(options, dict) or "other" in options \
            or not all(finite_real(v) for v in options.values()) or abs(options.get("omega", 0.0)) > env.max_speed
        return
    assert options is None or (isinstance(options, dict) and "other" not in options)
    options = options or {}
    if "theta" in options:
        assert info["theta"] == pytest.approx(float(wrap_angle(float(options["theta"]))), abs=1e-12)
    if "omega" in options:
        assert info["omega"] == float(options["omega"])
    np.testing.assert_allclose(frame, render_pendulum(info["theta"]))
    for a in steps:
        before = (info["theta"], info["omega"])
        try:
            frame, reward, term, trunc, info = env.step(a)
        except NAMED as e:
            named(e, "action")
            arr = np.asarray(a) if not isinstance(a, str) and a is not None else None
            assert arr is None or arr.size != 1 or not np.all(np.isfinite(arr))
            continue
        torque = float(np.clip(np.asarray(a, float).reshape(-1)[0], -env.max_torque, env.max_torque))
        theta, omega = pendulum_step(*before, torque)
        assert info["torque"] == torque and info["theta"] == pytest.approx(float(theta), abs=1e-12)
        assert info["omega"] == pytest.approx(float(omega), abs=1e-12)
        assert env.observation_space.contains(frame) and np.isfinite(reward) and not term and not trunc


@pytest.fixture(scope="module")
def digits():
    images = np.zeros((3, 28, 28), np.float32)
    images[:, 10:18, 12:16] = np.array([0.5, 0.8, 1.0], np.float32)[:, None, None]
    return RotatingDigits(images=images)


@SETTINGS
@given(options=reset_options(("index", "angle")), steps=st.lists(actions, max_size=3))
def test_rotating_digits_reset_and_step_or_refuse_by_name(digits, options, steps):
    env = digits
    try:
        frame, info = env.reset(seed=0, options=options)
    except NAMED as e:
        named(e, "options")
        if isinstance(options, dict) and "other" not in options:
            idx, ang = options.get("index", 0), options.get("angle", 0.0)
            ok_index = isinstance(idx, (int, np.integer)) and not isinstance(idx, bool) and 0 <= idx < 3
            assert not ok_index or not finite_real(ang) or abs(float(ang)) > env.max_angle
        return
    options = options or {}
    if "angle" in options:
        assert info["angle"] == float(options["angle"]) and abs(info["angle"]) <= env.max_angle
    if "index" in options:
        assert info["index"] == options["index"] and not isinstance(options["index"], bool)
    np.testing.assert_allclose(frame, rotate_image(env.images[info["index"]], info["angle"]))
    for a in steps:
        before = info["angle"]
        try:
            frame, reward, term, trunc, info = env.step(a)
        except NAMED as e:
            named(e, "action")
            continue
        u = float(np.clip(np.asarray(a, float).reshape(-1)[0], -env.max_speed, env.max_speed))
        assert info["angle"] == pytest.approx(float(np.clip(before + u, -env.max_angle, env.max_angle)), abs=1e-12)
        assert env.observation_space.contains(frame) and reward == -abs(info["angle"]) and not term and not trunc


# ============================================================================ pixel-control agent

SECTIONS = {"data": pc.DataConfig, "model": pc.ModelConfig, "learning": pc.LearningConfig,
            "planner": pc.PlannerConfig, "bar": pc.ValidationBar}
setting_values = st.one_of(st.integers(-2, 70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                           st.none(), st.text(max_size=6), st.sampled_from(["gaussian", "ring", "all", "final"]))


@SETTINGS
@given(section=st.sampled_from(sorted(SECTIONS)), data=st.data(), value=setting_values)
def test_config_settings_are_taken_or_refused_by_name(section, data, value):
    cls = SECTIONS[section]
    name = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    try:
        sec = cls(**{name: value})
        cfg = pc.PixelControlConfig(**{section: sec})
    except NAMED as e:
        named(e, name, "traj_len", "pretrain_prior")
        return
    assert getattr(getattr(cfg, section), name) == value or (value != value)
    assert value is None or not isinstance(value, str) or name in ("pretrain_prior", "goal_steps")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in ("per_frame", "multistart"):
        assert value == value and (value > 0 or name in ("scale_spread", "gate_action_weight", "pretrain_epochs",
                                                         "refit_episodes"))
    assert pc.PixelControlConfig.from_dict(cfg.to_dict()) == cfg


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained model of the pendulum task: latent_dim 2, one frame per window, two fixed experts,
    horizon 3 (nothing trained: the tests judge the entry points, not the control)."""
    cfg = pc.PixelControlConfig(task=PendulumTask(), data=pc.DataConfig(n_traj=2, traj_len=5),
                                model=pc.ModelConfig(latent_dim=2, frames=1, n_local=2),
                                planner=pc.PlannerConfig(horizon=3, iters=1, multistart=False))
    # random weights in the shapes of init_vae's (jax.eval_shape: no flax initialisation to compile)
    shapes = jax.eval_shape(lambda: vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(2, 1, per_frame=False)))
    leaves, tree = jax.tree_util.tree_flatten(shapes)
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_unflatten(tree, [jnp.asarray(0.1 * rng.normal(size=s.shape), jnp.float32)
                                                 for s in leaves])
    local = em.LocalLDS(jnp.array([[0.0, 0.0], [1.0, 1.0]]), jnp.asarray(1.0), jnp.stack([0.9 * jnp.eye(2)] * 2),
                        jnp.ones((2, 2, 1)), jnp.zeros((2, 2)), jnp.stack([0.01 * jnp.eye(2)] * 2), jnp.asarray(0.0))
    return pc.PixelControlModel(cfg, params, em.init_lds(2, 1), local)


frame_batches = st.one_of(
    hnp.arrays(np.float32, st.sampled_from([(3, 1, 28, 28), (3, 28, 28), (3, 2, 28, 28), (3, 1, 27, 28), (0, 1, 28, 28)]),
               elements=st.floats(0.0, 1.0, width=32)),
    hnp.arrays(np.float32, (3, 1, 28, 28), elements=st.one_of(st.floats(0.0, 1.0, width=32), st.floats(-2.0, 3.0, width=32),
                                                              st.sampled_from([np.nan, np.inf]))),
    hnp.arrays(np.uint8, (3, 1, 28, 28)), st.text(max_size=2), st.none())


@SETTINGS
@given(windows=frame_batches)
def test_encode_takes_frames_in_the_unit_interval_or_refuses_by_name(tiny_model, windows):
    try:
        mu, var = tiny_model.encode(windows)
    except NAMED as e:
        named(e, "windows")
        w = np.asarray(windows) if isinstance(windows, np.ndarray) else None
        assert w is None or w.shape != (3, 1, 28, 28) or not np.all((w >= 0) & (w <= 1))
        return
    ref_mu, ref_var = vae.encode(tiny_model.params, np.asarray(windows, np.float32), 2)
    np.testing.assert_allclose(mu, np.asarray(ref_mu), rtol=1e-6)
    assert mu.shape == (3, 2) and np.all(np.isfinite(mu)) and np.all(var > 0) and np.all(np.isfinite(var))


@settings(SETTINGS, max_examples=8)
@given(goal=st.one_of(st.floats(-4.0, 4.0), special, st.text(max_size=1), st.none()),
       start=st.one_of(st.none(), st.fixed_dictionaries({"theta": st.one_of(small, special)}), st.just({"x": 1.0})),
       steps=st.one_of(st.just(2), st.integers(-1, 0), st.just(1.5)))
def test_run_episode_acts_within_the_bound_or_refuses_by_name(tiny_model, pendulum, goal, start, steps):
    try:
        tr = pc.run_episode(tiny_model, pendulum, start=start, goal=goal, steps=steps, engine="jax")
    except NAMED as e:
        named(e, "goal", "steps", "options")
        return
    assert is_count(steps) and np.isfinite(goal) and (start is None or np.isfinite(start.get("theta", 0.0)))
    assert tr["actions"].shape == (steps,) and np.all(np.abs(tr["actions"]) <= pendulum.max_torque)
    assert tr["states"].shape == (steps + 1,) and all(np.all(np.isfinite(v)) for v in tr.values())
    np.testing.assert_allclose(tr["frames"][0], render_pendulum(tr["states"][0]))
    np.testing.assert_allclose(tr["goal_latent"], tiny_model.encode(render_pendulum(goal)[None, None])[0][0])


@SETTINGS
@given(frames=st.one_of(hnp.arrays(np.float32, st.sampled_from([(1, 3, 28, 28), (1, 1, 28, 28), (1, 3, 28, 27)]),
                                   elements=st.floats(0.0, 1.0, width=32)),
                        hnp.arrays(np.float32, (1, 3, 28, 28), elements=st.floats(-1.0, 2.0, width=32))),
       actions_shape=st.sampled_from([(1, 2, 1), (1, 2, 1), (1, 1, 1), (2, 2, 1), (1, 2, 2)]))
def test_validate_gives_finite_figures_or_refuses_by_name(tiny_model, frames, actions_shape):
    actions = np.linspace(-1.0, 1.0, int(np.prod(actions_shape))).reshape(actions_shape)
    try:
        metrics = pc.validate(tiny_model, frames, actions)
    except NAMED as e:
        named(e, "frames", "actions")
        assert frames.shape != (1, 3, 28, 28) or actions_shape != (1, 2, 1) or frames.min() < 0 or frames.max() > 1 \
            or ("spread 0" in str(e) and np.all(frames[:, 1:] == frames[0, 1]))
        return
    assert set(metrics) == {"pred_nmse", "pred_nmse_global", "horizon_nmse", "recon_mse"}
    assert all(np.isfinite(v) and v >= 0 for v in metrics.values())
    rec = np.asarray(vae.decode(tiny_model.params, tiny_model.encode(frames.reshape(3, 1, 28, 28))[0]))
    assert metrics["recon_mse"] == pytest.approx(float(np.mean((rec - frames.reshape(3, 28, 28)) ** 2)), rel=1e-5)


# ============================================================================ checkpoints
@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ckpt") / "model.ckpt")
    pc.save(tiny_model, path, {"passed": True, "metrics": {"pred_nmse": 0.1}})
    return Saved(path, open(path, "rb").read())


class Saved(tuple):
    """(path, bytes) of a checkpoint, with a short repr (hypothesis prints its arguments on failure)."""

    def __new__(cls, path, raw):
        return super().__new__(cls, (path, raw))

    def __repr__(self):
        return f"Saved({self[0]!r}, <{len(self[1])} bytes>)"


def leaves_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def rewrite_header(raw: bytes, edit, rehash: bool) -> bytes:
    start = len(ckpt.MAGIC) + 8
    (n,) = ckpt._LEN.unpack(raw[len(ckpt.MAGIC):start])
    header, payload = json.loads(raw[start:start + n]), raw[start + n:]
    edit(header)
    if rehash:
        header["content_sha256"] = ckpt._content_hash(header, payload)
    head = json.dumps(header, sort_keys=True).encode()
    return ckpt.MAGIC + ckpt._LEN.pack(len(head)) + head + payload


HEADER_EDITS = {
    "task": lambda h: h.update(task="digits"), "kind": lambda h: h.update(kind="other"),
    "format_version": lambda h: h.update(format_version=h["format_version"] + 1),
    "hash": lambda h: h.update(content_sha256="0" * 64), "payload_bytes": lambda h: h.update(payload_bytes=1),
    "latent_dim": lambda h: h["config"]["model"].update(latent_dim=3),
    "n_local": lambda h: h["config"]["model"].update(n_local=5),
    "config": lambda h: h["config"].pop("planner"),
}


@st.composite
def damage(draw, n):
    kind = draw(st.sampled_from(["flip", "truncate", "garbage", "magic+garbage", "header", "none"]))
    if kind == "flip":
        return kind, draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 255)), min_size=1, max_size=3))
    if kind == "truncate":
        return kind, draw(st.integers(0, n - 1))
    if kind in ("garbage", "magic+garbage"):
        return kind, draw(st.binary(max_size=64))
    if kind == "header":
        return kind, (draw(st.sampled_from(sorted(HEADER_EDITS))), draw(st.booleans()))
    return kind, None


@SETTINGS
@given(data=st.data())
def test_a_damaged_checkpoint_is_refused_naming_the_file(saved, tiny_model, tmp_path_factory, data):
    path, raw = saved
    kind, arg = data.draw(damage(len(raw)))
    if kind == "flip":
        out = bytearray(raw)
        for off, x in arg:
            out[off] ^= x
        out = bytes(out)
    elif kind == "truncate":
        out = raw[:arg]
    elif kind == "garbage":
        out = arg
    elif kind == "magic+garbage":
        out = ckpt.MAGIC + arg
    elif kind == "header":
        out = rewrite_header(raw, HEADER_EDITS[arg[0]], rehash=arg[1])
    else:
        out = raw
    bad = str(tmp_path_factory.mktemp("bad") / "damaged.ckpt")
    with open(bad, "wb") as f:
        f.write(out)
    try:
        model, validation = pc.load(bad, task="pendulum")
    except ckpt.CheckpointError as e:
        assert bad in str(e) and e.path == bad
        if kind == "header" and arg[0] in ("task", "kind") and arg[1]:
            assert isinstance(e, ckpt.CheckpointMismatch)
        return
    # loaded: then what it holds is the model that was saved
    assert kind in ("none", "flip") or (kind == "header" and arg == ("hash", True)), f"{kind} {arg} was loaded"
    assert model.config == tiny_model.config and validation == {"passed": True, "metrics": {"pred_nmse": 0.1}}
    assert leaves_equal(model.params, tiny_model.params) and leaves_equal(model.lds, tiny_model.lds)
    assert leaves_equal(model.local, tiny_model.local)
