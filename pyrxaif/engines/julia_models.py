"""PyRxAIF's models, called from Python: the Julia engine's model wrappers.

Each function checks its arguments in Python (before Julia starts), converts the arrays to Julia's
layout (``julia_layout``), calls one ``PyRxAIF.py_*`` function (``julia_runtime.call``) and converts
the result back: LDS smoothing / learning / planning, the linearised planner's inner solve, T-maze
policy evaluation and grid-world roll-out planning.
"""

from __future__ import annotations

import numpy as np

from pyrxaif import checks as V
from pyrxaif.engines.julia_layout import (ab_to_julia_vec, from_julia_cov_sequence, from_julia_sequence,
                                          mvnormal_sequence, result_array, to_julia_cov_sequence, to_julia_matrix,
                                          to_julia_sequence)
from pyrxaif.engines.julia_runtime import call
from pyrxaif.engines.lds_arguments import check_lds_arguments, check_lds_prior

__all__ = ["smooth_lds", "learn_lds", "plan_lds", "plan_linear_gaussian", "plan_local", "tmaze_policy_free_energies",
           "tmaze_evaluate_policies", "plan_rollout"]


def smooth_lds(y_mean, y_cov, u, ab, w, m1, v1):
    """Smoothed q(z_t) of z' ~ N(A z + B u, W⁻¹) with known [A B] (d, d+m) and W, on RxInfer.

    y_mean (T, d), y_cov (T, d) variances or (T, d, d): encoder messages N(z_t; y_mean, y_cov).
    u (T−1, m) controls. Returns (MvNormal with batch (T,), Bethe free energy = −log evidence)."""
    y_mean, y_cov, u, ab, w, m1, v1 = check_lds_arguments(y_mean, y_cov, u, ab, w, m1, v1)
    if ab is None or w is None:
        raise TypeError("ab, w: smooth_lds needs known [A B] and W (use learn_lds to learn them)")
    res = call("py_smooth_lds", to_julia_sequence(y_mean), to_julia_cov_sequence(y_cov), to_julia_sequence(u),
               ab_to_julia_vec(ab), to_julia_matrix(w), m1, to_julia_matrix(v1))
    q = mvnormal_sequence(from_julia_sequence(res["means"]), from_julia_cov_sequence(res["covs"]))
    return q, float(np.asarray(res["free_energy"], np.float64).reshape(-1)[-1])


def learn_lds(y_mean, y_cov, u, m1, v1, ab_prior_mean, ab_prior_cov, w_df, w_inv_scale, iterations: int = 20):
    """VMP learning of q(z) q(vec[A B]) q(W) on RxInfer (PyRxAIF's ControlledTransition node).

    Priors: vec[A B] (row-major) ~ N(ab_prior_mean (d, d+m), ab_prior_cov (d(d+m), d(d+m))),
    W ~ Wishart(w_df, inv scale w_inv_scale). Returns a dict: ``z`` (MvNormal, batch T), ``ab``
    (MvNormal over the row-major vec), ``w`` (Wishart), ``free_energy`` (per iteration)."""
    from pyrxaif.distributions import MvNormal, Wishart  # noqa: PLC0415

    y_mean, y_cov, u, ab0, _, m1, v1 = check_lds_arguments(y_mean, y_cov, u, ab_prior_mean, None, m1, v1)
    d, n = ab0.shape
    ab_cov, w_df, w_inv, iterations = check_lds_prior(d, n, ab_prior_cov, w_df, w_inv_scale, iterations)
    res = call("py_learn_lds", to_julia_sequence(y_mean), to_julia_cov_sequence(y_cov), to_julia_sequence(u),
               m1, to_julia_matrix(v1), ab_to_julia_vec(ab0), to_julia_matrix(ab_cov), float(w_df),
               to_julia_matrix(w_inv), int(iterations))
    return {
        "z": mvnormal_sequence(from_julia_sequence(res["means"]), from_julia_cov_sequence(res["covs"])),
        "ab": MvNormal.from_mean_cov(result_array(res, "ab_mean"), result_array(res, "ab_cov")),
        "w": Wishart.create(float(res["w_df"]), result_array(res, "w_inv_scale")),
        "free_energy": result_array(res, "free_energy"),
    }


