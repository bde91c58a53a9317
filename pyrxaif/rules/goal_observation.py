"""Goal-observation node ``[c, z, A]`` (LAIF): goal prior Cat(x|c) facing the observation model Cat(x|Az).

The observation x is internal to the node (not an edge): observed (one-hot, a data constraint) or
missing (a future step). Notation: s = q(z), d = incoming message on z, Ā = E[A], L̄ = E[log A],
ℓ = E[log c], h(A)_j = −Σ_i A_ij log A_ij, h̄ = E[h(A)], σ = softmax. Two objectives:

- Bethe (BFE), x missing: x̂ = σ(L̄s + ℓ); to z: σ(L̄ᵀx̂); to A: MatrixDir(x̂sᵀ + 1); to c: Dir(x̂ + 1);
  U = −log Σ_i exp[(L̄s)_i + ℓ_i].
- Observed x (both objectives): to z: σ(L̄ᵀx); to A: MatrixDir(xsᵀ + 1); to c: Dir(x + 1); U = −xᵀ(L̄s + ℓ).
- Generalised (GFE), x missing (p-substitution): U_G = sᵀh̄ − (Ās)ᵀ(ℓ − log Ās) (ambiguity + risk);
  to c: Dir(Ās + 1); to z, direct: σ(−h̄ + Āᵀℓ − Āᵀlog(Ās)); to z, Newton: s* solves
  s = σ(−h̄ + Āᵀℓ − Āᵀlog(Ās) + log d), send s*/d; to A (not conjugate):
  log μ(A) = (As)ᵀ(ℓ − log Ās) − sᵀh(A).

All functions take probabilities/log-probabilities as plain arrays (last axis = categories) and are
jit/vmap-safe; they validate their inputs only when called eagerly (not under a JAX trace).

Expectations under q(A): a matrix Dirichlet gives Ā, L̄ and h̄ in closed form
(:func:`a_stats_dirichlet`, exact E[h(A)] instead of LAIF's 20-sample estimate); a point mass gives
them directly (:func:`a_stats_point`). Where the non-conjugate message μ(A) multiplies the
Dirichlet, q(A) ∝ Dir(A|a)·Π_k μ_k(A) has no closed form; :func:`gfe_posterior_A` estimates its
expectations by self-normalised importance sampling with the Dirichlet part as proposal and an
explicit key (as LAIF's SampleList, 20 samples by default). See docs/tmaze.md for why.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, logsumexp, xlogy

from pyrxaif import checks as V
from pyrxaif.distributions import Categorical, Dirichlet, MatrixDirichlet
from pyrxaif.distributions.linalg import is_traced, solve_pivoted

#: Floor on log-probabilities of point-mass matrices with zeros (log 0 = −inf would make 0·log 0 NaN).
LOG_FLOOR = -30.0


class AStats(NamedTuple):
    """Expectations of q(A) the node's rules need: Ā = E[A], L̄ = E[log A], h̄ = E[h(A)] (per column)."""

    mean: jax.Array
    log_mean: jax.Array
    entropy: jax.Array


# ----------------------------------------------------------------------------------------------
# validation helpers (eager calls only)
# ----------------------------------------------------------------------------------------------

def _check_prob(name, p, n=None):
    if is_traced(p):
        return
    arr = V.check_probability_vectors(name, p)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a probability vector (1-d), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected length {n}, got {arr.shape[0]}")


def _check_matrix(name, m, shape=None):
    if is_traced(m):
        return
    arr = V.as_float_array(name, m, ndim=2, finite=name != "log_A_bar")
    if name == "log_A_bar" and (np.any(np.isnan(arr)) or np.any(arr == np.inf)):
        raise ValueError(f"{name}: expected values in [-inf, inf), found NaN or +inf")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}")


def _check_log_c(log_c, m):
    if is_traced(log_c):
        return
    arr = V.as_float_array("log_c", log_c, ndim=1, finite=False)
    if np.any(np.isnan(arr)) or np.any(arr == np.inf):
        raise ValueError("log_c: expected values in [-inf, inf), found NaN or +inf")
    if arr.shape[0] != m:
        raise ValueError(f"log_c: expected length {m} (rows of A), got {arr.shape[0]}")


