"""The Julia bridge: array layout, error mapping, input validation (no Julia needed), and real
Julia calls (marker ``julia``; skipped with the reason where Julia cannot start)."""

import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif import rxinfer as pj
from pyrxaif.engines import julia_errors, julia_layout, julia_status
from pyrxaif.engines import julia_models as ej
from pyrxaif.engines import julia_runtime as jr

_JULIA_OK, _JULIA_WHY = julia_status()


# --------------------------------------------------------------------------------------------
# layout (pure numpy)
# --------------------------------------------------------------------------------------------
def test_sequence_to_julia_is_the_same_memory_column_major():
    x = np.arange(12.0).reshape(4, 3)                  # T = 4 steps, d = 3
    j = julia_layout.to_julia_sequence(x)
    assert j.shape == (3, 4) and j.flags.f_contiguous
    assert np.shares_memory(j, x)                      # C-ordered (T, d) == F-ordered (d, T): no copy
    for t in range(4):
        np.testing.assert_array_equal(j[:, t], x[t])   # Julia column t is time step t
    # what Julia sees column-major is the flat memory in column order
    np.testing.assert_array_equal(j.reshape(-1, order="F"), x.reshape(-1))


def test_sequence_from_julia_round_trip_and_layout():
    x = np.random.default_rng(0).normal(size=(5, 2))
    back = julia_layout.from_julia_sequence(julia_layout.to_julia_sequence(x))
    assert back.flags.c_contiguous and back.shape == (5, 2)
    np.testing.assert_array_equal(back, x)
    # a Julia (d, T) result exposed by np.asarray is Fortran-ordered
    jl = np.asfortranarray(np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]))   # d = 2, T = 3
    np.testing.assert_array_equal(julia_layout.from_julia_sequence(jl), [[1, 10], [2, 20], [3, 30]])


def test_cov_sequence_layout():
    c = np.stack([np.eye(2) * (t + 1) + t * 0.1 for t in range(3)])            # (T, d, d)
    j = julia_layout.to_julia_cov_sequence(c)
    assert j.shape == (2, 2, 3) and j.flags.f_contiguous
    for t in range(3):
        np.testing.assert_array_equal(j[:, :, t], c[t])
    np.testing.assert_array_equal(julia_layout.from_julia_cov_sequence(j), c)
    with pytest.raises(ValueError, match=r"c: expected a \(T, d, d\) array"):
        julia_layout.to_julia_cov_sequence(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"x: expected a time-major \(T, d\) array"):
        julia_layout.to_julia_sequence(np.zeros(3))


def test_ab_vec_is_the_transition_rules_row_major_vec():
    from pyrxaif.rules.transition import ab_matrix

    ab = np.arange(6.0).reshape(2, 3)                    # d = 2, n = 3
    v = julia_layout.ab_to_julia_vec(ab)
    np.testing.assert_array_equal(np.asarray(ab_matrix(v, 2, 3)), ab)
    # Julia's permutedims(reshape(v, n, d)) == ab: reshape column-major into (n, d), transpose
    np.testing.assert_array_equal(v.reshape(3, 2, order="F").T, ab)


def test_mvnormal_sequence_from_moments():
    means = np.array([[0.0, 1.0], [2.0, -1.0]])
    covs = np.array([[[2.0, 0.3], [0.3, 1.0]], [[1.0, 0.0], [0.0, 4.0]]])
    q = julia_layout.mvnormal_sequence(means, covs)
    np.testing.assert_allclose(np.asarray(q.mean), means, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(q.cov), covs, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jtype, cls", [("ArgumentError", ValueError), ("DimensionMismatch", ValueError),
                                        ("LinearAlgebra.PosDefException", RuntimeError),
                                        ("BoundsError", RuntimeError), ("InexactError", RuntimeError),
                                        ("MethodError", RuntimeError), ("ErrorException", RuntimeError)])
