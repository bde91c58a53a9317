"""Which compiled pyrxaif programs still contain LAPACK calls on a batch of matrices.

With jaxlib 0.10.2 on CPU two batched LAPACK kernels that XLA runs concurrently can deadlock its
intra-op thread pool (docs/lgssm.md, "The parallel-smoother hang"; tools/repro_lapack_deadlock.py).
This module lists the LAPACK custom calls of compiled HLO (:func:`lapack_calls`), keeps those on a
batch (:func:`batched_lapack_calls`), and compiles every public jitted entry point at the sizes the
agents use (:data:`PROGRAMS`). Run it to print the table:

    PYTHONPATH=$PWD python tools/lapack_audit.py [name ...]
"""
from __future__ import annotations

import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

import pyrxaif  # noqa: F401  (float64)

_TARGET = re.compile(r'custom_call_target="((?:lapack|blas)_[a-z0-9_]+)"')
_RESULT = re.compile(r"= \(?(?:f64|f32|c64|c128)\[([0-9,]*)\]")


def lapack_calls(hlo: str) -> list[tuple[str, str]]:
    """(target, result shape "d0,d1,...") of every LAPACK/BLAS custom call in compiled HLO text."""
    out = []
    for line in hlo.splitlines():
        target = _TARGET.search(line)
        if target:
            shape = _RESULT.search(line)
            out.append((target.group(1), shape.group(1) if shape else line.strip()))
    return out


def batched_lapack_calls(hlo: str) -> list[tuple[str, str]]:
    """The calls of :func:`lapack_calls` whose result is not a single (r, c) matrix or vector: those
    jaxlib splits over the thread pool (``ParallelBatchMap``) and that can deadlock it."""
    return [(t, s) for t, s in lapack_calls(hlo) if s.count(",") > 1]


_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (.*)$")
_NAME = re.compile(r"%([\w.\-]+)")


def _computations(hlo: str) -> dict[str, list[tuple[str, str]]]:
    """computation name → [(instruction name, the rest of its line)] of HLO text."""
    comps, current = {}, None
    for line in hlo.splitlines():
        head = _COMPUTATION.match(line)
        if head and " = " not in line:
            current = comps.setdefault(head.group(1), [])
            continue
        inst = _INSTRUCTION.match(line)
        if inst and current is not None:
            current.append((inst.group(1), inst.group(2)))
    return comps


def concurrent_batched_lapack_pairs(hlo: str) -> list[tuple[str, str]]:
    """Pairs of instructions of one computation that each are, or call a computation containing, a
    batched LAPACK call (:func:`batched_lapack_calls`) and that do not depend on each other through
    their operands: XLA's thunk executor may run them at the same time, which is what deadlocks
    (tools/repro_lapack_deadlock.py). A batched call inside a loop body counts once, at the loop."""
    comps = _computations(hlo)
    holds: dict[str, bool] = {}

    def contains(comp, seen=()):
        if comp not in holds:
            holds[comp] = any(_is_batched(rest) or any(c in comps and c not in seen and contains(c, seen + (comp,))
                                                       for c in _NAME.findall(rest))
                              for _, rest in comps[comp])
        return holds[comp]

    pairs = []
    for comp, insts in comps.items():
        operands = {name: {n for n in _NAME.findall(rest) if n not in comps} for name, rest in insts}
        marked = [name for name, rest in insts
                  if _is_batched(rest) or any(c in comps and contains(c) for c in _NAME.findall(rest))]
        if len(marked) < 2:
            continue
        ancestors: dict[str, set] = {}

        def anc(name):
            if name not in ancestors:
                ancestors[name] = set()
                for op in operands.get(name, ()):
                    ancestors[name] |= {op} | anc(op)
            return ancestors[name]
        pairs += [(f"{comp}/{x}", f"{comp}/{y}") for i, x in enumerate(marked) for y in marked[i + 1:]
                  if x not in anc(y) and y not in anc(x)]
    return pairs


def _is_batched(rest: str) -> bool:
    return bool(batched_lapack_calls("= " + rest))


def compiled_text(fn, *args, **kwargs) -> str:
    """Optimised HLO text of the jitted ``fn`` for these arguments (compiled, never run)."""
    return fn.lower(*args, **kwargs).compile().as_text()


# ----------------------------------------------------------------------------- the audited programs
def _local_model(rng, d, m, K):
    from pyrxaif.inference import em
    A = np.eye(d) + 0.05 * rng.normal(size=(K, d, d))
    return em.LocalLDS(jnp.asarray(rng.normal(size=(K, d + m))), jnp.asarray(0.7), jnp.asarray(A),
                       jnp.asarray(0.1 * rng.normal(size=(K, d, m))), jnp.asarray(0.01 * rng.normal(size=(K, d))),
                       jnp.asarray(np.broadcast_to(1e-3 * np.eye(d), (K, d, d)).copy()), jnp.asarray(2.0))


