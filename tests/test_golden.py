"""Golden vectors (tests/golden/*.json): current with the JAX rules, well-formed, and spot-checked
against independent numpy computations. julia/test/runtests.jl checks the Julia nodes on them."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import make_golden as mg  # noqa: E402


def _stored(family):
    path = mg.GOLDEN_DIR / f"{family}.json"
    assert path.exists(), f"{path} missing: run python tools/make_golden.py"
    return json.loads(path.read_text())


def _case(doc, name):
    c = next(c for c in doc["cases"] if c["name"] == name)
    return ({k: mg.decode(v) for k, v in c["inputs"].items()}, {k: mg.decode(v) for k, v in c["outputs"].items()})


@pytest.mark.parametrize("family", list(mg.FAMILIES))
def test_golden_files_are_current(family):
    doc = mg.generate(family)
    assert doc is not None, f"rule module of {family} not importable"
    assert mg.compare(doc, _stored(family)) == []


@pytest.mark.parametrize("family", list(mg.FAMILIES))
def test_golden_schema(family):
    doc = _stored(family)
    assert doc["family"] == family and doc["generator"] == "tools/make_golden.py"
    assert doc["rtol"] > 0 and doc["atol"] > 0 and doc["cases"]
    for c in doc["cases"]:
        assert set(c) == {"name", "function", "params", "inputs", "outputs"}
        for arr in list(c["inputs"].values()) + list(c["outputs"].values()):
            assert len(arr["data"]) == int(np.prod(arr["shape"], dtype=int))
            assert all(isinstance(v, float) or v in ("inf", "-inf") for v in arr["data"])


def test_encode_decode_round_trip():
    x = np.array([[0.5, -np.inf], [np.inf, 3.0]])
    enc = mg.encode(x)
    assert enc == {"shape": [2, 2], "data": [0.5, "-inf", "inf", 3.0]}
    np.testing.assert_array_equal(mg.decode(enc), x)
    assert mg.decode(mg.encode(2.5)).shape == ()
    with pytest.raises(ValueError, match="NaN"):
        mg.encode([np.nan])


def test_compare_detects_a_changed_output():
    doc = _stored("channels")
    changed = json.loads(json.dumps(doc))
    changed["cases"][0]["outputs"]["K"]["data"][5] = 123.0
    assert mg.compare(changed, doc) == [f"{doc['cases'][0]['name']}: outputs.K differs"]


def test_transition_golden_against_dense_gaussian_algebra():
    doc = _stored("transition")
    i, o = _case(doc, "quad_1")
    d, n = 3, 5
    H = i["ab_mean"].reshape(d, n)
    C = i["ab_cov"].reshape(d, n, d, n)
    K = H.T @ i["w_mean"] @ H + np.einsum("ij,iajb->ab", i["w_mean"], C)
    np.testing.assert_allclose(o["K"], K, rtol=1e-10)
    i, o = _case(doc, "forward_1")
    W = i["w_mean"]
    lam = np.block([[K, -H.T @ W], [-W @ H, W]])                    # potential over [z; u; y]
    lam[:d, :d] += i["msg_z_prec"]
    lam[d:n, d:n] += i["msg_u_prec"]
    xi = np.concatenate([i["msg_z_xi"], i["msg_u_xi"], np.zeros(d)])
    s = np.linalg.solve(lam[:n, :n], np.column_stack([xi[:n], lam[:n, n:]]))
    np.testing.assert_allclose(o["prec"], lam[n:, n:] - lam[n:, :n] @ s[:, 1:], rtol=1e-9)
    np.testing.assert_allclose(o["xi"], xi[n:] - lam[n:, :n] @ s[:, 0], rtol=1e-9, atol=1e-12)


def test_goal_observation_golden_against_numpy():
    doc = _stored("goal_observation")
    i, o = _case(doc, "bethe_message_z_0")
    a = i["a"]
    from scipy.special import digamma
    L = digamma(a) - digamma(a.sum(0, keepdims=True))
    x_hat = softmax(L @ i["s"] + i["log_c"])
    np.testing.assert_allclose(o["probs"], softmax(L.T @ x_hat), rtol=1e-10)
    i, o = _case(doc, "gfe_average_energy_0")
    A = a / a.sum(0, keepdims=True)
    h = -np.sum(A * (digamma(a + 1) - digamma(a.sum(0, keepdims=True) + 1)), axis=0)
    p = A @ i["s"]
    np.testing.assert_allclose(o["U"], i["s"] @ h - p @ (i["log_c"] - np.log(p)), rtol=1e-10)


def test_channels_golden_against_numpy():
    doc = _stored("channels")
    i, o = _case(doc, "kernel_full")
    expect = i["log_B"] + i["log_E"][None, :, None, None] + i["log_r_u"][:, :, None, None] - i["log_r_x"][..., None]
    expect = np.where(np.isfinite(i["log_B"]), expect, -np.inf)
    np.testing.assert_array_equal(np.isfinite(o["K"]), np.isfinite(expect))
    np.testing.assert_allclose(o["K"][np.isfinite(expect)], expect[np.isfinite(expect)], rtol=1e-12)
    i, o = _case(doc, "planning_channel")
    lxu = logsumexp(i["log_b"], axis=(2, 3))
    with np.errstate(invalid="ignore"):
        cond = lxu - logsumexp(lxu, axis=1, keepdims=True)
    cond[1] = -np.log(lxu.shape[1])                                   # state 1 has no mass: uniform fallback
    np.testing.assert_allclose(o["r"], cond, rtol=1e-12)


def test_discrete_transition_golden_against_numpy():
    doc = _stored("discrete_transition")
    i, o = _case(doc, "forward")
    np.testing.assert_allclose(o["probs"], i["B"] @ i["m_in"] / np.sum(i["B"] @ i["m_in"]), rtol=1e-12)
    i, o = _case(doc, "backward")
    np.testing.assert_allclose(o["probs"], i["B"].T @ i["m_out"] / np.sum(i["B"].T @ i["m_out"]), rtol=1e-12)


def test_rollout_golden_bp_against_brute_force_enumeration():
    """The BP case of the whole-planner family: q(u_0) and −log Z by summing over every path."""
    import itertools
    doc = _stored("rollout")
    i, o = _case(doc, "bp")
    succ = i["succ"].astype(int)
    S, A, J, K = i["log_B"].shape
    H = int(next(c for c in doc["cases"] if c["name"] == "bp")["params"]["horizon"])
    B, C, E, b0 = np.exp(i["log_B"]), np.exp(i["log_C"]), np.exp(i["log_E"]), np.exp(i["log_b0"])
    q_u0, Z = np.zeros(A), 0.0
    for x0, th in itertools.product(range(S), range(K)):
        for steps in itertools.product(range(A), range(J), repeat=H):
            w, x = b0[x0, th], x0
            for t in range(H):
                u, j = steps[2 * t], steps[2 * t + 1]
                w *= E[u] * B[x, u, j, th]
                x = succ[x, u, j]
                w *= C[x, th]
            q_u0[steps[0]] += w
            Z += w
    np.testing.assert_allclose(np.exp(o["log_q_u0"]), q_u0 / Z, rtol=1e-10)
    np.testing.assert_allclose(o["final_free_energy"], -np.log(Z), rtol=1e-10)


@pytest.mark.parametrize("name", ["final", "all", "middle"])
def test_linear_gaussian_plan_golden_against_dense_conditioning(name):
    """q(u) of the time-varying chain by conditioning the dense joint Gaussian of (u_1..u_H, z_2..z_H)."""
    i, o = _case(_stored("linear_gaussian_plan"), name)
    A, B, c, S = i["A"], i["B"], i["c"], i["W_cov"]
    H1, d, m = B.shape
    H = H1 + 1
    # z_{k+1} = A_k z_k + B_k u_k + c_k + e_k as an affine map of v = (u_1..u_H, e_1..e_{H-1})
    nu, ne = H * m, H1 * d
    Lz, mz = [np.zeros((d, nu + ne))], [i["z_start"]]
    for k in range(H1):
        L = A[k] @ Lz[-1]
        L[:, k * m:(k + 1) * m] += B[k]
        L[:, nu + k * d:nu + (k + 1) * d] += np.eye(d)
        Lz.append(L)
        mz.append(A[k] @ mz[-1] + c[k])
    cov_v = np.zeros((nu + ne, nu + ne))
    cov_v[:nu, :nu] = np.kron(np.eye(H), np.diag(1.0 / i["u_prec"]))
    for k in range(H1):
        cov_v[nu + k * d:nu + (k + 1) * d, nu + k * d:nu + (k + 1) * d] = S[k]
    steps = [t for t in range(H) if i["goal_mask"][t] > 0]
    Lg = np.concatenate([Lz[t] for t in steps])
    mg_ = np.concatenate([mz[t] for t in steps])
    R = np.kron(np.eye(len(steps)), np.diag(1.0 / i["goal_prec"]))
    Lu = np.eye(nu + ne)[:nu]
    Sgg = Lg @ cov_v @ Lg.T + R
    K = np.linalg.solve(Sgg, Lg @ cov_v @ Lu.T).T
    u_mean = K @ (np.tile(i["z_goal"], len(steps)) - mg_)
    u_cov = Lu @ cov_v @ Lu.T - K @ Lg @ cov_v @ Lu.T
    np.testing.assert_allclose(o["u_means"].reshape(-1), u_mean, rtol=1e-8, atol=1e-10)
    for t in range(H):
        np.testing.assert_allclose(o["u_covs"][t], u_cov[t * m:(t + 1) * m, t * m:(t + 1) * m], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["first_observed", "none_observed"])
def test_tmaze_evaluation_golden_is_the_bethe_fixed_point(name):
    """Model-level golden case (Bethe, learned A, second outcome missing): at the stored fixed point
    q(A) = a + Σ_t x_t s_tᵀ with x_t the observation where observed and the Bethe internal
    x̂_t = softmax(E[log A] s_t + log c_t) where missing (the rule MatrixDir(x̂ sᵀ + 1) of the
    design), recomputed here with scipy from the stored s and q(A)."""
    from scipy.special import digamma

    i, o = _case(_stored("tmaze_evaluation"), name)
    a, log_c, x, observed = i["A_prior"], i["C"], i["x"], i["observed"].astype(bool)
    for p in range(o["G"].shape[0]):
        alpha, s = o["A_posterior"][p], o["s"][p]
        log_mean = digamma(alpha) - digamma(alpha.sum(axis=0, keepdims=True))
        counts = sum(np.outer(x[t] if observed[t] else softmax(log_mean @ s[t] + log_c[t]), s[t])
                     for t in range(len(observed)))
        np.testing.assert_allclose(alpha, a + counts, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(alpha.sum() - a.sum(), len(observed), rtol=1e-12)   # one unit per node
    # G is the mean free energy after the burn-in, in bits
    c = _stored("tmaze_evaluation")["cases"][0]["params"]
    np.testing.assert_allclose(o["G"], o["free_energy"][:, c["burn_in"]:].mean(axis=1) / np.log(2), rtol=1e-12)