def _check_node(s, A, log_c, *, a_name="A_bar"):
    if is_traced(s, A, log_c):
        return
    _check_matrix(a_name, A)
    m, n = np.shape(A)
    _check_prob("s", s, n)
    _check_log_c(log_c, m)


# ----------------------------------------------------------------------------------------------
# expectations of q(A)
# ----------------------------------------------------------------------------------------------

def column_entropy(A):
    """h(A)_j = −Σ_i A_ij log A_ij (0 log 0 = 0)."""
    return -jnp.sum(xlogy(A, A), axis=-2)


def a_stats_dirichlet(q_A: MatrixDirichlet) -> AStats:
    """Exact Ā = a/Σ_i a, L̄ = ψ(a) − ψ(Σ_i a), h̄_j = −Σ_i (a_ij/a_0j)(ψ(a_ij+1) − ψ(a_0j+1))."""
    return AStats(q_A.mean(), q_A.expected_log(), q_A.expected_column_entropy())


def a_stats_point(A) -> AStats:
    """Point mass at A: Ā = A, L̄ = max(log A, LOG_FLOOR), h̄ = h(A)."""
    if not is_traced(A):
        A = V.check_probability_vectors("A", A, axis=-2)
    A = jnp.asarray(A, jnp.float64)
    return AStats(A, jnp.maximum(jnp.log(A), LOG_FLOOR), column_entropy(A))


def a_stats_samples(samples, log_weights, log_samples=None) -> AStats:
    """Self-normalised weighted sample estimate: E[f(A)] ≈ Σ_n w_n f(A⁽ⁿ⁾), w = σ(log_weights)."""
    w = jax.nn.softmax(log_weights)
    if log_samples is None:
        log_samples = jnp.log(jnp.maximum(samples, jnp.finfo(jnp.float64).tiny))
    h = -jnp.sum(samples * log_samples, axis=-2)
    return AStats(jnp.tensordot(w, samples, 1), jnp.tensordot(w, jnp.maximum(log_samples, LOG_FLOOR), 1),
                  jnp.tensordot(w, h, 1))


# ----------------------------------------------------------------------------------------------
# Bethe, x missing
# ----------------------------------------------------------------------------------------------

def bethe_internal_x(s, log_A_bar, log_c):
    """x̂ = σ(L̄s + ℓ): the node-internal belief about the missing observation."""
    _check_node(s, log_A_bar, log_c, a_name="log_A_bar")
    return jax.nn.softmax(log_A_bar @ s + log_c)


def bethe_message_z(s, log_A_bar, log_c) -> Categorical:
    """μ(z) = Cat(σ(L̄ᵀx̂))."""
    x_hat = bethe_internal_x(s, log_A_bar, log_c)
    return Categorical(jax.nn.log_softmax(log_A_bar.T @ x_hat))


def bethe_message_A(s, log_A_bar, log_c) -> MatrixDirichlet:
    """μ(A) = MatrixDir(x̂sᵀ + 1)."""
    x_hat = bethe_internal_x(s, log_A_bar, log_c)
    return MatrixDirichlet(jnp.outer(x_hat, s) + 1.0)


def bethe_message_c(s, log_A_bar, log_c) -> Dirichlet:
    """μ(c) = Dir(x̂ + 1)."""
    return Dirichlet(bethe_internal_x(s, log_A_bar, log_c) + 1.0)


def bethe_average_energy(s, log_A_bar, log_c):
    """U = −log Σ_i exp[(L̄s)_i + ℓ_i] (the minimum over q(x) of the node's local free energy)."""
    _check_node(s, log_A_bar, log_c, a_name="log_A_bar")
    return -logsumexp(log_A_bar @ s + log_c)


# ----------------------------------------------------------------------------------------------
# observed x (Bethe and generalised alike)
# ----------------------------------------------------------------------------------------------

def _check_x(x, m):
    if is_traced(x):
        return
    arr = V.check_probability_vectors("x", x)
    if arr.ndim != 1 or arr.shape[0] != m:
        raise ValueError(f"x: expected a one-hot vector of length {m}, got shape {arr.shape}")


