"""A linear-Gaussian state-space model in dynamax's conventions, on pyrxaif's LDS core.

    z_0 ~ N(initial_mean, initial_covariance)
    z_t = A z_{t-1} + B u_t + b + N(0, Q)        A dynamics_weights, B dynamics_input_weights, b dynamics_bias
    y_t = H z_t + D u_t + d + N(0, R)            H emission_weights, D emission_input_weights, d emission_bias

Inputs have shape (T, input_dim) and u_t acts at time t: it enters y_t and the step z_{t-1} -> z_t
(u_0 only enters y_0). This is dynamax's convention (its filter predicts z_{t+1} with inputs[t+1]).
The core :mod:`pyrxaif.inference.lgssm` indexes a control by the step it starts (controls[t] drives
z_t -> z_{t+1}), so the model passes it controls[t] = [u_{t+1}; 1]. A row of ``emissions``
containing NaN is a missing observation. Leading batch axes (N, T, ...) run N sequences.

Each emission becomes a Gaussian potential on z_t in information form (HᵀR⁻¹H, HᵀR⁻¹(y − Du − d) and
the log-normaliser −½p log 2π − ½log|R| − ½ rᵀR⁻¹r), which :func:`pyrxaif.inference.lgssm.smooth_information`
combines with the dynamics; its log-normaliser is then the marginal log-likelihood. Known dynamics
enter the core as :class:`pyrxaif.inference.lgssm.KnownDynamics` ([A B b], Q): ``filter`` runs the
core's forward pass only (:func:`~pyrxaif.inference.lgssm.filter_information`), ``smoother`` adds the
backward pass. The VAE's latent messages are the special case H = I.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif import checks as V
from pyrxaif.checks import check_count, check_key
from pyrxaif.distributions.linalg import spd_inverse, spd_inverse_logdet, spd_solve, symmetrize
from pyrxaif.inference import lgssm
from pyrxaif.rules import transition as tr

LOG2PI = float(np.log(2.0 * np.pi))
# covariance eigenvalues the filter can carry (float64's products and sums stay meaningful)
COVARIANCE_RANGE = (1e-100, 1e100)
# emissions and inputs beyond this overflow float64 when squared against a precision in the range above
MAX_ABS_DATA = 1e100
COVARIANCES = ("initial_covariance", "dynamics_covariance", "emission_covariance")

__all__ = ["LinearGaussianSSM", "ParamsLGSSM", "PosteriorGSSMFiltered", "PosteriorGSSMSmoothed", "FitResult"]


class ParamsLGSSM(NamedTuple):
    """Parameters, named as dynamax's ``initialize`` keywords (shapes for D states, P emissions, U inputs)."""

    initial_mean: jax.Array            # (D,)
    initial_covariance: jax.Array      # (D, D)
    dynamics_weights: jax.Array        # (D, D)
    dynamics_input_weights: jax.Array  # (D, U)
    dynamics_bias: jax.Array           # (D,)
    dynamics_covariance: jax.Array     # (D, D)
    emission_weights: jax.Array        # (P, D)
    emission_input_weights: jax.Array  # (P, U)
    emission_bias: jax.Array           # (P,)
    emission_covariance: jax.Array     # (P, P)


class PosteriorGSSMFiltered(NamedTuple):
    marginal_loglik: jax.Array         # () or (N,)
    filtered_means: jax.Array          # (T, D)
    filtered_covariances: jax.Array    # (T, D, D)


class PosteriorGSSMSmoothed(NamedTuple):
    marginal_loglik: jax.Array
    filtered_means: jax.Array
    filtered_covariances: jax.Array
    smoothed_means: jax.Array          # (T, D)
    smoothed_covariances: jax.Array    # (T, D, D)
    smoothed_cross_covariances: jax.Array   # (T-1, D, D): E[z_t z_{t+1}ᵀ | all emissions] (a second moment, as dynamax)


class FitResult(NamedTuple):
    params: ParamsLGSSM                # posterior means of the dynamics, point estimates of the emission model
    dynamics_posterior: lgssm.DynamicsPosterior   # q([A B b]) q(Q⁻¹)
    elbo: np.ndarray                   # (num_iters,) ELBO before each update (non-decreasing)