def test_julia_exception_mapping(jtype, cls):
    """Only the caller's faults (the ArgumentError / DimensionMismatch PyRxAIF throws for bad
    arguments) become ValueError; a BoundsError or MethodError inside Julia is an internal error."""
    exc = julia_errors.map_julia_exception(jtype, "bad thing happened")
    assert isinstance(exc, cls) and isinstance(exc, julia_errors.JuliaError)
    assert "bad thing happened" in str(exc) and exc.julia_type == jtype.rsplit(".", 1)[-1]
    if cls is RuntimeError:
        assert not isinstance(exc, (ValueError, TypeError))


def test_package_load_failure_is_not_reported_as_missing_julia(monkeypatch):
    """Julia found and started, `using RxInfer, PyRxAIF` fails: JuliaPackageLoadError with Julia's
    text (the CLI does not turn it into exit 3 "engine unavailable")."""
    import sys
    import types

    class FakeJuliaError(Exception):
        pass

    class FakeModule:
        def seval(self, code):
            raise FakeJuliaError("LoadError: UndefVarError: `WishartFast` not defined in `PyRxAIF`")

    fake = types.SimpleNamespace(newmodule=lambda name: FakeModule(), JuliaError=FakeJuliaError)
    monkeypatch.setitem(sys.modules, "juliacall", fake)
    monkeypatch.setattr(jr, "julia_status", lambda *a, **k: jr.JuliaStatus(True, "Julia found"))
    monkeypatch.setattr(jr, "_STATE", {})
    with pytest.raises(jr.JuliaPackageLoadError, match="not a missing Julia") as info:
        jr.julia_module()
    assert "UndefVarError: `WishartFast`" in str(info.value)
    assert not isinstance(info.value, jr.JuliaUnavailableError)


def test_unavailable_julia_refuses_with_reason(monkeypatch):
    monkeypatch.setattr(jr, "julia_status", lambda *a, **k: jr.JuliaStatus(False, "no Julia here"))
    monkeypatch.setattr(jr, "_STATE", {})
    with pytest.raises(jr.JuliaUnavailableError, match="Julia engine unavailable: no Julia here"):
        jr.julia_module()


def _lds_args(T=5, d=2, m=1):
    rng = np.random.default_rng(1)
    return dict(y_mean=rng.normal(size=(T, d)), y_cov=np.full((T, d), 0.1), u=rng.normal(size=(T - 1, m)),
                ab=np.hstack([0.9 * np.eye(d), np.ones((d, m))]), w=np.eye(d) * 4.0, m1=np.zeros(d), v1=np.eye(d))


@pytest.mark.parametrize("key, value, match", [
    ("y_mean", np.zeros(5), r"y_mean: expected a 2-d array"),
    ("y_cov", -np.ones((5, 2)), r"y_cov: expected positive variances"),
    ("y_cov", np.ones((5, 3)), r"y_cov: expected shape \(5, 2\)"),
    ("u", np.zeros((5, 1)), r"u: expected 4 controls"),
    ("ab", np.zeros((2, 2)), r"ab: expected shape \(2, 3\)"),
    ("w", np.array([[1.0, 2.0], [2.0, 1.0]]), r"w: expected a positive-definite matrix"),
    ("m1", np.array([np.nan, 0.0]), r"m1: expected finite values"),
])
def test_smooth_lds_validates_before_starting_julia(monkeypatch, key, value, match):
    monkeypatch.setattr(jr, "julia_module", lambda: pytest.fail("Julia must not start on invalid input"))
    args = _lds_args()
    args[key] = value
    with pytest.raises(ValueError, match=match):
        ej.smooth_lds(**args)


