"""Smoothing and variational-Bayes EM on the linear-Gaussian state-space model with controls.

Model (one sequence, t = 0 … T−1; x_t = [z_t; u_t], H = [A B], n = d + m):

    z_0 ~ N(m_1, V_1),   z_{t+1} ~ N(H x_t, W⁻¹),   H ~ N(vec), W ~ Wishart,
    "observations": Gaussian messages on z_t in latent space, e.g. from a VAE encoder,
    treated as pseudo-likelihoods  N(μ_t | z_t, Λ_t⁻¹)  (μ_t = obs_mean, Λ_t = obs_precision).

VMP with q(z_{0:T−1}) q(H) q(W): given q(H), q(W) the optimal q(z) is the posterior of the
*expected* LDS, whose transition factor is exp E log N(z'|Hx, W⁻¹) (see
``pyrxaif.rules.transition``). That factor equals

    N(z_{t+1} | H̄ x_t, W̄⁻¹) · exp(½E log|W| − ½ log|W̄| − ½ x_tᵀ Ψ x_t),   Ψ = E[HᵀWH] − H̄ᵀW̄H̄,

so the expected LDS is an ordinary LDS (Ā, B̄, W̄) with one extra Gaussian potential on each z_t
that has an outgoing transition. Both smoothers below run on that form, so the covariance
correction Ψ enters the forward pass, the backward pass and the pairwise marginals alike.

* ``method="sequential"``: information-form filter + Rauch–Tung–Striebel pass (``lax.scan``),
  log-normaliser from the filter's normalising constants.
* ``method="parallel"``: parallel-in-time filter and smoother (``lax.associative_scan``, after
  Särkkä & García-Fernández, 2021), log-normaliser from log Z = E_q[log p̃] + H[q].

Batches: inputs may carry a leading sequence axis (N, T, …) with a mask (N, T); each row of the
mask must be a prefix of ones (the valid steps) followed by zeros (padding). Padded steps
contribute nothing; their outputs are mean 0, covariance I, cross-covariance 0, flat cavity.
Sufficient statistics are pooled over all sequences. Controls have shape (T, m); u_t drives
z_t → z_{t+1}, so the last valid control of a sequence is unused.

ELBO = log Z̃(q(H), q(W)) − KL(q(H)‖p(H)) − KL(q(W)‖p(W)), where log Z̃ = log ∫ p(z_0) Π obs_t(z_t)
Π exp E log N(z_{t+1}|Hx_t, W⁻¹) dz; at the optimal q(z) this is the usual bound on
log p(observations) of the pseudo-likelihood model.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif import checks as V
from pyrxaif.distributions import KroneckerSumNormal, MvNormal, Wishart, check_precision, kronecker_factors
from pyrxaif.distributions.linalg import (UNROLL_MAX_DIM, inverse_pivoted, is_traced, small_matmul, spd_inverse,
                                          spd_inverse_logdet, sweep, symmetrize)
from pyrxaif.rules import transition as tr

LOG2PI = tr.LOG2PI

__all__ = [
    "DynamicsPosterior", "SmootherResult", "make_prior", "smooth", "sufficient_statistics",
    "update_dynamics", "posterior_from_statistics", "elbo", "vb_em", "dynamics_kl", "smooth_information",
    "check_dynamics", "filter_information", "KnownDynamics", "FilterResult", "structured_prior", "dense_posterior",
    "GaussianMoments",
]


class DynamicsPosterior(NamedTuple):
    """q([A B]) (MvNormal over the row-major vec, length d·(d+m)) and q(W) (Wishart, d × d).
    The prior p([A B]) p(W) has the same type. Inside :func:`vb_em` and ``LinearGaussianSSM.fit_vb``
    q([A B]) may be a :class:`~pyrxaif.distributions.KroneckerSumNormal` instead (:func:`structured_prior`)."""

    q_ab: MvNormal | KroneckerSumNormal
    q_w: Wishart

    @property
    def dims(self) -> tuple[int, int]:
        """(d, m)."""
        d = self.q_w.inv_scale.shape[-1]
        if isinstance(self.q_ab, KroneckerSumNormal):
            return d, self.q_ab.mean.shape[-1] - d
        return d, self.q_ab.xi.shape[-1] // d - d


class KnownDynamics(NamedTuple):
    """A known transition z_{t+1} ~ N(A z_t + B u_t, Q): ``weights`` [A B] (d, d+m), ``covariance``
    Q (d, d). :func:`smooth_information` and :func:`filter_information` accept it in place of a
    :class:`DynamicsPosterior` (then they are the ordinary Kalman filter / RTS smoother)."""

    weights: jax.Array
    covariance: jax.Array

    @property
    def dims(self) -> tuple[int, int]:
        """(d, m)."""
        d = self.covariance.shape[-1]
        return d, self.weights.shape[-1] - d


class GaussianMoments(NamedTuple):
    """The initial state N(mean, cov) in moment form, mean (d,), cov (d, d) positive definite:
    :func:`smooth_information` and :func:`filter_information` accept it as ``init`` in place of an
    :class:`~pyrxaif.distributions.MvNormal` (the sequential filter starts from the moments, so no
    inversion is needed for it)."""

    mean: jax.Array
    cov: jax.Array


class FilterResult(NamedTuple):
    """Forward pass only (:func:`filter_information`): log_normalizer (), filtered_mean (T, d),
    filtered_cov (T, d, d) = q(z_t | observations up to t) (a leading N for batches)."""

    log_normalizer: jax.Array
    filtered_mean: jax.Array
    filtered_cov: jax.Array


class SmootherResult(NamedTuple):
    """Smoothed beliefs. Shapes for one sequence (a leading N is added for batches):

    mean (T, d), cov (T, d, d): q(z_t);  cross_cov (T, d, d): Cov(z_{t+1}, z_t) (zero at the last
    valid step); cavity: MvNormal (T, d) natural form, the belief on z_t from everything except
    the observation message at t (α_t β_t, the VAE's latent prior; from :func:`smooth` only, else
    None); log_normalizer (): log Z̃; filtered_mean (T, d), filtered_cov (T, d, d): q(z_t | observations
    up to t) (from :func:`smooth_information` only, else None)."""

    mean: jax.Array
    cov: jax.Array
    cross_cov: jax.Array
    cavity: MvNormal
    log_normalizer: jax.Array
    filtered_mean: jax.Array | None = None
    filtered_cov: jax.Array | None = None


# =============================================================================================
# Construction and validation
# =============================================================================================
def make_prior(d: int, m: int, *, ab_mean=None, ab_precision=1.0, w_df=None, w_mean=None,
               structured: bool = False) -> DynamicsPosterior:
    """Gaussian prior on vec [A B] (mean ``ab_mean`` (d, d+m), default 0; isotropic precision
    ``ab_precision`` or a full (d(d+m))² matrix) and Wishart prior on W with E[W] = ``w_mean``
    (default I) and ``w_df`` degrees of freedom (default d + 2). ``structured=True`` (isotropic
    ``ab_precision`` only) builds p([A B]) directly as the matrix normal λI_d ⊗ I_n
    (:class:`~pyrxaif.distributions.KroneckerSumNormal`), the form :func:`structured_prior` gives the
    dense one, without building the (d·n)² matrix: ``LinearGaussianSSM.fit_vb``'s default prior
    (:func:`structured_prior` passes it through; the other functions, :func:`vb_em` included, take the
    dense form)."""
    d, m = V.check_count("d", d), V.check_count("m", m, minimum=0)
    if not isinstance(structured, (bool, np.bool_)):
        raise TypeError(f"structured: expected a bool, got {type(structured).__name__}")
    n = d + m
    mean = np.zeros((d, n)) if ab_mean is None else V.as_float_array("ab_mean", ab_mean, shape=(d, n))
    prec = V.as_float_array("ab_precision", ab_precision)
    if prec.ndim == 0:                   # λI: its one eigenvalue is checked (no (d·n)³ eigendecomposition)
        if not prec > 0:
            raise ValueError(f"ab_precision: expected a positive scalar, got {float(prec)}")
        V.check_eigenvalue_range("ab_precision", prec.reshape(1, 1), PRIOR_RANGE)
        if structured:
            q_ab = _matrix_normal_jit(mean, float(prec) * np.eye(d), np.eye(n))
        else:
            prec = float(prec) * np.eye(d * n)
    elif structured:
        raise ValueError(f"ab_precision: structured=True takes a positive scalar (λI), got shape {prec.shape}")
    elif prec.shape != (d * n, d * n):
        raise ValueError(f"ab_precision: expected a scalar or shape {(d * n, d * n)}, got {prec.shape}")
    else:
        V.check_positive_definite("ab_precision", prec)
        V.check_eigenvalue_range("ab_precision", prec, PRIOR_RANGE)
    if not structured:
        q_ab = MvNormal(jnp.asarray(prec @ mean.reshape(-1)), jnp.asarray(prec))
    if w_df is None:
        df = float(d + 2)
    else:
        df = float(V.as_float_array("w_df", w_df, ndim=0))
        if not df > d - 1:
            raise ValueError(f"w_df: expected degrees of freedom > d - 1 = {d - 1}, got {w_df!r}")
    wm = np.eye(d) if w_mean is None else V.as_float_array("w_mean", w_mean, shape=(d, d))
    V.check_positive_definite("w_mean", wm)
    V.check_eigenvalue_range("w_mean", wm, PRIOR_RANGE)
    return DynamicsPosterior(q_ab, Wishart.from_mean(wm, df))


def check_dynamics(name: str, dyn, d: int | None = None) -> tuple[int, int]:
    """(d, m) of a DynamicsPosterior after checking its parts (``name`` in the errors; ``d``: the
    state dimension it must have)."""
    if not isinstance(dyn, DynamicsPosterior):
        raise TypeError(f"{name}: expected a DynamicsPosterior, got {type(dyn).__name__}")
    return _check_q(f"{name}.q_ab", dyn.q_ab, f"{name}.q_w", dyn.q_w, d)


def _check_q(ab_name, q_ab, w_name, q_w, d=None):
    return _check_q_factors(ab_name, q_ab, w_name, q_w, d)[:2]


def _check_q_factors(ab_name, q_ab, w_name, q_w, d=None, structured_allowed: bool = False):
    """(d, m, factors) after checking q([A B]) q(W) (``_check_q``); factors = (R, C) when the precision of
    vec [A B] is R ⊗ C (``kronecker_factors``; then R and C are checked instead of the (d·n)² matrix),
    else None (also when traced, and for a KroneckerSumNormal q([A B]), accepted where
    ``structured_allowed``: its mean's shape is checked, the matrix normal itself at construction)."""
    if not isinstance(q_ab, (MvNormal, KroneckerSumNormal)):
        raise TypeError(f"{ab_name}: expected an MvNormal over vec [A B], got {type(q_ab).__name__}")
    if not isinstance(q_w, Wishart):
        raise TypeError(f"{w_name}: expected a Wishart, got {type(q_w).__name__}")
    if is_traced(q_ab, q_w):
        return DynamicsPosterior(q_ab, q_w).dims + (None,)
    if isinstance(q_ab, KroneckerSumNormal) and not structured_allowed:
        raise TypeError(f"{ab_name}: a KroneckerSumNormal q([A B]) is internal to vb_em / fit_vb's compiled loop; "
                        "pass an MvNormal (dense_posterior converts)")
    inv = V.as_float_array(f"{w_name}.inv_scale", q_w.inv_scale)
    if inv.ndim != 2:
        raise ValueError(f"{w_name}.inv_scale: expected a (d, d) matrix, got shape {inv.shape}")
    V.check_positive_definite(f"{w_name}.inv_scale", inv)
    dw = inv.shape[0]
    if d is not None and dw != d:
        raise ValueError(f"{w_name}: expected dimension d = {d} (from obs_mean), got {dw}")
    df = V.as_float_array(f"{w_name}.df", q_w.df)
    if df.ndim != 0 or not df > dw - 1:
        raise ValueError(f"{w_name}.df: expected a scalar > d - 1 = {dw - 1}, got {df.tolist()}")
    if isinstance(q_ab, KroneckerSumNormal):
        shape = V.as_float_array(f"{ab_name}.mean", q_ab.mean, ndim=2).shape
        if shape[0] != dw or shape[1] < dw:
            raise ValueError(f"{ab_name}.mean: expected [A B] of shape (d, d+m) with d = {dw}, got {shape}")
        return dw, shape[1] - dw, None
    xi = V.as_float_array(f"{ab_name}.xi", q_ab.xi, ndim=1)
    if xi.shape[0] % dw or xi.shape[0] < dw * dw:
        raise ValueError(f"{ab_name}.xi: expected length d*(d+m) with d = {dw}, got {xi.shape[0]}")
    prec = V.as_float_array(f"{ab_name}.precision", q_ab.precision, shape=(xi.shape[0], xi.shape[0]))
    n = xi.shape[0] // dw
    factors = kronecker_factors(prec, dw, n)
    if factors is None:
        V.check_positive_definite(f"{ab_name}.precision", prec)
    else:                                      # R ⊗ C is positive definite iff R and C are (C_00 > 0)
        V.check_positive_definite(f"{ab_name}.precision (its Kronecker factor on the rows of [A B])", factors[0])
        V.check_positive_definite(f"{ab_name}.precision (its Kronecker factor on the columns of [A B])", factors[1])
    return dw, n - dw, factors


def _check_known(dyn: KnownDynamics, d: int):
    """(d, m) of known dynamics, validated unless traced."""
    if is_traced(dyn):
        return dyn.dims
    cov = V.as_float_array("dynamics.covariance", dyn.covariance, shape=(d, d))
    V.check_positive_definite("dynamics.covariance", cov)
    w = V.as_float_array("dynamics.weights", dyn.weights)
    if w.ndim != 2 or w.shape[0] != d or w.shape[1] < d:
        raise ValueError(f"dynamics.weights: expected [A B] of shape (d, d+m) with d = {d}, got {w.shape}")
    return dyn.dims


def _check_init(init, d, moments_allowed: bool = False):
    """``init``: an MvNormal N(m1, V1) (or, where ``moments_allowed``, a GaussianMoments) on z_0 of
    dimension d, validated unless traced."""
    kinds = (MvNormal, GaussianMoments) if moments_allowed else (MvNormal,)
    if not isinstance(init, kinds):
        what = "an MvNormal or GaussianMoments" if moments_allowed else "an MvNormal"
        raise TypeError(f"init: expected {what} N(m1, V1), got {type(init).__name__}")
    if is_traced(init):
        return
    if isinstance(init, GaussianMoments):
        V.as_float_array("init.mean", init.mean, shape=(d,))
        V.check_positive_definite("init.cov", V.as_float_array("init.cov", init.cov, shape=(d, d)))
        return
    V.as_float_array("init.xi", init.xi, shape=(d,))
    V.check_positive_definite("init.precision", V.as_float_array("init.precision", init.precision, shape=(d, d)))


def _init_precision_diagonal(init) -> np.ndarray:
    """The diagonal of the initial state's precision (validated, eager input): read off an MvNormal,
    for GaussianMoments the squared column norms of L⁻¹ (cov = LLᵀ, a triangular solve)."""
    if isinstance(init, MvNormal):
        return np.diagonal(np.asarray(init.precision))
    cov = np.asarray(init.cov, np.float64)
    chol_inv = np.linalg.solve(np.linalg.cholesky(cov), np.eye(cov.shape[-1]))
    return np.sum(chol_inv ** 2, axis=0)


def _prepare_traced(obs_mean, obs_precision, controls, mask):
    """Inside jit/grad (traced inputs): no validation, same conversions as ``_prepare``."""
    mu = jnp.asarray(obs_mean, jnp.float64)
    batched = mu.ndim == 3
    f = (lambda x: x) if batched else (lambda x: x[None])
    mu = f(mu)
    lam = f(jnp.asarray(obs_precision, jnp.float64))
    diag = lam.ndim == 3
    u = jnp.zeros(mu.shape[:2] + (0,)) if controls is None else f(jnp.asarray(controls, jnp.float64))
    msk = jnp.ones(mu.shape[:2]) if mask is None else f(jnp.asarray(mask, jnp.float64))
    return mu, lam, diag, u, msk, batched


def _prepare(obs_mean, obs_precision, controls, mask):
    """Validate the data arguments; return batched jnp arrays (N, T, …) and whether input was batched.
    Traced arguments (inside jit/grad, e.g. a VAE loss) skip validation."""
    if is_traced(obs_mean, obs_precision, controls, mask):
        return _prepare_traced(obs_mean, obs_precision, controls, mask)
    mu = V.as_float_array("obs_mean", obs_mean)
    if mu.ndim not in (2, 3):
        raise ValueError(f"obs_mean: expected shape (T, d) or (N, T, d), got {mu.shape}")
    batched = mu.ndim == 3
    if not batched:
        mu = mu[None]
    n_seq, t_len, d = mu.shape
    if t_len < 1 or d < 1:
        raise ValueError(f"obs_mean: expected T >= 1 and d >= 1, got shape {mu.shape}")
    lam = V.as_float_array("obs_precision", obs_precision)
    if not batched:
        lam = lam[None]
    if lam.shape == (n_seq, t_len, d):
        if np.any(lam < 0):
            raise ValueError(f"obs_precision: expected non-negative diagonal precisions, got minimum {lam.min():.3g}")
        diag = True
    elif lam.shape == (n_seq, t_len, d, d):
        check_precision("obs_precision", lam, allow_singular=True)
        zero = np.all(lam == 0, axis=-1)                                   # unobserved dimensions
        if not np.all(np.all(lam == 0, axis=-2) == zero):
            raise ValueError("obs_precision: expected symmetric matrices")
        filled = lam + zero[..., None] * np.eye(d)
        try:
            np.linalg.cholesky(filled)
        except np.linalg.LinAlgError:
            raise ValueError("obs_precision: expected each matrix to be positive definite on its non-zero "
                             "rows/columns (an all-zero row means that dimension is unobserved)") from None
        diag = False
    else:
        want = "(T, d) or (T, d, d)" if not batched else "(N, T, d) or (N, T, d, d)"
        raise ValueError(f"obs_precision: expected shape {want} matching obs_mean {tuple(mu.shape[int(not batched):])}"
                         f", got {np.shape(obs_precision)}")
    if controls is None:
        u = np.zeros((n_seq, t_len, 0))
    else:
        u = V.as_float_array("controls", controls)
        if not batched:
            u = u[None]
        if u.ndim != 3 or u.shape[:2] != (n_seq, t_len):
            raise ValueError(f"controls: expected shape {'(N, T, m)' if batched else '(T, m)'} with "
                             f"{'N, T' if batched else 'T'} = {mu.shape[:2] if batched else t_len}, got {np.shape(controls)}")
    if mask is None:
        msk = np.ones((n_seq, t_len))
    else:
        msk = V.as_float_array("mask", mask)
        if not batched:
            msk = msk[None]
        if msk.shape != (n_seq, t_len):
            raise ValueError(f"mask: expected shape {(n_seq, t_len) if batched else (t_len,)}, got {np.shape(mask)}")
        if not np.all((msk == 0) | (msk == 1)):
            raise ValueError("mask: expected 0/1 (or boolean) entries")
        if np.any(np.diff(msk, axis=1) > 0):
            raise ValueError("mask: expected each sequence to be valid steps followed by padding "
                             "(a prefix of ones), found a 0 followed by a 1")
        if np.any(msk[:, 0] == 0):
            raise ValueError("mask: expected at least one valid step per sequence (mask[..., 0] == 1)")
    return (jnp.asarray(mu), jnp.asarray(lam), diag, jnp.asarray(u), jnp.asarray(msk), batched)


# eigenvalues of a prior's precision / E[W] that float64 can invert and multiply by data
PRIOR_RANGE = (1e-100, 1e100)
# float64 carries ~16 digits: an observation precision more than this many times the model's own
# (log Z of the two smoothers agrees to ~1e-5 at 1e10, to 5e-3 at 1e12, is garbage from ~1e16)
# precisions (E[W], the initial state's) swamps them in every sum of the filter (results would be garbage)
MAX_PRECISION_RATIO = 1e10
# vb_em warns when the data's spread exceeds the prior's expected noise scale by this factor (std units)
PRIOR_SCALE_RATIO = 1e3


def _check_precision_range(lam, diag: bool, w_mean, init: MvNormal | GaussianMoments):
    """Refuse observation precisions that float64 cannot combine with the model's precisions
    (w_mean: the transition precision E[W], or Q⁻¹ for known dynamics)."""
    if is_traced(lam, w_mean, init):
        return
    lam = np.asarray(lam)
    largest = float(lam.max() if diag else np.max(np.diagonal(lam, axis1=-2, axis2=-1)))
    w_diag = np.diagonal(np.asarray(w_mean))
    model = max(float(w_diag.max()), float(np.max(_init_precision_diagonal(init))))
    if largest > MAX_PRECISION_RATIO * model:
        raise ValueError(
            f"obs_precision: largest entry {largest:.3g} is more than {MAX_PRECISION_RATIO:.0e} times the model's "
            f"precisions (E[W] and init.precision, largest {model:.3g}); float64 cannot add them usefully. "
            f"Rescale the latent space (or cap the precision, e.g. at {MAX_PRECISION_RATIO * model:.3g}).")


def _warn_prior_scale(mu, mask, prior: DynamicsPosterior):
    """Warn when the data spread is far beyond the noise scale the prior on W expects."""
    if is_traced(mu, mask, prior):
        return
    mu, msk = np.asarray(mu), np.asarray(mask) > 0
    spread = float(np.max(np.std(mu[msk], axis=0))) if msk.sum() > 1 else 0.0
    noise = float(np.sqrt(np.max(np.diagonal(np.asarray(spd_inverse_logdet(prior.q_w.mean())[0])))))
    if spread > PRIOR_SCALE_RATIO * noise:
        warnings.warn(
            f"obs_mean: the data spread (std up to {spread:.3g}) is more than {PRIOR_SCALE_RATIO:.0e} times the "
            f"transition noise scale the prior expects (std {noise:.3g}, from prior.q_w); the prior cannot fit "
            f"this scale and the learned dynamics may be meaningless (e.g. A close to 0). Rescale the data to unit "
            f"scale, or build the prior for it: make_prior(d, m, w_mean=np.eye(d) / scale**2).",
            UserWarning, stacklevel=3)


# =============================================================================================
# The expected LDS as an ordinary LDS with per-step potentials (jitted internals, one sequence)
# =============================================================================================
class _Model(NamedTuple):
    a: jax.Array          # Ā (d, d)
    b: jax.Array          # B̄ (d, m)
    w: jax.Array          # W̄ (d, d)
    psi: jax.Array | None  # Ψ (n, n); None for known dynamics (no correction potential)
    c_w: jax.Array        # ½E log|W| − ½ log|W̄|
    q: jax.Array          # W̄⁻¹ (d, d), the transition covariance


def _model(q_ab: MvNormal | KroneckerSumNormal, q_w: Wishart) -> _Model:
    d, m = DynamicsPosterior(q_ab, q_w).dims
    n = d + m
    w = q_w.mean()
    h = tr.expected_ab(q_ab, d, n)
    psi = tr.quadratic_correction(q_ab, w, d, n)
    c_w = 0.5 * q_w.expected_logdet() - 0.5 * _logdet(w)
    return _Model(h[:, :d], h[:, d:], w, psi, c_w, _inverse(w))


def _known_model(dyn: "KnownDynamics") -> _Model:
    """Known [A B] and Q: the LDS itself (no Ψ potential, no log-determinant correction)."""
    d, _ = dyn.dims
    return _Model(dyn.weights[:, :d], dyn.weights[:, d:], _inverse(dyn.covariance), None,
                  jnp.zeros((), dyn.covariance.dtype), symmetrize(dyn.covariance))


def _lds(dynamics) -> _Model:
    """The LDS the smoothers run on: the expected LDS under q([A B]) q(W), or the known one."""
    if isinstance(dynamics, KnownDynamics):
        return _known_model(dynamics)
    return _model(dynamics.q_ab, dynamics.q_w)


def _obs_potentials(mu, lam, diag: bool):
    """log N(μ | z, Λ⁻¹) as a potential g + ξᵀz − ½zᵀΛz (unobserved dimensions drop out)."""
    if diag:
        observed = lam > 0
        logdet = jnp.sum(jnp.where(observed, jnp.log(jnp.where(observed, lam, 1.0)), 0.0), -1)
        rank = jnp.sum(observed, -1)
        lam = lam[..., :, None] * jnp.eye(lam.shape[-1])
    else:
        zero = jnp.all(lam == 0, axis=-1)
        logdet = _logdet(lam + zero[..., None] * jnp.eye(lam.shape[-1]))
        rank = lam.shape[-1] - jnp.sum(zero, -1)
    xi = jnp.einsum("...ij,...j->...i", lam, mu)
    g = -0.5 * rank * LOG2PI + 0.5 * logdet - 0.5 * jnp.einsum("...i,...i->...", xi, mu)
    return g, xi, lam


def _potentials(obs, u, mask, mdl: _Model):
    """Per-step potentials (g, ξ, Λ) on z_t: observation potentials ``obs`` (valid steps) + Ψ term
    (steps with an outgoing transition; none for known dynamics); trans[t] = 1 where z_t → z_{t+1} exists."""
    g, xi, prec = obs
    d = xi.shape[-1]
    trans = mask * jnp.concatenate([mask[1:], jnp.zeros(1)])
    if mdl.psi is None:
        return mask * g, mask[:, None] * xi, mask[:, None, None] * prec, trans
    psi_zz, psi_zu, psi_uu = mdl.psi[:d, :d], mdl.psi[:d, d:], mdl.psi[d:, d:]
    g_t = mdl.c_w - 0.5 * jnp.einsum("ti,ij,tj->t", u, psi_uu, u)
    xi_t = -u @ psi_zu.T
    g = mask * g + trans * g_t
    xi = mask[:, None] * xi + trans[:, None] * xi_t
    prec = mask[:, None, None] * prec + trans[:, None, None] * psi_zz
    return g, xi, prec, trans


# All linear algebra inside the jitted smoothers goes through ``spd_inverse_logdet`` and
# ``inverse_pivoted`` (fused elementwise code, no LAPACK custom call): two of jaxlib's batched LAPACK
# kernels running at once can deadlock XLA's CPU thread pool (docs/lgssm.md, "The parallel-smoother hang").
def _logdet(m):
    """log|M| for symmetric positive-definite M (..., d, d)."""
    return spd_inverse_logdet(symmetrize(m), inverse=False)[1]


def _inverse(m):
    """M⁻¹ for symmetric positive-definite M (..., d, d)."""
    return spd_inverse_logdet(symmetrize(m))[0]


def _init_moments(init) -> tuple[jax.Array, jax.Array]:
    """(mean, covariance) of the initial state (an MvNormal is inverted once)."""
    if isinstance(init, GaussianMoments):
        return init.mean, symmetrize(init.cov)
    cov = _inverse(init.precision)
    return cov @ init.xi, cov


def _init_natural(init) -> MvNormal:
    """The initial state as an MvNormal (a GaussianMoments is inverted once)."""
    if isinstance(init, MvNormal):
        return init
    return MvNormal.from_mean_cov(init.mean, init.cov)


def _canon_lognorm(g, xi, prec):
    """log ∫ exp(g + ξᵀz − ½zᵀΛz) dz for Λ positive definite."""
    cov, logdet = spd_inverse_logdet(symmetrize(prec))
    m = jnp.einsum("...ij,...j->...i", cov, xi)
    return g + 0.5 * jnp.sum(xi * m, -1) - 0.5 * logdet + 0.5 * xi.shape[-1] * LOG2PI


def _moments(xi, prec):
    cov = _inverse(prec)
    return jnp.einsum("...ij,...j->...i", cov, xi), cov


def _step_loglik(m_p, j_p, logdet_jp, h_dot_mf, logdet_jf):
    """log ∫ N(z | m_p, J_p⁻¹) exp(ξᵀz − ½zᵀΛz) dz for the filtered belief J_f = J_p + Λ,
    h = J_p m_p + ξ, m_f = J_f⁻¹h: ½hᵀm_f − ½m_pᵀJ_p m_p + ½log|J_p| − ½log|J_f| (the potential's
    constant g is added by the caller)."""
    quad = jnp.einsum("...i,...ij,...j->...", m_p, j_p, m_p)
    return 0.5 * h_dot_mf - 0.5 * quad + 0.5 * logdet_jp - 0.5 * logdet_jf


class _Filtered(NamedTuple):
    """Output of the forward pass, per step t: filtered moments of z_t, predicted moments of z_{t+1}
    (mean and precision, through the transition), and the log-normaliser of the whole sequence."""
    mean: jax.Array            # (T, d)
    cov: jax.Array             # (T, d, d)
    next_mean: jax.Array       # (T, d)    Ā m_t + B̄ u_t
    next_precision: jax.Array  # (T, d, d) (Ā S_t Āᵀ + W̄⁻¹)⁻¹ for t < T−1; the last row, which no
    #                                        transition uses, repeats the one before
    log_z: jax.Array           # ()


def _spd_inverse_in_scan(m):
    """(M⁻¹, log|M|) for one SPD matrix inside a sequential scan step: the unrolled Cholesky of
    ``spd_inverse_logdet`` up to ``UNROLL_MAX_DIM`` (fused scalar code, the fastest there), else one sweep."""
    d = m.shape[-1]
    if d <= UNROLL_MAX_DIM:
        return spd_inverse_logdet(m)
    swept, logdet = sweep(m, d, with_logdet=True)
    return -swept, logdet


def _solve_in_scan(m, h):
    """(M⁻¹, M⁻¹h, hᵀM⁻¹h, log|M|) for one SPD matrix M and vector h inside a scan step: as
    :func:`_spd_inverse_in_scan`, with h carried through the sweep ([[M, h], [hᵀ, 0]]) beyond ``UNROLL_MAX_DIM``."""
    d = m.shape[-1]
    if d <= UNROLL_MAX_DIM:
        inv, logdet = spd_inverse_logdet(m)
        x = small_matmul(inv, h)
        return inv, x, jnp.sum(h * x), logdet
    aug = jnp.concatenate([jnp.concatenate([m, h[:, None]], 1), jnp.concatenate([h, jnp.zeros(1, h.dtype)])[None]])
    swept, logdet = sweep(aug, d, with_logdet=True)
    return -swept[:d, :d], swept[:d, d], -swept[d, d], logdet


def _forward(pots, u, mask, init, mdl: _Model) -> _Filtered:
    """Kalman filter on the potentials (``lax.scan``), in moment form: the carry is the predicted
    mean and covariance of z_t, starting from ``init`` in moment form (:func:`_init_moments`: no
    set-up work for a :class:`GaussianMoments` init). Per step two factorisations, no LAPACK call
    (:func:`_spd_inverse_in_scan`, :func:`_solve_in_scan`: unrolled Cholesky up to ``UNROLL_MAX_DIM``,
    sweeps beyond): the predicted covariance P_t gives the predicted precision J_t and log|P_t|;
    J_t + Λ_t with h_t = J_t m_{t|t-1} + ξ_t gives the filtered covariance S_t, mean m_t = S_t h_t,
    h_tᵀm_t and log|J_t + Λ_t|; the step's contribution to log Z̃ (:func:`_step_loglik`) is formed in
    the step; the prediction Ā S_t Āᵀ + W̄⁻¹ is products only (``small_matmul``)."""
    g, xi, prec, trans = pots
    a = mdl.a
    c = u @ mdl.b.T                                                        # B̄ u_t (T, d)
    q = mdl.q                                                              # W̄⁻¹

    def step(carry, inp):
        m_p, p_p = carry
        xi_t, prec_t, c_t = inp
        j_p, logdet_pp = _spd_inverse_in_scan(p_p)
        jm = small_matmul(j_p, m_p)
        h = jm + xi_t
        s_f, m_f, h_dot_mf, logdet_jf = _solve_in_scan(j_p + prec_t, h)
        # the step's log Z̃ term (_step_loglik, with m_pᵀJ_p m_p from J_p m_p above)
        loglik = 0.5 * h_dot_mf - 0.5 * jnp.sum(m_p * jm) - 0.5 * logdet_pp - 0.5 * logdet_jf
        m_next = small_matmul(a, m_f) + c_t
        return (m_next, symmetrize(small_matmul(small_matmul(a, s_f), a.T) + q)), (m_f, s_f, m_next, j_p, loglik)

    _, (m_f, s_f, m_next, j_p, loglik) = jax.lax.scan(step, _init_moments(init), (xi, prec, c))
    log_z = jnp.sum(mask * (g + loglik))
    return _Filtered(m_f, s_f, m_next, jnp.concatenate([j_p[1:], j_p[-1:]]), log_z)


def _sequential(pots, u, mask, init: MvNormal | GaussianMoments, mdl: _Model):
    """:func:`_forward`, then Rauch–Tung–Striebel: z_t | z_{t+1} ~ N(G_t z_{t+1} + k_t, L_t) with
    G_t = S_t Āᵀ J_{t+1|t}, k_t = m_t − G_t m_{t+1|t}, L_t = S_t − G_t Ā S_t (batched products over t);
    the recursion m_t = k_t + G_t m_{t+1}, S_t = L_t + G_t S_{t+1} G_tᵀ is affine in (m, S), so it
    runs as a ``lax.associative_scan`` (matrix products only)."""
    trans = pots[3]
    d = pots[1].shape[-1]
    fw = _forward(pots, u, mask, init, mdl)
    gain = fw.cov @ mdl.a.T @ fw.next_precision
    has_next = trans > 0
    e_el = jnp.where(has_next[:, None, None], gain, 0.0)
    g_el = jnp.where(has_next[:, None], fw.mean - jnp.einsum("tij,tj->ti", gain, fw.next_mean), fw.mean)
    l_el = jnp.where(has_next[:, None, None], symmetrize(fw.cov - gain @ mdl.a @ fw.cov), fw.cov)
    _, m, s = jax.lax.associative_scan(_smooth_op, (e_el, g_el, l_el), reverse=True)
    cross = jnp.concatenate([s[1:], jnp.zeros((1, d, d))]) @ jnp.swapaxes(e_el, -1, -2)   # S_{t+1} G_tᵀ
    return m, s, cross, l_el, fw.log_z, (fw.mean, fw.cov)


# ----- parallel-in-time version ---------------------------------------------------------------
def _filter_op(ei, ej):
    """Associative combination of filtering elements (A, b, C, η, J) (Särkkä & García-Fernández)."""
    ai, bi, ci, etai, ji = ei
    aj, bj, cj, etaj, jj = ej
    inv = inverse_pivoted(jnp.eye(ai.shape[-1]) + ci @ jj)                # (I + C_i J_j)⁻¹
    aj_m = aj @ inv                                                        # A_j(I + C_i J_j)⁻¹
    ai_y = jnp.swapaxes(inv @ ai, -1, -2)                                  # A_iᵀ(I + J_j C_i)⁻¹
    a = aj_m @ ai
    b = (aj_m @ (bi + (ci @ etaj[..., None])[..., 0])[..., None])[..., 0] + bj
    c = symmetrize(aj_m @ ci @ jnp.swapaxes(aj, -1, -2) + cj)
    eta = (ai_y @ (etaj - (jj @ bi[..., None])[..., 0])[..., None])[..., 0] + etai
    j = symmetrize(ai_y @ jj @ ai + ji)
    return a, b, c, eta, j


def _smooth_op(later, earlier):
    """(E, g, L)_t ⊗ (E, g, L)_{t+1…}: E_t E, E_t g + g_t, E_t L E_tᵀ + L_t."""
    e1, g1, l1 = later
    e2, g2, l2 = earlier
    return (e2 @ e1, (e2 @ g1[..., None])[..., 0] + g2, symmetrize(e2 @ l1 @ jnp.swapaxes(e2, -1, -2) + l2))


def _parallel_filter(pots, u, mask, init: MvNormal, mdl: _Model):
    """Filtered moments (T, d), (T, d, d) by the parallel-in-time filter (``lax.associative_scan``)."""
    _, xi, prec, _ = pots
    t_len, d = xi.shape
    eye = jnp.eye(d)
    c = u @ mdl.b.T
    c_prev = jnp.concatenate([jnp.zeros((1, d)), c[:-1]])                 # input of the transition into t
    w = mdl.w
    cmat = _inverse(w + prec)                                              # (W̄ + Λ_t)⁻¹
    a_el = cmat @ (w @ mdl.a)
    b_el = jnp.einsum("tij,tj->ti", cmat, c_prev @ w + xi)
    jy = symmetrize(w - w @ cmat @ w)
    etay = jnp.einsum("ij,tjk,tk->ti", w, cmat, xi)
    j_el = symmetrize(mdl.a.T @ jy @ mdl.a)
    eta_el = (etay - jnp.einsum("tij,tj->ti", jy, c_prev)) @ mdl.a
    c0 = _inverse(init.precision + prec[0])
    first = (jnp.zeros((d, d)), c0 @ (init.xi + xi[0]), c0, jnp.zeros(d), jnp.zeros((d, d)))
    valid = mask > 0
    ident = (eye, jnp.zeros(d), jnp.zeros((d, d)), jnp.zeros(d), jnp.zeros((d, d)))
    elems = []
    for k, (x, x0, xid) in enumerate(zip((a_el, b_el, cmat, eta_el, j_el), first, ident)):
        x = x.at[0].set(x0)
        sel = valid.reshape((t_len,) + (1,) * (x.ndim - 1))
        elems.append(jnp.where(sel, x, xid))
    _, mf, sf, _, _ = jax.lax.associative_scan(_filter_op, tuple(elems))
    return mf, sf


def _filter_log_z(pots, u, mask, init: MvNormal, mdl: _Model, mf, sf):
    """log Z̃ from the filtered moments, Σ_t log ∫ p(z_t | earlier potentials) · potential_t dz_t
    (:func:`_step_loglik`, vectorised over t; the predictions Ā m_{t-1} + B̄ u_{t-1}, Ā S_{t-1} Āᵀ + W̄⁻¹)."""
    g, xi, prec, _ = pots
    c = u @ mdl.b.T
    p_next = symmetrize(mdl.a @ sf[:-1] @ mdl.a.T + mdl.q)
    m_p = jnp.concatenate([init.mean[None], mf[:-1] @ mdl.a.T + c[:-1]])
    j_next, logdet_p = spd_inverse_logdet(p_next)
    j_p = jnp.concatenate([symmetrize(init.precision)[None], j_next])
    logdet_jp = jnp.concatenate([_logdet(init.precision)[None], -logdet_p])
    h = jnp.einsum("tij,tj->ti", j_p, m_p) + xi
    per_step = _step_loglik(m_p, j_p, logdet_jp, jnp.sum(h * mf, -1), _logdet(j_p + prec))
    return jnp.sum(mask * (g + per_step))


def _parallel(pots, u, mask, init: MvNormal | GaussianMoments, mdl: _Model):
    """Parallel-in-time filter and smoother (Särkkä & García-Fernández, 2021); log Z̃ from the
    smoothed marginals (:func:`_log_z_from_marginals`)."""
    init = _init_natural(init)
    trans = pots[3]
    d = pots[1].shape[-1]
    eye = jnp.eye(d)
    c = u @ mdl.b.T
    valid = mask > 0
    mf, sf = _parallel_filter(pots, u, mask, init, mdl)
    # backward elements from the filtered moments
    pred = symmetrize(mdl.a @ sf @ mdl.a.T + mdl.q)                        # Ā P Āᵀ + W̄⁻¹
    e_el = sf @ mdl.a.T @ _inverse(pred)                                   # P Āᵀ pred⁻¹
    g_el = mf - jnp.einsum("tij,tj->ti", e_el, mf @ mdl.a.T + c)
    l_el = symmetrize(sf - e_el @ mdl.a @ sf)
    has_next = trans[:, None] > 0
    e_el = jnp.where(has_next[..., None], e_el, 0.0)
    g_el = jnp.where(has_next, g_el, mf)
    l_el = jnp.where(has_next[..., None], l_el, sf)
    sel = valid[:, None]
    e_el = jnp.where(sel[..., None], e_el, eye)
    g_el = jnp.where(sel, g_el, 0.0)
    l_el = jnp.where(sel[..., None], l_el, 0.0)
    _, m, s = jax.lax.associative_scan(_smooth_op, (e_el, g_el, l_el), reverse=True)
    cross = jnp.concatenate([s[1:], jnp.zeros((1, d, d))]) @ jnp.swapaxes(e_el, -1, -2)
    log_z = _log_z_from_marginals(pots, c, mask, init, mdl, m, s, cross, l_el)
    return m, s, cross, l_el, log_z, (mf, sf)


def _expected_potential(g, xi, prec, m, s):
    """E_q[g + ξᵀz − ½zᵀΛz] under q(z) = N(m, S)."""
    second = s + m[..., :, None] * m[..., None, :]
    return g + jnp.sum(xi * m, -1) - 0.5 * jnp.einsum("...ij,...ji->...", prec, second)


def _log_z_from_marginals(pots, c, mask, init, mdl, m, s, cross, cond_cov):
    """log Z = E_q[log p̃(z)] + H[q], H[q] = Σ_t H(z_t | z_{t+1}) (reverse Markov chain)."""
    g, xi, prec, trans = pots
    d = m.shape[-1]
    e_prior = _expected_potential(-0.5 * d * LOG2PI + 0.5 * _logdet(init.precision)
                                  - 0.5 * jnp.sum(init.xi * init.mean), init.xi, init.precision, m[0], s[0])
    e_pots = jnp.sum(mask * _expected_potential(g, xi, prec, m, s))
    # E log N(z_{t+1} | Ā z_t + c_t, W̄⁻¹)
    a = mdl.a
    m_next, s_next = jnp.concatenate([m[1:], m[-1:]]), jnp.concatenate([s[1:], s[-1:]])
    e = m_next - m @ a.T - c
    ac = a @ jnp.swapaxes(cross, -1, -2)                                   # Ā Cov(z_t, z_{t+1})
    r = s_next - ac - jnp.swapaxes(ac, -1, -2) + a @ s @ a.T + e[:, :, None] * e[:, None, :]
    logdet_w = _logdet(mdl.w)
    e_trans = jnp.sum(trans * (-0.5 * d * LOG2PI + 0.5 * logdet_w - 0.5 * jnp.einsum("ij,tji->t", mdl.w, r)))
    ent = jnp.sum(mask * (0.5 * d * (1.0 + LOG2PI) + 0.5 * _logdet(
        cond_cov + (1.0 - mask)[:, None, None] * jnp.eye(d))))
    return e_prior + e_pots + e_trans + ent


def _smooth_one(obs, u, mask, mdl: _Model, init, method: str, cavity: bool, filtered: bool):
    """One sequence from its observation potentials obs = (g, ξ, Λ) (T, …): smoothed moments and
    log Z̃, with the cavity messages (``cavity``) and the filtered moments (``filtered``) on request."""
    pots = _potentials(obs, u, mask, mdl)
    run = _sequential if method == "sequential" else _parallel
    m, s, cross, _, log_z, (mf, sf) = run(pots, u, mask, init, mdl)
    d = obs[1].shape[-1]
    valid = mask[:, None] > 0
    trans = pots[3]
    m = jnp.where(valid, m, 0.0)
    s = jnp.where(valid[..., None], s, jnp.eye(d))
    cross = jnp.where(trans[:, None, None] > 0, cross, 0.0)
    cav = None
    if cavity:                     # cavity = smoothed / observation message (natural parameters subtract)
        _, obs_xi, obs_prec = obs
        s_prec = _inverse(s)
        cav = MvNormal(jnp.where(valid, jnp.einsum("tij,tj->ti", s_prec, m) - obs_xi, 0.0),
                       jnp.where(valid[..., None], symmetrize(s_prec - obs_prec), 0.0))
    if not filtered:
        return SmootherResult(m, s, cross, cav, log_z)
    return SmootherResult(m, s, cross, cav, log_z, jnp.where(valid, mf, 0.0), jnp.where(valid[..., None], sf, jnp.eye(d)))


def _filter_one(obs, u, mask, mdl: _Model, init, method: str) -> "FilterResult":
    """One sequence: filtered moments and log Z̃ (forward pass only)."""
    pots = _potentials(obs, u, mask, mdl)
    if method == "sequential":
        fw = _forward(pots, u, mask, init, mdl)
        mf, sf, log_z = fw.mean, fw.cov, fw.log_z
    else:
        init = _init_natural(init)
        mf, sf = _parallel_filter(pots, u, mask, init, mdl)
        log_z = _filter_log_z(pots, u, mask, init, mdl, mf, sf)
    valid = mask[:, None] > 0
    return FilterResult(log_z, jnp.where(valid, mf, 0.0), jnp.where(valid[..., None], sf, jnp.eye(mf.shape[-1])))


def _over_sequences(fn, *xs):
    """fn mapped over the leading (sequence) axis of xs; a single sequence skips vmap (whose
    batch-of-one versions of the scans and small products are slower on CPU)."""
    if xs[0].shape[0] == 1:
        return jax.tree_util.tree_map(lambda y: y[None], fn(*(x[0] for x in xs)))
    return jax.vmap(fn)(*xs)


def _smooth_seqs(mu, lam, u, mask, q_ab, q_w, init, diag, method):
    """``smooth`` on batched data: smoothed moments, log Z̃ and the cavity messages."""
    fn = partial(_smooth_one, mdl=_model(q_ab, q_w), init=init, method=method, cavity=True, filtered=False)
    return _over_sequences(lambda g, xi, prec, u_, m_: fn((g, xi, prec), u_, m_), *_obs_potentials(mu, lam, diag),
                           u, mask)


@partial(jax.jit, static_argnames=("method", "smoother", "squeeze"))
def _information_batch(g, xi, prec, u, mask, dynamics, init, method, smoother, squeeze=False):
    """``smooth_information`` (``smoother``) or ``filter_information`` on batched potentials."""
    if smoother:
        fn = partial(_smooth_one, mdl=_lds(dynamics), init=init, method=method, cavity=False, filtered=True)
    else:
        fn = partial(_filter_one, mdl=_lds(dynamics), init=init, method=method)
    res = _over_sequences(lambda g_, xi_, prec_, u_, m_: fn((g_, xi_, prec_), u_, m_), g, xi, prec, u, mask)
    return jax.tree_util.tree_map(lambda x: x[0], res) if squeeze else res


@partial(jax.jit, static_argnames=("diag", "method", "squeeze"))
def _smooth_batch(mu, lam, u, mask, q_ab, q_w, init, diag, method, squeeze=False):
    res = _smooth_seqs(mu, lam, u, mask, q_ab, q_w, init, diag, method)
    return jax.tree_util.tree_map(lambda x: x[0], res) if squeeze else res


# =============================================================================================
# Public API
# =============================================================================================
def smooth(obs_mean, obs_precision, controls, q_ab: MvNormal, q_w: Wishart, init: MvNormal, mask=None,
           method: str = "sequential") -> SmootherResult:
    """q(z_t), q(z_t, z_{t+1}) and the cavity messages on the expected LDS under q([A B]) q(W).

    obs_mean (T, d) or (N, T, d); obs_precision (…, T, d) diagonal or (…, T, d, d) full (zero
    rows = unobserved dimensions); controls (…, T, m) or None; init = N(m1, V1) on z_0; mask (N, T)
    prefix-of-ones (padding after each sequence's end); method "sequential" | "parallel".
    Batched input returns batched results (log_normalizer per sequence)."""
    V.check_choice("method", method, ("sequential", "parallel"))
    mu, lam, diag, u, msk, batched = _prepare(obs_mean, obs_precision, controls, mask)
    d = mu.shape[-1]
    dd, m = _check_q("q_ab", q_ab, "q_w", q_w, d)
    if u.shape[-1] != m:
        raise ValueError(f"controls: expected m = {m} columns (from q_ab of length d*(d+m) = {q_ab.xi.shape[-1]}),"
                         f" got {u.shape[-1]}")
    _check_init(init, d)
    _check_precision_range(lam, diag, q_w.mean(), init)
    return _smooth_batch(mu, lam, u, msk, q_ab, q_w, init, diag, method, squeeze=not batched)


def _information_args(obs_log_const, obs_xi, obs_precision, controls, dynamics, init, mask, method):
    """Validated (unless traced), batched arguments of :func:`smooth_information` / :func:`filter_information`."""
    V.check_choice("method", method, ("sequential", "parallel"))
    if is_traced(obs_log_const, obs_xi, obs_precision, controls, mask):
        xi = jnp.asarray(obs_xi, jnp.float64)
        batched = xi.ndim == 3
        f = (lambda x: x) if batched else (lambda x: x[None])
        xi, prec, g = f(xi), f(jnp.asarray(obs_precision, jnp.float64)), f(jnp.asarray(obs_log_const, jnp.float64))
        u = jnp.zeros(xi.shape[:2] + (0,)) if controls is None else f(jnp.asarray(controls, jnp.float64))
        msk = jnp.ones(xi.shape[:2]) if mask is None else f(jnp.asarray(mask, jnp.float64))
    else:
        xi_np = V.as_float_array("obs_xi", obs_xi)
        if xi_np.ndim not in (2, 3):
            raise ValueError(f"obs_xi: expected shape (T, d) or (N, T, d), got {xi_np.shape}")
        lead = xi_np.shape[:-1]
        prec_np = V.as_float_array("obs_precision", obs_precision, shape=lead + (xi_np.shape[-1],) * 2)
        V.check_symmetric("obs_precision", prec_np)
        if np.any(np.linalg.eigvalsh(prec_np) < -1e-8 * (1.0 + np.abs(prec_np).max())):
            raise ValueError("obs_precision: expected positive semi-definite matrices")
        V.as_float_array("obs_log_const", obs_log_const, shape=lead)
        # validated like smooth()'s data (controls, mask); the precision-range check uses Λ's diagonal
        _, _, _, u, msk, batched = _prepare(xi_np, np.ones(xi_np.shape), controls, mask)
        f = (lambda x: x) if batched else (lambda x: x[None])
        xi, prec, g = (jnp.asarray(f(x)) for x in (xi_np, prec_np, np.asarray(obs_log_const, np.float64)))
    d = xi.shape[-1]
    if isinstance(dynamics, KnownDynamics):
        _, m = _check_known(dynamics, d)
        w_mean = dynamics.covariance if is_traced(dynamics) else spd_inverse(jnp.asarray(dynamics.covariance))
    else:
        _, m = check_dynamics("dynamics", dynamics, d)
        w_mean = dynamics.q_w.mean()
    if u.shape[-1] != m:
        raise ValueError(f"controls: expected m = {m} columns (from dynamics), got {u.shape[-1]}")
    _check_init(init, d, moments_allowed=True)
    _check_precision_range(prec, False, w_mean, init)
    return (g, xi, prec, u, msk, dynamics, init, method), batched


def smooth_information(obs_log_const, obs_xi, obs_precision, controls, dynamics, init: MvNormal | GaussianMoments,
                       mask=None, method: str = "sequential") -> SmootherResult:
    """:func:`smooth` with the observation of each z_t given as a Gaussian potential in information
    form, exp(c_t + ξ_tᵀz − ½zᵀΛ_t z): obs_log_const c (…, T), obs_xi ξ (…, T, d), obs_precision
    Λ (…, T, d, d) symmetric positive semi-definite (any rank, e.g. HᵀR⁻¹H of an emission model with
    fewer outputs than states; all zero = no observation), and ``dynamics`` either q([A B]) q(W)
    (:class:`DynamicsPosterior`, the expected LDS) or :class:`KnownDynamics`; ``init`` the initial state as
    an MvNormal or, in moment form, a :class:`GaussianMoments`. log_normalizer is then
    log ∫ p(z_0) Π_t exp(c_t + ξ_tᵀz_t − ½z_tᵀΛ_t z_t) Π exp E log N(z_{t+1}|Hx_t, W⁻¹) dz, the marginal
    likelihood when the potentials are exact likelihoods. The result also holds the filtered moments;
    its ``cavity`` is None."""
    args, batched = _information_args(obs_log_const, obs_xi, obs_precision, controls, dynamics, init, mask, method)
    return _information_batch(*args, smoother=True, squeeze=not batched)


def filter_information(obs_log_const, obs_xi, obs_precision, controls, dynamics, init: MvNormal | GaussianMoments,
                       mask=None, method: str = "sequential") -> FilterResult:
    """The forward pass of :func:`smooth_information` alone (same arguments): filtered moments and
    log_normalizer (equal to the smoother's), without the backward pass."""
    args, batched = _information_args(obs_log_const, obs_xi, obs_precision, controls, dynamics, init, mask, method)
    return _information_batch(*args, smoother=False, squeeze=not batched)


def _stats_one(mean, cov, cross, u, mask, weight=None) -> tr.TransitionStats:
    trans = mask * jnp.concatenate([mask[1:], jnp.zeros(1)])
    if weight is not None:
        trans = trans * weight
    x = jnp.concatenate([mean, u], -1)                                     # E[x_t]
    d, n = mean.shape[-1], x.shape[-1]
    sxx = x[:, :, None] * x[:, None, :]
    sxx = sxx.at[:, :d, :d].add(cov)
    z_next = jnp.concatenate([mean[1:], jnp.zeros((1, d))])
    szx = z_next[:, :, None] * x[:, None, :]
    szx = szx.at[:, :, :d].add(cross)
    cov_next = jnp.concatenate([cov[1:], jnp.zeros((1, d, d))])
    szz = cov_next + z_next[:, :, None] * z_next[:, None, :]
    w = trans[:, None, None]
    return tr.TransitionStats(jnp.sum(w * sxx, 0), jnp.sum(w * szx, 0), jnp.sum(w * szz, 0), jnp.sum(trans))


def _stats_seqs(mean, cov, cross, u, mask, weight=None) -> tr.TransitionStats:
    """Statistics pooled over all sequences."""
    if weight is None:
        st = _over_sequences(_stats_one, mean, cov, cross, u, mask)
    else:
        st = _over_sequences(_stats_one, mean, cov, cross, u, mask, weight)
    return jax.tree_util.tree_map(lambda x: jnp.sum(x, 0), st)


@jax.jit
def _stats_batch(mean, cov, cross, u, mask, weights):
    if weights is None:
        return _stats_seqs(mean, cov, cross, u, mask)
    return jax.vmap(lambda w: _stats_seqs(mean, cov, cross, u, mask, w))(weights)


def sufficient_statistics(result: SmootherResult, controls=None, mask=None, weights=None) -> tr.TransitionStats:
    """Σ over transitions (and sequences) of w_t·E[x_t x_tᵀ], w_t·E[z_{t+1} x_tᵀ], w_t·E[z_{t+1} z_{t+1}ᵀ],
    x_t = [z_t; u_t]; ``count`` = Σ w_t.

    ``weights`` (optional, non-negative): weight w_t of transition t → t+1, shape (T,) / (N, T) like
    the mask (the last step's entry is unused), or (G, T) / (G, N, T) for G weightings at once, which
    returns statistics with a leading G axis (e.g. one set per local expert of a gated model)."""
    batched = result.mean.ndim == 3
    _, _, _, u, msk, _ = _prepare(result.mean, jnp.ones(result.mean.shape), controls, mask)
    f = (lambda x: x) if batched else (lambda x: x[None])
    w = None
    if weights is not None:
        w = V.as_float_array("weights", weights)
        base = msk.shape if batched else msk.shape[1:]
        if w.shape == base:
            w, grouped = w[None], False
        elif w.ndim == len(base) + 1 and w.shape[1:] == base:
            grouped = True
        else:
            raise ValueError(f"weights: expected shape {base} or (G, *{base}), got {w.shape}")
        if np.any(w < 0):
            raise ValueError(f"weights: expected non-negative entries, got minimum {w.min():.3g}")
        w = jnp.asarray(w if batched else w[:, None])
        st = _stats_batch(f(result.mean), f(result.cov), f(result.cross_cov), u, msk, w)
        return st if grouped else jax.tree_util.tree_map(lambda x: x[0], st)
    return _stats_batch(f(result.mean), f(result.cov), f(result.cross_cov), u, msk, None)


def _update(stats: tr.TransitionStats, prior: DynamicsPosterior, posterior: DynamicsPosterior):
    q_ab = tr.ab_posterior(prior.q_ab, stats, posterior.q_w.mean())
    q_w = tr.wishart_product(prior.q_w, tr.message_to_w(stats, q_ab))
    return DynamicsPosterior(q_ab, q_w)


_update_jit = jax.jit(_update)


def update_dynamics(stats: tr.TransitionStats, prior: DynamicsPosterior,
                    posterior: DynamicsPosterior) -> DynamicsPosterior:
    """VB coordinate step: q(H) ∝ p(H)·msg_H(stats, E_posterior[W]), then q(W) ∝ p(W)·msg_W(stats, new q(H))."""
    d, m = check_dynamics("prior", prior)
    check_dynamics("posterior", posterior, d)
    if not isinstance(stats, tr.TransitionStats):
        raise TypeError(f"stats: expected TransitionStats, got {type(stats).__name__}")
    if not is_traced(stats):
        V.as_float_array("stats.xx", stats.xx, shape=(d + m, d + m))
    return _update_jit(stats, prior, posterior)


@partial(jax.jit, static_argnames=("num_iters",))
def _posterior_from_statistics(stats, prior, posterior, num_iters):
    def one(st, post):
        return jax.lax.fori_loop(0, num_iters, lambda _, q: _update(st, prior, q), post)

    fn = one
    for _ in range(stats.count.ndim):                      # leading group axes of the statistics
        fn = jax.vmap(fn)
    start = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, stats.count.shape + x.shape), posterior)
    return fn(stats, start)


