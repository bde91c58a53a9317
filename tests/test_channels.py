"""Channel kernels and channel updates against direct (numpy) computations."""

import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.rules import channels as ch

rng = np.random.default_rng(0)
S, A, J, K, M, Y = 3, 2, 2, 2, 2, 3


def rand_cond(shape, axis):
    p = rng.random(shape) + 0.1
    return p / p.sum(axis=axis, keepdims=True)


def test_dynamics_kernel_configurations():
    T = rand_cond((S, A, J, K), 2)
    T[0, 0, 1, :] = 0.0
    T[0, 0, 0, :] = 1.0
    pi = rand_cond((A,), 0)
    r_u = rand_cond((S, A), 1)
    r_x = rand_cond((S, A, J), 2)
    with np.errstate(divide="ignore"):
        lT = jnp.log(T)
    bp = np.exp(ch.dynamics_log_kernel(lT, jnp.log(pi)))
    np.testing.assert_allclose(bp, T * pi[None, :, None, None], rtol=1e-12)
    vbp = np.exp(ch.dynamics_log_kernel(lT, jnp.log(pi), jnp.log(r_u)))
    np.testing.assert_allclose(vbp, T * pi[None, :, None, None] * r_u[:, :, None, None], rtol=1e-12)
    rm = np.exp(ch.dynamics_log_kernel(lT, jnp.log(pi), jnp.log(r_u), jnp.log(r_x)))
    np.testing.assert_allclose(rm, T * pi[None, :, None, None] * r_u[:, :, None, None] / r_x[..., None],
                               rtol=1e-12)
    assert rm[0, 0, 1, 0] == 0.0                       # structural zeros stay zero


def test_observation_message_and_channels():
    B = rand_cond((M, S, K, Y), 3)
    r_y = rand_cond((M, S, K, Y), 3)
    rho = rand_cond((M, S, Y), 2)
    q = rng.random((S, K))
    q /= q.sum()
    msg = np.exp(ch.observation_log_message(jnp.log(B), jnp.log(r_y), jnp.log(rho)))
    want = np.prod(np.sum(B * r_y ** 2 / rho[:, :, None, :], axis=-1), axis=0)
    np.testing.assert_allclose(msg, want, rtol=1e-12)
    lr, lrho = ch.observation_channels(jnp.log(B), jnp.log(r_y), jnp.log(rho), jnp.log(q))
    b = B * r_y ** 2 / rho[:, :, None, :]
    b /= b.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.exp(lr), b, rtol=1e-12)
    q_th = q / q.sum(1, keepdims=True)
    np.testing.assert_allclose(np.exp(lrho), np.einsum("sk,msky->msy", q_th, b), rtol=1e-12)
    # the epistemic prior is −H[B] + KL[B ‖ ρ] per modality, summed
    prior = np.asarray(ch.epistemic_log_prior(jnp.log(B), jnp.log(rho)))
    H = -np.sum(B * np.log(B), -1)
    KL = np.sum(B * (np.log(B) - np.log(rho)[:, :, None, :]), -1)
    np.testing.assert_allclose(prior, np.sum(-H + KL, 0), rtol=1e-12)


def test_planning_and_dynamics_channels_are_conditionals():
    b = rng.random((S, A, J, K))
    b[2] = 0.0                                         # a state without mass takes the fallback
    b /= b.sum()
    with np.errstate(divide="ignore"):
        lb = jnp.log(b)
    T = rand_cond((S, A, J, K), 2)
    r_u = np.exp(ch.planning_channel(lb))
    np.testing.assert_allclose(r_u[:2], b.sum((2, 3))[:2] / b.sum((1, 2, 3))[:2, None], rtol=1e-12)
    np.testing.assert_allclose(r_u[2], 1.0 / A)
    r_x = np.exp(ch.dynamics_channel(lb, jnp.log(T)))
    np.testing.assert_allclose(r_x[:2], b.sum(3)[:2] / b.sum((2, 3))[:2, :, None], rtol=1e-12)
    np.testing.assert_allclose(r_x[2].sum(-1), 1.0)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_damping_is_arithmetic_in_probability_space(lam):
    old = rand_cond((4,), 0)
    new = np.array([0.0, 0.5, 0.5, 0.0])
    with np.errstate(divide="ignore"):
        got = np.exp(ch.damp(jnp.log(old), jnp.log(new), lam))
    np.testing.assert_allclose(got, (1 - lam) * old + lam * new, atol=1e-15)