def _emission_potentials(params: ParamsLGSSM, y, u):
    """(c, ξ, Λ) per step on z_t from y_t (NaN rows: zero potential)."""
    missing = jnp.any(jnp.isnan(y), -1)
    r = jnp.where(missing[..., None], 0.0, y) - u @ params.emission_input_weights.T - params.emission_bias
    r_inv, logdet = spd_inverse_logdet(params.emission_covariance)      # Cholesky, no LAPACK call
    hw = params.emission_weights.T @ r_inv                                   # HᵀR⁻¹ (D, P)
    rr = r @ r_inv                                                           # R⁻¹ r (one product over all t)
    keep = (~missing).astype(y.dtype)
    c = keep * (-0.5 * y.shape[-1] * LOG2PI - 0.5 * logdet - 0.5 * jnp.sum(r * rr, -1))
    xi = keep[..., None] * (rr @ params.emission_weights)
    prec = keep[..., None, None] * (hw @ params.emission_weights)
    return c, xi, prec


def _core_controls(u):
    """Core controls c_t = [u_{t+1}; 1] for the step z_t -> z_{t+1} (the dynamics bias is the weight of
    a constant input; the last row, which the core does not use, repeats the constant)."""
    shifted = jnp.concatenate([u[..., 1:, :], jnp.zeros(u.shape[:-2] + (1, u.shape[-1]), u.dtype)], -2)
    return jnp.concatenate([shifted, jnp.ones(u.shape[:-1] + (1,), u.dtype)], -1)


def _known_dynamics(params: ParamsLGSSM) -> lgssm.KnownDynamics:
    """The core's transition: [A B b] (the bias is the weight of the constant input) and Q."""
    ab = jnp.concatenate([params.dynamics_weights, params.dynamics_input_weights, params.dynamics_bias[:, None]], 1)
    return lgssm.KnownDynamics(ab, params.dynamics_covariance)


def _eigenvalue_range(m) -> tuple[float, float]:
    ev = np.linalg.eigvalsh(np.asarray(m, np.float64))
    return float(ev.min()), float(ev.max())


def _check_scales(p: dict, prefix: str) -> None:
    """Covariances within :data:`COVARIANCE_RANGE` and precisions on the state (P₀⁻¹, Q⁻¹, HᵀR⁻¹H)
    within ``lgssm.MAX_PRECISION_RATIO`` of each other: outside, float64 loses the smaller ones in the
    filter's sums (the log-likelihood drifts by 1e-3 at a ratio of 1e12, is garbage from ~1e16)."""
    low, high = COVARIANCE_RANGE
    ranges = {}
    for name in COVARIANCES:
        lo, hi = ranges[name] = _eigenvalue_range(p[name])
        top = np.inf if name == "emission_covariance" else high      # a vague emission is just uninformative
        if not (low <= lo and hi <= top):
            raise ValueError(f"{prefix}{name}: expected eigenvalues in [{low:.0e}, {top:.0e}] (float64 cannot "
                             f"carry the filter's products outside), got [{lo:.3g}, {hi:.3g}]")
    chol = np.linalg.cholesky(np.asarray(p["emission_covariance"]))
    white = np.linalg.solve(chol, np.asarray(p["emission_weights"]))          # R^-1/2 H
    largest = {"initial_covariance": 1.0 / ranges["initial_covariance"][0],
               "dynamics_covariance": 1.0 / ranges["dynamics_covariance"][0],
               "emission_covariance": _eigenvalue_range(white.T @ white)[1]}
    smallest = {name: 1.0 / ranges[name][1] for name in ("initial_covariance", "dynamics_covariance")}
    big, small = max(largest, key=largest.get), min(smallest, key=smallest.get)
    if largest[big] > lgssm.MAX_PRECISION_RATIO * smallest[small]:
        what = "H^T R^-1 H" if big == "emission_covariance" else f"the inverse of {prefix}{big}"
        raise ValueError(
            f"{prefix}{big}, {prefix}{small}: the largest precision on the state ({what}: {largest[big]:.3g}) is "
            f"more than {lgssm.MAX_PRECISION_RATIO:.0e} times the smallest (the inverse of {prefix}{small}: "
            f"{smallest[small]:.3g}); float64 cannot add them usefully. Rescale the state space "
            f"so that these covariances are closer.")