def plan_local_pixel():
    """planning.plan_local as the pixel agent calls it (pendulum config: d 6, m 1, K 64, H 8; 4 nominals)."""
    from pyrxaif.inference import planning
    rng = np.random.default_rng(0)
    d, m, K, H = 6, 1, 64, 8
    model = _local_model(rng, d, m, K)
    u0 = planning.nominal_starts(jnp.zeros((H, m)))
    return compiled_text(planning.plan_local, model, jnp.zeros(d), jnp.ones(d), jnp.full(d, 100.0),
                         jnp.ones(m), jnp.ones(H), u0, iters=5)


def _tmaze_trials(objective):
    """The three policy scorings of a T-maze trial as ``tmaze.simulate`` runs them (``Agent`` with LAIF's
    ten policies and a learned A), vmapped over 100 runs: the ten policies with nothing observed, four
    continuations with the first observation clamped, the executed policy with both clamped."""
    from pyrxaif.agents import tmaze
    from pyrxaif.envs.tmaze import observation_prior, tmaze_pomdp
    from pyrxaif.inference.policy import evaluate_policies_jit
    jt = tmaze_pomdp().joint_tensors()
    B, log_D, log_c = jnp.asarray(jt.B), jnp.asarray(jt.log_D), jnp.asarray(jt.log_c)
    O = log_c.shape[0]
    pols = jnp.asarray(tmaze.FIRST_POLICIES)

    def scores(key, pA, trans, x, observed):
        P = trans.shape[0]
        return evaluate_policies_jit(key, jnp.broadcast_to(log_D, (P,) + log_D.shape), trans,
                                     jnp.broadcast_to(log_c, (P, 2, O)), pA, x, observed, objective=objective,
                                     learn_A=True)

    def one_run(key, pA):
        k1, k2, k3 = jax.random.split(key, 3)
        x = jax.nn.one_hot(jnp.array([13, 10]), O)
        return (scores(k1, pA, B[pols], jnp.zeros((2, O)), (False, False)).G,
                scores(k2, pA, B[pols[6:]], x * jnp.array([[1.0], [0.0]]), (True, False)).G,
                scores(k3, pA, B[pols[7:8]], x, (True, True)).A_posterior)
    n_runs = 100
    pA = jnp.broadcast_to(jnp.asarray(observation_prior(0.1)), (n_runs, O, 8))
    return compiled_text(jax.jit(jax.vmap(one_run)), jax.random.split(jax.random.PRNGKey(0), n_runs), pA)


def tmaze_trial_gfe():
    """One T-maze trial's policy scorings of the generalised (gfe) agent vmapped over 100 runs (as
    ``tmaze.simulate`` runs them through ``Agent``)."""
    return _tmaze_trials("gfe")


def tmaze_trial_bethe():
    """The same for the Bethe reference agent."""
    return _tmaze_trials("bethe")


def vae_train_step():
    """nn.vae.train_step (value and gradient of vae_loss + Adam) on a batch of 64 windows, default VAEConfig."""
    from pyrxaif.nn import vae
    cfg = vae.VAEConfig()
    d, n = cfg.latent_dim, 64
    params = vae.init_vae(jax.random.PRNGKey(0), cfg)
    opt = vae.make_optimizer()
    windows = jnp.zeros((n, cfg.frames, cfg.size, cfg.size), jnp.float32)
    prior_cov = jnp.broadcast_to(jnp.eye(d), (n, d, d))
    return compiled_text(vae.train_step, params, opt.init(params), jax.random.PRNGKey(1), windows,
                         jnp.zeros((n, d)), prior_cov, latent_dim=d, beta=1.0, optimizer=opt)


