"""Checks of the LDS arguments shared by both engines' ``smooth_lds`` / ``learn_lds``."""

from __future__ import annotations

import numpy as np

from pyrxaif import checks as V

__all__ = ["covariance_sequence", "check_lds_arguments", "check_lds_prior"]


def covariance_sequence(name: str, c, T: int, d: int) -> np.ndarray:
    """(T, d) diagonal variances or (T, d, d) covariances → checked (T, d, d)."""
    c = V.as_float_array(name, c)
    if c.shape == (T, d):
        if np.any(c <= 0):
            raise ValueError(f"{name}: expected positive variances, got minimum {float(c.min()):.3g}")
        return np.einsum("ti,ij->tij", c, np.eye(d))
    if c.shape != (T, d, d):
        raise ValueError(f"{name}: expected shape ({T}, {d}) (variances) or ({T}, {d}, {d}), got {c.shape}")
    V.check_positive_definite(name, c)
    return c


def check_lds_arguments(y_mean, y_cov, u, ab, w, m1, v1):
    """Checked (y_mean (T, d), y_cov (T, d, d), u (T−1, m), ab (d, d+m) or None, w (d, d) or None,
    m1 (d,), v1 (d, d)); ``y_cov`` may be given as (T, d) variances."""
    y_mean = V.as_float_array("y_mean", y_mean, ndim=2)
    T, d = y_mean.shape
    if T < 2:
        raise ValueError(f"y_mean: expected at least 2 time steps, got {T}")
    y_cov = covariance_sequence("y_cov", y_cov, T, d)
    u = V.as_float_array("u", u, ndim=2)
    if u.shape[0] != T - 1:
        raise ValueError(f"u: expected {T - 1} controls (one per transition), got shape {u.shape}")
    m = u.shape[1]
    if ab is not None:
        ab = V.as_float_array("ab", ab, shape=(d, d + m))
    if w is not None:
        w = V.as_float_array("w", w, shape=(d, d))
        V.check_positive_definite("w", w)
    m1 = V.as_float_array("m1", m1, shape=(d,))
    v1 = V.as_float_array("v1", v1, shape=(d, d))
    V.check_positive_definite("v1", v1)
    return y_mean, y_cov, u, ab, w, m1, v1


def check_lds_prior(d: int, n: int, ab_prior_cov, w_df, w_inv_scale, iterations):
    """Checked (ab_prior_cov (d n, d n), w_df, w_inv_scale (d, d), iterations) of ``learn_lds``."""
    ab_cov = V.as_float_array("ab_prior_cov", ab_prior_cov, shape=(d * n, d * n))
    V.check_positive_definite("ab_prior_cov", ab_cov)
    w_inv = V.as_float_array("w_inv_scale", w_inv_scale, shape=(d, d))
    V.check_positive_definite("w_inv_scale", w_inv)
    if not np.isfinite(w_df) or w_df <= d - 1:
        raise ValueError(f"w_df: expected degrees of freedom > {d - 1}, got {w_df}")
    if not isinstance(iterations, (int, np.integer)) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"iterations: expected a positive integer, got {iterations!r}")
    return ab_cov, float(w_df), w_inv, int(iterations)
