"""Planning as inference on a learned linear-Gaussian latent model (actions are latent variables).

Model over a horizon H with stacked state x_t = [z_t; u_t]:
  z_{t+1} = A z_t + B u_t + w_t,  w_t ~ N(0, W⁻¹);   u_t ~ N(0, Σ_u)  (action prior, inside the bound);
  z_1 clamped to the encoded start; goal messages N(z_goal, V_goal) on z_t for the goal steps.
So x_{t+1} = F x_t + e_t with F = [[A, B], [0, 0]], Cov(e_t) = blockdiag(W⁻¹, Σ_u), and q(u_{1:H}) is
read off the forward-backward (Rauch–Tung–Striebel) smoother on this stacked chain. The first mean
action, projected onto the bound, is applied and the plan is redone at the next step (receding horizon).

The smoother here is a small covariance-form Gaussian forward-backward for the planning chain
(learning uses the VB core :mod:`pyrxaif.inference.lgssm`): observation messages arrive in natural
form (ξ, diagonal Λ, Λ = 0 meaning "no message"), so the update (P⁻¹ + Λ)⁻¹ = (I + PΛ)⁻¹P never
inverts P and a clamped (zero-covariance) start is exact, which the natural-parameter form cannot
represent.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pyrxaif import checks as V
from pyrxaif.distributions.linalg import solve_pivoted, spd_inverse_logdet

LOG2PI = float(np.log(2 * np.pi))


class Smoothed(NamedTuple):
    mean: jax.Array        # (T, n) E[x_t]
    cov: jax.Array         # (T, n, n) Cov(x_t)
    cross: jax.Array       # (T-1, n, n) Cov(x_{t+1}, x_t)
    log_evidence: jax.Array  # Σ_t log N(μ_t; m_pred, P_pred + Λ_t⁻¹) (meaningful when every dim is observed)


def _sym(m):
    return 0.5 * (m + jnp.swapaxes(m, -1, -2))


def _update(m, P, mu, lam):
    """Product with an observation message N(μ, diag Λ⁻¹): P' = (I + PΛ)⁻¹P, m' = (I + PΛ)⁻¹(m + PΛμ)."""
    n = m.shape[0]
    M = jnp.eye(n) + P * lam[None, :]
    sol = solve_pivoted(M, jnp.concatenate([P, (m + P @ (lam * mu))[:, None]], -1))   # no LAPACK (docs/lgssm.md)
    Pn, mn = _sym(sol[:, :n]), sol[:, n]
    obs = lam > 0
    r = jnp.where(obs, 1.0 / jnp.where(obs, lam, 1.0), 0.0)
    S = P + jnp.diag(r) + jnp.diag(jnp.where(obs, 0.0, 1.0))
    S_inv, logdet_S = spd_inverse_logdet(S)
    d = jnp.where(obs, mu - m, 0.0)
    logz = -0.5 * (d @ S_inv @ d + logdet_S + jnp.sum(obs) * LOG2PI)
    return mn, Pn, logz


def smoother(m1, P1, F, Q, offsets, obs_mean, obs_prec):
    """Forward-backward on x_{t+1} = F_t x_t + c_t + N(0, Q_t) with messages N(obs_mean_t, diag obs_prec_t⁻¹).

    m1 (n,), P1 (n,n) PSD (may be singular), F (n,n) or per step (T-1,n,n), Q (n,n) or (T-1,n,n) PD,
    offsets c_t (T-1,n), obs_* (T,n).
    """
    T1, n = offsets.shape
    F = jnp.broadcast_to(F, (T1, n, n))
    Q = jnp.broadcast_to(Q, (T1, n, n))

    def fwd(carry, inp):
        m, P, logz = carry
        Ft, Qt, c, mu, lam = inp
        mp, Pp = Ft @ m + c, _sym(Ft @ P @ Ft.T + Qt)
        mf, Pf, lz = _update(mp, Pp, mu, lam)
        return (mf, Pf, logz + lz), (mf, Pf, mp, Pp)

    mf1, Pf1, lz1 = _update(m1, P1, obs_mean[0], obs_prec[0])
    (_, _, logz), (mfs, Pfs, mps, Pps) = jax.lax.scan(fwd, (mf1, Pf1, lz1),
                                                      (F, Q, offsets, obs_mean[1:], obs_prec[1:]))
    mfs = jnp.concatenate([mf1[None], mfs])
    Pfs = jnp.concatenate([Pf1[None], Pfs])

    def bwd(carry, inp):
        ms, Ps = carry
        mf, Pf, mp, Pp, Ft = inp
        G = (spd_inverse_logdet(Pp)[0] @ (Ft @ Pf)).T   # G = P_f Fᵀ P_pred⁻¹
        m_new = mf + G @ (ms - mp)
        P_new = _sym(Pf + G @ (Ps - Pp) @ G.T)
        return (m_new, P_new), (m_new, P_new, Ps @ G.T)

    _, (ms, Ps, cross) = jax.lax.scan(bwd, (mfs[-1], Pfs[-1]), (mfs[:-1], Pfs[:-1], mps, Pps, F), reverse=True)
    mean = jnp.concatenate([ms, mfs[-1:]])
    cov = jnp.concatenate([Ps, Pfs[-1:]])
    return Smoothed(mean, cov, cross, logz)


def goal_mask(horizon: int, goal_steps: str) -> np.ndarray:
    """(H,) weights of the goal prior per planned state: ``"final"`` the last one, ``"all"`` every one after the start."""
    V.check_choice("goal_steps", goal_steps, ("final", "all"))
    mask = np.zeros(horizon)
    if goal_steps == "final":
        mask[-1] = 1.0
    else:
        mask[1:] = 1.0
    return mask


class PlanResult(NamedTuple):
    actions: jax.Array      # (H, m) posterior means of u_t
    action_cov: jax.Array   # (H, m, m)
    latents: jax.Array      # (H, d) posterior means of z_t


@jax.jit
def plan_actions(A, B, W_cov, z_start, z_goal, goal_prec, u_prec, goal_mask):
    """q(u_{1:H}) on the stacked chain; goal_mask (H,) selects the steps carrying the goal message.

    u_t ~ N(0, diag(u_prec)⁻¹); goal message N(z_goal, diag(goal_prec)⁻¹) on z_t where goal_mask_t = 1.
    Shapes are static in H, d, m: re-planning with new values never retraces.
    """
    d, m = B.shape
    H1 = goal_mask.shape[0] - 1
    chain = LinearisedChain(jnp.broadcast_to(A, (H1, d, d)), jnp.broadcast_to(B, (H1, d, m)), jnp.zeros((H1, d)),
                            jnp.broadcast_to(W_cov, (H1, d, d)))
    return plan_linearised(chain, z_start, z_goal, goal_prec, u_prec, goal_mask)


def plan(A, B, W_cov, z_start, z_goal, *, goal_var, u_max, horizon: int, goal_steps: str = "final",
         prior_scale: float = 0.5) -> PlanResult:
    """Validated planning entry point.

    Action prior u_t ~ N(0, (prior_scale·u_max)²) keeps the actions inside the bound; the returned
    means are also projected onto [−u_max, u_max]. ``goal_steps``: "final" (goal message on z_H only)
    or "all" (on every z_t, t ≥ 2: reach and stay).
    """
    A = V.as_float_array("A", A, ndim=2)
    V.check_square("A", A)
    d = A.shape[0]
    B = V.as_float_array("B", B, ndim=2, shape=(d, None))
    W_cov = V.as_float_array("W_cov", W_cov, shape=(d, d))
    V.check_positive_definite("W_cov", W_cov)
    z_start = V.as_float_array("z_start", z_start, shape=(d,))
    z_goal = V.as_float_array("z_goal", z_goal, shape=(d,))
    goal_var = np.broadcast_to(V.check_positive("goal_var", goal_var), (d,)).astype(np.float64)
    u_max = float(V.check_positive("u_max", u_max))
    V.check_positive("prior_scale", prior_scale)
    if not isinstance(horizon, (int, np.integer)) or horizon < 2:
        raise ValueError(f"horizon: expected an integer >= 2, got {horizon!r}")
    mask = goal_mask(horizon, goal_steps)
    u_prec = np.full(B.shape[1], 1.0 / (prior_scale * u_max) ** 2)
    res = plan_actions(A, B, W_cov, z_start, z_goal, 1.0 / goal_var, u_prec, mask)
    return res._replace(actions=jnp.clip(res.actions, -u_max, u_max))


class LinearisedChain(NamedTuple):
    """z_{t+1} ≈ A_t z_t + B_t u_t + c_t + N(0, W_cov_t), t = 1..H−1: one linearisation of a nonlinear model."""
    A: jax.Array       # (H−1, d, d) ∂f/∂z along the nominal
    B: jax.Array       # (H−1, d, m) ∂f/∂u along the nominal
    c: jax.Array       # (H−1, d) f(z̄, ū) − A z̄ − B ū
    W_cov: jax.Array   # (H−1, d, d) transition covariance at the nominal latents


def linearise_local(model, z_start, us) -> LinearisedChain:
    """Roll the nominal latents out of f from ``z_start`` under actions ``us`` (H, m) and linearise f along them."""
    from pyrxaif.inference.em import local_cov, local_mean

    f = lambda z, u: local_mean(model, z, u)  # noqa: E731

    def step(z, u):
        return f(z, u), z
    _, zs = jax.lax.scan(step, z_start, us)                     # z_1..z_H
    zb, ub = zs[:-1], us[:-1]
    Az = jax.vmap(jax.jacfwd(f, argnums=0))(zb, ub)             # (H−1, d, d)
    Bu = jax.vmap(jax.jacfwd(f, argnums=1))(zb, ub)             # (H−1, d, m)
    c = jax.vmap(f)(zb, ub) - jnp.einsum("tij,tj->ti", Az, zb) - jnp.einsum("tij,tj->ti", Bu, ub)
    return LinearisedChain(Az, Bu, c, jax.vmap(lambda z, u: local_cov(model, z, u))(zb, ub))


linearise_local_jit = jax.jit(linearise_local)


@jax.jit
def plan_linearised(chain: LinearisedChain, z_start, z_goal, goal_prec, u_prec, goal_mask) -> PlanResult:
    """q(u_{1:H}) on a time-varying linear Gaussian chain: the forward-backward smoother on x_t = [z_t; u_t]."""
    H1, d, m = chain.B.shape
    n = d + m
    Su = jnp.diag(1.0 / u_prec)
    m1 = jnp.concatenate([z_start, jnp.zeros(m)])
    P1 = jnp.zeros((n, n)).at[d:, d:].set(Su)
    obs_mean = jnp.broadcast_to(jnp.concatenate([z_goal, jnp.zeros(m)]), (H1 + 1, n))
    obs_prec = goal_mask[:, None] * jnp.concatenate([goal_prec, jnp.zeros(m)])[None, :]
    F = jnp.zeros((H1, n, n)).at[:, :d, :d].set(chain.A).at[:, :d, d:].set(chain.B)
    Q = jnp.zeros((H1, n, n)).at[:, :d, :d].set(chain.W_cov).at[:, d:, d:].set(Su)
    off = jnp.concatenate([chain.c, jnp.zeros((H1, m))], -1)
    sm = smoother(m1, P1, F, Q, off, obs_mean, obs_prec)
    return PlanResult(sm.mean[:, d:], sm.cov[:, d:, d:], sm.mean[:, :d])


def nominal_starts(u_warm):
    """The nominals a re-plan starts from: the warm start (H, m) and the constant nominals 0, +1, −1
    (normalised actions) → (4, H, m)."""
    u_warm = jnp.asarray(u_warm)
    consts = jnp.asarray([0.0, 1.0, -1.0], u_warm.dtype)[:, None, None] * jnp.ones((3,) + u_warm.shape, u_warm.dtype)
    return jnp.concatenate([u_warm[None], consts])


def plan_objective(model, z_start, z_goal, goal_prec, u_prec, goal_mask, us):
    """−log p(goals, u_{1:H} | z_start) of the actions ``us`` (H, m) on the transition model linearised
    about their own roll-out: −log N(goals; roll-out, goal noise + propagated transition noise)
    + ½ Σ_t u_tᵀ diag(u_prec) u_t. On a linear model it is the exact negative log joint with the
    latents marginalised, so its minimiser is the posterior mean of the actions."""
    chain = linearise_local(model, z_start, us)
    d = z_start.shape[0]
    off = chain.c + jnp.einsum("tij,tj->ti", chain.B, us[:-1])    # the means follow f(z̄_t, u_t) exactly
    H = us.shape[0]
    sm = smoother(z_start, jnp.zeros((d, d)), chain.A, chain.W_cov, off, jnp.broadcast_to(z_goal, (H, d)),
                  goal_mask[:, None] * goal_prec[None, :])
    return -sm.log_evidence + 0.5 * jnp.sum(u_prec * us ** 2)


plan_objective_jit = jax.jit(plan_objective)

#: step sizes of the line search along the message-passing update (the first, 0, keeps the current nominal)
STEP_SIZES = (0.0, 0.25, 0.5, 1.0)


def _finite_or_inf(v):
    """The objective, +inf where it is not finite (a roll-out that left the model's range)."""
    return jnp.where(jnp.isfinite(v), v, jnp.inf)


def _line_search_step(objective, us, cost, target):
    """One damped move of the nominal ``us`` towards ``target`` (the posterior mean actions),
    projected onto [−1, 1], by the step of :data:`STEP_SIZES` with the lowest objective (step 0
    keeps ``us`` at its known ``cost``; a non-finite target entry moves nothing)."""
    steps = jnp.asarray(STEP_SIZES)
    target = jnp.clip(jnp.asarray(target), -1.0, 1.0)
    target = jnp.where(jnp.isfinite(target), target, us)
    cands = us[None] + steps[:, None, None] * (target - us)[None]
    costs = jnp.concatenate([jnp.reshape(cost, (1,)), jax.vmap(objective)(cands[1:])])
    k = jnp.argmin(costs)
    return cands[k], costs[k]


def refine_nominal(u0, iters: int, objective, posterior, *, traced: bool):
    """The iteration loop of the linearised planner, shared by every engine.

    ``posterior(us)`` solves the Gaussian planning problem linearised about the nominal actions
    ``us`` (a :class:`PlanResult`); ``objective(us)`` scores a nominal. From ``u0`` (clipped to
    [−1, 1]), ``iters`` times: solve, then :func:`_line_search_step`. ``traced``: inside ``jit``
    (``lax.scan``), or a Python loop for an inner solve that cannot be traced (the Julia engine's
    RxInfer solve). Returns (the posterior of the final nominal with ``actions`` = the nominal, its
    objective)."""
    us = jnp.clip(jnp.asarray(u0), -1.0, 1.0)
    carry = (us, objective(us))

    def body(c, _):
        nominal, cost = c
        return _line_search_step(objective, nominal, cost, posterior(nominal).actions), None

    if traced:
        carry, _ = jax.lax.scan(body, carry, None, length=iters)
    else:
        for _ in range(iters):
            carry, _ = body(carry, None)
    us, cost = carry
    return posterior(us)._replace(actions=us), cost


@partial(jax.jit, static_argnames=("iters",))
def plan_local(model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters: int = 5):
    """Planning as inference on a locally linear transition model (:class:`pyrxaif.inference.em.LocalLDS`).

    The transition node z_{t+1} ~ N(f(z_t, u_t), W(z_t, u_t)⁻¹) is nonlinear, so its messages are taken
    from its linearisation about a nominal trajectory (as in an iterated extended smoother):
    f(z, u) ≈ f(z̄_t, ū_t) + J_z (z − z̄_t) + J_u (u − ū_t). Each iteration (i) rolls the nominal
    latents out of f from the encoded start under the nominal actions ū (within the bound [−1, 1]),
    (ii) linearises f along it (:func:`linearise_local`), (iii) runs the forward-backward smoother on
    the stacked chain x_t = [z_t; u_t] with the action prior and the goal messages
    (:func:`plan_linearised`), and (iv) moves the nominal towards the posterior mean actions,
    projected onto the bound, by the step in :data:`STEP_SIZES` with the lowest
    :func:`plan_objective` (a damped update: the objective never increases; on a linear model the
    full step is exact). ``u_init`` (H, m) is the first nominal (the previous plan shifted by one step
    when re-planning); given several, (N, H, m), the iterations run from each (vmapped) and the plan
    with the lowest objective is returned (a nonlinear model can have several local optima).
    ``actions`` of the result is the final nominal; covariances and latents are the posterior of its
    linearisation. Shapes are static in N, H, d, m, K: re-planning never retraces.
    """
    args = (z_start, z_goal, goal_prec, u_prec, goal_mask)

    def refine(u0):
        return refine_nominal(u0, iters, lambda us: _finite_or_inf(plan_objective(model, *args, us)),
                              lambda us: plan_linearised(linearise_local(model, z_start, us), *args), traced=True)

    if u_init.ndim == 2:
        return refine(u_init)[0]
    results, costs = jax.vmap(refine)(u_init)
    return jax.tree_util.tree_map(lambda a: a[jnp.argmin(costs)], results)


def plan_local_with_solver(model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters: int = 5, *,
                           solve):
    """:func:`plan_local` with another engine's inner solve: the same loop (:func:`refine_nominal`,
    run eagerly), each linearised plan solved by ``solve`` (the signature of
    :func:`plan_linearised`; e.g. the Julia engine's RxInfer solve), the roll-outs, Jacobians and
    objectives by the jitted JAX functions. Several nominals (N, H, m): the lowest objective wins."""
    from pyrxaif.inference import em  # noqa: PLC0415  (em imports this module)

    if not isinstance(model, em.LocalLDS):
        raise TypeError(f"model: expected a pyrxaif.inference.em.LocalLDS, got {type(model).__name__}")
    if not isinstance(iters, (int, np.integer)) or isinstance(iters, bool) or iters < 0:
        raise ValueError(f"iters: expected a non-negative integer, got {iters!r}")
    if not callable(solve):
        raise TypeError(f"solve: expected a function with the signature of plan_linearised, got {type(solve).__name__}")
    z = jnp.asarray(V.as_float_array("z_start", z_start, ndim=1))
    inits = V.as_float_array("u_init", u_init)
    if inits.ndim not in (2, 3):
        raise ValueError(f"u_init: expected (H, m) or (N, H, m) nominal actions, got shape {inits.shape}")
    args = (z, z_goal, goal_prec, u_prec, goal_mask)
    runs = [refine_nominal(u0, int(iters), lambda us: _finite_or_inf(plan_objective_jit(model, *args, us)),
                           lambda us: solve(linearise_local_jit(model, z, us), *args), traced=False)
            for u0 in (inits if inits.ndim == 3 else inits[None])]
    best = min(range(len(runs)), key=lambda k: float(runs[k][1]))
    return runs[best][0]
