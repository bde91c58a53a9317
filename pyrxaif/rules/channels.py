"""Channel-reparameterised kernels for EFE planning by message passing (log space).

Rollout graph (one time slice t, joint latent s = (x, θ)): dynamics factor B(x'|x,θ,u) with action
prior E(u), observation factors A_k(y_k|x,θ) (one per modality k, future y unobserved), preference
C(x,θ). Entropy corrections are turned into free conditional distributions ("channels"):

* planning channel r(u|x)        : +H(u|x)    -> kernel numerator r(u|x)
* dynamics channel r(x'|x,u)     : −H(x'|x,u) -> kernel denominator r(x'|x,u)
* observation channel r(y|x,θ)   : +2H(y|x,θ) -> observation kernel numerator r(y|x,θ)²
* marginal obs. channel ρ(y|x)   : −H(y|x)    -> observation kernel denominator ρ(y|x)

Transitions are sparse: ``succ[x, u, j]`` is the j-th successor of (x, u) and ``log_B[x, u, j, θ]``
its log-probability (−inf for padding). Every array here is a log-probability; structural zeros
stay −inf and channels are floored at ``LOG_FLOOR`` (a "safe log") so that ratios never give NaN.
All functions are pure and jit-compatible; shapes: S states, A actions, J successors, K layouts
(a layout axis of length 1 broadcasts), M modalities, Y observation values (padded with −inf).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

LOG_FLOOR = -30.0  # safe-log floor for channels (keeps exp() away from slow subnormal floats)

__all__ = [
    "LOG_FLOOR", "dynamics_log_kernel", "observation_log_message", "epistemic_log_prior",
    "planning_channel", "dynamics_channel", "observation_channels", "damp",
]


def _safe(logp: jax.Array) -> jax.Array:
    return jnp.maximum(logp, LOG_FLOOR)


def _logsumexp_y(terms: jax.Array, keepdims: bool = False) -> jax.Array:
    """log Σ_y exp(terms[..., y]) over the last (observation-value) axis.

    Same arithmetic as ``logsumexp(terms, axis=-1)``; for binary/ternary sensors (Y ≤ 4) it is unrolled
    into elementwise operations, because XLA's CPU reduction over such a short minor axis costs about
    twice as much (measured on the Wumpus observation groups).
    """
    Y = terms.shape[-1]
    if Y > 4:
        return logsumexp(terms, axis=-1, keepdims=keepdims)
    xs = [terms[..., i] for i in range(Y)]
    mx = xs[0]
    for v in xs[1:]:
        mx = jnp.maximum(mx, v)
    mx = jnp.where(jnp.isfinite(mx), mx, 0.0)
    out = jnp.log(sum(jnp.exp(v - mx) for v in xs)) + mx
    return out[..., None] if keepdims else out


def _conditional(log_joint: jax.Array, axes, fallback: jax.Array) -> jax.Array:
    """log p(a|b) = log p(a,b) − log Σ_a p(a,b); rows with zero mass take ``fallback``."""
    log_norm = logsumexp(log_joint, axis=axes, keepdims=True)
    ok = jnp.isfinite(log_norm)
    cond = jnp.where(ok, log_joint - jnp.where(ok, log_norm, 0.0), fallback)
    return cond


def dynamics_log_kernel(log_B, log_E, log_r_u=None, log_r_x=None) -> jax.Array:
    """log K(x,u,j,θ) = log B + log E(u) [+ log r(u|x)] [− log r(x'_j|x,u)]; zeros of B stay −inf.

    ``log_B`` (S,A,J,K), ``log_E`` (A,), ``log_r_u`` (S,A) planning channel or None (BP),
    ``log_r_x`` (S,A,J) dynamics channel or None (no dynamics correction).
    """
    k = log_B + log_E[None, :, None, None]
    if log_r_u is not None:
        k = k + _safe(log_r_u)[:, :, None, None]
    if log_r_x is not None:
        k = k - _safe(log_r_x)[..., None]
    return jnp.where(jnp.isfinite(log_B), k, -jnp.inf)


def observation_log_message(log_A, log_r_y, log_rho) -> jax.Array:
    """log ℓ(x,θ) = Σ_k log Σ_y A_k(y|x,θ) r_k(y|x,θ)² / ρ_k(y|x)  (AIF-MP observation kernel, y summed).

    ``log_A`` (M,S,K,Y), ``log_r_y`` (M,S,K,Y), ``log_rho`` (M,S,Y); returns (S,K).
    """
    terms = log_A + 2.0 * _safe(log_r_y) - _safe(log_rho)[:, :, None, :]
    terms = jnp.where(jnp.isfinite(log_A), terms, -jnp.inf)
    return jnp.sum(_logsumexp_y(terms), axis=0)


def epistemic_log_prior(log_A, log_rho) -> jax.Array:
    """log p̃(x,θ) = Σ_k E_A[2 log A − log ρ] = Σ_k (−H[A_k(·|x,θ)] + KL[A_k(·|x,θ) ‖ ρ_k(·|x)]).

    Nuijten-MP's observation-side epistemic prior: ambiguity and information gain with the
    observation model itself in place of a variational channel. Shapes as in
    ``observation_log_message``; returns (S,K).
    """
    p = jnp.exp(log_A)
    terms = jnp.where(p > 0, p * (2.0 * log_A - _safe(log_rho)[:, :, None, :]), 0.0)
    return jnp.sum(terms, axis=(0, -1))


def planning_channel(log_b) -> jax.Array:
    """r*(u|x) = Σ_{x',θ} b(x,u,x',θ) / Σ_{u,x',θ} b(x,u,x',θ) from region log-beliefs (S,A,J,K) -> (S,A)."""
    log_xu = logsumexp(log_b, axis=(2, 3))
    A = log_b.shape[1]
    return _conditional(log_xu, 1, jnp.full_like(log_xu, -jnp.log(A)))


def dynamics_channel(log_b, log_B) -> jax.Array:
    """r*(x'|x,u) = Σ_θ b(x,u,x',θ) / Σ_{x',θ} b(x,u,x',θ) -> (S,A,J).

    Pairs (x,u) without belief mass take the layout-averaged transition (normalised) as fallback;
    their value does not affect any belief.
    """
    log_xuj = logsumexp(log_b, axis=3)
    fb = logsumexp(log_B, axis=3)
    fb = fb - logsumexp(fb, axis=2, keepdims=True)
    return _conditional(log_xuj, 2, fb)


def observation_channels(log_A, log_r_y, log_rho, log_q) -> tuple[jax.Array, jax.Array]:
    """Fixed-point conditionals of the observation region beliefs b_k(y,x,θ) ∝ A r² / ρ · m(x,θ).

    r*(y|x,θ) = A r² / ρ normalised over y (independent of the incoming message m);
    ρ*(y|x) = Σ_θ q(θ|x) r*(y|x,θ) with q(x,θ) the singleton belief (S,K) (log).
    Returns (log_r_y (M,S,K,Y), log_rho (M,S,Y)).
    """
    terms = log_A + 2.0 * _safe(log_r_y) - _safe(log_rho)[:, :, None, :]
    terms = jnp.where(jnp.isfinite(log_A), terms, -jnp.inf)
    r_new = terms - _logsumexp_y(terms, keepdims=True)
    K = log_q.shape[1]
    q_theta_x = _conditional(log_q, 1, jnp.full_like(log_q, -jnp.log(K)))  # (S,K)
    rho_new = logsumexp(q_theta_x[None, :, :, None] + r_new, axis=2)
    return r_new, rho_new


def damp(log_old, log_new, lam) -> jax.Array:
    """Arithmetic damping in probability space: r ← (1−λ) r_old + λ r_new (log-space, zeros kept)."""
    lam = jnp.asarray(lam, jnp.float64)
    a = jnp.where(lam < 1.0, jnp.log1p(-jnp.minimum(lam, 1.0 - 1e-16)) + log_old, -jnp.inf)
    b = jnp.where(lam > 0.0, jnp.log(jnp.maximum(lam, 1e-300)) + log_new, -jnp.inf)
    return jnp.logaddexp(a, b)