def linear_gaussian_ssm():
    """The programs behind LinearGaussianSSM.filter / smoother (``_dynamax_posterior``, reached directly:
    the methods validate with numpy first), both methods, and fit_vb's loop (``_fit_vb``: smoother under
    q, ELBO, emission M-step, statistics, q update), D 4, P 3, U 1, T 200."""
    from pyrxaif.inference import lgssm
    from pyrxaif.models import LinearGaussianSSM
    from pyrxaif.models import linear_gaussian_ssm as lg
    D, P, U, T = 4, 3, 1, 200
    params = LinearGaussianSSM(D, P, U).initialize(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    y, u = jnp.asarray(rng.normal(size=(T, P))), jnp.asarray(rng.normal(size=(T, U)))
    texts = [compiled_text(lg._dynamax_posterior, params, y, u, method, smoother)  # noqa: SLF001
             for method in ("sequential", "parallel") for smoother in (False, True)]
    prior = lgssm.make_prior(D, U + 1)                     # fit_vb runs the structured loop (isotropic prior)
    texts.append(compiled_text(lg._fit_vb, params, y, u, lgssm.structured_prior(prior), 2, True, "sequential"))  # noqa: SLF001
    return "\n".join(texts)


def em_fit_lds():
    """em.fit_lds's programs (vb_em, smooth, elbo) in one, pixel-agent sizes: 32 sequences, T 30, d 4, m 1."""
    from pyrxaif.inference import em, lgssm
    S, T, d, m = 32, 30, 4, 1
    lds = em.init_lds(d, m)
    rng = np.random.default_rng(0)
    mu, var, u = rng.normal(size=(S, T, d)), rng.uniform(0.1, 1, (S, T, d)), rng.normal(size=(S, T, m))

    def fit(mu, lam, u):
        post, _ = lgssm.vb_em(mu, lam, u, lds.prior, lds.init, num_iters=2, posterior=lds.dynamics)
        res = lgssm.smooth(mu, lam, u, post.q_ab, post.q_w, lds.init)
        return lgssm.elbo(res, post, lds.prior), em.cavity_moments(res)
    return compiled_text(jax.jit(fit), jnp.asarray(mu), jnp.asarray(1 / var), jnp.asarray(u))


def em_fit_local():
    """The jitted program of em.fit_local's expert posteriors (``lgssm._posterior_from_statistics``,
    reached directly: fit_local and posterior_from_statistics validate with numpy first; the rest of
    fit_local is k-means, without linear algebra, and eager operations, one per program), pixel
    sizes: 32 sequences, T 30, d 6, m 1, K 64, gated on the action."""
    from pyrxaif.distributions import MvNormal
    from pyrxaif.inference import em, lgssm
    S, T, d, m, K = 32, 30, 6, 1, 64
    rng = np.random.default_rng(0)
    mu, var = rng.normal(size=(S, T, d)), rng.uniform(0.1, 1, (S, T, d))
    q_z = lgssm.SmootherResult(jnp.asarray(mu), jnp.asarray(np.einsum("stij,stj->stij", np.eye(d)[None, None], var)),
                               jnp.zeros((S, T, d, d)), MvNormal(jnp.zeros((S, T, d)), jnp.zeros((S, T, d, d))),
                               jnp.zeros(S))
    ua = jnp.concatenate([jnp.asarray(rng.normal(size=(S, T, m))), jnp.ones((S, T, 1))], -1)
    stats = lgssm.sufficient_statistics(q_z, ua, weights=jnp.asarray(rng.dirichlet(np.ones(K), (S, T)).transpose(2, 0, 1)))
    prior = em.dynamics_prior(d, m + 1)
    return compiled_text(lgssm._posterior_from_statistics, stats, prior, prior, 20)  # noqa: SLF001


def rollout_plan():
    """rollout.plan's program (``plan_unchecked``, "aif-mp"), a 25-state, 4-action, 2-modality model, horizon 8."""
    from pyrxaif.inference import rollout
    S, U, Y = 25, 4, 25
    rng = np.random.default_rng(0)
    succ = rng.integers(0, S, (S, U, 2))
    B = np.full((S, U, 2, 1), 0.5)
    A = [rng.dirichlet(np.ones(Y), size=(S, 1)), rng.dirichlet(np.ones(2), size=(S, 1))]
    model = rollout.rollout_model(succ, B, A, np.zeros((S, 1)), np.full(U, 1 / U))
    fn = jax.jit(rollout.plan_unchecked, static_argnames=("cfg", "horizon"))
    return compiled_text(fn, model, jnp.full((S, 1), -np.log(S)), rollout.method_config("aif-mp"), 8)


PROGRAMS = {f.__name__: f for f in (plan_local_pixel, tmaze_trial_gfe, tmaze_trial_bethe, vae_train_step,
                                     linear_gaussian_ssm, em_fit_lds, em_fit_local, rollout_plan)}


def main(names):
    for name in names or PROGRAMS:
        hlo = PROGRAMS[name]()
        calls, batched = lapack_calls(hlo), batched_lapack_calls(hlo)
        pairs = concurrent_batched_lapack_pairs(hlo)
        print(f"{name}: {len(calls)} LAPACK/BLAS calls, {len(batched)} batched, {len(pairs)} independent "
              f"pairs: {batched} {pairs[:4]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
