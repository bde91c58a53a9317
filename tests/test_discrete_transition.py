"""Discrete transition node and the policy-evaluation chain against exact enumeration."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

import pyrxaif  # noqa: F401
from pyrxaif.distributions import MatrixDirichlet
from pyrxaif.inference import policy as pol
from pyrxaif.rules import discrete_transition as dt
from pyrxaif.rules import goal_observation as go

rng = np.random.default_rng(1)


def _col(m, n, r=rng):
    B = r.gamma(1.0, size=(m, n)) + 0.05
    return B / B.sum(0, keepdims=True)


def _p(n, r=rng):
    p = r.gamma(1.0, size=n) + 0.05
    return p / p.sum()


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def test_sum_product_messages_enumeration():
    B = _col(4, 3)
    m_in, m_out = _p(3), _p(4)
    fwd = np.array([sum(B[i, j] * m_in[j] for j in range(3)) for i in range(4)])
    bwd = np.array([sum(B[i, j] * m_out[i] for i in range(4)) for j in range(3)])
    np.testing.assert_allclose(np.exp(dt.forward_message(np.log(m_in), np.log(B)).logits), fwd / fwd.sum())
    np.testing.assert_allclose(np.exp(dt.backward_message(np.log(m_out), np.log(B)).logits), bwd / bwd.sum())
    pair = dt.pairwise_marginal(np.log(m_in), np.log(B), np.log(m_out))
    want = B * m_in[None, :] * m_out[:, None]
    np.testing.assert_allclose(pair, want / want.sum())
    # zeros in B (log 0 = −inf) are fine in log space
    B0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(np.exp(dt.forward_message(np.log([0.3, 0.7]), np.log(B0)).logits), [0.3, 0.7])


def test_vmp_messages_minimise_local_free_energy():
    b = rng.gamma(2.0, size=(3, 3)) + 0.2
    qB = MatrixDirichlet(jnp.asarray(b))
    LB = np.asarray(qB.expected_log())
    s_in, d = _p(3), _p(3)
    # q(out) minimising −s_outᵀ L̄ s_in + KL(s_out ‖ d) is d · μ_fwd
    f = lambda u: float(-_softmax(u) @ LB @ s_in + np.sum(_softmax(u) * np.log(_softmax(u) / d)))  # noqa: E731
    res = optimize.minimize(f, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
    got = _softmax(np.log(d) + np.asarray(dt.vmp_forward_message(s_in, qB).logits))
    np.testing.assert_allclose(got, _softmax(res.x), atol=1e-5)
    s_out = _p(3)
    np.testing.assert_allclose(np.exp(dt.vmp_backward_message(s_out, qB).logits), _softmax(LB.T @ s_out))
    q = np.outer(s_out, s_in)
    U = -sum(q[i, j] * LB[i, j] for i in range(3) for j in range(3))
    assert np.isclose(float(dt.average_energy(q, qB)), U)
    np.testing.assert_allclose(dt.message_to_B(q).concentration, q + 1)


def test_transition_bad_inputs():
    with pytest.raises(ValueError, match="log_m"):
        dt.forward_message(np.zeros(4), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="log_B"):
        dt.forward_message(np.zeros(3), np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="q_pair"):
        dt.message_to_B(np.ones((2, 2)))


def test_chain_marginals_and_free_energy_enumeration():
    n, T = 3, 2
    log_d0 = np.log(_p(n))
    trans = np.stack([_col(n, n), _col(n, n)])
    log_rho = np.log(np.stack([_p(n), _p(n)]))
    la, lb, log_z = pol._chain(jnp.asarray(log_d0), jnp.log(jnp.asarray(trans)), jnp.asarray(log_rho))
    joint = np.zeros((n,) * (T + 1))
    for z in itertools.product(range(n), repeat=T + 1):
        joint[z] = np.exp(log_d0[z[0]]) * trans[0][z[1], z[0]] * trans[1][z[2], z[1]] * \
            np.exp(log_rho[0][z[1]] + log_rho[1][z[2]])
    Z = joint.sum()
    q = joint / Z
    assert np.isclose(float(log_z), np.log(Z))
    s1, s2 = q.sum((0, 2)), q.sum((0, 1))
    np.testing.assert_allclose(_softmax(np.asarray(la[0] + log_rho[0] + lb[0])), s1)
    np.testing.assert_allclose(_softmax(np.asarray(la[1] + log_rho[1] + lb[1])), s2)
    # −log Z + Σ sᵀ log ρ = −H[q] − E log D − Σ E log B
    lhs = -np.log(Z) + s1 @ log_rho[0] + s2 @ log_rho[1]
    rhs = 0.0
    for z in itertools.product(range(n), repeat=3):
        p = q[z]
        rhs += p * (np.log(p) - log_d0[z[0]] - np.log(trans[0][z[1], z[0]]) - np.log(trans[1][z[2], z[1]]))
    assert np.isclose(lhs, rhs)


def _problem(seed, n=3, m=3):
    r = np.random.default_rng(seed)
    log_d0 = np.log(_p(n, r))
    trans = np.stack([_col(n, n, r), _col(n, n, r)])
    A = _col(m, n, r)
    lc = np.log(np.stack([_p(m, r), _p(m, r)]))
    return log_d0, trans, A, lc


def test_bethe_observed_policy_free_energy_is_exact_surprise():
    """Both x observed, A known: F = −log p(x₁, x₂) − Σ x_tᵀℓ_t (exact HMM evidence)."""
    log_d0, trans, A, lc = _problem(4)
    x = np.eye(3)[[0, 2]]
    res = pol.evaluate_policies(jax.random.PRNGKey(0), log_d0[None], trans[None], lc[None], A, x,
                                np.array([True, True]), objective="bethe", learn_A=False,
                                iterations=5, burn_in=4)
    p = 0.0
    for z in itertools.product(range(3), repeat=3):
        p += np.exp(log_d0[z[0]]) * trans[0][z[1], z[0]] * trans[1][z[2], z[1]] * A[0, z[1]] * A[2, z[2]]
    want = -np.log(p) - lc[0, 0] - lc[1, 2]
    assert np.isclose(float(res.free_energy[0, -1]), want, atol=1e-9)
    assert np.isclose(float(res.G[0]), want / np.log(2), atol=1e-9)


@pytest.mark.parametrize("objective", ["gfe", "bethe"])
def test_policy_free_energy_matches_brute_force_minimum(objective):
    """Nothing observed, A known: the converged F equals the minimum over joint q(z₀,z₁,z₂)."""
    n = 3
    log_d0, trans, A, lc = _problem(7)
    st = go.a_stats_point(A)
    res = pol.evaluate_policies(jax.random.PRNGKey(0), log_d0[None], trans[None], lc[None], A,
                                objective=objective, learn_A=False, iterations=60, burn_in=59)

    logB0, logB1 = np.log(trans[0]), np.log(trans[1])
    energy = -(log_d0[:, None, None] + logB0.T[:, :, None] + logB1.T[None, :, :])  # [z0, z1, z2]
    h = -np.sum(A * np.log(A), axis=0)

    def U(s_t, l_t):
        p = A @ s_t
        if objective == "gfe":
            return s_t @ h - p @ (l_t - np.log(p))
        v = np.log(A) @ s_t + l_t
        return -(v.max() + np.log(np.sum(np.exp(v - v.max()))))

    def F(u):
        q = _softmax(u).reshape((n,) * 3)
        return float(np.sum(q * (np.log(q) + energy)) + U(q.sum((0, 2)), lc[0]) + U(q.sum((0, 1)), lc[1]))

    best = min((optimize.minimize(F, np.random.default_rng(k).normal(size=n ** 3), method="L-BFGS-B")
                for k in range(3)), key=lambda r: r.fun)
    assert float(res.free_energy[0, -1]) <= best.fun + 1e-5
    assert abs(float(res.free_energy[0, -1]) - best.fun) < 1e-3


def test_learned_A_policy_evaluation():
    """Importance-sampled q(A) inside the policy loop: the policies of one call share the noise
    (entry p equals a single-policy evaluation with the same key), and as the Dirichlet prior
    concentrates on a matrix A, G tends to the G of the known A (nothing is sampled there)."""
    n = m = 3
    log_d0, trans, A, lc = _problem(3)
    trans_p = np.stack([trans, trans[::-1], np.stack([np.eye(n), trans[0]])])
    P = trans_p.shape[0]
    d0, goals = np.repeat(log_d0[None], P, 0), np.repeat(lc[None], P, 0)
    observed = (True, False)            # the sampled path with a moving proposal row
    x = np.zeros((2, m))
    x[0, 1] = 1.0
    obs = np.array(observed)
    kw = dict(iterations=30, burn_in=10)
    key = jax.random.PRNGKey(1)
    known = pol.evaluate_policies(key, d0, trans_p, goals, A, x, obs, learn_A=False, **kw)
    sharp = pol.evaluate_policies(key, d0, trans_p, goals, 1e6 * A, x, obs, **kw)
    np.testing.assert_allclose(np.asarray(sharp.G), np.asarray(known.G), atol=2e-3)
    a = 0.5 + 2 * A
    res = pol.evaluate_policies(key, d0, trans_p, goals, a, x, obs, **kw)
    single = pol.evaluate_policy(key, log_d0, trans_p[2], lc, a, x, tuple(observed), **kw)
    np.testing.assert_allclose(float(single.G), float(res.G[2]), rtol=1e-12)
    other = pol.evaluate_policies(jax.random.PRNGKey(2), d0, trans_p, goals, a, x, obs, **kw)
    assert np.all(np.abs(np.asarray(other.G) - np.asarray(res.G)) > 1e-8)   # the draws matter
    assert np.all(np.abs(np.asarray(other.G) - np.asarray(res.G)) < 0.5)    # but not much
    # q(A)'s Dirichlet part: prior + observed counts only (the missing steps enter by sampling)
    want = a + np.outer(x[0], np.asarray(res.s[0, 0]))
    np.testing.assert_allclose(np.asarray(res.A_posterior[0]), want, atol=1e-12)


def test_policy_selection_and_bad_inputs():
    G = jnp.array([3.0, 1.0, 2.0])
    assert int(pol.select_policy(jax.random.PRNGKey(0), G, method="argmin")) == 1
    valid = jnp.array([True, False, True])
    assert int(pol.select_policy(jax.random.PRNGKey(0), G, valid, method="argmin")) == 2
    draws = [int(pol.select_policy(jax.random.PRNGKey(k), G, gamma=1.0)) for k in range(400)]
    freq = np.bincount(draws, minlength=3) / 400
    np.testing.assert_allclose(freq, _softmax(-np.asarray(G)), atol=0.07)
    with pytest.raises(ValueError, match="method"):
        pol.select_policy(jax.random.PRNGKey(0), G, method="greedy")
    with pytest.raises(ValueError, match="G: expected policy scores .* found NaN"):
        pol.select_policy(jax.random.PRNGKey(0), jnp.array([3.0, jnp.nan, 2.0]), method="argmin")
    with pytest.raises(ValueError, match="valid: no valid policy"):
        pol.select_policy(jax.random.PRNGKey(0), G, jnp.zeros(3, bool))
    with pytest.raises(ValueError, match="valid: no valid policy"):
        pol.select_policy(jax.random.PRNGKey(0), jnp.array([jnp.inf, 1.0]), jnp.array([True, False]))
    with pytest.raises(ValueError, match="valid: expected a boolean mask"):
        pol.select_policy(jax.random.PRNGKey(0), G, jnp.ones(2, bool))
    assert int(pol.select_policy(jax.random.PRNGKey(0), jnp.array([jnp.inf, 1.0]), method="sample")) == 1
    log_d0, trans, A, lc = _problem(0)
    with pytest.raises(ValueError, match="objective"):
        pol.evaluate_policies(jax.random.PRNGKey(0), log_d0[None], trans[None], lc[None], A, objective="efe")
    with pytest.raises(ValueError, match="trans"):
        pol.evaluate_policies(jax.random.PRNGKey(0), log_d0[None], 2 * trans[None], lc[None], A, learn_A=False)
    with pytest.raises(ValueError, match="A_param"):
        pol.evaluate_policies(jax.random.PRNGKey(0), log_d0[None], trans[None], lc[None], -np.ones((3, 3)))
    with pytest.raises(ValueError, match="burn_in"):
        pol.evaluate_policies(jax.random.PRNGKey(0), log_d0[None], trans[None], lc[None], A, learn_A=False,
                              iterations=5, burn_in=5)