def posterior_from_statistics(stats: tr.TransitionStats, prior: DynamicsPosterior, num_iters: int = 20,
                              posterior: DynamicsPosterior | None = None) -> DynamicsPosterior:
    """q([A B]) q(W) for fixed statistics (q(z) held fixed): ``num_iters`` coordinate steps of
    :func:`update_dynamics` from ``posterior`` (default: the prior). Statistics with leading axes
    (e.g. G groups from ``sufficient_statistics(..., weights=(G, …))``) give posteriors with those axes."""
    d, m = check_dynamics("prior", prior)
    if posterior is None:
        posterior = prior
    check_dynamics("posterior", posterior, d)
    if not isinstance(stats, tr.TransitionStats):
        raise TypeError(f"stats: expected TransitionStats, got {type(stats).__name__}")
    xx = V.as_float_array("stats.xx", stats.xx)
    if xx.shape[-2:] != (d + m, d + m):
        raise ValueError(f"stats.xx: expected trailing shape {(d + m, d + m)} (from prior), got {xx.shape}")
    V.check_count("num_iters", num_iters)
    return _posterior_from_statistics(stats, prior, posterior, int(num_iters))


def dynamics_kl(posterior: DynamicsPosterior, prior: DynamicsPosterior) -> jax.Array:
    """KL(q(H)‖p(H)) + KL(q(W)‖p(W)) (q(H) and p(H) both dense or both ``KroneckerSumNormal``)."""
    return posterior.q_ab.kl(prior.q_ab) + posterior.q_w.kl(prior.q_w)