def observed_message_z(x, log_A_bar) -> Categorical:
    """μ(z) = Cat(σ(L̄ᵀx))."""
    if not is_traced(x, log_A_bar):
        _check_matrix("log_A_bar", log_A_bar)
        _check_x(x, np.shape(log_A_bar)[0])
    return Categorical(jax.nn.log_softmax(jnp.maximum(log_A_bar, LOG_FLOOR).T @ x))


def observed_message_A(x, s) -> MatrixDirichlet:
    """μ(A) = MatrixDir(xsᵀ + 1)."""
    if not is_traced(x, s):
        _check_x(x, np.shape(x)[0])
        _check_prob("s", s)
    return MatrixDirichlet(jnp.outer(x, s) + 1.0)


def observed_message_c(x) -> Dirichlet:
    """μ(c) = Dir(x + 1)."""
    if not is_traced(x):
        _check_x(x, np.shape(x)[0])
    return Dirichlet(jnp.asarray(x, jnp.float64) + 1.0)


def observed_average_energy(x, s, log_A_bar, log_c):
    """U = −xᵀ(L̄s + ℓ)."""
    if not is_traced(x, s, log_A_bar, log_c):
        _check_node(s, log_A_bar, log_c, a_name="log_A_bar")
        _check_x(x, np.shape(log_A_bar)[0])
    return -jnp.dot(x, jnp.maximum(log_A_bar, LOG_FLOOR) @ s + log_c)


# ----------------------------------------------------------------------------------------------
# generalised (GFE), x missing
# ----------------------------------------------------------------------------------------------

def _safe_log(p):
    return jnp.log(jnp.maximum(p, jnp.exp(LOG_FLOOR)))


def gfe_average_energy(s, A_bar, h_bar, log_c):
    """U_G = sᵀh̄ − (Ās)ᵀ(ℓ − log Ās)  (ambiguity + risk)."""
    _check_node(s, A_bar, log_c)
    p = A_bar @ s
    return jnp.dot(s, h_bar) - jnp.dot(p, log_c - _safe_log(p))


def gfe_message_c(s, A_bar) -> Dirichlet:
    """μ(c) = Dir(Ās + 1)."""
    if not is_traced(s, A_bar):
        _check_matrix("A_bar", A_bar)
        _check_prob("s", s, np.shape(A_bar)[1])
    return Dirichlet(A_bar @ s + 1.0)


def _gfe_logits(s, A_bar, h_bar, log_c):
    """−h̄ + Āᵀℓ − Āᵀ log(Ās): the node's log-contribution to q(z) at the current s."""
    return -h_bar + A_bar.T @ log_c - A_bar.T @ _safe_log(A_bar @ s)


def gfe_message_z_direct(s, A_bar, h_bar, log_c) -> Categorical:
    """μ(z) = Cat(σ(−h̄ + Āᵀℓ − Āᵀlog(Ās))) at the current s (may diverge when iterated)."""
    _check_node(s, A_bar, log_c)
    return Categorical(jax.nn.log_softmax(_gfe_logits(s, A_bar, h_bar, log_c)))


def _newton_jacobian(s, p, q, A_bar):
    """Jacobian of g(u) = u − log σ(y(σ(u))) with y(s) = −h̄ + Āᵀℓ − Āᵀlog(Ās) + log d:
    J = I − (I − 1qᵀ) K (diag(s) − ssᵀ), K = −Āᵀ diag(1/p) Ā, p = Ās, q = σ(y); the diagonal and
    rank-one factors are applied without matrix products."""
    K = -(A_bar.T / p[None, :]) @ A_bar
    KS = K * s[None, :] - jnp.outer(K @ s, s)
    return jnp.eye(s.shape[0]) - (KS - q @ KS)


