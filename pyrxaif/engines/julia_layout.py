"""Array layout between pyrxaif and PyRxAIF's Julia functions (pure numpy; the one place where
transposes happen).

pyrxaif is time-major and row-major: a sequence is a C-ordered ``(T, d)`` float64 array. PyRxAIF's
Julia functions take sequences as column-major ``(d, T)`` matrices (one column per time step) and
covariance sequences as ``(d, d, T)``. juliacall hands numpy arrays to Julia with the *same shape
and strides*, so ``to_julia_sequence(x)`` passes ``x.T`` made Fortran-contiguous: for a C-ordered
``x`` this is the same memory, no copy, and Julia sees a native-layout ``(d, T)`` matrix. Results
come back as Julia arrays; ``from_julia_sequence`` / ``from_julia_cov_sequence`` move the time axis
to the front and return C-ordered float64 copies.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_julia_sequence", "from_julia_sequence", "to_julia_cov_sequence", "from_julia_cov_sequence",
           "to_julia_matrix", "ab_to_julia_vec", "mvnormal_sequence", "result_array"]


def to_julia_sequence(x) -> np.ndarray:
    """Time-major (T, d) → a Fortran-ordered (d, T) float64 array: Julia's column t is x[t]."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x: expected a time-major (T, d) array, got shape {x.shape}")
    return np.asfortranarray(x.T)


def from_julia_sequence(a) -> np.ndarray:
    """A Julia (d, T) matrix (or its numpy view) → a C-ordered time-major (T, d) float64 array."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"a: expected a (d, T) matrix from Julia, got shape {a.shape}")
    return np.ascontiguousarray(a.T)


def to_julia_cov_sequence(c) -> np.ndarray:
    """Time-major (T, d, d) → Fortran-ordered (d, d, T): Julia's ``C[:, :, t]`` is c[t]."""
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 3:
        raise ValueError(f"c: expected a (T, d, d) array, got shape {c.shape}")
    return np.asfortranarray(np.moveaxis(c, 0, -1))


def from_julia_cov_sequence(a) -> np.ndarray:
    """A Julia (d, d, T) array → a C-ordered (T, d, d) float64 array."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"a: expected a (d, d, T) array from Julia, got shape {a.shape}")
    return np.ascontiguousarray(np.moveaxis(a, -1, 0))


def to_julia_matrix(m) -> np.ndarray:
    """A matrix with the same indices on both sides (M[i, j] == Julia M[i+1, j+1]), column-major."""
    return np.asfortranarray(np.asarray(m, dtype=np.float64))


def ab_to_julia_vec(ab) -> np.ndarray:
    """[A B] (d, n) → its row-major vec (H_ij at i·n + j), the layout of q(vec H) on both engines."""
    ab = np.asarray(ab, dtype=np.float64)
    return np.ascontiguousarray(ab.reshape(-1))


def mvnormal_sequence(means, covs):
    """Time-major means (T, d) and covariances (T, d, d) → a batched pyrxaif MvNormal."""
    from pyrxaif.distributions import MvNormal  # noqa: PLC0415

    return MvNormal.from_mean_cov(np.asarray(means, np.float64), np.asarray(covs, np.float64))


def result_array(result, key: str) -> np.ndarray:
    """Entry ``key`` of a Julia result dictionary as a float64 numpy copy."""
    return np.array(result[key], dtype=np.float64)