def structured_prior(prior: DynamicsPosterior) -> DynamicsPosterior:
    """The same prior with p([A B]) as a matrix normal (:class:`~pyrxaif.distributions.KroneckerSumNormal`)
    when its precision is a Kronecker product R ⊗ C on the row-major vec (``kronecker_factors``, to 1e-12
    relative; e.g. ``make_prior``'s default λI), else ``prior`` unchanged (also when it is structured
    already, from ``make_prior(..., structured=True)``). The VB updates from such a
    prior keep q([A B]) in that form (precision R ⊗ C + W̄ ⊗ Σ E[x xᵀ]), whose mean, covariance terms and
    KL cost O(d³ + n³) instead of O((d n)³) (n = d + m). Concrete input (NumPy, call outside jit)."""
    if not isinstance(prior, DynamicsPosterior):
        raise TypeError(f"prior: expected a DynamicsPosterior, got {type(prior).__name__}")
    d, m, factors = _check_q_factors("prior.q_ab", prior.q_ab, "prior.q_w", prior.q_w, structured_allowed=True)
    n = d + m
    if factors is None:                  # not a Kronecker product, or structured already (make_prior(structured=True))
        return prior
    row, col = factors
    mean = np.linalg.solve(row, np.linalg.solve(col, np.asarray(prior.q_ab.xi).reshape(d, n).T).T)   # R⁻¹ Ξ C⁻¹
    return DynamicsPosterior(_matrix_normal_jit(mean, row, col), prior.q_w)