def gfe_marginal_z_newton(log_d, s0, A_bar, h_bar, log_c, iterations: int = 20, tol: float = 1e-12):
    """s* with s* = σ(−h̄ + Āᵀℓ − Āᵀlog(Ās*) + log d), by Newton's method from s0.

    At most ``iterations`` steps, stopping early once max|g(u)| ≤ ``tol``.

    The root is sought in log space, u = log s, g(u) = u − log σ(f(σ(u)) + log d), with the
    analytic Jacobian (checked against autodiff in the tests); this keeps s on the simplex (the s-space iteration of LAIF can step
    outside it). The root is the unique minimiser of U_G(s) + KL(s ‖ d) (a convex problem).
    """
    if not is_traced(log_d, s0, A_bar, h_bar, log_c):
        _check_node(s0, A_bar, log_c)
        V.as_float_array("log_d", log_d, shape=(np.shape(A_bar)[1],), finite=False)
    log_d = jnp.maximum(jnp.asarray(log_d, jnp.float64), LOG_FLOOR)

    def residual(u):
        s = jax.nn.softmax(u)
        p = jnp.maximum(A_bar @ s, jnp.exp(LOG_FLOOR))
        log_q = jax.nn.log_softmax(-h_bar + A_bar.T @ log_c - A_bar.T @ jnp.log(p) + log_d)
        return s, p, log_q, u - log_q

    def cond(state):
        i, u, _, _, _, g = state
        return (i < iterations) & (jnp.max(jnp.abs(g)) > tol)

    def body(state):
        i, u, s, p, log_q, g = state
        u_new = u - solve_pivoted(_newton_jacobian(s, p, jnp.exp(log_q), A_bar), g[:, None])[:, 0]
        u_new = jnp.where(jnp.all(jnp.isfinite(u_new)), u_new, u)
        u_new = jax.nn.log_softmax(jnp.maximum(u_new, 2 * LOG_FLOOR))
        return (i + 1, u_new) + residual(u_new)

    u0 = jax.nn.log_softmax(_safe_log(s0))
    _, u, *_ = jax.lax.while_loop(cond, body, (0, u0) + residual(u0))
    return jax.nn.softmax(u)


def gfe_message_z_newton(log_d, s0, A_bar, h_bar, log_c, iterations: int = 20) -> Categorical:
    """μ(z) = Cat(ρ), ρ ∝ s*/d with s* from :func:`gfe_marginal_z_newton`."""
    s_star = gfe_marginal_z_newton(log_d, s0, A_bar, h_bar, log_c, iterations)
    return Categorical(jax.nn.log_softmax(_safe_log(s_star) - jnp.maximum(log_d, LOG_FLOOR)))


def gfe_log_message_A(A, s, A_bar, log_c):
    """log μ(A) = (As)ᵀ(ℓ − log Ās) − sᵀh(A), for one A (m, n) or a batch (..., m, n)."""
    v = log_c - _safe_log(A_bar @ s)
    return jnp.einsum("...ij,j,i->...", A, s, v) - column_entropy(A) @ s


class GammaNoise(NamedTuple):
    """Base noise for :func:`log_gamma_from_noise` (standard normals and log-uniforms)."""

    z: jax.Array
    log_u: jax.Array
    log_boost: jax.Array


def gamma_noise(key, shape, proposals: int = 4) -> GammaNoise:
    """Draw the noise for ``proposals`` Marsaglia–Tsang candidates per gamma variate of ``shape``."""
    k_n, k_u, k_b = jax.random.split(key, 3)
    tiny = jnp.finfo(jnp.float32).tiny
    z = jax.random.normal(k_n, (proposals,) + tuple(shape), jnp.float32).astype(jnp.float64)
    log_u = jnp.log(jax.random.uniform(k_u, (proposals,) + tuple(shape), jnp.float32, minval=tiny))
    log_b = jnp.log(jax.random.uniform(k_b, tuple(shape), jnp.float32, minval=tiny))
    return GammaNoise(z, log_u.astype(jnp.float64), log_b.astype(jnp.float64))


