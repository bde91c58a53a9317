"""The LDS smoothers never hang (issue 20 item 0).

With jaxlib 0.10.2 two batched LAPACK kernels that XLA runs concurrently can deadlock its CPU thread
pool (tools/repro_lapack_deadlock.py, docs/lgssm.md "The parallel-smoother hang"); the parallel
smoother did so in most fresh processes at T = 1000, d = 8. The smoothers now do their batched
linear algebra in fused XLA code. Checked two ways: structurally (no LAPACK call on a batch of
matrices is left in any compiled smoother / EM program) and behaviourally (repeated calls at
T >= 1000 in fresh processes under a timeout)."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.distributions import MvNormal, Wishart
from pyrxaif.inference import lgssm

ROOT = Path(__file__).resolve().parents[1]
REPRO = ROOT / "tools" / "repro_parallel_hang.py"
sys.path.insert(0, str(ROOT / "tools"))
from lapack_audit import batched_lapack_calls, compiled_text  # noqa: E402


def _problem(T, d, m, n_seq=None):
    rng = np.random.default_rng(0)
    shape = (T,) if n_seq is None else (n_seq, T)
    mu, lam, u = rng.normal(size=shape + (d,)), rng.uniform(1, 2, shape + (d,)), rng.normal(size=shape + (m,))
    q_ab = MvNormal.from_mean_cov(0.1 * rng.normal(size=d * (d + m)), 1e-3 * np.eye(d * (d + m)))
    q_w = Wishart.from_mean(np.eye(d), 10.0 + d)
    init = MvNormal.from_mean_cov(np.zeros(d), np.eye(d))
    return mu, lam, u, q_ab, q_w, init


@pytest.mark.parametrize("method, d, n_seq", [
    ("sequential", 3, None), ("parallel", 3, None), ("parallel", 3, 4),
    pytest.param("sequential", 14, None, marks=pytest.mark.slow),       # d = 14 > the unrolled-Cholesky limit
    pytest.param("parallel", 14, None, marks=pytest.mark.slow)])
def test_compiled_smoother_has_no_batched_lapack_call(method, d, n_seq):
    mu, lam, u, q_ab, q_w, init = _problem(40, d, 1, n_seq)
    fn = jax.jit(lambda a, b, c: lgssm.smooth(a, b, c, q_ab, q_w, init, method=method))
    batched = batched_lapack_calls(compiled_text(fn, jnp.asarray(mu), jnp.asarray(lam), jnp.asarray(u)))
    assert batched == [], f"batched LAPACK calls can deadlock XLA's CPU pool: {batched}"


def test_compiled_vb_em_has_no_batched_lapack_call():
    mu, lam, u, q_ab, q_w, init = _problem(40, 2, 1, 4)
    prior = lgssm.make_prior(2, 1)
    fn = jax.jit(lambda a, b, c: lgssm.vb_em(a, b, c, prior, init, num_iters=2, method="parallel"))
    assert batched_lapack_calls(compiled_text(fn, jnp.asarray(mu), jnp.asarray(lam), jnp.asarray(u))) == []


def _run_repro(n_proc, args, timeout):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    results = []
    for _ in range(n_proc):
        try:
            p = subprocess.run([sys.executable, str(REPRO), *args], env=env, capture_output=True, text=True,
                               timeout=timeout)
            results.append((p.returncode, p.stdout + p.stderr[-2000:]))
        except subprocess.TimeoutExpired:
            results.append(("timeout", ""))
    return results


def test_parallel_and_sequential_smoothers_return_in_a_fresh_process():
    # fast variant: one fresh process, T = 1000, d = 2, both methods, 3 calls each
    for method in ("parallel", "sequential"):
        [(rc, out)] = _run_repro(1, ["--T", "1000", "--d", "2", "--calls", "3", "--method", method], 240)
        assert rc == 0, f"{method}: {rc} {out}"
        assert out.count("call ") == 3


@pytest.mark.slow
def test_parallel_smoother_repeated_in_fresh_processes_never_hangs():
    # the configuration of issue 20: T = 1000, d = 8, m = 1, 5 calls per process, 8 fresh processes
    results = _run_repro(8, ["--T", "1000", "--d", "8", "--calls", "5", "--method", "parallel"], 400)
    assert [rc for rc, _ in results] == [0] * 8, results