def plan_lds(z1_mean, z1_cov, goal_mean, goal_cov, ab, w, u_prior_cov, horizon: int, iterations: int = 10,
             goal_steps=None):
    """Planning as inference on RxInfer: q(u_1:H) given z_1, goal messages N(goal_mean, goal_cov) on
    the states z_k for k in ``goal_steps`` (1-based, in [2, horizon + 1]; default: the final state
    z_{H+1}) and fixed [A B], W. The Julia graph ends at the last goal; controls after it keep
    their prior N(0, u_prior_cov).

    Returns an MvNormal with batch (horizon,) over the controls (act with the first mean)."""
    z1_mean = V.as_float_array("z1_mean", z1_mean, ndim=1)
    d = z1_mean.shape[0]
    z1_cov = V.as_float_array("z1_cov", z1_cov, shape=(d, d))
    V.check_positive_definite("z1_cov", z1_cov)
    goal_mean = V.as_float_array("goal_mean", goal_mean, shape=(d,))
    goal_cov = V.as_float_array("goal_cov", goal_cov, shape=(d, d))
    V.check_positive_definite("goal_cov", goal_cov)
    ab = V.as_float_array("ab", ab, ndim=2)
    if ab.shape[0] != d or ab.shape[1] <= d:
        raise ValueError(f"ab: expected shape ({d}, {d}+m) with m ≥ 1, got {ab.shape}")
    m = ab.shape[1] - d
    w = V.as_float_array("w", w, shape=(d, d))
    V.check_positive_definite("w", w)
    u_prior_cov = V.as_float_array("u_prior_cov", u_prior_cov, shape=(m, m))
    V.check_positive_definite("u_prior_cov", u_prior_cov)
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
    if not isinstance(iterations, (int, np.integer)) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"iterations: expected a positive integer, got {iterations!r}")
    steps = np.array([horizon + 1] if goal_steps is None else goal_steps).reshape(-1)
    if (steps.size == 0 or not np.issubdtype(steps.dtype, np.integer) or steps.min() < 2
            or steps.max() > horizon + 1 or len(set(steps.tolist())) != steps.size):
        raise ValueError(f"goal_steps: expected distinct integers in [2, {horizon + 1}] (1-based states z_k), "
                         f"got {goal_steps!r}")
    res = call("py_plan_lds", z1_mean, to_julia_matrix(z1_cov), goal_mean, to_julia_matrix(goal_cov),
               ab_to_julia_vec(ab), to_julia_matrix(w), to_julia_matrix(u_prior_cov), int(horizon), int(iterations),
               steps.astype(np.int64))
    return mvnormal_sequence(from_julia_sequence(res["u_means"]), from_julia_cov_sequence(res["u_covs"]))


def plan_linear_gaussian(chain, z_start, z_goal, goal_prec, u_prec, goal_mask):
    """``pyrxaif.inference.planning.plan_linearised`` by RxInfer (``PyRxAIF.plan_linear_gaussian``).

    ``chain`` a ``planning.LinearisedChain`` (A (H−1, d, d), B (H−1, d, m), c (H−1, d), W_cov
    (H−1, d, d)); start z_1 = ``z_start`` known; goal message N(z_goal, diag(goal_prec·goal_mask_t)⁻¹)
    on z_t where goal_mask_t > 0 (t ≥ 2; a goal on the known z_1 does not change the plan);
    u_t ~ N(0, diag(u_prec)⁻¹). Returns a ``planning.PlanResult`` (numpy): u_H, which no transition
    uses, keeps its prior, as in the JAX smoother."""
    from pyrxaif.inference import planning  # noqa: PLC0415

    A = V.as_float_array("chain.A", chain.A, ndim=3)
    H1, d = A.shape[0], A.shape[1]
    if H1 < 1 or A.shape[2] != d:
        raise ValueError(f"chain.A: expected shape (H-1, d, d) with H >= 2, got {A.shape}")
    B = V.as_float_array("chain.B", chain.B, ndim=3)
    if B.shape[:2] != (H1, d):
        raise ValueError(f"chain.B: expected shape ({H1}, {d}, m), got {B.shape}")
    m = B.shape[2]
    c = V.as_float_array("chain.c", chain.c, shape=(H1, d))
    S = V.as_float_array("chain.W_cov", chain.W_cov, shape=(H1, d, d))
    for k in range(H1):
        V.check_positive_definite(f"chain.W_cov[{k}]", S[k])
    z_start = V.as_float_array("z_start", z_start, shape=(d,))
    z_goal = V.as_float_array("z_goal", z_goal, shape=(d,))
    goal_prec = np.broadcast_to(V.check_positive("goal_prec", goal_prec), (d,)).astype(np.float64)
    u_prec = np.broadcast_to(V.check_positive("u_prec", u_prec), (m,)).astype(np.float64)
    mask = V.as_float_array("goal_mask", goal_mask, shape=(H1 + 1,))
    if np.any(mask < 0):
        raise ValueError(f"goal_mask: expected non-negative weights, got {mask}")
    steps = np.flatnonzero(mask[1:] > 0) + 1                     # 0-based state indices t ≥ 1
    if steps.size == 0:
        raise ValueError("goal_mask: expected a goal on at least one state after the start")
    goal_covs = np.stack([np.diag(1.0 / (goal_prec * mask[t])) for t in steps])
    u_cov = np.diag(1.0 / u_prec)
    res = call("py_plan_linear_gaussian", z_start, to_julia_cov_sequence(A), to_julia_cov_sequence(B),
               to_julia_sequence(c), to_julia_cov_sequence(S), z_goal, to_julia_cov_sequence(goal_covs),
               (steps + 1).astype(np.int64), to_julia_matrix(u_cov))
    u_means = np.concatenate([from_julia_sequence(res["u_means"]), np.zeros((1, m))])
    u_covs = np.concatenate([from_julia_cov_sequence(res["u_covs"]), u_cov[None]])
    z_means = np.concatenate([z_start[None], from_julia_sequence(res["z_means"])])
    return planning.PlanResult(u_means, u_covs, z_means)


