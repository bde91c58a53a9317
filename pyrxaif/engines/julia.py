"""The Julia engine: RxInfer.jl models and PyRxAIF's custom nodes, driven through juliacall.

Julia starts lazily, on the first call that needs it (``julia_module()``); ``import pyrxaif`` and
``import pyrxaif.engines.julia`` never start it. juliacall is imported only inside
``julia_module()``; where Julia cannot start, the caller gets ``JuliaUnavailableError`` with the
reason (see ``pyrxaif.engines.julia_status``).

Array layout (the one place where transposes happen)
----------------------------------------------------
pyrxaif is time-major and row-major: a sequence is a C-ordered ``(T, d)`` float64 array. PyRxAIF's
Julia functions take sequences as column-major ``(d, T)`` matrices (one column per time step) and
covariance sequences as ``(d, d, T)``. juliacall hands numpy arrays to Julia with the *same shape
and strides*, so ``to_julia_sequence(x)`` passes ``x.T`` made Fortran-contiguous: for a C-ordered
``x`` this is the same memory, no copy, and Julia sees a native-layout ``(d, T)`` matrix.
Results come back as Julia arrays; ``from_julia_sequence`` / ``from_julia_cov_sequence`` move the
time axis to the front and return C-ordered float64 copies. These layout functions are pure
numpy and are tested without Julia.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from pyrxaif import _validation as V

name = "julia"

__all__ = [
    "JuliaUnavailableError", "JuliaPackageLoadError", "JuliaError", "JuliaValueError", "map_julia_exception", "julia_module", "call", "available",
    "to_julia_sequence", "from_julia_sequence", "to_julia_cov_sequence", "from_julia_cov_sequence",
    "to_julia_matrix", "ab_to_julia_vec", "mvnormal_sequence", "smooth_lds", "learn_lds", "plan_lds",
    "tmaze_policy_free_energies", "tmaze_evaluate_policies", "plan_rollout", "plan_linear_gaussian",
    "plan_local",
]


class JuliaUnavailableError(RuntimeError):
    """Julia cannot be started here (not installed, cannot be installed, juliacall missing); the
    message says why. The CLI exits 3."""


class JuliaPackageLoadError(RuntimeError):
    """Julia started but ``using RxInfer, PyRxAIF`` failed: a bug or a broken installation, not a
    missing Julia. The message carries Julia's error text."""


class JuliaError(RuntimeError):
    """An error raised inside Julia; ``julia_type`` is the Julia exception type's name."""

    def __init__(self, julia_type: str, message: str):
        super().__init__(f"Julia {julia_type}: {message}")
        self.julia_type = julia_type
        self.julia_message = message


# Julia exception types that are the caller's fault: PyRxAIF's entry points throw ArgumentError /
# DimensionMismatch for bad arguments. Everything else (BoundsError, InexactError, MethodError,
# PosDefException, ...) raised inside Julia after the Python checks passed is an internal error
# and stays a JuliaError (RuntimeError), so a bug is not reported as bad input.
CALLER_FAULTS = ("ArgumentError", "DimensionMismatch")


class JuliaValueError(JuliaError, ValueError):
    """A Julia ArgumentError/DimensionMismatch: bad argument values or shapes."""


def map_julia_exception(julia_type: str, message: str) -> JuliaError:
    """The Python exception for a Julia exception of type ``julia_type`` with text ``message``."""
    base = julia_type.split("{", 1)[0].rsplit(".", 1)[-1]
    if base in CALLER_FAULTS:
        return JuliaValueError(base, message)
    return JuliaError(base, message)


_LOCK = threading.Lock()
_STATE: dict = {}


def _default_env() -> None:
    """Signal handling and threads as PySR sets them, only where the user has not chosen."""
    os.environ.setdefault("PYTHON_JULIACALL_HANDLE_SIGNALS", "yes")
    os.environ.setdefault("PYTHON_JULIACALL_THREADS", "auto")


def available() -> tuple[bool, str]:
    from pyrxaif.engines import julia_status  # noqa: PLC0415

    return tuple(julia_status())


