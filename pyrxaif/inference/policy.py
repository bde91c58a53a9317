"""Policy evaluation by free-energy minimisation on a model of the future (LAIF, discrete states).

Model per policy π (horizon T, here 2): z_0 ~ Cat(D), z_t ~ Cat(B_t^π z_{t−1}), and at each t a
goal-observation node [c_t, z_t, A] (observed x_t: data constraint; missing x_t: Bethe or
generalised rule). Variational family q(z_0..z_T) q(A) q(c_1..c_T) (joint over the state chain,
as LAIF's structured constraint), with A either learned (matrix Dirichlet prior) or known (point
mass), and c either fixed (goal log-probabilities) or learned (Dirichlet hyper-prior per step).

Schedule, per iteration: for t = 1..T, the message from node t to z_t (Gauss–Seidel; the chain
part is exact sum-product), then q(A) and q(c) from the node messages, then the free energy
    F = −log Z_chain + Σ_t s_tᵀ log ρ_t + Σ_t U_t + KL[q(A) ‖ p(A)] + KL[q(c) ‖ p(c)],
where Z_chain is the normaliser of D·Π B_t·Π ρ_t (so −log Z + Σ sᵀlog ρ is the chain's
−H[q(z)] − E log D − Σ E log B). The policy score G is the mean of F over the iterations after a
burn-in, in bits. All policies are evaluated in one vmapped, jitted call.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from pyrxaif import checks as V
from pyrxaif.distributions import Dirichlet, MatrixDirichlet
from pyrxaif.rules import goal_observation as go

OBJECTIVES = ("gfe", "bethe")
SELECTIONS = ("sample", "argmin")


class PolicyResult(NamedTuple):
    G: jax.Array                 # policy score: mean F after burn-in, bits
    free_energy: jax.Array       # F per iteration, nats
    s: jax.Array                 # q(z_t), (T, n)
    A_posterior: jax.Array       # Dirichlet part of q(A) at the end: a + Σ_obs x sᵀ (+ Bethe x̂ sᵀ), (m, n)
    goal_posterior: jax.Array    # q(c_t) concentrations, (T, m) (the prior when goals are fixed)
    x_hat: jax.Array             # predicted observation per step: Ās (GFE) or x̂ (Bethe) or x, (T, m)


def _chain(log_d0, log_trans, log_rho):
    """Forward (predictive, excluding ρ_t) and backward messages on z_1..z_T, and log Z.

    Unrolled over the (static, short) horizon with the sum-product rules of the transition node.
    """
    T = log_rho.shape[0]
    log_alpha, f = [], log_d0
    for t in range(T):
        pred = logsumexp(log_trans[t] + f[None, :], axis=1)        # μ(z_t) ∝ B_t μ(z_{t−1})
        log_alpha.append(pred)
        f = pred + log_rho[t]
    log_z = logsumexp(f)
    log_beta, b = [None] * T, jnp.zeros_like(log_d0)
    for t in reversed(range(T)):
        log_beta[t] = b
        b = logsumexp(log_trans[t] + (b + log_rho[t])[:, None], axis=0)  # μ(z_{t−1}) ∝ B_tᵀ μ(z_t)
    return jnp.stack(log_alpha), jnp.stack(log_beta), log_z


def _a_stats_init(A_param, learn_A):
    if learn_A:
        return go.a_stats_dirichlet(MatrixDirichlet(A_param))
    return go.a_stats_point(A_param)


def _goal_log(goal, learn_goals):
    return Dirichlet(goal).expected_log() if learn_goals else goal


def _uses_sampling(observed, objective, learn_A):
    """q(A) is estimated by importance sampling iff A is learned and a GFE node has x missing."""
    return learn_A and objective == "gfe" and not all(observed)


def _prepare(key, A_param, x, observed, objective, learn_A, num_samples):
    """The importance-sampling noise of one planning step and its loop-invariant transforms.

    One set of noise per planning step, shared by all its policies and reused across iterations
    (common random numbers): the fixed-point iteration sees a deterministic objective and the
    policies are compared on the same draws (LAIF redraws per policy and iteration; the estimate
    of each G has the same distribution either way, the differences between policies are less
    noisy). The proposal of each policy differs from the prior only on the rows of the observed
    outcomes, which are the same for every policy of the step, so the rest is prepared here once.
    """
    if not _uses_sampling(observed, objective, learn_A):
        return None
    noise = go.gamma_noise(key, (num_samples,) + A_param.shape)
    rows = jnp.argmax(x[np.flatnonzero(np.asarray(observed))], axis=1)   # static count
    return go.is_prepare(A_param, noise, rows)


def _evaluate_prepared(prep, log_d0, trans, goal, A_param, x, observed, *, objective, learn_A, learn_goals,
                       iterations, burn_in, newton_iterations) -> PolicyResult:
    """Free energy of one policy given the output of :func:`_prepare` (traced internal)."""
    T, n = trans.shape[0], trans.shape[1]
    log_trans = jnp.log(trans)
    gfe = objective == "gfe"
    observed = tuple(bool(o) for o in observed)
    obs = jnp.asarray(observed, jnp.float64)

    def node_message(t, log_d, s_t, stats, log_c):
        if observed[t]:
            return go.observed_message_z(x[t], stats.log_mean).logits
        if gfe:
            return go.gfe_message_z_newton(log_d, s_t, stats.mean, stats.entropy, log_c[t],
                                           newton_iterations).logits
        return go.bethe_message_z(s_t, stats.log_mean, log_c[t]).logits

    def body(carry, _):
        log_rho, stats, log_c, _ = carry
        for t in range(T):  # Gauss–Seidel over the (static, short) horizon
            la, lb, _ = _chain(log_d0, log_trans, log_rho)
            s_t = jax.nn.softmax(la[t] + log_rho[t] + lb[t])
            log_rho = log_rho.at[t].set(node_message(t, la[t] + lb[t], s_t, stats, log_c))
        la, lb, log_z = _chain(log_d0, log_trans, log_rho)
        s = jax.nn.softmax(la + log_rho + lb, axis=-1)
        x_hat_b = jax.vmap(lambda st, lc: jax.nn.softmax(stats.log_mean @ st + lc))(s, log_c)
        pred = (s @ stats.mean.T) if gfe else x_hat_b          # Ās (GFE) or x̂ (Bethe)
        x_eff = obs[:, None] * x + (1.0 - obs[:, None]) * pred
        # q(c)
        if learn_goals:
            goal_post = goal + x_eff
            kl_c = jnp.sum(Dirichlet(goal_post).kl(Dirichlet(goal)))
            log_c_new = Dirichlet(goal_post).expected_log()
        else:
            goal_post, kl_c, log_c_new = goal, 0.0, log_c
        # q(A)
        if learn_A:
            w_conj = obs if gfe else jnp.ones_like(obs)
            counts = jnp.einsum("t,ti,tj->ij", w_conj, x_eff, s)
            a_post = A_param + counts
            if prep is not None:
                # Only the rows of the observed outcomes of the proposal move with q(z) (counts x sᵀ):
                # re-transform those rows of the fixed noise; the rest was prepared before the loop.
                a_rows = a_post[prep.rows]
                isr = go.is_posterior_rows(prep, a_rows, s, log_c_new, stats.mean, weight_mask=1.0 - obs)
                kl_is = (isr.kl_to_proposal
                         + jnp.einsum("k,kj,kj->", prep.row_weight, counts[prep.rows], isr.log_mean_rows)
                         - go.log_normalizer_ratio_rows(A_param, prep.rows, prep.row_weight, a_rows))
                new_stats, kl_A = isr.stats, kl_is
            else:  # conjugate: q(A) = Dir(a + counts)
                new_stats = go.a_stats_dirichlet(MatrixDirichlet(a_post))
                kl_A = go.dirichlet_kl(a_post, A_param)
        else:
            a_post, new_stats, kl_A = A_param, stats, 0.0
        # free energy
        def energy(t):
            if observed[t]:
                return go.observed_average_energy(x[t], s[t], new_stats.log_mean, log_c_new[t])
            if gfe:
                return go.gfe_average_energy(s[t], new_stats.mean, new_stats.entropy, log_c_new[t])
            return go.bethe_average_energy(s[t], new_stats.log_mean, log_c_new[t])
        U = sum(energy(t) for t in range(T))
        F = -log_z + jnp.sum(s * log_rho) + U + kl_A + kl_c
        out = (s, a_post, goal_post, x_eff)
        return (log_rho, new_stats, log_c_new, out), F

    stats0 = _a_stats_init(A_param, learn_A)
    log_c0 = _goal_log(goal, learn_goals)
    m = x.shape[1]
    init_out = (jnp.full((T, n), 1.0 / n), jnp.zeros_like(A_param), jnp.zeros_like(goal), jnp.zeros((T, m)))
    carry0 = (jnp.zeros((T, n)), stats0, log_c0, init_out)
    (_, _, _, (s, a_post, goal_post, x_eff)), F = jax.lax.scan(body, carry0, None, length=iterations)
    G = jnp.mean(F[burn_in:]) / jnp.log(2.0)
    return PolicyResult(G, F, s, a_post, goal_post, x_eff)


_STATIC = ("observed", "objective", "learn_A", "learn_goals", "iterations", "burn_in", "num_samples",
           "newton_iterations")


@partial(jax.jit, static_argnames=_STATIC)
def evaluate_policy(key, log_d0, trans, goal, A_param, x, observed, *, objective="gfe", learn_A=True,
                    learn_goals=False, iterations=50, burn_in=10, num_samples=20,
                    newton_iterations=20) -> PolicyResult:
    """Free energy of one policy (jitted internal; see :func:`evaluate_policies` for the checked API).

    log_d0 (n,) log prior on z_0; trans (T, n, n) B_t[z_t, z_{t−1}]; goal (T, m) log c_t (fixed) or
    Dirichlet concentrations (learned); A_param (m, n) Dirichlet concentration (learned) or the
    known matrix; x (T, m) one-hot observations; observed: static tuple of T bools (the data
    constraints are part of the graph, so each pattern compiles its own, pruned, schedule).
    Equals entry p of :func:`evaluate_policies_jit` with the same key (shared noise).
    """
    observed = tuple(bool(o) for o in observed)
    prep = _prepare(key, A_param, x, observed, objective, learn_A, num_samples)
    return _evaluate_prepared(prep, log_d0, trans, goal, A_param, x, observed, objective=objective,
                              learn_A=learn_A, learn_goals=learn_goals, iterations=iterations,
                              burn_in=burn_in, newton_iterations=newton_iterations)


@partial(jax.jit, static_argnames=_STATIC)
def evaluate_policies_jit(key, log_d0, trans, goal, A_param, x, observed, *, objective="gfe", learn_A=True,
                          learn_goals=False, iterations=50, burn_in=10, num_samples=20,
                          newton_iterations=20) -> PolicyResult:
    """:func:`evaluate_policy` vmapped over a leading policy axis of ``log_d0``, ``trans``, ``goal``;
    the importance-sampling noise (and its prepared transforms) is shared by the policies."""
    observed = tuple(bool(o) for o in observed)
    prep = _prepare(key, A_param, x, observed, objective, learn_A, num_samples)
    return jax.vmap(lambda d, b, g: _evaluate_prepared(
        prep, d, b, g, A_param, x, observed, objective=objective, learn_A=learn_A, learn_goals=learn_goals,
        iterations=iterations, burn_in=burn_in, newton_iterations=newton_iterations))(log_d0, trans, goal)


def evaluate_policies(key, log_d0, trans, goal, A_param, x=None, observed=None, *, objective="gfe",
                      learn_A=True, learn_goals=False, iterations=50, burn_in=10, num_samples=20,
                      newton_iterations=20) -> PolicyResult:
    """Evaluate P policies at once (checked public entry point).

    log_d0 (P, n); trans (P, T, n, n) column-stochastic; goal (P, T, m) log goal probabilities (or
    Dirichlet concentrations with ``learn_goals``); A_param (m, n) Dirichlet concentration (or the
    known column-stochastic matrix with ``learn_A=False``); x (T, m) one-hot, observed (T,) bool
    (default: nothing observed). Returns a :class:`PolicyResult` with a leading policy axis; G in bits.
    """
    V.check_choice("objective", objective, OBJECTIVES)
    trans = V.as_float_array("trans", trans, ndim=4)
    P, T, n, n2 = trans.shape
    if n != n2:
        raise ValueError(f"trans: expected square transition matrices (P, T, n, n), got {trans.shape}")
    V.check_probability_vectors("trans", trans, axis=-2)
    log_d0 = V.as_float_array("log_d0", log_d0, shape=(P, n), finite=False)
    if np.any(np.isnan(log_d0)) or np.any(log_d0 == np.inf) or np.any(np.all(log_d0 == -np.inf, axis=-1)):
        raise ValueError("log_d0: expected log-probabilities in [-inf, inf) with some finite entry per row")
    A_param = V.as_float_array("A_param", A_param, ndim=2)
    if A_param.shape[1] != n:
        raise ValueError(f"A_param: expected {n} columns (states), got shape {A_param.shape}")
    m = A_param.shape[0]
    if learn_A:
        V.check_positive("A_param", A_param)
    else:
        V.check_probability_vectors("A_param", A_param, axis=-2)
    goal = V.as_float_array("goal", goal, shape=(P, T, m), finite=bool(learn_goals))
    if learn_goals:
        V.check_positive("goal", goal)
    elif np.any(np.isnan(goal)) or np.any(goal == np.inf):
        raise ValueError("goal: expected log goal probabilities in [-inf, inf), found NaN or +inf")
    x = np.zeros((T, m)) if x is None else V.as_float_array("x", x, shape=(T, m))
    observed = np.zeros(T, bool) if observed is None else np.asarray(observed)
    if observed.shape != (T,) or observed.dtype != bool:
        raise ValueError(f"observed: expected a boolean mask of shape ({T},), got {observed.dtype} {observed.shape}")
    if observed.any():
        V.check_probability_vectors("x", x[observed])
    for name, val in (("iterations", iterations), ("num_samples", num_samples),
                      ("newton_iterations", newton_iterations)):
        if int(val) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {val}")
    if not 0 <= int(burn_in) < int(iterations):
        raise ValueError(f"burn_in: expected 0 <= burn_in < iterations ({iterations}), got {burn_in}")
    return evaluate_policies_jit(key, jnp.asarray(log_d0), jnp.asarray(trans), jnp.asarray(goal),
                                 jnp.asarray(A_param), jnp.asarray(x), tuple(bool(o) for o in observed),
                                 objective=objective, learn_A=bool(learn_A), learn_goals=bool(learn_goals),
                                 iterations=int(iterations), burn_in=int(burn_in),
                                 num_samples=int(num_samples), newton_iterations=int(newton_iterations))


def select_policy(key, G, valid=None, *, method="sample", gamma=10.0):
    """Index of the chosen policy: a sample from softmax(−γG) or argmin G over the valid policies.

    ``G`` (P,) policy scores (bits; +inf marks a policy that cannot be chosen), ``valid`` (P,) bool or
    None (all valid). Refuses NaN in G, a mask of another shape and a set with no valid finite policy."""
    V.check_choice("method", method, SELECTIONS)
    G = np.asarray(G, dtype=np.float64)
    if G.ndim != 1 or G.size == 0:
        raise ValueError(f"G: expected a non-empty 1-d array of policy scores, got shape {G.shape}")
    if np.any(np.isnan(G)) or np.any(G == -np.inf):
        raise ValueError("G: expected policy scores in (-inf, inf], found NaN or -inf")
    valid = np.ones(G.shape, bool) if valid is None else np.asarray(valid)
    if valid.shape != G.shape or valid.dtype != bool:
        raise ValueError(f"valid: expected a boolean mask of shape {G.shape}, got {valid.dtype} {valid.shape}")
    if not np.any(valid & np.isfinite(G)):
        raise ValueError("valid: no valid policy with a finite score G to choose from")
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma: expected a positive finite precision, got {gamma!r}")
    return choose_policy(key, jnp.asarray(G), jnp.asarray(valid & np.isfinite(G)), method, float(gamma))


def choose_policy(key, G, valid, method, gamma):
    """:func:`select_policy` without the checks (traceable; used inside the jitted agents)."""
    Gm = jnp.where(valid, G, jnp.inf)
    if method == "argmin":
        return jnp.argmin(Gm)
    return jax.random.categorical(key, jnp.where(valid, -gamma * (G - jnp.min(Gm)), -jnp.inf))