def test_other_entry_points_validate(monkeypatch):
    monkeypatch.setattr(jr, "julia_module", lambda: pytest.fail("Julia must not start on invalid input"))
    a = _lds_args()
    with pytest.raises(ValueError, match="w_df: expected degrees of freedom > 1"):
        ej.learn_lds(a["y_mean"], a["y_cov"], a["u"], a["m1"], a["v1"], a["ab"], np.eye(6), 0.5, np.eye(2))
    with pytest.raises(ValueError, match="iterations: expected a positive integer"):
        ej.learn_lds(a["y_mean"], a["y_cov"], a["u"], a["m1"], a["v1"], a["ab"], np.eye(6), 4.0, np.eye(2), 0)
    with pytest.raises(ValueError, match="horizon: expected a positive integer"):
        ej.plan_lds(np.zeros(2), np.eye(2), np.ones(2), np.eye(2), a["ab"], a["w"], np.eye(1), 0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="iterations: expected a positive integer"):
            ej.plan_lds(np.zeros(2), np.eye(2), np.ones(2), np.eye(2), a["ab"], a["w"], np.eye(1), 3, iterations=bad)
    with pytest.raises(ValueError, match=r"ab: expected shape \(2, 2\+m\)"):
        ej.plan_lds(np.zeros(2), np.eye(2), np.ones(2), np.eye(2), np.eye(2), a["w"], np.eye(1), 3)
    ok = dict(a_concentration=np.ones((4, 2)), c_logits=np.zeros(4), d_probs=np.array([0.5, 0.5]),
              b_matrices=np.stack([np.eye(2), np.eye(2)[::-1]]), policies=np.array([[0, 1]]))
    with pytest.raises(ValueError, match="meta: unknown value 'EFE'"):
        ej.tmaze_policy_free_energies(**ok, meta="EFE")
    with pytest.raises(ValueError, match="policies: expected a \\(P, H\\) integer array with actions in \\[0, 2\\)"):
        ej.tmaze_policy_free_energies(**{**ok, "policies": np.array([[0, 2]])})
    with pytest.raises(ValueError, match="b_matrices: expected probabilities summing to 1 along axis -2"):
        ej.tmaze_policy_free_energies(**{**ok, "b_matrices": np.ones((2, 2, 2))})


# --------------------------------------------------------------------------------------------
# pyrxaif.rxinfer.infer: model names and data conversion (pure Python)
# --------------------------------------------------------------------------------------------
COIN = """
@model function coin(y, a, b)
    θ ~ Beta(a, b)
    y .~ Bernoulli(θ)
end
"""


def test_model_name_from_source_or_name():
    assert pj.model_name(COIN) == ("coin", COIN)
    assert pj.model_name("PyRxAIF.lds_model") == ("PyRxAIF.lds_model", None)
    two = COIN + "\n@model function other(x)\n    x ~ Normal(mean = 0.0, var = 1.0)\nend\n"
    with pytest.raises(ValueError, match="defines several models"):
        pj.model_name(two)
    assert pj.model_name(two, name="other")[0] == "other"
    with pytest.raises(ValueError, match="name: 'nope' is not defined"):
        pj.model_name(two, name="nope")
    with pytest.raises(ValueError, match="neither RxInfer source"):
        pj.model_name("x = 1; rm -rf")
    with pytest.raises(TypeError, match="model: expected RxInfer source text"):
        pj.model_name(42)


def test_julia_data_kinds():
    assert pj.julia_data(3) == ("int", 3)
    assert pj.julia_data(np.float64(2.5)) == ("float", 2.5)
    kind, v = pj.julia_data([1.0, 0.0, 1.0])
    assert kind == "vector" and v.dtype == np.float64 and v.tolist() == [1.0, 0.0, 1.0]
    kind, rows = pj.julia_data(np.arange(6.0).reshape(3, 2))          # time-major: 3 steps of dim 2
    assert kind == "sequence" and [r.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]
    kind, m = pj.julia_data(pj.Matrix(np.arange(6.0).reshape(2, 3)))
    assert kind == "matrix" and m.flags.f_contiguous and m[1, 2] == 5.0
    with pytest.raises(ValueError, match="data: expected finite values"):
        pj.julia_data([1.0, np.nan])
    with pytest.raises(TypeError, match="None is not supported"):
        pj.julia_data(None)
    with pytest.raises(ValueError, match="at most 2-d"):
        pj.julia_data(np.zeros((2, 2, 2)))


