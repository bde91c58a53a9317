"""Minimal program (JAX only) that deadlocks XLA's CPU runtime with jax/jaxlib 0.10.2 on a 2-core host.

    for i in $(seq 10); do timeout 30 python tools/repro_lapack_deadlock.py; echo rc=$?; done   # rc 124 = hang

A jitted function with a few *independent* batched ``jnp.linalg.solve`` calls (500 matrices of 8 x 8).
XLA's thunk executor runs independent custom calls concurrently on the intra-op thread pool; each
jaxlib LAPACK kernel (here ``lapack_dgetrf_ffi``) splits its batch over the same pool
(``jax::ParallelBatchMap``) and blocks in ``absl::BlockingCounter::Wait``. When every pool thread
runs such a kernel, the batch pieces they wait for can never be scheduled: a thread-pool starvation
deadlock (gdb: both ``tf_XLAEigen`` threads in ``BlockingCounter::Wait`` under
``LuDecomposition::Kernel``). ``--xla_cpu_multi_thread_eigen=false`` and
``JAX_CPU_ENABLE_ASYNC_DISPATCH=false`` do not help. The cholesky, eigh, qr... kernels use the same
``ParallelBatchMap`` (objdump of jaxlib/cpu/_lapack.so), so any two concurrent batched calls can do it.
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
PAIRS, CALLS, BATCH, D = 3, 50, 500, 8
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(BATCH, D, D)) + 4 * np.eye(D))
y = jnp.asarray(rng.normal(size=(BATCH, D, D)))


@jax.jit
def f(x, y):
    return sum(jnp.linalg.solve(x + k, y) + jnp.linalg.solve(jnp.swapaxes(x, -1, -2) + k, y) for k in range(PAIRS))


for k in range(CALLS):
    t0 = time.perf_counter()
    f(x, y + k).block_until_ready()
    print(k, f"{time.perf_counter() - t0:.4f}s", flush=True)
print(jax.__version__, "no hang", file=sys.stderr)
