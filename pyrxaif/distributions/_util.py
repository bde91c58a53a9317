"""Helpers shared by the distribution types."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def is_traced(*xs) -> bool:
    """True when any argument is a JAX tracer (inside jit/vmap/grad); validation is skipped then."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def symmetrize(m):
    return 0.5 * (m + jnp.swapaxes(m, -1, -2))


def chol_logdet(chol):
    """log|M| from the lower Cholesky factor of M."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def chol_solve(chol, b):
    """M^{-1} b from the lower Cholesky factor of M (no explicit inverse)."""
    return jax.scipy.linalg.cho_solve((chol, True), b)


def spd_inverse(m):
    """M^{-1} for symmetric positive-definite M via Cholesky (used only where a covariance is asked for)."""
    chol = jnp.linalg.cholesky(m)
    eye = jnp.broadcast_to(jnp.eye(m.shape[-1], dtype=m.dtype), m.shape)
    return symmetrize(chol_solve(chol, eye))


def multigammaln(a, d: int):
    """log Γ_d(a), the multivariate log-gamma function."""
    j = jnp.arange(d, dtype=jnp.float64)
    return d * (d - 1) / 4.0 * jnp.log(jnp.pi) + jnp.sum(
        jax.scipy.special.gammaln(jnp.asarray(a)[..., None] - j / 2.0), axis=-1)


def multidigamma(a, d: int):
    """Σ_{j=0}^{d-1} ψ(a − j/2)."""
    j = jnp.arange(d, dtype=jnp.result_type(a, jnp.float64))
    return jnp.sum(jax.scipy.special.digamma(jnp.asarray(a)[..., None] - j / 2.0), axis=-1)