def test_summaries_become_time_major_pyrxaif_distributions():
    # a stacked Julia summary of 3 bivariate Gaussians: mean (d, T), cov (d, d, T)
    means = np.array([[0.0, 1.0, 2.0], [5.0, 6.0, 7.0]])
    covs = np.stack([np.eye(2) * (t + 1) for t in range(3)], axis=-1)
    s = pj._summary_to_numpy({"type": "MvNormalMeanCovariance", "stacked": 1, "mean": means, "cov": covs})
    assert s["mean"].shape == (3, 2) and s["cov"].shape == (3, 2, 2)
    # KeepEach of the same sequence over 4 iterations: two stacking levels, (d, T, I) → (I, T, d)
    each = np.stack([means + k for k in range(4)], axis=-1)
    s2 = pj._summary_to_numpy({"type": "MvNormalMeanCovariance", "stacked": 2, "mean": each})
    assert s2["mean"].shape == (4, 3, 2)
    np.testing.assert_allclose(s2["mean"][3], means.T + 3, rtol=1e-15)
    q = pj.as_distribution(s)
    np.testing.assert_allclose(np.asarray(q.mean), means.T, atol=1e-12)
    np.testing.assert_allclose(np.asarray(q.cov)[2], 3 * np.eye(2), rtol=1e-12)
    cat = pj.as_distribution({"type": "Categorical", "probs": np.array([0.25, 0.75, 0.0])})
    np.testing.assert_allclose(np.asarray(cat.probs), [0.25, 0.75, 0.0], atol=1e-15)
    md = pj.as_distribution({"type": "DirichletCollection", "alpha": np.array([[1.0, 2.0], [3.0, 4.0]])})
    np.testing.assert_allclose(np.asarray(md.mean()), [[0.25, 1 / 3], [0.75, 2 / 3]], rtol=1e-12)
    w = pj.as_distribution({"type": "Wishart", "df": np.array(5.0), "inv_scale": np.eye(2) * 2.0})
    np.testing.assert_allclose(np.asarray(w.mean()), 2.5 * np.eye(2), rtol=1e-12)
    with pytest.raises(TypeError, match="no pyrxaif distribution for a Beta posterior"):
        pj.as_distribution({"type": "Beta", "mean": np.array(0.5), "var": np.array(0.1)})


def test_infer_validates_before_starting_julia(monkeypatch):
    monkeypatch.setattr(jr, "julia_module", lambda: pytest.fail("Julia must not start on invalid input"))
    with pytest.raises(ValueError, match="invalid Julia argument name 'y-1'"):
        pj.infer(COIN, data={"y-1": [1.0]})
    with pytest.raises(ValueError, match="iterations: expected a positive integer"):
        pj.infer(COIN, data={"y": [1.0]}, iterations=0)
    with pytest.raises(TypeError, match="constraints: expected Julia source text"):
        pj.infer(COIN, data={"y": [1.0]}, constraints=3)