_matrix_normal_jit = jax.jit(KroneckerSumNormal.matrix_normal)


def dense_posterior(posterior: DynamicsPosterior) -> DynamicsPosterior:
    """``posterior`` with q([A B]) as a dense MvNormal (unchanged when it is one already)."""
    if isinstance(posterior.q_ab, KroneckerSumNormal):
        return posterior._replace(q_ab=posterior.q_ab.to_mvnormal())
    return posterior


def elbo(result: SmootherResult, posterior: DynamicsPosterior, prior: DynamicsPosterior) -> jax.Array:
    """ELBO = Σ_sequences log Z̃ − KL(q(H)‖p(H)) − KL(q(W)‖p(W)), for a result of ``smooth`` run
    with ``posterior``."""
    return jnp.sum(result.log_normalizer) - dynamics_kl(posterior, prior)


@partial(jax.jit, static_argnames=("diag", "method", "num_iters"))
def _vb_em(mu, lam, u, mask, init, prior, posterior, diag, method, num_iters):
    def step(post, _):
        res = _smooth_seqs(mu, lam, u, mask, post.q_ab, post.q_w, init, diag, method)
        value = jnp.sum(res.log_normalizer) - dynamics_kl(post, prior)
        st = _stats_seqs(res.mean, res.cov, res.cross_cov, u, mask)
        return _update(st, prior, post), value

    post, trace = jax.lax.scan(step, posterior, None, length=num_iters)
    return dense_posterior(post), trace


