"""Continuous transition with control: z' ~ N(A z + B u, W⁻¹), under q(z, u, z') q([A B]) q(W).

Notation: d = dim z, m = dim u, n = d + m, x = [z; u], H = [A B] (d × n). q(H) is an MvNormal over
the *row-major* vec of H (length d·n; entry H_ij sits at index i·n + j), so row i of H is the slice
[i·n, (i+1)·n) and Cov(row_i, row_j) is the (i, j) block of the (d·n × d·n) covariance. q(W) is a
Wishart; W̄ = E[W]. q(H) may instead be a :class:`~pyrxaif.distributions.kronecker.KroneckerSumNormal` (precision
R ⊗ C + W̄ ⊗ Σ E[x xᵀ], the posterior of a matrix-normal prior): the functions below that take q(H) then use its
closed forms (O(d³ + n³)) in place of the dense (d·n)² covariance.

The node's expected log-density (its "expected factor") is

    E log N(z' | H x, W⁻¹) = −(d/2) log 2π + ½ E log|W| − ½ [z'ᵀW̄z' − 2 z'ᵀW̄H̄x + xᵀ K x],
    K = E[Hᵀ W H] = H̄ᵀW̄H̄ + Ψ,   Ψ_ab = Σ_ij W̄_ij Cov(H_ia, H_jb)   (covariance correction).

It is a Gaussian potential over (x, z') with precision [[K, −H̄ᵀW̄], [−W̄H̄, W̄]]; every message to
z', x = (z, u) below comes from that one potential (Ψ enters both directions, see DESIGN.md).
Messages to H and W are exp E[log factor] over the other edges, written with the node's expected
sufficient statistics (``TransitionStats``), summed over any number of transitions.

All functions are pure and jit/vmap-friendly; they assume valid input (validate at the boundary of
the public inference functions, e.g. ``pyrxaif.inference.lgssm``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif.distributions import KroneckerSumNormal, MvNormal, Wishart
from pyrxaif.distributions.linalg import chol_solve, symmetrize

LOG2PI = float(np.log(2.0 * np.pi))

__all__ = [
    "TransitionStats", "ab_matrix", "expected_ab", "ab_row_covariance", "quadratic_correction",
    "expected_quadratic", "expected_outer", "factor_potential", "join_messages", "forward_message",
    "backward_message", "message_to_state", "message_to_control", "message_to_ab", "ab_posterior", "message_to_w",
    "average_energy", "expected_residual_outer", "log_expected_factor_constant", "stats_from_joint",
    "stats_from_points", "wishart_product",
]


class TransitionStats(NamedTuple):
    """Expected sufficient statistics of the node, summed over ``count`` transitions.

    xx = Σ E[x xᵀ] (n, n), zx = Σ E[z' xᵀ] (d, n), zz = Σ E[z' z'ᵀ] (d, d), count = number of
    transitions (float scalar)."""

    xx: jax.Array
    zx: jax.Array
    zz: jax.Array
    count: jax.Array

    def __add__(self, other: "TransitionStats") -> "TransitionStats":  # pooling over sequences
        return TransitionStats(*(a + b for a, b in zip(self, other)))


# ---------------------------------------------------------------------------------------------
# Expectations under q(H)
# ---------------------------------------------------------------------------------------------
def ab_matrix(vec, d: int, n: int) -> jax.Array:
    """H from its row-major vec: H_ij = vec[i·n + j]."""
    return jnp.reshape(vec, vec.shape[:-1] + (d, n))


def expected_ab(q_ab: MvNormal | KroneckerSumNormal, d: int, n: int) -> jax.Array:
    """E[[A B]] (d, n) = reshape of the mean of q(vec H)."""
    if isinstance(q_ab, KroneckerSumNormal):
        return q_ab.mean
    return ab_matrix(q_ab.mean, d, n)


def ab_row_covariance(q_ab: MvNormal, d: int, n: int) -> jax.Array:
    """C[i, a, j, b] = Cov(H_ia, H_jb) = Σ_{(i·n+a),(j·n+b)}, shape (d, n, d, n)."""
    return jnp.reshape(q_ab.cov, q_ab.cov.shape[:-2] + (d, n, d, n))


def quadratic_correction(q_ab: MvNormal | KroneckerSumNormal, w_mean, d: int, n: int) -> jax.Array:
    """Ψ = E[HᵀWH] − H̄ᵀW̄H̄ = Σ_ij W̄_ij Cov(row_i, row_j)   (n, n), positive semi-definite."""
    if isinstance(q_ab, KroneckerSumNormal):
        return q_ab.row_contraction(w_mean)
    return symmetrize(jnp.einsum("...ij,...iajb->...ab", w_mean, ab_row_covariance(q_ab, d, n)))


def expected_quadratic(q_ab: MvNormal | KroneckerSumNormal, w_mean, d: int, n: int) -> jax.Array:
    """K = E[[A B]ᵀ W [A B]] = H̄ᵀW̄H̄ + Σ_ij W̄_ij Cov(row_i, row_j)   (n, n)."""
    h = expected_ab(q_ab, d, n)
    return symmetrize(jnp.swapaxes(h, -1, -2) @ w_mean @ h) + quadratic_correction(q_ab, w_mean, d, n)


def expected_outer(q_ab: MvNormal | KroneckerSumNormal, s, d: int, n: int) -> jax.Array:
    """E[H S Hᵀ] = H̄ S H̄ᵀ + [Σ_ab S_ab Cov(H_ia, H_jb)]_ij   (d, d), for a symmetric n × n S."""
    h = expected_ab(q_ab, d, n)
    if isinstance(q_ab, KroneckerSumNormal):
        corr = q_ab.col_contraction(s)
    else:
        corr = jnp.einsum("...ab,...iajb->...ij", s, ab_row_covariance(q_ab, d, n))
    return symmetrize(h @ s @ jnp.swapaxes(h, -1, -2) + corr)


# ---------------------------------------------------------------------------------------------
# Messages to the states / controls (Gaussian potential algebra)
# ---------------------------------------------------------------------------------------------
def factor_potential(ab_mean, w_mean, quad) -> MvNormal:
    """Expected factor as a potential over [x; z'] (n + d): Λ = [[K, −H̄ᵀW̄], [−W̄H̄, W̄]], ξ = 0."""
    cross = -jnp.swapaxes(ab_mean, -1, -2) @ w_mean                      # (n, d)
    top = jnp.concatenate([quad, cross], axis=-1)
    bottom = jnp.concatenate([jnp.swapaxes(cross, -1, -2), w_mean], axis=-1)
    prec = jnp.concatenate([top, bottom], axis=-2)
    return MvNormal(jnp.zeros(prec.shape[:-1]), prec)


def join_messages(msg_z: MvNormal, msg_u: MvNormal) -> MvNormal:
    """Message on x = [z; u] from independent messages on z and u (block-diagonal precision)."""
    d, m = msg_z.dim, msg_u.dim
    zeros = jnp.zeros(msg_z.precision.shape[:-2] + (d, m))
    prec = jnp.concatenate([jnp.concatenate([msg_z.precision, zeros], -1),
                            jnp.concatenate([jnp.swapaxes(zeros, -1, -2), msg_u.precision], -1)], -2)
    return MvNormal(jnp.concatenate([msg_z.xi, msg_u.xi], -1), prec)


def _marginalise_first(xi1, p11, p12, xi2, p22):
    """∫ exp(ξᵀv − ½vᵀΛv) dv₁ as natural params on v₂: (ξ₂ − Λ₂₁Λ₁₁⁻¹ξ₁, Λ₂₂ − Λ₂₁Λ₁₁⁻¹Λ₁₂)."""
    chol = jnp.linalg.cholesky(symmetrize(p11))
    s = chol_solve(chol, jnp.concatenate([xi1[..., None], p12], axis=-1))   # Λ₁₁⁻¹[ξ₁ Λ₁₂]
    p21 = jnp.swapaxes(p12, -1, -2)
    return xi2 - (p21 @ s[..., :1])[..., 0], symmetrize(p22 - p21 @ s[..., 1:])


def forward_message(msg_x: MvNormal, ab_mean, w_mean, quad) -> MvNormal:
    """To z': ∫ m(x) f̃(x, z') dx → Λ = W̄ − W̄H̄(Λ_x + K)⁻¹H̄ᵀW̄, ξ = W̄H̄(Λ_x + K)⁻¹ξ_x."""
    wh = w_mean @ ab_mean                                                  # (d, n)
    xi, prec = _marginalise_first(msg_x.xi, msg_x.precision + quad, -jnp.swapaxes(wh, -1, -2),
                                  jnp.zeros(wh.shape[:-1]), w_mean)
    return MvNormal(xi, prec)


def backward_message(msg_next: MvNormal, ab_mean, w_mean, quad) -> MvNormal:
    """To x = [z; u]: ∫ f̃(x, z') m(z') dz' → Λ = K − H̄ᵀW̄(W̄ + Λ')⁻¹W̄H̄, ξ = H̄ᵀW̄(W̄ + Λ')⁻¹ξ'."""
    wh = w_mean @ ab_mean
    xi, prec = _marginalise_first(msg_next.xi, msg_next.precision + w_mean, -wh,
                                  jnp.zeros(wh.shape[-1:]), quad)
    return MvNormal(xi, prec)


def message_to_state(msg_x: MvNormal, u, d: int) -> MvNormal:
    """To z with a known control u, from a message on x = [z; u]: Λ = Λ_zz, ξ = ξ_z − Λ_zu u."""
    return MvNormal(msg_x.xi[..., :d] - (msg_x.precision[..., :d, d:] @ u[..., None])[..., 0],
                    msg_x.precision[..., :d, :d])


def message_to_control(msg_x: MvNormal, msg_z: MvNormal) -> MvNormal:
    """To u, from a message on x = [z; u] and the incoming message on z: marginalise z from
    m(x)·m(z): Λ = Λ_uu − Λ_uz(Λ_zz + Λ_z)⁻¹Λ_zu, ξ = ξ_u − Λ_uz(Λ_zz + Λ_z)⁻¹(ξ_z' + ξ_z)."""
    d = msg_z.dim
    p = msg_x.precision
    xi, prec = _marginalise_first(msg_x.xi[..., :d] + msg_z.xi, p[..., :d, :d] + msg_z.precision,
                                  p[..., :d, d:], msg_x.xi[..., d:], p[..., d:, d:])
    return MvNormal(xi, prec)


# ---------------------------------------------------------------------------------------------
# Messages to the parameters, average energy
# ---------------------------------------------------------------------------------------------
def message_to_ab(stats: TransitionStats, w_mean) -> MvNormal:
    """To vec H (row-major): Λ = W̄ ⊗ Σ E[x xᵀ], ξ = vec(W̄ Σ E[z' xᵀ])."""
    prec = jnp.einsum("...ik,...jl->...ijkl", w_mean, stats.xx)
    d, n = stats.zx.shape[-2:]
    prec = jnp.reshape(prec, prec.shape[:-4] + (d * n, d * n))
    xi = jnp.reshape(w_mean @ stats.zx, stats.zx.shape[:-2] + (d * n,))
    return MvNormal(xi, symmetrize(prec))


def ab_posterior(prior_ab: MvNormal | KroneckerSumNormal, stats: TransitionStats, w_mean):
    """q(vec H) ∝ p(vec H)·message_to_ab(stats, W̄). A matrix-normal prior (``KroneckerSumNormal`` from
    ``matrix_normal``) gives the ``KroneckerSumNormal`` posterior (precision R ⊗ C + W̄ ⊗ Σ E[x xᵀ]) without
    forming the (d·n)² precision; a dense prior the dense product."""
    if isinstance(prior_ab, KroneckerSumNormal):
        return prior_ab.posterior(w_mean @ stats.zx, w_mean, stats.xx)
    return prior_ab.product(message_to_ab(stats, w_mean))


def expected_residual_outer(stats: TransitionStats, q_ab: MvNormal | KroneckerSumNormal) -> jax.Array:
    """R = Σ E[(z' − Hx)(z' − Hx)ᵀ] = zz − H̄ zxᵀ − zx H̄ᵀ + E[H xx Hᵀ]   under q(z,u,z') q(H)."""
    d, n = stats.zx.shape[-2:]
    h = expected_ab(q_ab, d, n)
    cross = stats.zx @ jnp.swapaxes(h, -1, -2)
    return symmetrize(stats.zz - cross - jnp.swapaxes(cross, -1, -2) + expected_outer(q_ab, stats.xx, d, n))


def message_to_w(stats: TransitionStats, q_ab: MvNormal | KroneckerSumNormal) -> Wishart:
    """To W: |W|^{count/2} exp(−½ tr(W R)) = Wishart(ν = count + d + 1, S⁻¹ = R), R as above."""
    d = stats.zz.shape[-1]
    return Wishart(jnp.asarray(stats.count, jnp.float64) + d + 1.0, expected_residual_outer(stats, q_ab))


def wishart_product(a: Wishart, b: Wishart) -> Wishart:
    """Product of Wishart densities: ν = ν_a + ν_b − d − 1, S⁻¹ = S_a⁻¹ + S_b⁻¹."""
    return Wishart(a.df + b.df - a.dim - 1.0, a.inv_scale + b.inv_scale)


def average_energy(stats: TransitionStats, q_ab: MvNormal | KroneckerSumNormal, q_w: Wishart) -> jax.Array:
    """U = −E log N(z'|Hx, W⁻¹) summed = count·(d/2 log 2π − ½E log|W|) + ½ tr(W̄ R)."""
    d = stats.zz.shape[-1]
    w_mean = q_w.mean()
    r = expected_residual_outer(stats, q_ab)
    return stats.count * (0.5 * d * LOG2PI - 0.5 * q_w.expected_logdet()) \
        + 0.5 * jnp.einsum("...ij,...ji->...", w_mean, r)


def stats_from_joint(q_joint: MvNormal, d: int, m: int) -> TransitionStats:
    """Statistics of one transition from a joint Gaussian belief over [z; u; z'] (2d + m)."""
    n = d + m
    s = q_joint.second_moment()
    return TransitionStats(s[..., :n, :n], s[..., n:, :n], s[..., n:, n:], jnp.ones(s.shape[:-2]))


def stats_from_points(x, z_next) -> TransitionStats:
    """Statistics of observed transitions x_t = [z_t; u_t] (T, n) → z_{t+1} (T, d), summed over T."""
    return TransitionStats(x.T @ x, z_next.T @ x, z_next.T @ z_next, jnp.asarray(x.shape[0], jnp.float64))


def log_expected_factor_constant(q_w: Wishart) -> jax.Array:
    """c = −(d/2) log 2π + ½ E log|W|, the x/z'-independent part of E log N(z'|Hx, W⁻¹)."""
    return -0.5 * q_w.dim * LOG2PI + 0.5 * q_w.expected_logdet()
