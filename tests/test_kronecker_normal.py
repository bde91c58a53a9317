"""KroneckerSumNormal (a Gaussian over a d × n matrix with precision R ⊗ C + W ⊗ S, held in its joint
eigenbasis) and the LAPACK-free Jacobi eigensolver it uses, against dense NumPy linear algebra on the
(d·n)-dimensional vec, and the Kronecker-factor detection."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.distributions import KroneckerSumNormal, MvNormal, kronecker_factors
from pyrxaif.distributions.linalg import eigh_jacobi

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import lapack_audit as audit  # noqa: E402


def _spd(rng, k, scale=1.0, floor=0.3):
    a = rng.normal(size=(k, k))
    return scale * (a @ a.T / k + floor * np.eye(k))


def _psd(rng, k, rank):
    a = rng.normal(size=(k, rank))
    return a @ a.T


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
def test_eigh_jacobi_equals_numpy(n):
    rng = np.random.default_rng(n)
    a = _psd(rng, n, n) * 1e3 - 5.0 * np.eye(n)                         # indefinite, wide spread
    w, v = jax.jit(eigh_jacobi)(jnp.asarray(a))
    w, v = np.asarray(w), np.asarray(v)
    np.testing.assert_allclose(np.sort(w), np.linalg.eigvalsh(a), rtol=0, atol=1e-12 * np.abs(a).max())
    np.testing.assert_allclose(v.T @ v, np.eye(n), atol=1e-13)
    np.testing.assert_allclose(v @ np.diag(w) @ v.T, a, atol=1e-12 * np.abs(a).max())


def test_eigh_jacobi_repeated_eigenvalues_vmap_and_no_lapack():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a = np.stack([q @ np.diag([2.0, 2.0, 2.0, 5.0, 5.0, 1e-9]) @ q.T, 3.0 * np.eye(6), _spd(rng, 6)])
    fn = jax.jit(jax.vmap(eigh_jacobi))
    assert audit.lapack_calls(audit.compiled_text(fn, jnp.asarray(a))) == []
    w, v = fn(jnp.asarray(a))
    for k in range(3):
        np.testing.assert_allclose(np.asarray(v[k]) @ np.diag(np.asarray(w[k])) @ np.asarray(v[k]).T, a[k],
                                   atol=1e-13 * np.abs(a[k]).max())
        np.testing.assert_allclose(np.sort(np.asarray(w[k])), np.linalg.eigvalsh(a[k]), atol=1e-13 * np.abs(a[k]).max())


def test_eigh_jacobi_refuses_a_batch():
    with pytest.raises(ValueError, match="a: expected one square matrix"):
        eigh_jacobi(jnp.zeros((2, 3, 3)))


def _problem(rng, d, n, isotropic):
    r0, c0 = (2.5 * np.eye(d), np.eye(n)) if isotropic else (_spd(rng, d, 2.0), _spd(rng, n, 0.5))
    m0 = rng.normal(size=(d, n))
    w, s = _spd(rng, d, 3.0), _psd(rng, n, max(1, n - 1)) * 10.0        # S singular, as Σ E[x xᵀ] with a constant input can be
    xi = rng.normal(size=(d, n)) * 5.0
    return r0, c0, m0, w, s, xi


def _dense(r0, c0, m0, w, s, xi):
    """Prior N(vec M0, (R0 ⊗ C0)⁻¹) times exp(vec ξᵀ vec H − ½ vec Hᵀ (W ⊗ S) vec H), row-major vec."""
    p0 = np.kron(r0, c0)
    prec = p0 + np.kron(w, s)
    xi_tot = p0 @ m0.reshape(-1) + xi.reshape(-1)
    return np.linalg.solve(prec, xi_tot), np.linalg.inv(prec), prec, xi_tot


@jax.jit
def _quantities(m0, r0, c0, xi, w, s, other_prior, other_msg, w2, s2):
    """Everything the tests read from the posterior of N(M0, (R0 ⊗ C0)⁻¹) times the (ξ, W ⊗ S) message,
    in one compiled program."""
    prior = KroneckerSumNormal.matrix_normal(m0, r0, c0)
    post = prior.posterior(xi, w, s)
    other = KroneckerSumNormal.matrix_normal(*other_prior).posterior(*other_msg)
    dense = post.to_mvnormal()
    return (post.mean, post.row_contraction(w2), post.col_contraction(s2), post.logdet_precision(), dense.precision,
            dense.xi, post.kl(prior), post.kl(other), prior.kl(prior))


@pytest.mark.parametrize("d, n, isotropic", [(2, 2, True), (3, 4, False), (5, 3, True), (4, 6, False)])
def test_posterior_of_a_matrix_normal_equals_the_dense_gaussian(d, n, isotropic):
    rng = np.random.default_rng(10 * d + n)
    r0, c0, m0, w, s, xi = _problem(rng, d, n, isotropic)
    mean, cov, prec, xi_tot = _dense(r0, c0, m0, w, s, xi)
    w2, s2 = _spd(rng, d), _spd(rng, n)                                # contractions with other matrices
    o_r0, o_c0, o_m0, o_w, o_s, o_xi = _problem(np.random.default_rng(99), d, n, not isotropic)
    other_mean, _, other_prec, _ = _dense(o_r0, o_c0, o_m0, o_w, o_s, o_xi)
    got = _quantities(m0, r0, c0, xi, w, s, (o_m0, o_r0, o_c0), (o_xi, o_w, o_s), w2, s2)
    post_mean, row_c, col_c, logdet, dense_prec, dense_xi, kl_prior, kl_other, kl_self = (np.asarray(g) for g in got)
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post_mean.reshape(-1), mean, **tol)
    blocks = cov.reshape(d, n, d, n)
    np.testing.assert_allclose(row_c, np.einsum("ij,iajb->ab", w2, blocks), **tol)
    np.testing.assert_allclose(col_c, np.einsum("ab,iajb->ij", s2, blocks), **tol)
    assert float(logdet) == pytest.approx(np.linalg.slogdet(prec)[1], rel=1e-12)
    np.testing.assert_allclose(dense_prec, prec, rtol=1e-10, atol=1e-10 * np.abs(prec).max())
    np.testing.assert_allclose(dense_xi, xi_tot, rtol=1e-10, atol=1e-10 * np.abs(xi_tot).max())
    # KL against the prior and against an unrelated Kronecker-sum Gaussian, dense formula
    q = MvNormal.from_mean_cov(mean, cov)
    for got_kl, (m_p, prec_p) in ((kl_prior, (m0.reshape(-1), np.kron(r0, c0))), (kl_other, (other_mean, other_prec))):
        assert float(got_kl) == pytest.approx(float(q.kl(MvNormal.from_mean_precision(m_p, prec_p))), rel=1e-9, abs=1e-10)
    assert abs(float(kl_self)) < 1e-10


def test_kronecker_factors_detects_products_only():
    rng = np.random.default_rng(1)
    r, c = _spd(rng, 3), _spd(rng, 4)
    got = kronecker_factors(np.kron(r, c), 3, 4)
    assert got is not None
    np.testing.assert_allclose(np.kron(*got), np.kron(r, c), rtol=1e-13)
    assert kronecker_factors(2.0 * np.eye(12), 3, 4) is not None
    assert kronecker_factors(np.diag(np.arange(1.0, 13.0)), 3, 4) is None           # diagonal, not R ⊗ C
    perturbed = np.kron(r, c)
    perturbed[5, 7] += 1e-6
    perturbed[7, 5] += 1e-6
    assert kronecker_factors(perturbed, 3, 4) is None
    with pytest.raises(ValueError, match="precision: expected shape"):
        kronecker_factors(np.eye(5), 3, 4)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="row_precision"):
        KroneckerSumNormal.matrix_normal(np.zeros((2, 3)), -np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="col_precision"):
        KroneckerSumNormal.matrix_normal(np.zeros((2, 3)), np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="mean"):
        KroneckerSumNormal.matrix_normal(np.zeros(3), np.eye(2), np.eye(3))
    prior = KroneckerSumNormal.matrix_normal(np.zeros((2, 3)), np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="col"):
        prior.posterior(np.zeros((2, 3)), np.eye(2), np.eye(2))
