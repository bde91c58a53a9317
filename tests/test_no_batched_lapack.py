"""No compiled pyrxaif program holds LAPACK calls on a batch of matrices (issue 20 item 0, extended).

jaxlib 0.10.2's batched LAPACK kernels split their batch over XLA's CPU intra-op pool and block; two
that XLA runs concurrently can deadlock the pool (tools/repro_lapack_deadlock.py, docs/lgssm.md "The
parallel-smoother hang"). ``tools/lapack_audit.py`` compiles every public jitted entry point at the
sizes the agents use; each must be free of batched LAPACK calls. The audit itself is checked on
programs whose answer is known, and the LAPACK-free solvers against numpy."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.distributions.linalg import solve_pivoted, spd_solve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import lapack_audit as audit  # noqa: E402


@pytest.mark.slow                      # 10 s to minutes of compilation each; fast variants below
@pytest.mark.parametrize("name", list(audit.PROGRAMS))
def test_compiled_program_has_no_batched_lapack_call(name):
    hlo = audit.PROGRAMS[name]()
    assert audit.batched_lapack_calls(hlo) == [], audit.batched_lapack_calls(hlo)


def test_planner_smoother_vmapped_over_nominals_is_lapack_free():
    # fast variant of plan_local_pixel: the smoother of plan_linearised / plan_objective, vmapped
    from pyrxaif.inference import planning
    n, T, N = 7, 8, 4
    rng = np.random.default_rng(0)
    F = np.eye(n) + 0.1 * rng.normal(size=(N, T - 1, n, n))
    fn = jax.jit(jax.vmap(lambda F: planning.smoother(jnp.zeros(n), jnp.eye(n), F, 0.1 * jnp.eye(n),
                                                      jnp.zeros((T - 1, n)), jnp.ones((T, n)), jnp.ones((T, n)))))
    assert audit.lapack_calls(audit.compiled_text(fn, jnp.asarray(F))) == []


def test_vae_kl_and_its_gradient_are_lapack_free():
    # fast variant of vae_train_step
    from pyrxaif.nn import vae
    n, d = 64, 4
    rng = np.random.default_rng(0)
    L = rng.normal(size=(n, d, d))
    args = (jnp.asarray(rng.normal(size=(n, d))), jnp.asarray(rng.uniform(0.5, 1, (n, d))),
            jnp.zeros((n, d)), jnp.asarray(L @ np.swapaxes(L, -1, -2) + np.eye(d)))
    fn = jax.jit(jax.value_and_grad(lambda mu, var, m, P: jnp.sum(vae.kl_diag_full(mu, var, m, P))))
    assert audit.lapack_calls(audit.compiled_text(fn, *args)) == []


def test_traced_gaussian_and_wishart_moments_are_lapack_free():
    # fast variant of em_fit_local: q([A B c]) mean and covariance and E[W] of 64 experts in one program
    from pyrxaif.distributions import MvNormal, Wishart
    rng = np.random.default_rng(0)
    a, w = rng.normal(size=(64, 7, 7)), rng.normal(size=(64, 3, 3))
    prec, inv_scale = a @ np.swapaxes(a, -1, -2) + np.eye(7), w @ np.swapaxes(w, -1, -2) + np.eye(3)
    fn = jax.jit(lambda x, p, s: (MvNormal(x, p).mean_cov(), Wishart(jnp.full(64, 5.0), s).mean()))
    args = jnp.asarray(rng.normal(size=(64, 7))), jnp.asarray(prec), jnp.asarray(inv_scale)
    assert audit.lapack_calls(audit.compiled_text(fn, *args)) == []
    (mean, cov), w_mean = fn(*args)
    np.testing.assert_allclose(cov, np.linalg.inv(prec), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean, np.linalg.solve(prec, np.asarray(args[0])[..., None])[..., 0], rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(w_mean, 5.0 * np.linalg.inv(inv_scale), rtol=1e-9, atol=1e-12)


def test_newton_solve_of_the_policy_scorer_is_lapack_free_when_vmapped():
    # fast variant of the T-maze programs: the Newton step vmapped over 1000 policies x runs
    from pyrxaif.rules import goal_observation as go
    rng = np.random.default_rng(0)
    n, m, B = 8, 16, 1000
    A = rng.dirichlet(np.ones(m), n).T
    fn = jax.jit(jax.vmap(lambda ld, s0: go.gfe_marginal_z_newton(ld, s0, A, -np.sum(A * np.log(A), 0),
                                                                  np.log(np.full(m, 1 / m)))))
    args = jnp.log(rng.dirichlet(np.ones(n), B)), rng.dirichlet(np.ones(n), B)
    assert audit.lapack_calls(audit.compiled_text(fn, *args)) == []


def test_audit_finds_the_calls_of_the_deadlocking_repro_and_their_independence():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(50, 4, 4)) + 4 * np.eye(4))
    two = jax.jit(lambda x: jnp.linalg.solve(x, x) + jnp.linalg.solve(x.mT, x))        # independent
    chain = jax.jit(lambda x: jnp.linalg.cholesky(jnp.linalg.cholesky(x + 8 * jnp.eye(4)) + 8 * jnp.eye(4)))
    one = jax.jit(lambda x: jnp.linalg.cholesky(x[0] @ x[0].T + jnp.eye(4)))
    hlo_two, hlo_chain, hlo_one = (audit.compiled_text(f, x) for f in (two, chain, one))
    assert [t for t, _ in audit.batched_lapack_calls(hlo_two)].count("lapack_dgetrf_ffi") == 2
    assert len(audit.concurrent_batched_lapack_pairs(hlo_two)) >= 1
    assert [t for t, _ in audit.batched_lapack_calls(hlo_chain)] == ["lapack_dpotrf_ffi"] * 2
    assert audit.concurrent_batched_lapack_pairs(hlo_chain) == []
    assert audit.lapack_calls(hlo_one) == [("lapack_dpotrf_ffi", "4,4")]
    assert audit.batched_lapack_calls(hlo_one) == []


def test_lapack_free_solvers_match_numpy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 6, 6))
    a[:, 0, 0] = 0.0                                                       # needs pivoting
    b = rng.normal(size=(30, 6, 2))
    np.testing.assert_allclose(solve_pivoted(jnp.asarray(a), jnp.asarray(b)), np.linalg.solve(a, b),
                               rtol=1e-10, atol=1e-10)
    spd = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(6)
    traced = jax.jit(spd_solve)(jnp.asarray(spd), jnp.asarray(b))
    np.testing.assert_allclose(traced, np.linalg.solve(spd, b), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(spd_solve(jnp.asarray(spd), jnp.asarray(b)), np.linalg.solve(spd, b),
                               rtol=1e-9, atol=1e-9)