# --------------------------------------------------------------------------------------------
# real Julia (skipped where Julia cannot start)
# --------------------------------------------------------------------------------------------
@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
def test_infer_user_model_matches_conjugate_posterior():
    y = np.array([1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    res = pj.infer(COIN, data={"y": y}, model_kwargs={"a": 2.0, "b": 3.0}, free_energy=True)
    post = res["posteriors"]["θ"]
    a, b = 2.0 + y.sum(), 3.0 + (1 - y).sum()
    np.testing.assert_allclose(post["mean"], a / (a + b), rtol=1e-10)
    np.testing.assert_allclose(post["var"], a * b / ((a + b) ** 2 * (a + b + 1)), rtol=1e-10)
    from scipy.special import betaln
    np.testing.assert_allclose(res["free_energy"][-1], -(betaln(a, b) - betaln(2.0, 3.0)), rtol=1e-8)


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
def test_smooth_lds_matches_dense_conditioning():
    a = _lds_args(T=6)
    q, fe = ej.smooth_lds(**a)
    T, d = a["y_mean"].shape
    A, B, W = a["ab"][:, :d], a["ab"][:, d:], a["w"]
    lam, xi = np.zeros((T * d, T * d)), np.zeros(T * d)
    blk = lambda t: slice(t * d, (t + 1) * d)  # noqa: E731
    lam[blk(0), blk(0)] += np.linalg.inv(a["v1"])
    for t in range(T - 1):
        lam[blk(t), blk(t)] += A.T @ W @ A
        lam[blk(t + 1), blk(t + 1)] += W
        lam[blk(t), blk(t + 1)] -= A.T @ W
        lam[blk(t + 1), blk(t)] -= W @ A
        xi[blk(t)] -= A.T @ W @ B @ a["u"][t]
        xi[blk(t + 1)] += W @ B @ a["u"][t]
    for t in range(T):
        lam[blk(t), blk(t)] += np.diag(1 / a["y_cov"][t])
        xi[blk(t)] += a["y_mean"][t] / a["y_cov"][t]
    cov = np.linalg.inv(lam)
    mean = cov @ xi
    np.testing.assert_allclose(np.asarray(q.mean), mean.reshape(T, d), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(q.cov), np.stack([cov[blk(t), blk(t)] for t in range(T)]), rtol=1e-8)
    assert np.isfinite(fe)


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
def test_julia_errors_become_python_exceptions():
    with pytest.raises(julia_errors.JuliaError, match="UndefVarError|not defined"):
        pj.infer("no_such_model_xyz", data={"y": [1.0]})


@pytest.mark.skipif(_JULIA_OK, reason="Julia is available here; this checks the refusal where it is not")
def test_entry_points_refuse_cleanly_where_julia_is_unavailable():
    import re
    import sys

    with pytest.raises(jr.JuliaUnavailableError, match="Julia engine unavailable: "):
        pj.infer(COIN, data={"y": [1.0, 0.0]}, model_kwargs={"a": 1.0, "b": 1.0})
    with pytest.raises(jr.JuliaUnavailableError, match=re.escape(_JULIA_WHY.split(";")[0])):
        ej.smooth_lds(**_lds_args())
    assert "juliacall" not in sys.modules                      # refused before importing juliacall


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
def test_readme_random_walk_example_matches_dense_smoother():
    """The README's second example: RxInfer's smoothed means equal dense Gaussian conditioning."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    source = re.findall(r'source = """\n(.*?)"""', text, flags=re.S)[1]
    obs = np.cumsum(np.random.default_rng(0).normal(size=(12, 2)), axis=0)
    res = pj.infer(source, data={"y": obs}, model_kwargs={"tau": 4.0})
    q = pj.as_distribution(res["posteriors"]["x"])
    T = len(obs)
    # per coordinate: x_1 ~ N(0, 1), x_t - x_{t-1} ~ N(0, 0.1), y_t ~ N(x_t, 1/4)
    lam = np.zeros((T, T))
    lam[0, 0] += 1.0
    for t in range(1, T):
        lam[t, t] += 10.0
        lam[t - 1, t - 1] += 10.0
        lam[t, t - 1] -= 10.0
        lam[t - 1, t] -= 10.0
    lam += 4.0 * np.eye(T)
    mean = np.linalg.solve(lam, 4.0 * obs)
    np.testing.assert_allclose(np.asarray(q.mean), mean, rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------------------------
# T-maze policy evaluation and grid-world planning through Julia: validation (no Julia), and the
# equality with the JAX engine (real Julia)
# --------------------------------------------------------------------------------------------
def _tmaze_args():
    from pyrxaif.envs import tmaze as env
    from pyrxaif.agents import tmaze as ag
    B = env.transition_matrices()
    pols = ag.FIRST_POLICIES[:3]
    log_c = env.goal_log_probs(2.0)
    x = np.zeros((2, 16))
    x[0, 12 + 0] = x[1, 0 + 2] = 1.0          # cue says "left", then reward at O?  (any one-hot rows)
    return dict(a_concentration=env.observation_prior(0.1), c_logits=np.stack([log_c, log_c]),
                d_probs=np.exp(env.initial_state_log_probs()), trans=B[pols], x=x, observed=[True, True])


def _rollout_model():
    rng = np.random.default_rng(7)
    from pyrxaif.inference import rollout as ro
    S, A, J, K = 5, 3, 2, 2
    T = rng.dirichlet(np.ones(J), size=(S, A, K)).transpose(0, 1, 3, 2)
    B = rng.dirichlet(np.ones(3), size=(2, S, K))
    return ro.make_model(rng.integers(0, S, size=(S, A, J)), T, B, rng.normal(size=(S, K)), np.ones(A) / A)


def test_tmaze_and_rollout_entry_points_validate(monkeypatch):
    from pyrxaif.inference import rollout as ro
    monkeypatch.setattr(jr, "julia_module", lambda: pytest.fail("Julia must not start on invalid input"))
    ok = _tmaze_args()
    with pytest.raises(ValueError, match="objective: unknown value 'efe'"):
        ej.tmaze_evaluate_policies(**ok, objective="efe")
    with pytest.raises(ValueError, match=r"trans: expected shape \(P, T, 8, 8\)"):
        ej.tmaze_evaluate_policies(**{**ok, "trans": np.broadcast_to(np.eye(4), (3, 2, 4, 4))})
    with pytest.raises(ValueError, match=r"c_logits: expected shape \(2, 16\)"):
        ej.tmaze_evaluate_policies(**{**ok, "c_logits": ok["c_logits"][0]})
    with pytest.raises(ValueError, match="observed: expected 2 flags"):
        ej.tmaze_evaluate_policies(**{**ok, "observed": [True]})
    with pytest.raises(ValueError, match="x: expected one-hot rows where observed"):
        ej.tmaze_evaluate_policies(**{**ok, "x": np.zeros((2, 16))})
    with pytest.raises(ValueError, match="burn_in: expected 0 <= burn_in < iterations"):
        ej.tmaze_evaluate_policies(**ok, iterations=5, burn_in=5)
    model = _rollout_model()
    cfg = ro.method_config("aif-mp", n_iter=4)
    with pytest.raises(TypeError, match="model: expected a RolloutModel"):
        ej.plan_rollout({}, np.zeros((5, 2)), cfg, 3)
    with pytest.raises(TypeError, match="cfg: expected a MethodConfig"):
        ej.plan_rollout(model, np.zeros((5, 2)), "aif-mp", 3)
    with pytest.raises(ValueError, match=r"log_b0: expected shape \(5, 2\)"):
        ej.plan_rollout(model, np.zeros((2, 5)), cfg, 3)
    with pytest.raises(ValueError, match="horizon: expected a positive integer"):
        ej.plan_rollout(model, np.zeros((5, 2)), cfg, 0)


@pytest.mark.skipif(_JULIA_OK, reason="Julia is available here; this checks the refusal where it is not")
def test_tmaze_and_rollout_refuse_cleanly_where_julia_is_unavailable():
    from pyrxaif.inference import rollout as ro
    with pytest.raises(jr.JuliaUnavailableError, match="Julia engine unavailable: "):
        ej.tmaze_evaluate_policies(**_tmaze_args())
    with pytest.raises(jr.JuliaUnavailableError, match="Julia engine unavailable: "):
        ej.plan_rollout(_rollout_model(), np.zeros((5, 2)), ro.method_config("bp"), 3)


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
@pytest.mark.parametrize("method", ["bp", "vbp", "rm-mp", "aif-mp", "nuijten-mp"])
def test_plan_rollout_equals_the_jax_planner(method):
    from pyrxaif.inference import rollout as ro
    model = _rollout_model()
    log_b0 = np.log(np.random.default_rng(3).dirichlet(np.ones(10)).reshape(5, 2))
    cfg = ro.method_config(method, n_iter=8, obs_weight=0.5)
    jl = ej.plan_rollout(model, log_b0, cfg, 4)
    jx = ro.plan(model, log_b0, cfg, horizon=4)
    np.testing.assert_allclose(jl.log_q_u0, np.asarray(jx.log_q_u0), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(jl.free_energy, np.asarray(jx.free_energy), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(jl.log_single, np.asarray(jx.log_single), rtol=1e-9, atol=1e-10)


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
@pytest.mark.parametrize("objective", ["gfe", "bethe"])
def test_tmaze_evaluation_with_both_outcomes_equals_the_jax_engine(objective):
    """Both outcomes observed: q(A) is conjugate in both engines (no importance sampling), so the
    free energies and posteriors must agree."""
    import jax
    from pyrxaif.inference.policy import evaluate_policies
    a = _tmaze_args()
    G, A_post = ej.tmaze_evaluate_policies(**a, objective=objective, iterations=20, burn_in=4)
    r = evaluate_policies(jax.random.PRNGKey(0), np.log(a["d_probs"] + 1e-300)[None].repeat(3, 0), a["trans"],
                          a["c_logits"][None].repeat(3, 0), a["a_concentration"], x=a["x"], observed=a["observed"],
                          objective=objective, iterations=20, burn_in=4)
    np.testing.assert_allclose(G, np.asarray(r.G), rtol=1e-6)
    np.testing.assert_allclose(A_post, np.asarray(r.A_posterior), rtol=1e-6)
    # conjugate update: one unit of mass per observed outcome
    np.testing.assert_allclose(A_post.sum(axis=(1, 2)) - a["a_concentration"].sum(), 2.0, rtol=1e-9)


def test_plan_lds_validates_goal_steps(monkeypatch):
    monkeypatch.setattr(jr, "julia_module", lambda: pytest.fail("Julia must not start on invalid input"))
    a = _lds_args()
    for bad in ([1], [5], [], [2, 2], [2.5]):
        with pytest.raises(ValueError, match=r"goal_steps: expected distinct integers in \[2, 4\]"):
            ej.plan_lds(np.zeros(2), np.eye(2), np.ones(2), np.eye(2), a["ab"], a["w"], np.eye(1), 3, goal_steps=bad)


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
@pytest.mark.parametrize("goal_steps", ["final", "all"])
def test_plan_lds_equals_the_jax_planner(goal_steps):
    """Same Gaussian problem in both engines: z_1 (nearly) clamped, actions latent, goal messages."""
    from pyrxaif.inference.planning import plan_actions
    a = _lds_args()
    d, H = 2, 6
    A, B = a["ab"][:, :d], a["ab"][:, d:]
    mask = np.zeros(H)
    if goal_steps == "final":
        mask[-1] = 1.0
    else:
        mask[1:] = 1.0
    z0, zg = np.array([1.0, -0.5]), np.array([-1.0, 2.0])
    jx = plan_actions(A, B, np.linalg.inv(a["w"]), z0, zg, np.full(d, 50.0), np.full(1, 0.25), mask)
    q_u = ej.plan_lds(z0, 1e-10 * np.eye(d), zg, np.eye(d) / 50.0, a["ab"], a["w"], np.eye(1) * 4.0, H - 1,
                      goal_steps=[t + 1 for t in range(H) if mask[t]])
    np.testing.assert_allclose(np.asarray(q_u.mean), np.asarray(jx.actions)[:H - 1], rtol=1e-6, atol=1e-7)