def plan_local(model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters: int = 5, *, solve=None):
    """``pyrxaif.inference.planning.plan_local`` with RxInfer solving each linearised plan: the shared
    loop ``planning.plan_local_with_solver`` with ``solve`` = :func:`plan_linear_gaussian` (or any
    function with the signature of ``planning.plan_linearised``)."""
    from pyrxaif.inference import planning  # noqa: PLC0415

    return planning.plan_local_with_solver(model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters,
                                           solve=plan_linear_gaussian if solve is None else solve)


def tmaze_policy_free_energies(a_concentration, c_logits, d_probs, b_matrices, policies, *, meta: str = "GFE",
                               iterations: int = 10, burnin: int = 2):
    """Free energy (bits) of each policy on the T-maze model in RxInfer (GoalObservation nodes).

    a_concentration (16, 8) matrix-Dirichlet prior on A; c_logits (16,) log goal prior (unnormalised);
    d_probs (8,) initial state; b_matrices (U, 8, 8) with B_u[i, j] = p(z'=i | z=j, u); policies
    (P, H) integer actions in [0, U). Returns a (P,) array: the node free energy averaged over
    iterations after ``burnin``, in bits."""
    V.check_choice("meta", meta, ("GFE", "BFE"))
    a = V.check_positive("a_concentration", a_concentration)
    if a.ndim != 2:
        raise ValueError(f"a_concentration: expected a (m, n) matrix, got shape {a.shape}")
    mo, ns = a.shape
    c = V.as_float_array("c_logits", c_logits, shape=(mo,))
    dp = V.check_probability_vectors("d_probs", d_probs)
    if dp.shape != (ns,):
        raise ValueError(f"d_probs: expected shape ({ns},), got {dp.shape}")
    b = V.check_probability_vectors("b_matrices", b_matrices, axis=-2)
    if b.ndim != 3 or b.shape[1:] != (ns, ns):
        raise ValueError(f"b_matrices: expected shape (U, {ns}, {ns}), got {b.shape}")
    pol = np.asarray(policies)
    if pol.ndim != 2 or not np.issubdtype(pol.dtype, np.integer) or pol.min() < 0 or pol.max() >= b.shape[0]:
        raise ValueError(f"policies: expected a (P, H) integer array with actions in [0, {b.shape[0]}), "
                         f"got shape {pol.shape}, dtype {pol.dtype}")
    if not 0 <= burnin < iterations:
        raise ValueError(f"burnin: expected 0 <= burnin < iterations={iterations}, got {burnin}")
    res = call("py_tmaze_policy_free_energies", to_julia_matrix(a), c, dp,
               np.asfortranarray(np.moveaxis(b, 0, -1)), np.asfortranarray(pol.T.astype(np.int64) + 1),
               meta, int(iterations), int(burnin))
    return np.asarray(res, dtype=np.float64).copy()