@partial(jax.jit, static_argnames=("method", "smoother"))
def _posterior(params: ParamsLGSSM, y, u, dynamics, method: str, smoother: bool):
    """The core filter (``smoother=False``) or smoother on the emission potentials, in one compiled
    program (the core skips its Python-side validation for traced arguments; the model validated its
    inputs already). ``dynamics``: None (the known dynamics of ``params``) or q([A B b]) q(Q⁻¹)."""
    dyn = _known_dynamics(params) if dynamics is None else dynamics
    c, xi, prec = _emission_potentials(params, y, u)
    init = lgssm.GaussianMoments(params.initial_mean, params.initial_covariance)
    run = lgssm.smooth_information if smoother else lgssm.filter_information
    return run(c, xi, prec, _core_controls(u), dyn, init, method=method)


@partial(jax.jit, static_argnames=("method", "smoother"))
def _dynamax_posterior(params: ParamsLGSSM, y, u, method: str, smoother: bool):
    """:func:`_posterior` under the known dynamics, as dynamax's posterior types (one compiled program)."""
    res = _posterior(params, y, u, None, method, smoother)
    if not smoother:
        return PosteriorGSSMFiltered(res.log_normalizer, res.filtered_mean, res.filtered_cov)
    m = res.mean
    cross = jnp.swapaxes(res.cross_cov[..., :-1, :, :], -1, -2) + m[..., :-1, :, None] * m[..., 1:, None, :]
    return PosteriorGSSMSmoothed(res.log_normalizer, res.filtered_mean, res.filtered_cov, m, res.cov, cross)