def vb_em(obs_mean, obs_precision, controls, prior: DynamicsPosterior, init: MvNormal, num_iters: int = 50,
          posterior: DynamicsPosterior | None = None, mask=None, method: str = "sequential"):
    """Variational-Bayes EM for q([A B]) q(W): each iteration smooths q(z) (optimal given the
    current q), records the ELBO, then updates q(H) and q(W). The whole loop is one jitted
    ``lax.scan``. Returns (posterior, elbo_trace) with elbo_trace[k] the ELBO before update k
    (non-decreasing). ``posterior`` is the starting point (default: the prior). Started from a prior
    whose precision on vec [A B] is a Kronecker product (e.g. ``make_prior``'s isotropic default), the
    loop keeps q([A B]) structured (:func:`structured_prior`; same result, O(d³ + n³) per update instead
    of O((d n)³)); the returned q([A B]) is dense."""
    V.check_choice("method", method, ("sequential", "parallel"))
    V.check_count("num_iters", num_iters)
    mu, lam, diag, u, msk, _ = _prepare(obs_mean, obs_precision, controls, mask)
    d = mu.shape[-1]
    _, m = check_dynamics("prior", prior, d)
    if posterior is None:
        posterior = prior
    check_dynamics("posterior", posterior, d)
    if u.shape[-1] != m:
        raise ValueError(f"controls: expected m = {m} columns (from prior.q_ab), got {u.shape[-1]}")
    _check_init(init, d)
    _check_precision_range(lam, diag, posterior.q_w.mean(), init)
    _warn_prior_scale(mu, msk, prior)
    if posterior is prior:
        prior = posterior = structured_prior(prior)
    return _vb_em(mu, lam, u, msk, init, prior, posterior, diag, method, int(num_iters))
