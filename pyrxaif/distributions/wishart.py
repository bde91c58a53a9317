"""Wishart distribution W ~ Wishart(ν, S) stored as (ν, S⁻¹) ("inverse scale"), density
p(W) ∝ |W|^{(ν−d−1)/2} exp(−½ tr(S⁻¹W)).

The inverse scale is the natural parameter that VB updates add to: S⁻¹ ← S₀⁻¹ + Σ E[r rᵀ].
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif import checks as V
from pyrxaif.distributions.linalg import chol_logdet, is_traced, multidigamma, multigammaln, spd_inverse, symmetrize

LOG2 = float(np.log(2.0))


class Wishart(NamedTuple):
    """Wishart(ν, S) with fields ``df`` = ν and ``inv_scale`` = S⁻¹. A JAX pytree."""

    df: jax.Array
    inv_scale: jax.Array

    @classmethod
    def create(cls, df, inv_scale) -> "Wishart":
        """Validate (ν > d − 1, S⁻¹ symmetric positive definite) and build."""
        if not is_traced(df, inv_scale):
            df_ = V.as_float_array("df", df)
            inv = V.as_float_array("inv_scale", inv_scale)
            V.check_positive_definite("inv_scale", inv)
            d = inv.shape[-1]
            if np.any(df_ <= d - 1):
                raise ValueError(f"df: expected degrees of freedom > d - 1 = {d - 1}, got {df_.tolist()}")
        return cls(jnp.asarray(df, jnp.float64), jnp.asarray(inv_scale, jnp.float64))

    @classmethod
    def from_mean(cls, mean, df) -> "Wishart":
        """The Wishart with E[W] = mean and ν = df: S⁻¹ = ν · mean⁻¹."""
        if not is_traced(mean, df):
            V.check_positive_definite("mean", V.as_float_array("mean", mean))
        mean = jnp.asarray(mean, jnp.float64)
        return cls.create(df, symmetrize(jnp.asarray(df)[..., None, None] * spd_inverse(mean)))

    @property
    def dim(self) -> int:
        return self.inv_scale.shape[-1]

    def _chol(self):
        return jnp.linalg.cholesky(symmetrize(self.inv_scale))

    def mean(self) -> jax.Array:
        """E[W] = ν S."""
        return symmetrize(jnp.asarray(self.df)[..., None, None] * spd_inverse(symmetrize(self.inv_scale)))

    def expected_logdet(self) -> jax.Array:
        """E[log|W|] = Σ_{j=0}^{d−1} ψ((ν − j)/2) + d log 2 − log|S⁻¹|."""
        d = self.dim
        return multidigamma(self.df / 2.0, d) + d * LOG2 - chol_logdet(self._chol())

    def log_normalizer(self) -> jax.Array:
        """log Z = (νd/2) log 2 + log Γ_d(ν/2) − (ν/2) log|S⁻¹|."""
        d = self.dim
        return 0.5 * self.df * d * LOG2 + multigammaln(self.df / 2.0, d) - 0.5 * self.df * chol_logdet(self._chol())

    def entropy(self) -> jax.Array:
        """H = log Z − ½(ν − d − 1) E[log|W|] + ½ νd."""
        d = self.dim
        return self.log_normalizer() - 0.5 * (self.df - d - 1.0) * self.expected_logdet() + 0.5 * self.df * d

    def log_prob(self, w) -> jax.Array:
        d = self.dim
        logdet_w = jnp.linalg.slogdet(w)[1]
        tr = jnp.einsum("...ij,...ji->...", self.inv_scale, w)
        return 0.5 * (self.df - d - 1.0) * logdet_w - 0.5 * tr - self.log_normalizer()

    def kl(self, other: "Wishart") -> jax.Array:
        """KL(self ‖ other) = −H[self] − E_self[log other(W)]."""
        d = self.dim
        e_logdet = self.expected_logdet()
        cross = 0.5 * (other.df - d - 1.0) * e_logdet \
            - 0.5 * jnp.einsum("...ij,...ji->...", other.inv_scale, self.mean()) - other.log_normalizer()
        return -self.entropy() - cross