def julia_module():
    """Start Julia once (juliacall), load RxInfer and PyRxAIF, and return the ``pyrxaif`` Julia module."""
    with _LOCK:
        if "jl" in _STATE:
            return _STATE["jl"]
        from pyrxaif.engines import julia_status  # noqa: PLC0415

        ok, reason = julia_status()
        if not ok:
            raise JuliaUnavailableError(f"Julia engine unavailable: {reason}")
        _default_env()
        try:
            import juliacall  # noqa: PLC0415  (resolves/installs Julia packages on first use)
        except Exception as exc:  # noqa: BLE001
            raise JuliaUnavailableError(f"Julia engine unavailable: juliacall failed to start Julia: "
                                        f"{exc.__class__.__name__}: {exc}") from exc
        jl = juliacall.newmodule("pyrxaif")
        try:
            jl.seval("using RxInfer, PyRxAIF")
        except Exception as exc:  # noqa: BLE001
            raise JuliaPackageLoadError(
                f"Julia started, but loading the Julia packages failed (`using RxInfer, PyRxAIF`); this is a "
                f"bug in pyrxaif's Julia code or a broken Julia installation, not a missing Julia. Julia's "
                f"error:\n{_julia_error_text(exc)}") from exc
        _STATE["jl"], _STATE["juliacall"] = jl, juliacall
        return jl


def _julia_error_text(exc: BaseException) -> str:
    """Julia's own ``showerror`` text of a juliacall exception (its str() where that fails)."""
    inner = getattr(exc, "exception", None)
    if inner is not None:
        try:
            import juliacall  # noqa: PLC0415  (only called once Julia runs)

            return str(juliacall.Main.seval("e -> sprint(showerror, e)")(inner))
        except Exception:  # noqa: BLE001  (fall back to juliacall's text)
            pass
    return f"{exc.__class__.__name__}: {exc}"


def _translate(exc: BaseException) -> BaseException:
    juliacall = _STATE.get("juliacall")
    if juliacall is not None and isinstance(exc, juliacall.JuliaError):
        jexc = exc.exception
        jl = _STATE["jl"]
        jtype = str(jl.seval("e -> string(nameof(typeof(e)))")(jexc))
        message = str(jl.seval("e -> sprint(showerror, e)")(jexc))
        return map_julia_exception(jtype, message)
    return exc


def call(function: str, *args, **kwargs):
    """Call ``PyRxAIF.<function>(args...; kwargs...)``; Julia errors become Python exceptions."""
    jl = julia_module()
    fn = jl.seval(f"PyRxAIF.{function}")
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from None


# ---------------------------------------------------------------------------------------------
# Layout conversion (pure numpy; no Julia)
# ---------------------------------------------------------------------------------------------
def to_julia_sequence(x) -> np.ndarray:
    """Time-major (T, d) → a Fortran-ordered (d, T) float64 array: Julia's column t is x[t]."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x: expected a time-major (T, d) array, got shape {x.shape}")
    return np.asfortranarray(x.T)


def from_julia_sequence(a) -> np.ndarray:
    """A Julia (d, T) matrix (or its numpy view) → a C-ordered time-major (T, d) float64 array."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"a: expected a (d, T) matrix from Julia, got shape {a.shape}")
    return np.ascontiguousarray(a.T)


def to_julia_cov_sequence(c) -> np.ndarray:
    """Time-major (T, d, d) → Fortran-ordered (d, d, T): Julia's ``C[:, :, t]`` is c[t]."""
    c = np.asarray(c, dtype=np.float64)
    if c.ndim != 3:
        raise ValueError(f"c: expected a (T, d, d) array, got shape {c.shape}")
    return np.asfortranarray(np.moveaxis(c, 0, -1))


