"""Discrete transition node p(out | in, B) = Cat(out | B in), B column-stochastic (B[i, j] = p(out=i | in=j)).

Messages in log space (normalised log-probabilities). With B known (a point mass) and a joint
q(in, out) (the structured factorisation LAIF uses on the state chain), the messages are the
sum-product ones:
- forward:  μ(out) ∝ B μ(in);  backward: μ(in) ∝ Bᵀ μ(out).
With B unknown, q(B) = MatrixDir(b) and a mean-field q(in)q(out) (VMP), with L̄ = E[log B]:
- forward:  μ(out) ∝ exp(L̄ s_in);  backward: μ(in) ∝ exp(L̄ᵀ s_out);
- to B: MatrixDir(q(out, in) + 1) (pairwise marginal; s_out s_inᵀ under mean field);
- average energy U = −Σ_ij q(out=i, in=j) L̄_ij.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from pyrxaif import checks as V
from pyrxaif.distributions import Categorical, MatrixDirichlet
from pyrxaif.distributions.linalg import is_traced


def _check(log_m, log_B, axis):
    if is_traced(log_m, log_B):
        return
    B = V.as_float_array("log_B", log_B, ndim=2, finite=False)
    m = V.as_float_array("log_m", log_m, ndim=1, finite=False)
    for name, arr in (("log_B", B), ("log_m", m)):
        if np.any(np.isnan(arr)) or np.any(arr == np.inf):
            raise ValueError(f"{name}: expected values in [-inf, inf), found NaN or +inf")
    if m.shape[0] != B.shape[axis]:
        raise ValueError(f"log_m: expected length {B.shape[axis]} to match log_B {B.shape}, got {m.shape[0]}")


def forward_message(log_m_in, log_B) -> Categorical:
    """μ(out) ∝ B μ(in) (sum-product with B known), in log space."""
    _check(log_m_in, log_B, 1)
    return Categorical(jax.nn.log_softmax(logsumexp(log_B + log_m_in[None, :], axis=1)))


def backward_message(log_m_out, log_B) -> Categorical:
    """μ(in) ∝ Bᵀ μ(out) (sum-product with B known), in log space."""
    _check(log_m_out, log_B, 0)
    return Categorical(jax.nn.log_softmax(logsumexp(log_B + log_m_out[:, None], axis=0)))


def pairwise_marginal(log_f_in, log_B, log_b_out):
    """q(out, in) ∝ μ_fwd(in) B(out|in) μ_bwd(out), normalised (matrix indexed [out, in])."""
    lj = log_B + log_f_in[None, :] + log_b_out[:, None]
    return jnp.exp(lj - logsumexp(lj))


def vmp_forward_message(s_in, q_B: MatrixDirichlet) -> Categorical:
    """μ(out) ∝ exp(L̄ s_in), L̄ = E[log B]."""
    return Categorical(jax.nn.log_softmax(q_B.expected_log() @ s_in))


def vmp_backward_message(s_out, q_B: MatrixDirichlet) -> Categorical:
    """μ(in) ∝ exp(L̄ᵀ s_out)."""
    return Categorical(jax.nn.log_softmax(q_B.expected_log().T @ s_out))


def message_to_B(q_pair) -> MatrixDirichlet:
    """μ(B) = MatrixDir(q(out, in) + 1); for mean field pass jnp.outer(s_out, s_in)."""
    if not is_traced(q_pair):
        arr = V.as_float_array("q_pair", q_pair, ndim=2)
        if np.any(arr < 0) or not np.isclose(arr.sum(), 1.0, atol=1e-6):
            raise ValueError(f"q_pair: expected a joint probability table summing to 1, got sum {arr.sum():.6g}")
    return MatrixDirichlet(jnp.asarray(q_pair, jnp.float64) + 1.0)


def average_energy(q_pair, q_B: MatrixDirichlet):
    """U = −Σ_ij q(out=i, in=j) E[log B_ij]."""
    return -jnp.sum(q_pair * q_B.expected_log())
