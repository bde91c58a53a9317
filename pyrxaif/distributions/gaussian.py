"""Multivariate normal in natural (information) form: ξ = Λμ, Λ.

Messages on Gaussian edges multiply by adding natural parameters, so the natural form is the
native one; mean and covariance are derived through a Cholesky factor of Λ when asked for.
A message with Λ = 0 is the flat (uninformative) message; only proper beliefs have moments.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif import checks as V
from pyrxaif.distributions.linalg import chol_logdet, is_traced, spd_inverse, spd_solve, symmetrize

LOG2PI = float(np.log(2.0 * np.pi))


class MvNormal(NamedTuple):
    """N(x | μ, Λ⁻¹) stored as (xi = Λμ, precision = Λ). A JAX pytree: usable under jit/vmap."""

    xi: jax.Array
    precision: jax.Array

    # ----- constructors (validate concrete input) -----
    @classmethod
    def from_mean_cov(cls, mean, cov) -> "MvNormal":
        """N(mean, cov) → natural form: Λ = cov⁻¹ (Cholesky), ξ = Λ mean."""
        if not is_traced(mean, cov):
            mean = V.as_float_array("mean", mean)
            cov = V.as_float_array("cov", cov)
            _check_pair("mean", mean, "cov", cov)
            V.check_positive_definite("cov", cov)
        mean, cov = jnp.asarray(mean, jnp.float64), jnp.asarray(cov, jnp.float64)
        prec = spd_inverse(cov)
        return cls(jnp.einsum("...ij,...j->...i", prec, mean), prec)

    @classmethod
    def from_mean_precision(cls, mean, precision) -> "MvNormal":
        """N(mean, precision⁻¹): ξ = Λ mean. Λ may be positive semi-definite (partly flat message)."""
        if not is_traced(mean, precision):
            mean = V.as_float_array("mean", mean)
            precision = V.as_float_array("precision", precision)
            _check_pair("mean", mean, "precision", precision)
            check_precision("precision", precision, allow_singular=True)
        mean, precision = jnp.asarray(mean, jnp.float64), jnp.asarray(precision, jnp.float64)
        return cls(jnp.einsum("...ij,...j->...i", precision, mean), precision)

    @classmethod
    def from_natural(cls, xi, precision) -> "MvNormal":
        if not is_traced(xi, precision):
            xi = V.as_float_array("xi", xi)
            precision = V.as_float_array("precision", precision)
            _check_pair("xi", xi, "precision", precision)
            check_precision("precision", precision, allow_singular=True)
        return cls(jnp.asarray(xi, jnp.float64), jnp.asarray(precision, jnp.float64))

    @classmethod
    def flat(cls, dim: int, batch_shape: tuple = ()) -> "MvNormal":
        """The uninformative message (ξ = 0, Λ = 0), the identity of the product."""
        return cls(jnp.zeros(batch_shape + (dim,)), jnp.zeros(batch_shape + (dim, dim)))

    # ----- algebra -----
    @property
    def dim(self) -> int:
        return self.xi.shape[-1]

    def product(self, other: "MvNormal") -> "MvNormal":
        """Unnormalised product of densities: (ξ₁ + ξ₂, Λ₁ + Λ₂)."""
        return MvNormal(self.xi + other.xi, self.precision + other.precision)

    __mul__ = product

    def _chol(self):
        return jnp.linalg.cholesky(symmetrize(self.precision))

    # ----- moments (proper beliefs only) -----
    @property
    def mean(self) -> jax.Array:
        """μ = Λ⁻¹ξ (``spd_solve``: Cholesky eagerly, the sweep operator under a trace)."""
        return spd_solve(symmetrize(self.precision), self.xi[..., None])[..., 0]

    @property
    def cov(self) -> jax.Array:
        """Σ = Λ⁻¹ (Cholesky)."""
        return spd_inverse(symmetrize(self.precision))

    def mean_cov(self):
        return self.mean, self.cov

    def second_moment(self) -> jax.Array:
        """E[x xᵀ] = Σ + μμᵀ."""
        m, s = self.mean_cov()
        return s + m[..., :, None] * m[..., None, :]

    def logdet_precision(self) -> jax.Array:
        return chol_logdet(self._chol())

    def entropy(self) -> jax.Array:
        """H = ½ d (1 + log 2π) − ½ log|Λ|."""
        return 0.5 * self.dim * (1.0 + LOG2PI) - 0.5 * self.logdet_precision()

    def log_prob(self, x) -> jax.Array:
        """log N(x | μ, Λ⁻¹)."""
        m = self.mean
        d = x - m
        quad = jnp.einsum("...i,...ij,...j->...", d, self.precision, d)
        return -0.5 * (self.dim * LOG2PI - self.logdet_precision() + quad)

    def kl(self, other: "MvNormal") -> jax.Array:
        """KL(self ‖ other) = ½[tr(Λ₂Σ₁) + (μ₂−μ₁)ᵀΛ₂(μ₂−μ₁) − d + log|Λ₁| − log|Λ₂|]."""
        m1, s1 = self.mean_cov()
        m2 = other.mean
        d = m2 - m1
        tr = jnp.einsum("...ij,...ji->...", other.precision, s1)
        quad = jnp.einsum("...i,...ij,...j->...", d, other.precision, d)
        return 0.5 * (tr + quad - self.dim + self.logdet_precision() - other.logdet_precision())

    def sample(self, key, shape: tuple = ()) -> jax.Array:
        """x = μ + L⁻ᵀ ε with Λ = L Lᵀ."""
        chol = self._chol()
        eps = jax.random.normal(key, shape + self.xi.shape)
        z = jax.scipy.linalg.solve_triangular(jnp.swapaxes(chol, -1, -2), eps[..., None], lower=False)[..., 0]
        return self.mean + z


def _check_pair(vname, vec, mname, mat):
    if vec.ndim < 1:
        raise ValueError(f"{vname}: expected a vector, got a scalar")
    if mat.shape != vec.shape + vec.shape[-1:]:
        raise ValueError(f"{mname}: expected shape {vec.shape + vec.shape[-1:]} to match {vname} "
                         f"of shape {vec.shape}, got {mat.shape}")


def check_precision(name: str, precision, allow_singular: bool = False, tol: float = 1e-10) -> np.ndarray:
    """A symmetric precision matrix that is positive definite (or semi-definite if allowed)."""
    p = V.as_float_array(name, precision)
    V.check_symmetric(name, p)
    if allow_singular:
        ev = np.linalg.eigvalsh(0.5 * (p + np.swapaxes(p, -1, -2)))
        scale = max(1.0, float(np.max(np.abs(ev))) if ev.size else 1.0)
        if np.min(ev) < -tol * scale:
            raise ValueError(f"{name}: expected a positive semi-definite matrix, "
                             f"smallest eigenvalue {float(np.min(ev)):.3g}")
    else:
        V.check_positive_definite(name, p)
    return p
