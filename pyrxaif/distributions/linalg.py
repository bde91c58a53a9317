"""Linear algebra shared by the distributions, rules and inference schedules: SPD inverses and solves,
log-determinants, pivoted solves that make no LAPACK call inside jit (docs/lgssm.md, "The
parallel-smoother hang"), symmetrisation, multivariate gamma functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


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


def spd_solve(m, b):
    """M⁻¹B for symmetric positive-definite M (..., n, n) and B (..., n, k): a LAPACK Cholesky solve
    when called eagerly; under a trace the sweep operator on [[M, B], [Bᵀ, 0]] (no LAPACK call, see
    :func:`spd_inverse`)."""
    if not is_traced(m, b):
        return chol_solve(jnp.linalg.cholesky(m), b)
    n = m.shape[-1]
    shape = jnp.broadcast_shapes(m.shape[:-2], b.shape[:-2])
    b = jnp.broadcast_to(b, shape + b.shape[-2:])
    top = jnp.concatenate([jnp.broadcast_to(m, shape + m.shape[-2:]), b], -1)
    bottom = jnp.concatenate([jnp.swapaxes(b, -1, -2), jnp.zeros(shape + (b.shape[-1],) * 2, m.dtype)], -1)
    return sweep(jnp.concatenate([top, bottom], -2), n)[..., :n, n:]


def spd_inverse(m):
    """M^{-1} for symmetric positive-definite M via Cholesky (used only where a covariance is asked for).

    Under a trace (inside a compiled program, which may hold other LAPACK calls) without LAPACK, by
    :func:`spd_inverse_logdet`: the covariance and the mean (a LAPACK Cholesky solve) of one
    MvNormal would otherwise be two independent batched LAPACK calls, which can deadlock XLA's CPU
    thread pool (docs/lgssm.md). Called eagerly, each LAPACK call is a program of its own."""
    if is_traced(m):
        return symmetrize(spd_inverse_logdet(m)[0])
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


UNROLL_MAX_DIM = 12
# sweep unrolls up to this many pivots (one fused update each, best inside scans); beyond, a rolled loop
# (e.g. the d(d+m)-square precision of q(vec [A B]) for d = 32), whose compile time does not grow with p
SWEEP_UNROLL_MAX = 64


def small_matmul(x, y):
    """x @ y for a matrix x (n, k) and a matrix (k, p) or vector (k,) y. Where n, k, p are all at most
    ``UNROLL_MAX_DIM`` the product is a broadcast multiply and sum, which XLA fuses with its
    neighbours: inside a sequential scan a library call per small product costs more than its
    arithmetic (measured: 8 × 8 products in a scan step twice as fast). Larger sizes use ``@``."""
    dims = x.shape[-2:] + y.shape[-1:]
    if max(dims) > UNROLL_MAX_DIM:
        return x @ y
    if y.ndim == 1:
        return jnp.sum(x * y, -1)
    return jnp.sum(x[..., :, :, None] * y[..., None, :, :], -2)


def spd_inverse_logdet(m, inverse: bool = True):
    """(M⁻¹, log|M|) for symmetric positive-definite M (..., d, d), via the Cholesky factor.

    For d <= ``UNROLL_MAX_DIM`` the Cholesky factorisation L, the triangular inverse L⁻¹ and
    M⁻¹ = L⁻ᵀL⁻¹ are written out entry by entry as elementwise array operations over the batch
    axes, which XLA fuses into one loop (much faster than a LAPACK call per small matrix, and the
    result is exactly symmetric). Only the lower triangle of M is read. Larger d use the sweep
    operator (d fused rank-one updates over the batch). No LAPACK call either way: jaxlib's batched
    LAPACK kernels can deadlock XLA's CPU thread pool when two of them run concurrently (see
    docs/lgssm.md, "The parallel-smoother hang").
    ``inverse=False`` returns (None, log|M|) and skips the inversion."""
    d = m.shape[-1]
    if d > UNROLL_MAX_DIM:
        swept, logdet = sweep(symmetrize(m), d, with_logdet=True)
        return (symmetrize(-swept) if inverse else None), logdet
    a = [[m[..., i, j] for j in range(i + 1)] for i in range(d)]           # lower triangle of M
    chol = [[None] * d for _ in range(d)]
    rdiag = [None] * d                                                     # 1 / L_jj
    for j in range(d):
        s = a[j][j]
        for k in range(j):
            s = s - chol[j][k] * chol[j][k]
        chol[j][j] = jnp.sqrt(s)
        rdiag[j] = 1.0 / chol[j][j]
        for i in range(j + 1, d):
            s = a[i][j]
            for k in range(j):
                s = s - chol[i][k] * chol[j][k]
            chol[i][j] = s * rdiag[j]
    logdet = 2.0 * sum(jnp.log(chol[j][j]) for j in range(d))
    if not inverse:
        return None, logdet
    linv = [[None] * d for _ in range(d)]                                  # L⁻¹ (lower)
    for j in range(d):
        linv[j][j] = rdiag[j]
        for i in range(j + 1, d):
            s = chol[i][j] * linv[j][j]
            for k in range(j + 1, i):
                s = s + chol[i][k] * linv[k][j]
            linv[i][j] = -s * rdiag[i]
    inv = [[None] * d for _ in range(d)]                                   # M⁻¹ = L⁻ᵀ L⁻¹
    for i in range(d):
        for j in range(i + 1):
            s = linv[i][i] * linv[i][j]
            for k in range(i + 1, d):
                s = s + linv[k][i] * linv[k][j]
            inv[i][j] = inv[j][i] = s
    return jnp.stack([jnp.stack(row, -1) for row in inv], -2), logdet


def sweep(a, p: int, with_logdet: bool = False):
    """Sweep operator on the first ``p`` pivots of symmetric matrices a (..., n, n).

    For a = [[P, R], [Rᵀ, Q]] with P (p × p) positive definite it returns
    [[−P⁻¹, P⁻¹R], [RᵀP⁻¹, Q − RᵀP⁻¹R]]: inverse, solves and Schur complement in p rank-one
    updates, each a single fused elementwise operation (no LAPACK call, no matrix product; no
    pivoting, which is stable for positive-definite P). ``with_logdet``: also return log|P|, the
    sum of the logs of the pivots. Used inside sequential scans, where XLA's per-operation cost
    dominates for small matrices, and for batched inverses of large d without LAPACK. Up to
    ``SWEEP_UNROLL_MAX`` pivots the loop is unrolled, beyond it is a ``lax.fori_loop``."""
    idx = np.arange(a.shape[-1])

    def pivot(k, a):
        piv = a[..., k, k]
        col, row = a[..., :, k][..., :, None], a[..., k, :][..., None, :]
        rp = (1.0 / piv)[..., None, None]
        ek = idx == k              # a constant where k is a Python int (unrolled): no runtime mask
        b = a - (col * rp) * row
        b = jnp.where(ek[:, None], row * rp, b)
        b = jnp.where(ek[None, :], col * rp, b)
        return jnp.where(ek[:, None] & ek[None, :], -rp, b), piv

    if p > SWEEP_UNROLL_MAX:                          # rolled: compile time independent of p
        def rolled(k, state):
            a, piv = pivot(k, state[0])
            return a, state[1] + jnp.log(piv)
        a, logdet = jax.lax.fori_loop(0, p, rolled, (a, jnp.zeros(a.shape[:-2], a.dtype)))
    else:
        pivots = []
        for k in range(p):
            a, piv = pivot(k, a)
            pivots.append(piv)
        # one sum of logs over all pivots (a single fused operation, not p dependent additions)
        logdet = jnp.sum(jnp.log(jnp.stack(pivots, -1)), -1) if p else jnp.zeros(a.shape[:-2], a.dtype)
    return (a, logdet) if with_logdet else a


def solve_pivoted(a, b):
    """A⁻¹B for square matrices a (..., n, n) and right-hand sides b (..., n, k) by Gauss–Jordan
    elimination with partial pivoting on [A | B]: a ``lax.fori_loop`` over the n pivots, each step one
    set of fused elementwise operations over the batch axes (no LAPACK call, see
    :func:`spd_inverse_logdet` for why; the rolled loop keeps the compiled program small where this
    sits inside a scan). For general well-posed A."""
    n, k = a.shape[-1], b.shape[-1]
    rows = jnp.arange(n)
    shape = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    aug = jnp.concatenate([jnp.broadcast_to(a, shape + a.shape[-2:]),
                           jnp.broadcast_to(b, shape + b.shape[-2:]).astype(a.dtype)], -1)
    col_onehots = jnp.eye(n, n + k, dtype=a.dtype)                        # row j: one-hot column j of [A | B]

    def step(j, aug):
        at_j = (rows == j).astype(a.dtype)[:, None]                         # one-hot row j (n, 1)
        col_j = col_onehots[j]
        score = jnp.where(rows >= j, jnp.abs(jnp.sum(aug * col_j, -1)), -1.0)
        at_p = (rows == jnp.argmax(score, -1)[..., None]).astype(a.dtype)[..., :, None]   # pivot row
        row_p = jnp.sum(at_p * aug, -2, keepdims=True)
        row_j = jnp.sum(at_j * aug, -2, keepdims=True)
        aug = aug + at_j * (row_p - row_j) + at_p * (1.0 - at_j) * (row_j - row_p)   # swap rows j, p
        col = jnp.sum(aug * col_j, -1)[..., :, None]
        pivot_row = row_p / jnp.sum(at_j * col, -2, keepdims=True)
        return aug - col * pivot_row + at_j * pivot_row

    return jax.lax.fori_loop(0, n, step, aug)[..., n:]


def inverse_pivoted(a):
    """A⁻¹ for square matrices a (..., n, n): :func:`solve_pivoted` with B = I."""
    return solve_pivoted(a, jnp.eye(a.shape[-1], dtype=a.dtype))


# most Jacobi sweeps :func:`eigh_jacobi` runs (it converges quadratically: 6-10 sweeps in float64)
JACOBI_MAX_SWEEPS = 30


def _round_robin(n: int) -> np.ndarray:
    """(n - 1, n // 2, 2) index pairs for even n: each round pairs every index with another once, and
    over the n - 1 rounds every pair meets once (the circle method)."""
    players = list(range(n))
    rounds = []
    for _ in range(n - 1):
        rounds.append([(players[i], players[n - 1 - i]) for i in range(n // 2)])
        players = [players[0], players[-1]] + players[1:-1]
    return np.asarray(rounds, dtype=np.int32)


def eigh_jacobi(a):
    """Eigenvalues w (n,) and orthonormal eigenvectors v (n, n) of a symmetric matrix a (n, n), a = v diag(w) vᵀ,
    by the cyclic Jacobi method with the parallel (round-robin) ordering: each round zeroes n/2 disjoint
    off-diagonal pairs at once with one product by a rotation matrix, a sweep is n - 1 rounds, and sweeps
    repeat (``lax.while_loop``) until the off-diagonal Frobenius norm is below 4 n ε ‖a‖_F (at most
    :data:`JACOBI_MAX_SWEEPS`). No LAPACK call, so it may sit under ``vmap`` (see :func:`spd_inverse_logdet`).
    Meant for small n (tens); eigenvalues are not sorted. Odd n gets a zero row/column that no rotation touches."""
    n = a.shape[-1]
    if a.shape != (n, n):
        raise ValueError(f"a: expected one square matrix (n, n), got shape {a.shape}")
    if n == 1:
        return a[0], jnp.ones((1, 1), a.dtype)
    m = n + n % 2
    work = jnp.zeros((m, m), a.dtype).at[:n, :n].set(symmetrize(a))
    rounds = jnp.asarray(_round_robin(m))
    eye = jnp.eye(m, dtype=a.dtype)
    tol = 4.0 * m * jnp.finfo(a.dtype).eps * jnp.linalg.norm(work)

    def rotate(r, state):
        x, v = state
        p, q = rounds[r, :, 0], rounds[r, :, 1]
        app, aqq, apq = x[p, p], x[q, q], x[p, q]
        zero = apq == 0.0
        tau = (aqq - app) / (2.0 * jnp.where(zero, 1.0, apq))
        t = jnp.where(zero, 0.0, jnp.where(tau >= 0, 1.0, -1.0) / (jnp.abs(tau) + jnp.sqrt(1.0 + tau * tau)))
        c = 1.0 / jnp.sqrt(1.0 + t * t)
        s = t * c
        rot = eye.at[p, p].set(c).at[q, q].set(c).at[p, q].set(s).at[q, p].set(-s)
        return symmetrize(rot.T @ x @ rot), v @ rot

    def off(x):
        return jnp.linalg.norm(jnp.where(eye > 0, 0.0, x))

    def sweep_once(state):
        x, v, k = state
        x, v = jax.lax.fori_loop(0, m - 1, rotate, (x, v))
        return x, v, k + 1

    x, v, _ = jax.lax.while_loop(lambda s: (off(s[0]) > tol) & (s[2] < JACOBI_MAX_SWEEPS), sweep_once,
                                 (work, eye, jnp.zeros((), jnp.int32)))
    return jnp.diagonal(x)[:n], v[:n, :n]