def log_gamma_from_noise(a, noise: GammaNoise):
    """log of Gamma(a, 1) variates: Marsaglia–Tsang for shape a + 1 with a fixed number of
    candidates (the first accepted wins; P(none accepted) < 0.05 per candidate), then the boost
    G(a) = G(a+1)·U^{1/a}. Loop-free (cheap to compile and vmap) and in log space, so
    concentrations ≪ 1 do not underflow to exact zeros. A deterministic transform of the noise,
    so the same noise can be reused while ``a`` changes (common random numbers).
    """
    a = jnp.broadcast_to(a, noise.log_boost.shape)
    d = a + 1.0 - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    w = 1.0 + c * noise.z
    v = w * w * w
    log_v = 3.0 * jnp.log(jnp.where(w > 0, w, 1.0))
    ok = (w > 0) & (noise.log_u < 0.5 * noise.z ** 2 + d - d * v + d * log_v)
    log_v_acc = log_v[0]                        # the first accepted candidate (the first if none is)
    for k in reversed(range(log_v.shape[0])):   # a select chain: fuses, unlike an argmax reduction
        log_v_acc = jnp.where(ok[k], log_v[k], log_v_acc)
    return jnp.log(d) + log_v_acc + noise.log_boost / a


def sample_log_matrix_dirichlet(key, concentration, num_samples: int, noise: GammaNoise | None = None):
    """log A⁽ⁿ⁾, n = 1..N, draws of a column-wise matrix Dirichlet (normalised gammas, log space)."""
    if noise is None:
        noise = gamma_noise(key, (num_samples,) + tuple(concentration.shape))
    lg = log_gamma_from_noise(concentration, noise)
    return lg - logsumexp(lg, axis=-2, keepdims=True)


class ISPosterior(NamedTuple):
    """Importance-sampling estimate of q(A) ∝ Dir(A|a_prop)·exp(Σ_k log μ_k(A))."""

    stats: AStats
    kl_to_proposal: jax.Array   # KL(q ‖ proposal) ≈ Σ_n w_n log(N w_n)
    samples: jax.Array
    log_weights: jax.Array       # normalised
    log_samples: jax.Array


def gfe_posterior_A(key, proposal: MatrixDirichlet, s, log_c, A_bar, weight_mask=None,
                    num_samples: int = 20, noise: GammaNoise | None = None,
                    log_samples=None) -> ISPosterior:
    """q(A) ∝ Dir(A | proposal)·Π_k μ_k(A) by self-normalised importance sampling.

    ``s`` (K, n) and ``log_c`` (K, m) hold the K missing-observation nodes that send μ_k(A)
    (built around the current mean ``A_bar``); ``weight_mask`` (K,) switches nodes off (0/1).
    Samples are drawn from the Dirichlet part (prior × conjugate messages) with ``key``, or
    transformed from precomputed ``noise``, or given directly as ``log_samples`` (N, m, n) drawn
    from the proposal (then ``key`` is unused).
    """
    if not is_traced(key, proposal, s, log_c, A_bar):
        if not isinstance(proposal, MatrixDirichlet):
            raise TypeError(f"proposal: expected a MatrixDirichlet, got {type(proposal).__name__}")
        MatrixDirichlet.create(proposal.concentration)
        _check_matrix("A_bar", A_bar, np.shape(proposal.concentration))
        s_arr = V.check_probability_vectors("s", s)
        if s_arr.ndim != 2 or s_arr.shape[1] != np.shape(A_bar)[1]:
            raise ValueError(f"s: expected shape (K, {np.shape(A_bar)[1]}), got {s_arr.shape}")
        V.as_float_array("log_c", log_c, shape=(s_arr.shape[0], np.shape(A_bar)[0]), finite=False)
        if int(num_samples) < 1:
            raise ValueError(f"num_samples: expected a positive integer, got {num_samples}")
    if log_samples is None:
        if noise is not None:
            num_samples = noise.log_boost.shape[0]
        log_samples = sample_log_matrix_dirichlet(key, proposal.concentration, num_samples, noise)
    num_samples = log_samples.shape[0]
    samples = jnp.exp(log_samples)
    K = s.shape[0]
    mask = jnp.ones((K,)) if weight_mask is None else jnp.asarray(weight_mask, jnp.float64)
    # log μ_k(A) = Σ_ij A_ij s_kj (v_ki + log A_ij), v_k = ℓ_k − log Ās_k; summed over nodes
    v = log_c - _safe_log(s @ A_bar.T)                                  # (K, m)
    sm = mask[:, None] * s                                              # (K, n)
    lin = jnp.einsum("kj,ki->ij", sm, v)                               # (m, n)
    log_mu = jnp.einsum("nij,ij->n", samples, lin) + jnp.einsum(
        "nij,j->n", samples * log_samples, jnp.sum(sm, axis=0))
    log_w = jax.nn.log_softmax(log_mu)
    kl = jnp.sum(jnp.exp(log_w) * (log_w + jnp.log(num_samples)))
    return ISPosterior(a_stats_samples(samples, log_w, log_samples), kl, samples, log_w, log_samples)