def from_julia_cov_sequence(a) -> np.ndarray:
    """A Julia (d, d, T) array → a C-ordered (T, d, d) float64 array."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"a: expected a (d, d, T) array from Julia, got shape {a.shape}")
    return np.ascontiguousarray(np.moveaxis(a, -1, 0))


def to_julia_matrix(m) -> np.ndarray:
    """A matrix with the same indices on both sides (M[i, j] == Julia M[i+1, j+1]), column-major."""
    return np.asfortranarray(np.asarray(m, dtype=np.float64))


def ab_to_julia_vec(ab) -> np.ndarray:
    """[A B] (d, n) → its row-major vec (H_ij at i·n + j), the layout of q(vec H) on both engines."""
    ab = np.asarray(ab, dtype=np.float64)
    return np.ascontiguousarray(ab.reshape(-1))


def mvnormal_sequence(means, covs):
    """Time-major means (T, d) and covariances (T, d, d) → a batched pyrxaif MvNormal."""
    from pyrxaif.distributions import MvNormal  # noqa: PLC0415

    return MvNormal.from_mean_cov(np.asarray(means, np.float64), np.asarray(covs, np.float64))


def _cov_sequence(name: str, c, T: int, d: int) -> np.ndarray:
    """(T, d) diagonal variances or (T, d, d) covariances → checked (T, d, d)."""
    c = V.as_float_array(name, c)
    if c.shape == (T, d):
        if np.any(c <= 0):
            raise ValueError(f"{name}: expected positive variances, got minimum {float(c.min()):.3g}")
        return np.einsum("ti,ij->tij", c, np.eye(d))
    if c.shape != (T, d, d):
        raise ValueError(f"{name}: expected shape ({T}, {d}) (variances) or ({T}, {d}, {d}), got {c.shape}")
    V.check_positive_definite(name, c)
    return c


def _check_lds(y_mean, y_cov, u, ab, w, m1, v1):
    y_mean = V.as_float_array("y_mean", y_mean, ndim=2)
    T, d = y_mean.shape
    if T < 2:
        raise ValueError(f"y_mean: expected at least 2 time steps, got {T}")
    y_cov = _cov_sequence("y_cov", y_cov, T, d)
    u = V.as_float_array("u", u, ndim=2)
    if u.shape[0] != T - 1:
        raise ValueError(f"u: expected {T - 1} controls (one per transition), got shape {u.shape}")
    m = u.shape[1]
    if ab is not None:
        ab = V.as_float_array("ab", ab, shape=(d, d + m))
    if w is not None:
        w = V.as_float_array("w", w, shape=(d, d))
        V.check_positive_definite("w", w)
    m1 = V.as_float_array("m1", m1, shape=(d,))
    v1 = V.as_float_array("v1", v1, shape=(d, d))
    V.check_positive_definite("v1", v1)
    return y_mean, y_cov, u, ab, w, m1, v1


def _fetch(result, key: str) -> np.ndarray:
    return np.asarray(result[key], dtype=np.float64)


def smooth_lds(y_mean, y_cov, u, ab, w, m1, v1):
    """Smoothed q(z_t) of z' ~ N(A z + B u, W⁻¹) with known [A B] (d, d+m) and W, on RxInfer.

    y_mean (T, d), y_cov (T, d) variances or (T, d, d): encoder messages N(z_t; y_mean, y_cov).
    u (T−1, m) controls. Returns (MvNormal with batch (T,), Bethe free energy = −log evidence)."""
    y_mean, y_cov, u, ab, w, m1, v1 = _check_lds(y_mean, y_cov, u, ab, w, m1, v1)
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

    y_mean, y_cov, u, ab0, _, m1, v1 = _check_lds(y_mean, y_cov, u, ab_prior_mean, None, m1, v1)
    d, n = ab0.shape
    ab_cov = V.as_float_array("ab_prior_cov", ab_prior_cov, shape=(d * n, d * n))
    V.check_positive_definite("ab_prior_cov", ab_cov)
    w_inv = V.as_float_array("w_inv_scale", w_inv_scale, shape=(d, d))
    V.check_positive_definite("w_inv_scale", w_inv)
    if not np.isfinite(w_df) or w_df <= d - 1:
        raise ValueError(f"w_df: expected degrees of freedom > {d - 1}, got {w_df}")
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations: expected a positive integer, got {iterations!r}")
    res = call("py_learn_lds", to_julia_sequence(y_mean), to_julia_cov_sequence(y_cov), to_julia_sequence(u),
               m1, to_julia_matrix(v1), ab_to_julia_vec(ab0), to_julia_matrix(ab_cov), float(w_df),
               to_julia_matrix(w_inv), int(iterations))
    return {
        "z": mvnormal_sequence(from_julia_sequence(res["means"]), from_julia_cov_sequence(res["covs"])),
        "ab": MvNormal.from_mean_cov(_fetch(res, "ab_mean"), _fetch(res, "ab_cov")),
        "w": Wishart.create(float(res["w_df"]), _fetch(res, "w_inv_scale")),
        "free_energy": _fetch(res, "free_energy"),
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
    """``pyrxaif.inference.planning.plan_local`` with RxInfer doing each linearised plan.

    The same iterated linearisation: the nominal roll-out and Jacobians come from
    ``planning.linearise_local`` (JAX), the Gaussian planning problem of each linearisation is
    solved by ``solve`` (default ``plan_linear_gaussian``, i.e. in Julia; any function with the
    signature of ``planning.plan_linearised``), and the nominal moves towards the posterior mean
    actions, projected onto [−1, 1], by the step of ``planning.STEP_SIZES`` with the lowest
    ``planning.plan_objective`` (evaluated in JAX); ``iters`` + 1 solves per plan and nominal.
    Several nominals (N, H, m): the plan with the lowest objective is returned."""
    import jax.numpy as jnp  # noqa: PLC0415

    from pyrxaif.inference import em, planning  # noqa: PLC0415

    if not isinstance(model, em.LocalLDS):
        raise TypeError(f"model: expected a pyrxaif.inference.em.LocalLDS, got {type(model).__name__}")
    if not isinstance(iters, (int, np.integer)) or iters < 0:
        raise ValueError(f"iters: expected a non-negative integer, got {iters!r}")
    solve = plan_linear_gaussian if solve is None else solve
    z = V.as_float_array("z_start", z_start, ndim=1)
    inits = V.as_float_array("u_init", u_init)
    if inits.ndim not in (2, 3):
        raise ValueError(f"u_init: expected (H, m) or (N, H, m) nominal actions, got shape {inits.shape}")
    args = (z, z_goal, goal_prec, u_prec, goal_mask)
    steps = np.asarray(planning.STEP_SIZES)

    def objective(us):
        v = float(planning.plan_objective_jit(model, *args, jnp.asarray(us)))
        return v if np.isfinite(v) else np.inf

    best, best_cost = None, np.inf
    for u0 in (inits if inits.ndim == 3 else inits[None]):
        us = np.clip(u0, -1.0, 1.0)
        cost = objective(us)
        for _ in range(int(iters)):
            res = solve(planning.linearise_local_jit(model, z, jnp.asarray(us)), *args)
            target = np.clip(np.asarray(res.actions), -1.0, 1.0)
            target = np.where(np.isfinite(target), target, us)
            cands = us[None] + steps[:, None, None] * (target - us)[None]
            costs = np.array([cost] + [objective(c) for c in cands[1:]])
            k = int(np.argmin(costs))
            us, cost = cands[k], costs[k]
        res = solve(planning.linearise_local_jit(model, z, jnp.asarray(us)), *args)
        if best is None or cost < best_cost:
            best, best_cost = res._replace(actions=us), cost
    return best


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
    G = np.array(_fetch(res, "G"), dtype=np.float64)
    A_post = np.ascontiguousarray(np.moveaxis(np.array(_fetch(res, "A"), dtype=np.float64), -1, 0))
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
    groups = [np.ascontiguousarray(np.asarray(g, dtype=np.float64)) for g in model.log_B_plan]
    res = call("py_plan_rollout", np.ascontiguousarray(np.asarray(model.succ, dtype=np.int64)),
               np.ascontiguousarray(np.asarray(model.log_T, dtype=np.float64)),
               np.ascontiguousarray(np.asarray(model.log_C, dtype=np.float64)),
               np.asarray(model.log_pi, dtype=np.float64), np.ascontiguousarray(b0),
               bool(cfg.planning), bool(cfg.dynamics), cfg.observation, float(cfg.damping), int(cfg.n_iter),
               float(cfg.obs_weight), int(horizon), *groups)
    single = np.ascontiguousarray(np.moveaxis(np.array(_fetch(res, "log_single"), dtype=np.float64), -1, 0))
    return ro.PlanResult(np.array(_fetch(res, "log_q_u0"), dtype=np.float64),
                         np.array(_fetch(res, "free_energy"), dtype=np.float64),
                         np.array(_fetch(res, "channel_change"), dtype=np.float64), None, single, None,
                         np.float64(_fetch(res, "final_free_energy")))
