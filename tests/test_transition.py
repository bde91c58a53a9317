"""Message rules of the continuous transition with control, each against an independent
computation: Monte Carlo expectations, dense Gaussian marginalisation, and the identity
E_q[log m(θ)] = −U(q) + const that defines a VMP message to θ."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.distributions import MvNormal, Wishart
from pyrxaif.rules import transition as tr

D, M = 2, 1
N = D + M


def _q_ab(rng, scale=0.1):
    r = rng.normal(size=(D * N, D * N))
    return MvNormal.from_mean_cov(rng.normal(size=D * N), scale * (r @ r.T / (D * N) + 0.3 * np.eye(D * N)))


def _q_w(rng, df=7.0):
    s = rng.normal(size=(D, D))
    return Wishart.from_mean(s @ s.T + np.eye(D), df)


def _gauss(rng, k, scale=1.0):
    r = rng.normal(size=(k, k))
    return MvNormal.from_mean_cov(rng.normal(size=k), scale * (r @ r.T / k + 0.5 * np.eye(k)))


def _samples_ab(rng, q_ab, n):
    return rng.multivariate_normal(np.asarray(q_ab.mean), np.asarray(q_ab.cov), size=n).reshape(n, D, N)


def test_expected_quadratic_and_outer_vs_monte_carlo():
    rng = np.random.default_rng(0)
    q_ab = _q_ab(rng, scale=0.5)
    w = np.asarray(_q_w(rng).mean())
    h = _samples_ab(rng, q_ab, 100_000)
    mc = np.einsum("sia,ij,sjb->ab", h, w, h) / len(h)
    got = np.asarray(tr.expected_quadratic(q_ab, w, D, N))
    np.testing.assert_allclose(got, mc, atol=0.02 * np.abs(mc).max())
    psi = np.asarray(tr.quadratic_correction(q_ab, w, D, N))
    hbar = np.asarray(tr.expected_ab(q_ab, D, N))
    np.testing.assert_allclose(got - hbar.T @ w @ hbar, psi, atol=1e-12)
    assert np.linalg.eigvalsh(psi).min() > 0  # Ψ ⪰ 0 (here > 0: q_ab has full-rank covariance)
    s = np.asarray(_gauss(rng, N).second_moment())
    mc_outer = np.einsum("sia,ab,sjb->ij", h, s, h) / len(h)
    np.testing.assert_allclose(tr.expected_outer(q_ab, s, D, N), mc_outer, atol=0.02 * np.abs(mc_outer).max())


def test_average_energy_vs_monte_carlo():
    rng = np.random.default_rng(1)
    q_ab, q_w = _q_ab(rng), _q_w(rng, df=9.0)
    q_joint = _gauss(rng, 2 * D + M, scale=0.5)
    stats = tr.stats_from_joint(q_joint, D, M)
    n = 50_000
    v = rng.multivariate_normal(np.asarray(q_joint.mean), np.asarray(q_joint.cov), size=n)
    x, zn = v[:, :N], v[:, N:]
    h = _samples_ab(rng, q_ab, n)
    from scipy.stats import wishart
    S = np.linalg.inv(np.asarray(q_w.inv_scale))
    W = wishart(df=float(q_w.df), scale=S).rvs(size=n, random_state=rng)
    r = zn - np.einsum("sia,sa->si", h, x)
    logp = -0.5 * D * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(W)[1] - 0.5 * np.einsum("si,sij,sj->s", r, W, r)
    mc, se = -logp.mean(), logp.std() / np.sqrt(n)
    assert abs(float(tr.average_energy(stats, q_ab, q_w)) - mc) < 5 * se


def test_factor_potential_is_hessian_of_average_energy():
    """At a point (x, z') the average energy is −log of the expected factor: its Hessian in
    [x; z'] is the potential's precision and it is a quadratic with no linear term."""
    rng = np.random.default_rng(2)
    q_ab, q_w = _q_ab(rng), _q_w(rng)
    w = q_w.mean()
    pot = tr.factor_potential(tr.expected_ab(q_ab, D, N), w, tr.expected_quadratic(q_ab, w, D, N))

    def energy(v):
        return tr.average_energy(tr.stats_from_points(v[None, :N], v[None, N:]), q_ab, q_w)

    v0 = jnp.asarray(rng.normal(size=N + D))
    np.testing.assert_allclose(jax.jit(jax.hessian(energy))(v0), pot.precision, atol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.grad(energy))(jnp.zeros(N + D)), 0.0, atol=1e-12)
    # and the constant is −log_expected_factor_constant
    assert float(jax.jit(energy)(jnp.zeros(N + D))) == pytest.approx(-float(tr.log_expected_factor_constant(q_w)))


def _dense_marginal(prec, xi, idx):
    cov = np.linalg.inv(prec)
    mean = cov @ xi
    return mean[idx], cov[np.ix_(idx, idx)]


def _setup_messages(seed):
    rng = np.random.default_rng(seed)
    q_ab, q_w = _q_ab(rng), _q_w(rng)
    w = q_w.mean()
    hbar, quad = tr.expected_ab(q_ab, D, N), tr.expected_quadratic(q_ab, w, D, N)
    pot = tr.factor_potential(hbar, w, quad)
    return rng, hbar, w, quad, np.asarray(pot.precision)


def test_forward_message_vs_dense_marginalisation():
    rng, hbar, w, quad, P = _setup_messages(3)
    msg_x = _gauss(rng, N)
    fwd = tr.forward_message(msg_x, hbar, w, quad)
    prec = P.copy()
    prec[:N, :N] += np.asarray(msg_x.precision)
    xi = np.r_[np.asarray(msg_x.xi), np.zeros(D)]
    mean, cov = _dense_marginal(prec, xi, np.arange(N, N + D))
    np.testing.assert_allclose(np.linalg.inv(fwd.precision), cov, atol=1e-10)
    np.testing.assert_allclose(fwd.mean, mean, atol=1e-10)
    # with independent messages on z and u joined
    mz, mu = _gauss(rng, D), _gauss(rng, M)
    joined = tr.join_messages(mz, mu)
    np.testing.assert_allclose(joined.mean, np.r_[mz.mean, mu.mean], atol=1e-12)
    np.testing.assert_allclose(np.linalg.inv(joined.precision)[:D, D:], 0.0, atol=1e-12)


def test_backward_state_and_control_messages_vs_dense():
    rng, hbar, w, quad, P = _setup_messages(4)
    msg_next, msg_z = _gauss(rng, D), _gauss(rng, D)
    back = tr.backward_message(msg_next, hbar, w, quad)
    # the belief on x from (message on z) x (factor) x (message on z'), densely, with a proper
    # message on u added so that the joint is normalisable
    msg_u = _gauss(rng, M)
    prec = P.copy()
    prec[N:, N:] += np.asarray(msg_next.precision)
    prec[:D, :D] += np.asarray(msg_z.precision)
    prec[D:N, D:N] += np.asarray(msg_u.precision)
    xi = np.r_[np.asarray(msg_z.xi), np.asarray(msg_u.xi), np.asarray(msg_next.xi)]
    mean, cov = _dense_marginal(prec, xi, np.arange(N))
    belief = back.product(tr.join_messages(msg_z, msg_u))
    np.testing.assert_allclose(belief.mean, mean, atol=1e-10)
    np.testing.assert_allclose(np.linalg.inv(belief.precision), cov, atol=1e-10)
    # message to u: marginal on u = msg_u x message_to_control
    to_u = tr.message_to_control(back, msg_z)
    mean_u, cov_u = _dense_marginal(prec, xi, np.arange(D, N))
    post_u = to_u.product(msg_u)
    np.testing.assert_allclose(post_u.mean, mean_u, atol=1e-10)
    np.testing.assert_allclose(np.linalg.inv(post_u.precision), cov_u, atol=1e-10)
    # message to z with a known control: conditional of the dense joint given u
    u = rng.normal(size=M)
    to_z = tr.message_to_state(back, jnp.asarray(u), D)
    keep = np.r_[np.arange(D), np.arange(N, N + D)]
    pc = prec[np.ix_(keep, keep)]
    xc = xi[keep] - prec[np.ix_(keep, np.arange(D, N))] @ u
    mean_z, cov_z = _dense_marginal(pc, xc, np.arange(D))
    post_z = to_z.product(msg_z)
    np.testing.assert_allclose(post_z.mean, mean_z, atol=1e-10)
    np.testing.assert_allclose(np.linalg.inv(post_z.precision), cov_z, atol=1e-10)


def _expected_log_gauss(msg: MvNormal, q: MvNormal):
    """E_q[ξᵀθ − ½θᵀΛθ]."""
    return float(jnp.dot(msg.xi, q.mean) - 0.5 * jnp.trace(msg.precision @ q.second_moment()))


def test_message_to_ab_is_the_vmp_message():
    """log m(H) = E_{q(z,u,z') q(W)} log f: E_q(H)[log m] + U(q(H)) is the same for every q(H)."""
    rng = np.random.default_rng(5)
    q_w = _q_w(rng)
    stats = tr.stats_from_joint(_gauss(rng, 2 * D + M), D, M)
    stats = stats + tr.stats_from_joint(_gauss(rng, 2 * D + M), D, M)   # two pooled transitions
    msg = tr.message_to_ab(stats, q_w.mean())
    vals = []
    for _ in range(4):
        q_ab = _q_ab(rng, scale=rng.uniform(0.05, 1.0))
        vals.append(_expected_log_gauss(msg, q_ab) + float(tr.average_energy(stats, q_ab, q_w)))
    np.testing.assert_allclose(vals, vals[0], atol=1e-9)
    # with a flat prior and W fixed, the mean of q(H) is the least-squares fit Σz'xᵀ (Σxxᵀ)⁻¹
    ls = np.asarray(stats.zx) @ np.linalg.inv(np.asarray(stats.xx))
    np.testing.assert_allclose(tr.ab_matrix(msg.mean, D, N), ls, atol=1e-9)


def test_message_to_w_is_the_vmp_message():
    rng = np.random.default_rng(6)
    q_ab = _q_ab(rng)
    stats = tr.stats_from_joint(_gauss(rng, 2 * D + M), D, M)
    msg = tr.message_to_w(stats, q_ab)
    vals = []
    for _ in range(4):
        q_w = _q_w(rng, df=rng.uniform(3.0, 20.0))
        e_log = 0.5 * (msg.df - D - 1) * q_w.expected_logdet() - 0.5 * jnp.trace(msg.inv_scale @ q_w.mean())
        vals.append(float(e_log) + float(tr.average_energy(stats, q_ab, q_w)))
    np.testing.assert_allclose(vals, vals[0], atol=1e-9)


def test_residual_outer_vs_monte_carlo():
    rng = np.random.default_rng(7)
    q_ab = _q_ab(rng, scale=0.4)
    q_joint = _gauss(rng, 2 * D + M)
    stats = tr.stats_from_joint(q_joint, D, M)
    n = 100_000
    v = rng.multivariate_normal(np.asarray(q_joint.mean), np.asarray(q_joint.cov), size=n)
    h = _samples_ab(rng, q_ab, n)
    r = v[:, N:] - np.einsum("sia,sa->si", h, v[:, :N])
    mc = r.T @ r / n
    np.testing.assert_allclose(tr.expected_residual_outer(stats, q_ab), mc, atol=0.02 * np.abs(mc).max())


def test_wishart_product_is_density_product():
    rng = np.random.default_rng(8)
    a, b = _q_w(rng, 5.0), _q_w(rng, 4.0)
    p = tr.wishart_product(a, b)
    diffs = []
    for _ in range(3):
        s = rng.normal(size=(D, D))
        W = jnp.asarray(s @ s.T + 0.5 * np.eye(D))
        diffs.append(float(a.log_prob(W) + b.log_prob(W) - p.log_prob(W)))
    np.testing.assert_allclose(diffs, diffs[0], atol=1e-10)


def test_rules_jit_and_vmap():
    """The rules are pure: jit/vmap over a batch of messages equals a loop."""
    rng, hbar, w, quad, _ = _setup_messages(9)
    msgs = [_gauss(rng, N) for _ in range(3)]
    batch = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *msgs)
    out = jax.jit(jax.vmap(tr.forward_message, in_axes=(0, None, None, None)))(batch, hbar, w, quad)
    for i, msg in enumerate(msgs):
        one = tr.forward_message(msg, hbar, w, quad)
        np.testing.assert_allclose(out.xi[i], one.xi, atol=1e-12)
        np.testing.assert_allclose(out.precision[i], one.precision, atol=1e-12)