class ISPrepared(NamedTuple):
    """Loop-invariant part of the importance sampler of q(A) when only ``rows`` of the proposal change.

    In a policy evaluation the proposal is Dir(a + Σ_obs x_t s_tᵀ): only the rows of the observed
    outcomes move with q(z) from one iteration to the next. With the noise fixed (common random
    numbers) the gamma variates of every other row are fixed too, so their transcendental work is
    done once here; per iteration only the R changed rows are re-transformed. Log gammas are kept
    relative to a per-(sample, column) shift so that nothing overflows.
    """

    rows: jax.Array         # (R,) indices of the changing rows (duplicates allowed)
    row_weight: jax.Array   # (R,) 1 / multiplicity of each index (so duplicates count once)
    noise_rows: GammaNoise  # the noise of the changing rows, (·, N, R, n)
    shift: jax.Array        # (N, n) c = max over fixed rows of log g
    E: jax.Array            # (N, m, n) exp(log g − c) on fixed rows, 0 on changing rows
    LG: jax.Array           # (N, m, n) log g − c on fixed rows, −inf on changing rows
    S: jax.Array            # (N, n) Σ_i E
    EL: jax.Array           # (N, n) Σ_i E·LG


class ISRows(NamedTuple):
    """Per-iteration result of :func:`is_posterior_rows`."""

    stats: AStats
    kl_to_proposal: jax.Array   # KL(q ‖ proposal) ≈ Σ_n w_n log(N w_n)
    log_mean_rows: jax.Array    # (R, n) E_q[log A] on the changing rows (no floor)
    log_weights: jax.Array      # (N,) normalised


def is_prepare(a_fixed, noise: GammaNoise, rows) -> ISPrepared:
    """Precompute the fixed rows of the proposal Dir(a) (``a_fixed`` (m, n); its ``rows`` are ignored)."""
    m = a_fixed.shape[0]
    rows = jnp.asarray(rows, jnp.int32).reshape(-1)
    hit = rows[:, None] == jnp.arange(m)[None, :]                         # (R, m)
    keep = ~jnp.any(hit, axis=0)[:, None]                                 # (m, 1)
    row_weight = 1.0 / jnp.sum(rows[:, None] == rows[None, :], axis=1)
    log_g = log_gamma_from_noise(a_fixed, noise)                          # (N, m, n)
    c = jnp.max(jnp.where(keep, log_g, -jnp.inf), axis=-2)
    c = jnp.where(jnp.isfinite(c), c, 0.0)
    LG = jnp.where(keep, log_g - c[:, None, :], -jnp.inf)
    E = jnp.where(keep, jnp.exp(jnp.where(keep, LG, 0.0)), 0.0)
    noise_rows = GammaNoise(noise.z[..., rows, :], noise.log_u[..., rows, :], noise.log_boost[..., rows, :])
    return ISPrepared(rows, row_weight, noise_rows, c, E, LG, jnp.sum(E, axis=-2),
                      jnp.sum(jnp.where(keep, E * jnp.where(keep, LG, 0.0), 0.0), axis=-2))


