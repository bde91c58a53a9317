"""The engine protocol on the JAX engine (no Julia needed): the LDS smoother against dense Gaussian
conditioning and the exact evidence, VB learning recovering a known LDS, and T-maze policy
evaluation against the model-level golden case that Julia's runtests.jl checks too."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.engines import engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import make_golden as mg  # noqa: E402


def _lds(T=6):
    d = 2
    H = np.array([[0.9, 0.2, 0.5], [-0.1, 0.8, 0.3]])
    W = np.array([[4.0, 0.5], [0.5, 3.0]])
    m1, V1 = np.array([0.3, -0.2]), np.array([[1.0, 0.1], [0.1, 0.5]])
    U = np.linspace(-1.0, 1.0, T - 1)[:, None]
    Y = np.array([[np.sin(0.3 * t + k) for k in range(1, d + 1)] for t in range(1, T + 1)])
    Ycov = np.stack([np.diag([0.2, 0.3])] * T)
    return H, W, m1, V1, U, Y, Ycov


def _dense_prior(H, W, m1, V1, U, T):
    """Mean and covariance of z_{1:T} under z_1 ~ N(m1, V1), z_{t+1} = A z_t + B u_t + N(0, W⁻¹)."""
    d = m1.shape[0]
    A, B = H[:, :d], H[:, d:]
    L = np.zeros((T * d, T * d))           # z = L e + mean, e = (z_1 − m1, noise_1..noise_{T-1})
    mean = [m1]
    for t in range(T):
        L[t * d:(t + 1) * d, :] = (A @ L[(t - 1) * d:t * d, :]) if t else 0.0
        L[t * d:(t + 1) * d, t * d:(t + 1) * d] += np.eye(d)
        if t:
            mean.append(A @ mean[-1] + B @ U[t - 1])
    E = np.zeros((T * d, T * d))
    E[:d, :d] = V1
    for t in range(1, T):
        E[t * d:(t + 1) * d, t * d:(t + 1) * d] = np.linalg.inv(W)
    return np.concatenate(mean), L @ E @ L.T


@pytest.mark.parametrize("w_scale", [1.0, 1e10])
def test_jax_smooth_lds_is_dense_conditioning_and_exact_evidence(w_scale):
    """Also at a transition noise of ~1e-11 (W scaled by 1e10), where known dynamics encoded as a
    q([A B]) q(W) "certain" to 1e12 was off in the evidence by ~0.1."""
    H, W, m1, V1, U, Y, Ycov = _lds()
    W = w_scale * W
    T, d = Y.shape
    q, fe = engine("jax").smooth_lds(Y, Ycov, U, H, W, m1, V1)
    mu, S = _dense_prior(H, W, m1, V1, U, T)
    R = np.zeros_like(S)
    for t in range(T):
        R[t * d:(t + 1) * d, t * d:(t + 1) * d] = Ycov[t]
    K = S @ np.linalg.inv(S + R)
    post_mean, post_cov = mu + K @ (Y.reshape(-1) - mu), S - K @ S
    for t in range(T):
        np.testing.assert_allclose(np.asarray(q.mean)[t], post_mean[t * d:(t + 1) * d], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(np.asarray(q.cov)[t], post_cov[t * d:(t + 1) * d, t * d:(t + 1) * d],
                                   rtol=1e-6, atol=1e-8)
    C = S + R
    r = Y.reshape(-1) - mu
    log_evidence = -0.5 * (r @ np.linalg.solve(C, r) + np.linalg.slogdet(2 * np.pi * C)[1])
    np.testing.assert_allclose(fe, -log_evidence, rtol=1e-6)


def test_jax_learn_lds_recovers_the_dynamics_and_free_energy_decreases():
    rng = np.random.default_rng(0)
    d, m, T = 2, 1, 60
    H = np.array([[0.95, 0.1, 0.2], [-0.1, 0.9, 0.4]])
    U = np.sin(0.4 * np.arange(T - 1))[:, None]
    Z = np.zeros((T, d))
    Z[0] = [1.0, 0.0]
    for t in range(T - 1):
        Z[t + 1] = H @ np.r_[Z[t], U[t]] + 0.05 * rng.normal(size=d)
    res = engine("jax").learn_lds(Z, np.full((T, d), 1e-4), U, np.zeros(d), np.eye(d), np.zeros((d, d + m)),
                                  10.0 * np.eye(d * (d + m)), d + 2.0, np.eye(d), 15)
    fe = res["free_energy"]
    assert np.all(np.diff(fe) <= 1e-6 * np.abs(fe[1:]))
    np.testing.assert_allclose(np.asarray(res["ab"].mean).reshape(d, d + m), H, atol=0.08)
    with pytest.raises(ValueError, match="iterations: expected a positive integer"):
        engine("jax").learn_lds(Z, np.full((T, d), 1e-4), U, np.zeros(d), np.eye(d), np.zeros((d, d + m)),
                                10.0 * np.eye(d * (d + m)), d + 2.0, np.eye(d), 0)


@pytest.mark.parametrize("name", ["first_observed", "none_observed"])
def test_jax_evaluate_policies_reproduces_the_model_level_golden_case(name):
    doc = json.loads((mg.GOLDEN_DIR / "tmaze_evaluation.json").read_text())
    c = next(c for c in doc["cases"] if c["name"] == name)
    i = {k: mg.decode(v) for k, v in c["inputs"].items()}
    o = {k: mg.decode(v) for k, v in c["outputs"].items()}
    G, A_post = engine("jax").evaluate_policies(i["A_prior"], i["C"], i["D"], i["trans"], i["x"],
                                                i["observed"].astype(bool), objective="bethe",
                                                iterations=c["params"]["iterations"], burn_in=c["params"]["burn_in"])
    np.testing.assert_allclose(G, o["G"], rtol=1e-10)
    np.testing.assert_allclose(A_post, o["A_posterior"], rtol=1e-10)
