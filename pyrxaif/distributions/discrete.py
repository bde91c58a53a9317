"""Discrete beliefs: Categorical (log-probabilities), Dirichlet and matrix (column-wise) Dirichlet.

Discrete messages live in log space; normalisation is by log-sum-exp. A matrix Dirichlet over a
column-stochastic matrix A (A[:, j] sums to one) is a product of independent Dirichlets, one per
column, as in LAIF's observation matrices: E[log A]_ij = ψ(a_ij) − ψ(Σ_i a_ij).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammaln, logsumexp, xlogy

from pyrxaif import checks as V
from pyrxaif.distributions.linalg import is_traced


class Categorical(NamedTuple):
    """Cat(x | p) stored as normalised log-probabilities ``logits`` (last axis = categories)."""

    logits: jax.Array

    @classmethod
    def from_logits(cls, logits) -> "Categorical":
        """Normalise unnormalised log-probabilities (−inf allowed for impossible states)."""
        if not is_traced(logits):
            arr = V.as_float_array("logits", logits, finite=False)
            if arr.ndim < 1 or arr.shape[-1] == 0:
                raise ValueError(f"logits: expected at least one category, got shape {arr.shape}")
            if np.any(np.isnan(arr)) or np.any(arr == np.inf):
                raise ValueError("logits: expected values in [-inf, inf), found NaN or +inf")
            if np.any(np.all(arr == -np.inf, axis=-1)):
                raise ValueError("logits: every category has probability zero in some row")
        logits = jnp.asarray(logits, jnp.float64)
        return cls(logits - logsumexp(logits, axis=-1, keepdims=True))

    @classmethod
    def from_probs(cls, probs) -> "Categorical":
        if not is_traced(probs):
            probs = V.check_probability_vectors("probs", probs)
        return cls(jnp.log(jnp.asarray(probs, jnp.float64)))

    @classmethod
    def uniform(cls, n: int, batch_shape: tuple = ()) -> "Categorical":
        return cls(jnp.full(batch_shape + (n,), -jnp.log(n)))

    @property
    def probs(self) -> jax.Array:
        return jnp.exp(self.logits)

    @property
    def num_categories(self) -> int:
        return self.logits.shape[-1]

    def product(self, other: "Categorical") -> "Categorical":
        """Normalised product: log p ∝ log p₁ + log p₂."""
        s = self.logits + other.logits
        return Categorical(s - logsumexp(s, axis=-1, keepdims=True))

    __mul__ = product

    def entropy(self) -> jax.Array:
        """H = −Σ p log p (0 log 0 = 0)."""
        return -jnp.sum(xlogy(self.probs, self.probs), axis=-1)

    def kl(self, other: "Categorical") -> jax.Array:
        """KL(p ‖ q) = Σ p (log p − log q), with 0 · (anything) = 0."""
        p = self.probs
        diff = jnp.where(p > 0, self.logits - other.logits, 0.0)
        return jnp.sum(p * diff, axis=-1)

    def sample(self, key, shape: tuple = ()) -> jax.Array:
        return jax.random.categorical(key, self.logits, shape=shape + self.logits.shape[:-1])


def _check_counts(counts, concentration):
    """Counts for a conjugate update: finite, non-negative, broadcastable to the concentration (skipped
    under tracing)."""
    if is_traced(counts, concentration):
        return counts
    arr = V.as_float_array("counts", counts)
    if np.any(arr < 0):
        raise ValueError(f"counts: expected non-negative (expected) counts, got minimum {float(arr.min()):.3g}")
    try:
        np.broadcast_shapes(arr.shape, np.shape(concentration))
    except ValueError:
        raise ValueError(f"counts: shape {arr.shape} does not broadcast to the concentration's "
                         f"{np.shape(concentration)}") from None
    return counts


def _check_concentration(name, alpha, min_ndim=1):
    arr = V.as_float_array(name, alpha)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), got shape {arr.shape}")
    if np.any(arr <= 0):
        raise ValueError(f"{name}: expected positive concentrations, got minimum {float(arr.min()):.3g}")
    return arr


class Dirichlet(NamedTuple):
    """Dir(p | α) over the last axis. A JAX pytree."""

    concentration: jax.Array

    @classmethod
    def create(cls, concentration) -> "Dirichlet":
        if not is_traced(concentration):
            _check_concentration("concentration", concentration)
        return cls(jnp.asarray(concentration, jnp.float64))

    def mean(self) -> jax.Array:
        a = self.concentration
        return a / jnp.sum(a, axis=-1, keepdims=True)

    def expected_log(self) -> jax.Array:
        """E[log p_i] = ψ(α_i) − ψ(Σ α)."""
        a = self.concentration
        return digamma(a) - digamma(jnp.sum(a, axis=-1, keepdims=True))

    def log_normalizer(self) -> jax.Array:
        """log B(α) = Σ log Γ(α_i) − log Γ(Σ α)."""
        a = self.concentration
        return jnp.sum(gammaln(a), axis=-1) - gammaln(jnp.sum(a, axis=-1))

    def entropy(self) -> jax.Array:
        """H = log B(α) + (α₀ − K) ψ(α₀) − Σ (α_i − 1) ψ(α_i)."""
        a = self.concentration
        a0 = jnp.sum(a, axis=-1)
        k = a.shape[-1]
        return self.log_normalizer() + (a0 - k) * digamma(a0) - jnp.sum((a - 1.0) * digamma(a), axis=-1)

    def expected_entropy_of_sample(self) -> jax.Array:
        """E[−Σ_i p_i log p_i] = −Σ_i (α_i/α₀)(ψ(α_i + 1) − ψ(α₀ + 1)), exact."""
        a = self.concentration
        a0 = jnp.sum(a, axis=-1, keepdims=True)
        return -jnp.sum(a / a0 * (digamma(a + 1.0) - digamma(a0 + 1.0)), axis=-1)

    def kl(self, other: "Dirichlet") -> jax.Array:
        """KL(Dir(α) ‖ Dir(β)) = log B(β) − log B(α) + Σ (α_i − β_i) E_α[log p_i]."""
        return other.log_normalizer() - self.log_normalizer() + jnp.sum(
            (self.concentration - other.concentration) * self.expected_log(), axis=-1)

    def update(self, counts) -> "Dirichlet":
        """Conjugate update with (expected) counts: α ← α + n (n ≥ 0, finite)."""
        return Dirichlet(self.concentration + _check_counts(counts, self.concentration))

    def log_prob(self, p) -> jax.Array:
        return jnp.sum(xlogy(self.concentration - 1.0, p), axis=-1) - self.log_normalizer()

    def sample(self, key, shape: tuple = ()) -> jax.Array:
        return jax.random.dirichlet(key, self.concentration, shape=shape + self.concentration.shape[:-1])


class MatrixDirichlet(NamedTuple):
    """Column-wise Dirichlet over a column-stochastic matrix A (shape (..., n_out, n_in)):
    A[:, j] ~ Dir(a[:, j]) independently. Same object as ReactiveMP's DirichletCollection over columns."""

    concentration: jax.Array

    @classmethod
    def create(cls, concentration) -> "MatrixDirichlet":
        if not is_traced(concentration):
            _check_concentration("concentration", concentration, min_ndim=2)
        return cls(jnp.asarray(concentration, jnp.float64))

    def _columns(self) -> Dirichlet:
        return Dirichlet(jnp.swapaxes(self.concentration, -1, -2))

    def mean(self) -> jax.Array:
        """E[A]_ij = a_ij / Σ_i a_ij."""
        a = self.concentration
        return a / jnp.sum(a, axis=-2, keepdims=True)

    def expected_log(self) -> jax.Array:
        """E[log A]_ij = ψ(a_ij) − ψ(Σ_i a_ij)."""
        return jnp.swapaxes(self._columns().expected_log(), -1, -2)

    def column_entropies(self) -> jax.Array:
        """Differential entropy of each column's Dirichlet, shape (..., n_in)."""
        return self._columns().entropy()

    def entropy(self) -> jax.Array:
        return jnp.sum(self.column_entropies(), axis=-1)

    def expected_column_entropy(self) -> jax.Array:
        """h̄_j = E[h(A)_j] = E[−Σ_i A_ij log A_ij], exact (the GFE ambiguity term)."""
        return self._columns().expected_entropy_of_sample()

    def kl(self, other: "MatrixDirichlet") -> jax.Array:
        return jnp.sum(self._columns().kl(other._columns()), axis=-1)

    def update(self, counts) -> "MatrixDirichlet":
        """Conjugate update with (expected) counts, e.g. x sᵀ: a ← a + n (n ≥ 0, finite)."""
        return MatrixDirichlet(self.concentration + _check_counts(counts, self.concentration))

    def log_prob(self, a) -> jax.Array:
        return jnp.sum(self._columns().log_prob(jnp.swapaxes(a, -1, -2)), axis=-1)

    def sample(self, key, shape: tuple = ()) -> jax.Array:
        cols = self._columns().sample(key, shape)
        return jnp.swapaxes(cols, -1, -2)