def tmaze_evaluate_policies(a_concentration, c_logits, d_probs, trans, x, observed, *, objective: str = "gfe",
                            iterations: int = 50, burn_in: int = 10, newton_iterations: int = 20):
    """Policies scored on the T-maze model in RxInfer, with past outcomes clamped.

    a_concentration (m, n) matrix-Dirichlet prior on A; c_logits (T, m) goal log-probabilities per
    step; d_probs (n,) initial state; trans (P, T, n, n) transition matrix of each policy's t-th
    action (B[z', z]); x (T, m) one-hot observations, used where observed[t] (T bools).
    Returns (G (P,) in bits, A_posterior (P, m, n) concentrations of q(A) after the iterations).
    The same quantities as ``pyrxaif.inference.policy.evaluate_policies`` (see docs/julia.md for
    the one difference: no importance-sampled GFE message to A for a missing outcome)."""
    V.check_choice("objective", objective, ("gfe", "bethe"))
    a = V.check_positive("a_concentration", a_concentration)
    if a.ndim != 2:
        raise ValueError(f"a_concentration: expected a (m, n) matrix, got shape {a.shape}")
    mo, ns = a.shape
    tr = V.check_probability_vectors("trans", trans, axis=-2)
    if tr.ndim != 4 or tr.shape[2:] != (ns, ns):
        raise ValueError(f"trans: expected shape (P, T, {ns}, {ns}), got {tr.shape}")
    P, T = tr.shape[:2]
    c = V.as_float_array("c_logits", c_logits, shape=(T, mo))
    dp = V.check_probability_vectors("d_probs", d_probs)
    if dp.shape != (ns,):
        raise ValueError(f"d_probs: expected shape ({ns},), got {dp.shape}")
    xs = V.as_float_array("x", x, shape=(T, mo))
    obs = np.asarray(observed, dtype=bool).reshape(-1)
    if obs.shape != (T,):
        raise ValueError(f"observed: expected {T} flags, got shape {np.shape(observed)}")
    if np.any(obs) and not np.allclose(np.sort(xs[obs], axis=1)[:, -1], 1.0):
        raise ValueError("x: expected one-hot rows where observed")
    for label, v in (("iterations", iterations), ("newton_iterations", newton_iterations)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{label}: expected a positive integer, got {v!r}")
    if not 0 <= burn_in < iterations:
        raise ValueError(f"burn_in: expected 0 <= burn_in < iterations={iterations}, got {burn_in}")
    res = call("py_tmaze_evaluate", to_julia_matrix(a), np.asfortranarray(c.T), dp,
               np.asfortranarray(np.transpose(tr, (2, 3, 1, 0))), np.asfortranarray(xs.T), obs.astype(np.int64),
               "GFE" if objective == "gfe" else "BFE", int(iterations), int(burn_in), int(newton_iterations))
    G = np.array(result_array(res, "G"), dtype=np.float64)
    A_post = np.ascontiguousarray(np.moveaxis(np.array(result_array(res, "A"), dtype=np.float64), -1, 0))
    return G, A_post


def plan_rollout(model, log_b0, cfg, horizon: int):
    """Grid-world planning (BP, VBP, RM-MP, AIF-MP, Nuijten-MP) by PyRxAIF's ``plan_rollout``.

    ``model`` a ``pyrxaif.inference.rollout.RolloutModel``, ``log_b0`` (S, K) the current log-belief
    over (state, layout), ``cfg`` a ``MethodConfig`` (``rollout.method_config``). Returns a
    ``rollout.PlanResult`` with ``log_q_u0``, ``free_energy``, ``channel_change``,
    ``final_free_energy`` and ``log_single`` (H + 1, S, K); the region beliefs and channels stay in
    Julia (``None``)."""
    from pyrxaif.inference import rollout as ro  # noqa: PLC0415

    if not isinstance(cfg, ro.MethodConfig):
        raise TypeError(f"cfg: expected a MethodConfig (pyrxaif.inference.rollout.method_config), got "
                        f"{type(cfg).__name__}")
    b0 = ro.check_plan_inputs(model, log_b0, horizon)
    groups = [np.ascontiguousarray(np.asarray(g, dtype=np.float64)) for g in model.log_A_plan]
    res = call("py_plan_rollout", np.ascontiguousarray(np.asarray(model.succ, dtype=np.int64)),
               np.ascontiguousarray(np.asarray(model.log_B, dtype=np.float64)),
               np.ascontiguousarray(np.asarray(model.log_C, dtype=np.float64)),
               np.asarray(model.log_E, dtype=np.float64), np.ascontiguousarray(b0),
               bool(cfg.planning), bool(cfg.dynamics), cfg.observation, float(cfg.damping), int(cfg.n_iter),
               float(cfg.obs_weight), int(horizon), *groups)
    single = np.ascontiguousarray(np.moveaxis(np.array(result_array(res, "log_single"), dtype=np.float64), -1, 0))
    return ro.PlanResult(np.array(result_array(res, "log_q_u0"), dtype=np.float64),
                         np.array(result_array(res, "free_energy"), dtype=np.float64),
                         np.array(result_array(res, "channel_change"), dtype=np.float64), None, single, None,
                         np.float64(result_array(res, "final_free_energy")))
