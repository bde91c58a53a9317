"""Gaussian over a matrix whose precision is a sum of two Kronecker products, held in their joint eigenbasis.

For a d × n matrix H with row-major vec (H_ia at index i·n + a, as ``pyrxaif.rules.transition``),

    Λ = R₀ ⊗ C₀ + R₁ ⊗ C₁,   R₀ (d × d), C₀ (n × n) positive definite, R₁, C₁ positive semi-definite.

With T_r such that T_rᵀR₀T_r = I and T_rᵀR₁T_r = diag(α) (a generalised symmetric eigenproblem), and T_c,
β likewise for (C₀, C₁), Λ = (T_r ⊗ T_c)⁻ᵀ diag(vec g) (T_r ⊗ T_c)⁻¹ with g = 1 + α βᵀ (d × n). So the
covariance is (T_r ⊗ T_c) diag(vec 1/g) (T_r ⊗ T_c)ᵀ and every quantity below costs O(d³ + n³ + d n (d + n))
instead of the O((dn)³) of the dense precision. This is the posterior of a matrix-normal prior
(R₁ = C₁ = 0, g = 1) times the message of linear-Gaussian regression, exp(tr(ΞᵀH) − ½ vec(H)ᵀ(W ⊗ S)vec(H)),
which is how q([A B]) of ``pyrxaif.inference.lgssm`` uses it. Eigendecompositions by
:func:`~pyrxaif.distributions.linalg.eigh_jacobi` (no LAPACK call, so everything here may sit under ``vmap``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif import checks as V
from pyrxaif.distributions.gaussian import MvNormal
from pyrxaif.distributions.linalg import eigh_jacobi, inverse_pivoted, is_traced, spd_inverse_logdet, symmetrize


def _whitening(precision):
    """T with Tᵀ P T = I for a symmetric positive-definite P: T = Q diag(p^-½) from P = Q diag(p) Qᵀ."""
    p, q = eigh_jacobi(precision)
    return q / jnp.sqrt(p)[None, :]


def _logdet_gram(t):
    """log|TᵀT| = 2 log|det T|."""
    return spd_inverse_logdet(t.T @ t, inverse=False)[1]


class KroneckerSumNormal(NamedTuple):
    """N(vec H | vec M, Λ⁻¹) over a (d, n) matrix H with Λ = (T_r ⊗ T_c)⁻ᵀ diag(vec(1 + α βᵀ)) (T_r ⊗ T_c)⁻¹
    (module docstring). A JAX pytree; one matrix only (no leading batch axes)."""

    mean: jax.Array        # M (d, n)
    row_basis: jax.Array   # T_r (d, d)
    col_basis: jax.Array   # T_c (n, n)
    row_scale: jax.Array   # α (d,), >= 0
    col_scale: jax.Array   # β (n,), >= 0

    @classmethod
    def matrix_normal(cls, mean, row_precision, col_precision) -> "KroneckerSumNormal":
        """The matrix normal N(vec H | vec M, (R ⊗ C)⁻¹) (α = β = 0); R, C symmetric positive definite."""
        if not is_traced(mean, row_precision, col_precision):
            mean = V.as_float_array("mean", mean, ndim=2)
            for name, p, k in (("row_precision", row_precision, mean.shape[0]),
                               ("col_precision", col_precision, mean.shape[1])):
                V.check_positive_definite(name, V.as_float_array(name, p, shape=(k, k)))
        mean = jnp.asarray(mean, jnp.float64)
        d, n = mean.shape
        return cls(mean, _whitening(jnp.asarray(row_precision, jnp.float64)),
                   _whitening(jnp.asarray(col_precision, jnp.float64)), jnp.zeros(d), jnp.zeros(n))

    def posterior(self, xi, row, col) -> "KroneckerSumNormal":
        """This matrix normal (it must have α = β = 0, e.g. from :meth:`matrix_normal`) times the message
        exp(tr(ξᵀH) − ½ vec(H)ᵀ(row ⊗ col) vec(H)), ξ (d, n), row (d, d) and col (n, n) symmetric positive
        semi-definite: precision R ⊗ C + row ⊗ col, mean M' = M + Λ'⁻¹ vec(ξ − row M col). (A product with a
        distribution that has its own second term would have three Kronecker terms: not representable.)"""
        if not is_traced(self, xi, row, col):
            d, n = self.shape
            for name, x, shape in (("xi", xi, (d, n)), ("row", row, (d, d)), ("col", col, (n, n))):
                V.as_float_array(name, x, shape=shape)
        alpha, u = eigh_jacobi(symmetrize(self.row_basis.T @ row @ self.row_basis))
        beta, v = eigh_jacobi(symmetrize(self.col_basis.T @ col @ self.col_basis))
        alpha, beta = jnp.maximum(alpha, 0.0), jnp.maximum(beta, 0.0)      # PSD: round-off below zero
        t_r, t_c = self.row_basis @ u, self.col_basis @ v
        out = KroneckerSumNormal(self.mean, t_r, t_c, alpha, beta)
        return out._replace(mean=self.mean + out.solve(xi - row @ self.mean @ col))

    @property
    def shape(self) -> tuple[int, int]:
        """(d, n)."""
        return self.mean.shape

    @property
    def scale(self) -> jax.Array:
        """g = 1 + α βᵀ (d, n): the eigenvalues of Λ in the basis T_r ⊗ T_c."""
        return 1.0 + self.row_scale[:, None] * self.col_scale[None, :]

    def solve(self, b) -> jax.Array:
        """Λ⁻¹ vec(b) as a (d, n) matrix: T_r [(T_rᵀ b T_c) / g] T_cᵀ."""
        return self.row_basis @ ((self.row_basis.T @ b @ self.col_basis) / self.scale) @ self.col_basis.T

    def row_contraction(self, w) -> jax.Array:
        """Σ_ij w_ij Cov(H_i·, H_j·) (n, n) for a symmetric w (d, d): T_c diag(Σ_k (T_rᵀwT_r)_kk / g_k·) T_cᵀ."""
        wk = jnp.einsum("ik,ij,jk->k", self.row_basis, w, self.row_basis)
        return symmetrize((self.col_basis * ((wk @ (1.0 / self.scale)))[None, :]) @ self.col_basis.T)

    def col_contraction(self, s) -> jax.Array:
        """[Σ_ab s_ab Cov(H_ia, H_jb)]_ij (d, d) for a symmetric s (n, n): T_r diag(Σ_c (T_cᵀsT_c)_cc / g_·c) T_rᵀ."""
        sc = jnp.einsum("ac,ab,bc->c", self.col_basis, s, self.col_basis)
        return symmetrize((self.row_basis * ((1.0 / self.scale) @ sc)[None, :]) @ self.row_basis.T)

    def logdet_precision(self) -> jax.Array:
        """log|Λ| = Σ log g − n log|T_rᵀT_r| − d log|T_cᵀT_c|."""
        d, n = self.shape
        return jnp.sum(jnp.log(self.scale)) - n * _logdet_gram(self.row_basis) - d * _logdet_gram(self.col_basis)

    def kl(self, other: "KroneckerSumNormal") -> jax.Array:
        """KL(self ‖ other) = ½[tr(Λ₂Σ₁) + (μ₂−μ₁)ᵀΛ₂(μ₂−μ₁) − dn + log|Λ₁| − log|Λ₂|], in the two bases:
        with B_r = T_r₂⁻¹T_r₁, B_c = T_c₂⁻¹T_c₁, tr(Λ₂Σ₁) = Σ g₂ ∘ [(B_r∘B_r)(1/g₁)(B_c∘B_c)ᵀ] and the
        quadratic form is Σ g₂ ∘ (T_r₂⁻¹ (M₂ − M₁) T_c₂⁻ᵀ)²."""
        d, n = self.shape
        inv_r, inv_c = inverse_pivoted(other.row_basis), inverse_pivoted(other.col_basis)
        b_r, b_c = inv_r @ self.row_basis, inv_c @ self.col_basis
        trace = jnp.sum(other.scale * ((b_r * b_r) @ (1.0 / self.scale) @ (b_c * b_c).T))
        y = inv_r @ (other.mean - self.mean) @ inv_c.T
        quad = jnp.sum(other.scale * y * y)
        return 0.5 * (trace + quad - d * n + self.logdet_precision() - other.logdet_precision())

    def to_mvnormal(self) -> MvNormal:
        """The same Gaussian as a dense :class:`MvNormal` over the row-major vec (O(d²n²) memory):
        Λ = (A_r ⊗ A_c)ᵀ diag(vec g) (A_r ⊗ A_c) with A = T⁻¹, ξ = vec(A_rᵀ [g ∘ (A_r M A_cᵀ)] A_c)."""
        d, n = self.shape
        a_r, a_c = inverse_pivoted(self.row_basis), inverse_pivoted(self.col_basis)
        g = self.scale
        z = jnp.einsum("kc,ca,cb->kab", g, a_c, a_c)
        prec = jnp.einsum("ki,kj,kab->iajb", a_r, a_r, z).reshape(d * n, d * n)
        xi = a_r.T @ (g * (a_r @ self.mean @ a_c.T)) @ a_c
        return MvNormal(xi.reshape(d * n), symmetrize(prec))


def kronecker_factors(precision, d: int, n: int, rtol: float = 1e-12):
    """(R, C) with precision == R ⊗ C (row-major vec of a (d, n) matrix) to ``rtol`` of its largest
    entry, or None when it is not a Kronecker product. NumPy, on a concrete precision (call outside jit).
    C = the (0, 0) block Λ[0·n:1·n, 0·n:1·n], R_ij = Λ[i·n, j·n] / C_00 (any scaling of the pair is the same
    product); R and C are then positive definite when Λ is."""
    p = np.asarray(precision, np.float64)
    if p.shape != (d * n, d * n):
        raise ValueError(f"precision: expected shape {(d * n, d * n)}, got {p.shape}")
    blocks = p.reshape(d, n, d, n)
    col = blocks[0, :, 0, :]
    if not col[0, 0] > 0:
        return None
    row = blocks[:, 0, :, 0] / col[0, 0]
    scale = np.max(np.abs(p))
    if np.max(np.abs(np.einsum("ij,ab->iajb", row, col) - blocks)) > rtol * scale:
        return None
    return row, col