class LinearGaussianSSM:
    """Linear-Gaussian SSM with dynamax's API: ``initialize``, ``filter``, ``smoother``, ``sample``,
    and variational-Bayes learning (``fit_vb``).

    Examples
    --------
    >>> import jax, numpy as np
    >>> from pyrxaif.models import LinearGaussianSSM
    >>> model = LinearGaussianSSM(state_dim=2, emission_dim=3)
    >>> params = model.initialize(jax.random.PRNGKey(0))
    >>> states, emissions = model.sample(params, jax.random.PRNGKey(1), num_timesteps=50)
    >>> post = model.smoother(params, emissions)
    >>> post.smoothed_means.shape
    (50, 2)
    """

    def __init__(self, state_dim: int, emission_dim: int, input_dim: int = 0):
        for name, v, low in (("state_dim", state_dim, 1), ("emission_dim", emission_dim, 1), ("input_dim", input_dim, 0)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
        self.state_dim, self.emission_dim, self.input_dim = int(state_dim), int(emission_dim), int(input_dim)

    # ------------------------------------------------------------------ parameters
    def initialize(self, key=None, *, initial_mean=None, initial_covariance=None, dynamics_weights=None,
                   dynamics_input_weights=None, dynamics_bias=None, dynamics_covariance=None,
                   emission_weights=None, emission_input_weights=None, emission_bias=None,
                   emission_covariance=None) -> ParamsLGSSM:
        """Parameters with dynamax's defaults for those not given (initial N(0, I), A = 0.99 I,
        Q = 0.1 I, H ~ N(0, 1) from ``key``, R = 0.1 I, zero input weights and biases)."""
        D, P, U = self.state_dim, self.emission_dim, self.input_dim
        if emission_weights is None:
            emission_weights = jax.random.normal(jax.random.PRNGKey(0) if key is None else check_key("key", key), (P, D))
        given = dict(initial_mean=(initial_mean, np.zeros(D)), initial_covariance=(initial_covariance, np.eye(D)),
                     dynamics_weights=(dynamics_weights, 0.99 * np.eye(D)),
                     dynamics_input_weights=(dynamics_input_weights, np.zeros((D, U))),
                     dynamics_bias=(dynamics_bias, np.zeros(D)),
                     dynamics_covariance=(dynamics_covariance, 0.1 * np.eye(D)),
                     emission_weights=(emission_weights, None),
                     emission_input_weights=(emission_input_weights, np.zeros((P, U))),
                     emission_bias=(emission_bias, np.zeros(P)),
                     emission_covariance=(emission_covariance, 0.1 * np.eye(P)))
        return self._checked({name: default if value is None else value for name, (value, default) in given.items()}, "")

    def _shapes(self) -> dict:
        D, P, U = self.state_dim, self.emission_dim, self.input_dim
        return dict(initial_mean=(D,), initial_covariance=(D, D), dynamics_weights=(D, D), dynamics_input_weights=(D, U),
                    dynamics_bias=(D,), dynamics_covariance=(D, D), emission_weights=(P, D),
                    emission_input_weights=(P, U), emission_bias=(P,), emission_covariance=(P, P))

    def _checked(self, values: dict, prefix: str) -> ParamsLGSSM:
        """``values`` (one per field) as ParamsLGSSM after checking each one's shape for this model and
        finiteness, the covariances' positive definiteness and :func:`_check_scales`; errors name
        ``prefix`` + the field. The result is remembered as valid (:data:`_VALIDATED`)."""
        out = {}
        for name, shape in self._shapes().items():
            arr = V.as_float_array(prefix + name, values[name], shape=shape)
            if name in COVARIANCES:
                V.check_positive_definite(prefix + name, arr)
            out[name] = arr
        _check_scales(out, prefix)
        params = ParamsLGSSM(**{k: jnp.asarray(v) for k, v in out.items()})
        _VALIDATED.remember(params, self._dims())
        return params

    def _dims(self) -> tuple[int, int, int]:
        return self.state_dim, self.emission_dim, self.input_dim

    def _check_params(self, params) -> ParamsLGSSM:
        """``params`` checked as by :meth:`_checked`, once per params object: a ParamsLGSSM of float64
        JAX arrays (immutable) validated for a model of these dimensions is returned as it is."""
        if not isinstance(params, ParamsLGSSM):
            raise TypeError(f"params: expected ParamsLGSSM (from initialize), got {type(params).__name__}")
        if _VALIDATED.holds(params, self._dims()):
            return params
        checked = self._checked(params._asdict(), "params.")
        _VALIDATED.remember(params, self._dims())          # kept only if immutable float64 (see remember)
        return checked

    # ------------------------------------------------------------------ data
    def _data(self, params, emissions, inputs):
        params = self._check_params(params)
        y = V.as_float_array("emissions", emissions, finite=False)
        if y.ndim not in (2, 3) or y.shape[-1] != self.emission_dim or y.shape[-2] < 1:
            raise ValueError(f"emissions: expected shape (T, {self.emission_dim}) or (N, T, {self.emission_dim}) "
                             f"with T >= 1, got {y.shape}")
        # one reduction (NaN rows are missing, fmax skips them); inf and overflow end up above the bound.
        # Each NumPy reduction here measurably slows the compiled call that follows, so the data are read once.
        largest = float(np.fmax.reduce(np.abs(y), axis=None, initial=0.0))
        if not largest <= MAX_ABS_DATA:
            if np.any(np.isinf(y)):
                raise ValueError("emissions: expected finite values or NaN (missing), found inf")
            raise ValueError(f"emissions: expected magnitudes up to {MAX_ABS_DATA:.0e} (their squares overflow "
                             f"float64), got {largest:.3g}; rescale the data")
        if inputs is None:
            if self.input_dim:
                raise ValueError(f"inputs: expected shape {y.shape[:-1] + (self.input_dim,)}, got None")
            u = np.zeros(y.shape[:-1] + (0,))
        else:
            u = _check_inputs(inputs, y.shape[:-1] + (self.input_dim,))
        return params, y, u

    def _run(self, params, emissions, inputs, method, smoother):
        V.check_choice("method", method, ("sequential", "parallel"))
        params, y, u = self._data(params, emissions, inputs)
        return _dynamax_posterior(params, y, u, method, smoother)

    def filter(self, params: ParamsLGSSM, emissions, inputs=None, method: str = "sequential") -> PosteriorGSSMFiltered:
        """Filtered moments q(z_t | y_0..t) and the marginal log-likelihood log p(y): the forward pass
        only; ``method`` "sequential" (Kalman filter) or "parallel" (associative scan)."""
        return self._run(params, emissions, inputs, method, smoother=False)

    def smoother(self, params: ParamsLGSSM, emissions, inputs=None, method: str = "sequential") -> PosteriorGSSMSmoothed:
        """Filtered and smoothed moments, lag-one cross-covariances, marginal log-likelihood;
        ``method`` "sequential" (filter + RTS) or "parallel" (associative scans)."""
        return self._run(params, emissions, inputs, method, smoother=True)

    def marginal_log_prob(self, params: ParamsLGSSM, emissions, inputs=None):
        return self.filter(params, emissions, inputs).marginal_loglik

    def sample(self, params: ParamsLGSSM, key, num_timesteps: int, inputs=None):
        """(states (T, D), emissions (T, P)) drawn from the model."""
        params = self._check_params(params)
        key = check_key("key", key)
        check_count("num_timesteps", num_timesteps)
        u = jnp.zeros((num_timesteps, self.input_dim)) if inputs is None else jnp.asarray(
            _check_inputs(inputs, (num_timesteps, self.input_dim)))
        k0, k1, k2 = jax.random.split(key, 3)
        D, P = self.state_dim, self.emission_dim
        lq = jnp.linalg.cholesky(params.dynamics_covariance)
        lr = jnp.linalg.cholesky(params.emission_covariance)
        z0 = params.initial_mean + jnp.linalg.cholesky(params.initial_covariance) @ jax.random.normal(k0, (D,))

        def step(z, inp):
            u_t, e = inp
            z_next = params.dynamics_weights @ z + params.dynamics_input_weights @ u_t + params.dynamics_bias + lq @ e
            return z_next, z

        _, states = jax.lax.scan(step, z0, (jnp.concatenate([u[1:], jnp.zeros((1, self.input_dim))]),
                                            jax.random.normal(k1, (num_timesteps, D))))
        noise = jax.random.normal(k2, (num_timesteps, P)) @ lr.T
        emissions = states @ params.emission_weights.T + u @ params.emission_input_weights.T + params.emission_bias + noise
        return states, emissions

    # ------------------------------------------------------------------ learning
    def fit_vb(self, params: ParamsLGSSM, emissions, inputs=None, num_iters: int = 50,
               prior: lgssm.DynamicsPosterior | None = None, fit_emissions: bool = True,
               method: str = "sequential") -> FitResult:
        """Variational Bayes for the dynamics q([A B b]) q(Q⁻¹) (prior ``prior``, default
        ``lgssm.make_prior(D, U + 1, structured=True)``) and, with ``fit_emissions``, maximum-likelihood point
        estimates of H, D, d, R (closed-form M-step from the smoothed moments); the initial state stays at
        ``params``. Each iteration: smooth under the current q, record the ELBO, update the emission
        model, then q([A B b]) and q(Q⁻¹). Returns the posterior-mean parameters, the posterior and
        the ELBO trace. With a prior whose precision on vec [A B b] is a Kronecker product (the default
        is isotropic), q([A B b]) stays structured inside the loop (``lgssm.structured_prior``: O(D³ + n³)
        per iteration instead of O((D n)³), n = D + U + 1); the returned posterior is a dense MvNormal."""
        check_count("num_iters", num_iters)
        params, y, u = self._data(params, emissions, inputs)
        D, U = self.state_dim, self.input_dim
        prior = lgssm.structured_prior(lgssm.make_prior(D, U + 1, structured=True) if prior is None else prior)
        if prior.dims != (D, U + 1):
            raise ValueError(f"prior: expected a DynamicsPosterior with dims (d, m) = {(D, U + 1)} "
                             f"(the dynamics bias is an extra constant input), got {prior.dims}")
        V.check_choice("method", method, ("sequential", "parallel"))
        n_rows = int(np.sum(~np.any(np.isnan(np.asarray(y)), -1)))
        need = D + U + 1 + self.emission_dim
        if fit_emissions and n_rows < need:
            raise ValueError(f"emissions: {n_rows} observed rows do not determine a positive-definite emission "
                             f"covariance (fit_emissions=True needs at least d + u + 1 + p = {need}; or pass "
                             "fit_emissions=False)")
        params, post, ab, trace = _fit_vb(params, y, u, prior, int(num_iters), bool(fit_emissions), method)
        if fit_emissions and not (np.all(np.isfinite(np.asarray(trace)))
                                  and np.all(np.linalg.eigvalsh(np.asarray(params.emission_covariance)) > 0)):
            raise ValueError("emissions: the observed rows do not determine a positive-definite emission covariance "
                             "(fit_emissions=True needs more varied observed data; or pass fit_emissions=False)")
        params = params._replace(dynamics_weights=ab[:, :D], dynamics_input_weights=ab[:, D:D + U],
                                 dynamics_bias=ab[:, D + U], dynamics_covariance=spd_inverse(post.q_w.mean()))
        return FitResult(params, post, np.asarray(trace))


class _ValidatedParams:
    """The last ``size`` ParamsLGSSM objects that passed validation, by identity, with the model
    dimensions they were checked for. Only objects whose fields are all concrete float64 JAX arrays
    are kept: those cannot change after the check, so a later call with the same object skips it
    (the checks cost more than a short filter). Entries hold a reference to their object, so an id is
    not reused while it is here."""

    def __init__(self, size: int = 64):
        self.size = size
        self.entries: OrderedDict[int, tuple[ParamsLGSSM, tuple[int, int, int]]] = OrderedDict()

    def holds(self, params: ParamsLGSSM, dims: tuple[int, int, int]) -> bool:
        entry = self.entries.get(id(params))
        if entry is None or entry[0] is not params or entry[1] != dims:
            return False
        self.entries.move_to_end(id(params))
        return True

    def remember(self, params: ParamsLGSSM, dims: tuple[int, int, int]) -> None:
        if not all(isinstance(v, jax.Array) and not isinstance(v, jax.core.Tracer) and v.dtype == jnp.float64
                   for v in params):
            return
        self.entries[id(params)] = (params, dims)
        self.entries.move_to_end(id(params))
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


_VALIDATED = _ValidatedParams()


def _check_inputs(inputs, shape) -> np.ndarray:
    """Inputs of ``shape``, finite, magnitudes up to MAX_ABS_DATA, read in one reduction (NaN and inf
    propagate through max; the finiteness check then names them)."""
    u = V.as_float_array("inputs", inputs, shape=shape, finite=False)
    largest = float(np.max(np.abs(u), initial=0.0))
    if not largest <= MAX_ABS_DATA:
        V.as_float_array("inputs", u)                         # raises for NaN/inf entries
        raise ValueError(f"inputs: expected magnitudes up to {MAX_ABS_DATA:.0e}, got {largest:.3g}")
    return u


@partial(jax.jit, static_argnames=("num_iters", "fit_emissions", "method"))
def _fit_vb(params: ParamsLGSSM, y, u, prior: lgssm.DynamicsPosterior, num_iters: int, fit_emissions: bool,
            method: str):
    """``num_iters`` iterations of :meth:`LinearGaussianSSM.fit_vb` in one compiled ``lax.scan``:
    returns the final params, q (q([A B b]) dense), E[[A B b]] and the ELBO before each update."""
    ua = _core_controls(u)

    def step(carry, _):
        params, post = carry
        res = _posterior(params, y, u, post, method, True)
        value = lgssm.elbo(res, post, prior)
        if fit_emissions:
            params = _emission_m_step(params, y, u, res)
        post = lgssm.update_dynamics(lgssm.sufficient_statistics(res, ua), prior, post)
        return (params, post), value

    (params, post), trace = jax.lax.scan(step, (params, prior), None, length=num_iters)
    d, m = post.dims
    return params, lgssm.dense_posterior(post), tr.expected_ab(post.q_ab, d, d + m), trace


def _emission_m_step(params: ParamsLGSSM, y, u, res) -> ParamsLGSSM:
    """argmax over (H, D, d, R) of Σ_t E log N(y_t | H z_t + D u_t + d, R) over observed rows
    (traced: missing rows enter with weight 0; solves by ``spd_solve``)."""
    P, D, U = y.shape[-1], res.mean.shape[-1], u.shape[-1]
    rows = int(np.prod(y.shape[:-1]))
    y, u = y.reshape(rows, P), u.reshape(rows, U)
    m, s = res.mean.reshape(rows, D), res.cov.reshape(rows, D, D)
    keep = ~jnp.any(jnp.isnan(y), -1)
    w = keep.astype(y.dtype)
    y = jnp.where(keep[:, None], y, 0.0)
    x = jnp.concatenate([m, u, jnp.ones((m.shape[0], 1), m.dtype)], 1)      # E[x_t], x = [z; u; 1]
    xw = x * w[:, None]
    sxx = (xw.T @ x).at[:D, :D].add(jnp.einsum("t,tij->ij", w, s))
    syx = y.T @ xw
    # a relative ridge of 1e-12 keeps the solve defined where a regressor never varies (constant inputs):
    # the min-norm solution to that precision
    ridge = 1e-12 * jnp.trace(sxx) / sxx.shape[0] * jnp.eye(sxx.shape[0], dtype=sxx.dtype)
    c = spd_solve(symmetrize(sxx) + ridge, syx.T).T                          # [H D d]
    resid = y.T @ (y * w[:, None]) - c @ syx.T - syx @ c.T + c @ sxx @ c.T
    r = symmetrize(resid) / jnp.sum(w)
    return params._replace(emission_weights=c[:, :D], emission_input_weights=c[:, D:D + U],
                           emission_bias=c[:, D + U], emission_covariance=r)