def is_posterior_rows(prep: ISPrepared, a_rows, s, log_c, A_bar, weight_mask=None) -> ISRows:
    """q(A) ∝ Dir(A | proposal)·Π_k μ_k(A) by self-normalised importance sampling, incrementally.

    The same estimate as :func:`gfe_posterior_A` with the proposal whose fixed rows were given to
    :func:`is_prepare` and whose changing rows are ``a_rows`` (R, n), for the same noise. Only
    O(N·m·n) multiply–adds and O(N·R·n) transcendentals per call. ``s``, ``log_c``, ``A_bar``,
    ``weight_mask`` as in :func:`gfe_posterior_A`.
    """
    N = prep.E.shape[0]
    K = s.shape[0]
    mask = jnp.ones((K,)) if weight_mask is None else jnp.asarray(weight_mask, jnp.float64)
    R = prep.rows.shape[0]
    c = prep.shift
    rw = prep.row_weight[:, None]                                             # (R, 1)
    if R:
        log_g_r = log_gamma_from_noise(a_rows, prep.noise_rows)               # (N, R, n)
        c_new = jnp.maximum(c, jnp.max(log_g_r, axis=-2))
        tot = prep.S * jnp.exp(c - c_new) + jnp.sum(rw * jnp.exp(log_g_r - c_new[:, None, :]), axis=-2)
        log_z = c_new + jnp.log(tot)                                          # log Σ_i g_ij
    else:
        log_z = c + jnp.log(prep.S)
    off = log_z - c                                                           # (N, n) ≥ 0
    K_scale = jnp.exp(-off)                                                   # keep-row sample = E·K
    # log μ(A) = ⟨A, lin⟩ − h(A)·Σ_k s_k   (lin_ij = Σ_k s_kj (ℓ_k − log Ās_k)_i)
    v = log_c - _safe_log(s @ A_bar.T)                                        # (K, m)
    sm = mask[:, None] * s
    lin = jnp.sum(sm[:, None, :] * v[:, :, None], axis=0)                      # (m, n)
    ssum = jnp.sum(sm, axis=0)
    dot = K_scale * jnp.einsum("nij,ij->nj", prep.E, lin)                     # (N, n); a matmul when E is shared
    h = -K_scale * (prep.EL - off * prep.S)                                   # keep-row part of h
    if R:
        log_s_r = log_g_r - log_z[:, None, :]                                 # (N, R, n)
        s_r = jnp.exp(log_s_r)
        dot = dot + jnp.sum(rw * s_r * lin[prep.rows], axis=-2)
        h = h - jnp.sum(rw * s_r * log_s_r, axis=-2)
    log_w = jax.nn.log_softmax(jnp.sum(dot - h * ssum, axis=-1))
    w = jnp.exp(log_w)
    wK = w[:, None] * K_scale                                                 # (N, n)
    mean = jnp.einsum("nj,nij->ij", wK, prep.E)
    log_mean = jnp.sum(w[:, None, None] * jnp.maximum(prep.LG - off[:, None, :], LOG_FLOOR), axis=0)
    if R:
        mean = mean.at[prep.rows].set(jnp.sum(w[:, None, None] * s_r, axis=0))
        log_mean = log_mean.at[prep.rows].set(jnp.sum(w[:, None, None] * jnp.maximum(log_s_r, LOG_FLOOR), axis=0))
        lm_rows = jnp.sum(w[:, None, None] * log_s_r, axis=0)
    else:
        lm_rows = jnp.zeros((0, prep.E.shape[-1]))
    kl = jnp.sum(w * (log_w + jnp.log(N)))
    return ISRows(AStats(mean, log_mean, jnp.sum(w[:, None] * h, axis=0)), kl, lm_rows, log_w)


def log_normalizer_ratio_rows(a_prior, rows, row_weight, a_rows):
    """log B(a_post) − log B(a_prior) when a_post differs from a_prior only on ``rows`` (values ``a_rows``)."""
    d_rows = jnp.einsum("k,kj->", row_weight, gammaln(a_rows) - gammaln(a_prior[rows]))
    col_prior = jnp.sum(a_prior, axis=-2)
    col_post = col_prior + jnp.einsum("k,kj->j", row_weight, a_rows - a_prior[rows])
    return d_rows - jnp.sum(gammaln(col_post) - gammaln(col_prior))


def dirichlet_kl(q_conc, p_conc):
    """KL(MatrixDir(q) ‖ MatrixDir(p)), summed over columns (closed form)."""
    return MatrixDirichlet(q_conc).kl(MatrixDirichlet(p_conc))
