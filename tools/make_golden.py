#!/usr/bin/env python
"""Generate the golden vectors tests/golden/<family>.json from the JAX engine's rules.

Each family (transition, goal_observation, channels, discrete_transition, rollout,
linear_gaussian_plan, tmaze_evaluation) is a list of cases: inputs → expected outputs of one rule function of
``pyrxaif.rules.<family>`` (rollout: the whole planner ``pyrxaif.inference.rollout.plan`` per
method; linear_gaussian_plan: ``pyrxaif.inference.planning.plan_linearised``; tmaze_evaluation:
``pyrxaif.inference.policy.evaluate_policies``, Bethe, with a missing outcome), computed here with the JAX engine on inputs
drawn from a fixed numpy seed. ``julia/test/runtests.jl`` reads the same files and checks the
Julia nodes; ``tests/test_golden.py`` regenerates them in memory and checks the files are current.

JSON schema (documented in docs/julia.md):
    {"family": str, "generator": "tools/make_golden.py", "seed": int, "rtol": float, "atol": float,
     "cases": [{"name": str, "function": str, "params": {str: number|str},
                "inputs": {str: ARRAY}, "outputs": {str: ARRAY}}]}
    ARRAY = {"shape": [int, ...], "data": [number | "inf" | "-inf", ...]}   (row-major flat data;
    scalars have shape []). Julia rebuilds A[i, j, ...] = data[row-major index].

Usage: python tools/make_golden.py [--check] [--family NAME ...]
A family whose rule module is missing is skipped with a printed message.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))
GOLDEN_DIR = ROOT / "tests" / "golden"
SEED = 20240611
RTOL, ATOL = 1e-9, 1e-10


def encode(x) -> dict:
    a = np.asarray(x, dtype=np.float64)
    data = []
    for v in a.reshape(-1).tolist():
        if np.isfinite(v):
            data.append(float(v))
        elif np.isnan(v):
            raise ValueError("golden vectors must not contain NaN")
        else:
            data.append("inf" if v > 0 else "-inf")
    return {"shape": list(a.shape), "data": data}


def decode(obj: dict) -> np.ndarray:
    data = [float(v) if isinstance(v, str) else v for v in obj["data"]]
    return np.asarray(data, dtype=np.float64).reshape(obj["shape"])


def case(name, function, inputs, outputs, params=None) -> dict:
    return {"name": name, "function": function, "params": dict(params or {}),
            "inputs": {k: encode(v) for k, v in inputs.items()},
            "outputs": {k: encode(v) for k, v in outputs.items()}}


def _spd(rng, n, scale=1.0):
    m = rng.normal(size=(n, n))
    return scale * (m @ m.T / n + np.eye(n))


# ---------------------------------------------------------------------------------------------
# family: transition (pyrxaif.rules.transition)
# ---------------------------------------------------------------------------------------------
def _transition_outputs(inputs, d, m):
    """All transition-rule outputs for one case (one jitted program: one compile, not one per op)."""
    import jax  # noqa: PLC0415

    from pyrxaif.distributions import MvNormal, Wishart  # noqa: PLC0415
    from pyrxaif.rules import transition as tr  # noqa: PLC0415

    def run(i):
        n = d + m
        q_ab = MvNormal.from_mean_cov(i["ab_mean"], i["ab_cov"])
        q_w = Wishart(i["w_df"], i["w_inv_scale"])
        w_mean = q_w.mean()
        msg_z = MvNormal(i["msg_z_xi"], i["msg_z_prec"])
        msg_u = MvNormal(i["msg_u_xi"], i["msg_u_prec"])
        msg_next = MvNormal(i["msg_next_xi"], i["msg_next_prec"])
        quad = tr.expected_quadratic(q_ab, w_mean, d, n)
        hbar = tr.expected_ab(q_ab, d, n)
        fwd = tr.forward_message(tr.join_messages(msg_z, msg_u), hbar, w_mean, quad)
        bwd = tr.backward_message(msg_next, hbar, w_mean, quad)
        stats = tr.stats_from_joint(MvNormal.from_mean_cov(i["joint_mean"], i["joint_cov"]), d, m)
        to_x, to_u = tr.message_to_state(bwd, i["u"], d), tr.message_to_control(bwd, msg_z)
        to_ab, to_w = tr.message_to_ab(stats, w_mean), tr.message_to_w(stats, q_ab)
        return {"w_mean": w_mean, "quad": {"K": quad}, "forward": {"xi": fwd.xi, "prec": fwd.precision},
                "to_state": {"xi": to_x.xi, "prec": to_x.precision},
                "to_control": {"xi": to_u.xi, "prec": to_u.precision},
                "to_ab": {"xi": to_ab.xi, "prec": to_ab.precision},
                "to_w": {"df": to_w.df, "inv_scale": to_w.inv_scale},
                "energy": {"U": tr.average_energy(stats, q_ab, q_w)}}

    return jax.jit(run)(inputs)


_TRANSITION_FUNCTIONS = {"quad": "expected_quadratic", "forward": "forward_message", "to_state": "message_to_state",
                         "to_control": "message_to_control", "to_ab": "message_to_ab", "to_w": "message_to_w",
                         "energy": "average_energy"}


def family_transition(rng) -> list[dict]:
    cases = []
    for k, (d, m) in enumerate([(2, 1), (3, 2)]):
        n = d + m
        inputs = {"ab_mean": rng.normal(size=d * n) * 0.5, "ab_cov": _spd(rng, d * n, 0.05), "w_df": d + 3.0,
                  "w_inv_scale": _spd(rng, d, 0.5),
                  "msg_z_xi": rng.normal(size=d), "msg_z_prec": _spd(rng, d),
                  "msg_u_xi": rng.normal(size=m), "msg_u_prec": _spd(rng, m),
                  "msg_next_xi": rng.normal(size=d), "msg_next_prec": _spd(rng, d),
                  "u": rng.normal(size=m), "joint_mean": rng.normal(size=2 * d + m),
                  "joint_cov": _spd(rng, 2 * d + m, 0.3)}
        out = _transition_outputs(inputs, d, m)
        inputs["w_mean"] = out.pop("w_mean")
        cases += [case(f"{key}_{k}", _TRANSITION_FUNCTIONS[key], inputs, o, {"d": d, "m": m}) for key, o in out.items()]
    return cases


# ---------------------------------------------------------------------------------------------
# family: goal_observation (pyrxaif.rules.goal_observation)
# ---------------------------------------------------------------------------------------------
def _goal_outputs(q_A, s, d, log_c, x):
    """All goal-observation outputs for one case, in one jitted program."""
    import jax  # noqa: PLC0415

    from pyrxaif.rules import goal_observation as go  # noqa: PLC0415

    def run(q_A, s, d, log_c, x):
        A_bar, L_bar, h_bar = go.a_stats_dirichlet(q_A)
        return {
            "a_stats_dirichlet": {"A_bar": A_bar, "L_bar": L_bar, "h_bar": h_bar},
            "bethe_internal_x": {"x_hat": go.bethe_internal_x(s, L_bar, log_c)},
            "bethe_message_z": {"probs": go.bethe_message_z(s, L_bar, log_c).probs},
            "bethe_message_A": {"concentration": go.bethe_message_A(s, L_bar, log_c).concentration},
            "bethe_message_c": {"concentration": go.bethe_message_c(s, L_bar, log_c).concentration},
            "bethe_average_energy": {"U": go.bethe_average_energy(s, L_bar, log_c)},
            "observed_message_z": {"probs": go.observed_message_z(x, L_bar).probs},
            "observed_message_A": {"concentration": go.observed_message_A(x, s).concentration},
            "observed_message_c": {"concentration": go.observed_message_c(x).concentration},
            "observed_average_energy": {"U": go.observed_average_energy(x, s, L_bar, log_c)},
            "gfe_average_energy": {"U": go.gfe_average_energy(s, A_bar, h_bar, log_c)},
            "gfe_message_c": {"concentration": go.gfe_message_c(s, A_bar).concentration},
            "gfe_message_z_newton": {"probs": go.gfe_message_z_newton(jax.numpy.log(d), d, A_bar, h_bar, log_c,
                                                                      20).probs},
        }

    return jax.jit(run)(q_A, s, d, log_c, x)


def family_goal_observation(rng) -> list[dict]:
    from pyrxaif.distributions import MatrixDirichlet

    cases = []
    for k, (mo, ns) in enumerate([(16, 8)]):
        a = rng.gamma(2.0, 1.0, size=(mo, ns)) + 0.1
        s = rng.dirichlet(np.ones(ns))
        d = rng.dirichlet(np.ones(ns))
        c = rng.dirichlet(np.ones(mo))
        log_c = np.log(c)
        x = np.eye(mo)[rng.integers(mo)]
        inputs = {"a": a, "s": s, "d": d, "log_c": log_c, "x": x}
        out = _goal_outputs(MatrixDirichlet(a), s, d, log_c, x)
        cases += [case(f"{fn}_{k}", fn, inputs, o, {"newton_iterations": 20}) for fn, o in out.items()]
    return cases


# ---------------------------------------------------------------------------------------------
# family: channels (pyrxaif.rules.channels)
# ---------------------------------------------------------------------------------------------
def _log_normalise(x, axis):
    from scipy.special import logsumexp  # noqa: PLC0415

    return x - logsumexp(x, axis=axis, keepdims=True)


def family_channels(rng) -> list[dict]:
    """Inputs in the library's letters (``RolloutModel``): log_B transitions over the successors, log_E the
    action prior, log_A the observation likelihoods (M, S, K, Y)."""
    S, A, J, K, M, Y = 4, 3, 2, 2, 2, 3
    log_B = _log_normalise(rng.normal(size=(S, A, J, K)), 2)
    log_B[0, 0, 1, :] = -np.inf                                     # sparse padding: one successor only
    log_B[0, 0, 0, :] = 0.0
    log_E = _log_normalise(rng.normal(size=A), 0)
    log_r_u = _log_normalise(rng.normal(size=(S, A)), 1)
    log_r_x = _log_normalise(rng.normal(size=(S, A, J)), 2)
    log_A = _log_normalise(rng.normal(size=(M, S, K, Y)), 3)
    log_A[1, :, :, 2] = -np.inf                                     # modality 1 has two values (padded)
    log_A[1] = _log_normalise(log_A[1], 2)
    log_r_y = _log_normalise(rng.normal(size=(M, S, K, Y)), 3)
    log_rho = _log_normalise(rng.normal(size=(M, S, Y)), 2)
    log_q = _log_normalise(rng.normal(size=(S, K)).reshape(-1), 0).reshape(S, K)
    log_b = _log_normalise(rng.normal(size=(S, A, J, K)).reshape(-1), 0).reshape(S, A, J, K)
    log_b[1] = -np.inf                                              # a state without belief mass
    inputs = {"log_B": log_B, "log_E": log_E, "log_r_u": log_r_u, "log_r_x": log_r_x, "log_A": log_A,
              "log_r_y": log_r_y, "log_rho": log_rho, "log_q": log_q, "log_b": log_b}
    o = _channel_outputs(inputs)
    return [
        case("kernel_bp", "dynamics_log_kernel", inputs, {"K": o["kernel_bp"]}, {"variant": "bp"}),
        case("kernel_full", "dynamics_log_kernel", inputs, {"K": o["kernel_full"]}, {"variant": "full"}),
        case("observation_log_message", "observation_log_message", inputs, {"l": o["obs"]}),
        case("epistemic_log_prior", "epistemic_log_prior", inputs, {"p": o["epi"]}),
        case("planning_channel", "planning_channel", inputs, {"r": o["plan"]}),
        case("dynamics_channel", "dynamics_channel", inputs, {"r": o["dyn"]}),
        case("observation_channels", "observation_channels", inputs, {"r_y": o["r_y"], "rho": o["rho"]}),
        case("damp", "damp", inputs, {"r": o["damp"]}, {"lam": 0.3}),
    ]


def _channel_outputs(inputs):
    """All channel-kernel outputs, in one jitted program."""
    import jax  # noqa: PLC0415

    from pyrxaif.rules import channels as ch  # noqa: PLC0415

    def run(i):
        r_y, rho = ch.observation_channels(i["log_A"], i["log_r_y"], i["log_rho"], i["log_q"])
        flipped = i["log_r_u"][:, ::-1]
        flipped = flipped - jax.scipy.special.logsumexp(flipped, axis=1, keepdims=True)
        return {"kernel_bp": ch.dynamics_log_kernel(i["log_B"], i["log_E"]),
                "kernel_full": ch.dynamics_log_kernel(i["log_B"], i["log_E"], i["log_r_u"], i["log_r_x"]),
                "obs": ch.observation_log_message(i["log_A"], i["log_r_y"], i["log_rho"]),
                "epi": ch.epistemic_log_prior(i["log_A"], i["log_rho"]),
                "plan": ch.planning_channel(i["log_b"]), "dyn": ch.dynamics_channel(i["log_b"], i["log_B"]),
                "r_y": r_y, "rho": rho, "damp": ch.damp(i["log_r_u"], flipped, 0.3)}

    return jax.jit(run)(inputs)


def compare(new: dict, old: dict) -> list[str]:
    """Differences between a regenerated document and a stored one (empty when current)."""
    problems = []
    if [c["name"] for c in new["cases"]] != [c["name"] for c in old["cases"]]:
        return [f"{new['family']}: case list differs"]
    for cn, co in zip(new["cases"], old["cases"]):
        if cn["function"] != co["function"] or cn["params"] != co["params"]:
            problems.append(f"{cn['name']}: function/params differ")
        for part in ("inputs", "outputs"):
            if set(cn[part]) != set(co[part]):
                problems.append(f"{cn['name']}: {part} keys differ")
                continue
            for key in cn[part]:
                a, b = decode(cn[part][key]), decode(co[part][key])
                if a.shape != b.shape or not np.allclose(a, b, rtol=old["rtol"], atol=old["atol"], equal_nan=False):
                    problems.append(f"{cn['name']}: {part}.{key} differs")
    return problems


# ---------------------------------------------------------------------------------------------
# family: discrete_transition (pyrxaif.rules.discrete_transition vs ReactiveMP's DiscreteTransition,
# belief propagation with a known transition matrix: the T-maze state chain)
# ---------------------------------------------------------------------------------------------
def _discrete_outputs(i):
    import jax  # noqa: PLC0415

    from pyrxaif.rules import discrete_transition as dt  # noqa: PLC0415

    def run(i):
        log_B = jax.numpy.log(i["B"])
        return {"forward": dt.forward_message(jax.numpy.log(i["m_in"]), log_B).probs,
                "backward": dt.backward_message(jax.numpy.log(i["m_out"]), log_B).probs}

    return jax.jit(run)(i)


def family_discrete_transition(rng) -> list[dict]:
    n_out, n_in = 5, 4
    B = rng.dirichlet(np.ones(n_out), size=n_in).T                 # column-stochastic (out, in)
    inputs = {"B": B, "m_in": rng.dirichlet(np.ones(n_in)), "m_out": rng.dirichlet(np.ones(n_out))}
    o = _discrete_outputs(inputs)
    names = {"forward": "forward_message", "backward": "backward_message"}
    return [case(k, names[k], inputs, {"probs": v}) for k, v in o.items()]


# ---------------------------------------------------------------------------------------------
# family: rollout (pyrxaif.inference.rollout.plan: the whole planner, every method, on a tiny model built
# with rollout.rollout_model in the library's letters: B transitions, A observations, E action prior)
# ---------------------------------------------------------------------------------------------
ROLLOUT_METHODS = ("bp", "vbp", "rm-mp", "aif-mp", "nuijten-mp")


def family_rollout(rng) -> list[dict]:
    from pyrxaif.inference import rollout as ro  # noqa: PLC0415

    S, A, J, K, H = 4, 2, 2, 2, 3
    succ = rng.integers(0, S, size=(S, A, J))
    B = rng.dirichlet(np.ones(J), size=(S, A, K)).transpose(0, 1, 3, 2)      # (S,A,J,K), Σ_j = 1
    B[0, 1, :, :] = np.array([[1.0, 1.0], [0.0, 0.0]])                       # a deterministic move
    A_obs = list(rng.dirichlet(np.ones(3), size=(2, S, K)))                 # sizes 3, 3, 2: two groups
    A_obs.append(rng.dirichlet(np.ones(2), size=(S, K)))
    log_C = rng.normal(size=(S, K))
    E = rng.dirichlet(np.ones(A))
    model = ro.rollout_model(succ, B, A_obs, log_C, E)
    b0 = rng.dirichlet(np.ones(S * K)).reshape(S, K)
    b0[3] = 0.0
    b0 /= b0.sum()
    with np.errstate(divide="ignore"):
        log_b0 = np.log(b0)
    inputs = {"succ": succ, "log_B": np.asarray(model.log_B), "log_C": np.asarray(model.log_C),
              "log_E": np.asarray(model.log_E), "log_b0": log_b0}
    for g, la in enumerate(model.log_A_plan):
        inputs[f"log_A_{g}"] = np.asarray(la)
    cases = []
    for method in ROLLOUT_METHODS:
        cfg = ro.method_config(method, n_iter=6, obs_weight=0.7)
        r = ro.plan(model, log_b0, cfg, horizon=H)
        cases.append(case(method, "plan", inputs,
                          {"log_q_u0": r.log_q_u0, "free_energy": r.free_energy, "channel_change": r.channel_change,
                           "final_free_energy": r.final_free_energy},
                          {"method": method, "damping": cfg.damping, "n_iter": cfg.n_iter,
                           "obs_weight": cfg.obs_weight, "horizon": H, "groups": len(model.log_A_plan)}))
    return cases


# ---------------------------------------------------------------------------------------------
# family: linear_gaussian_plan (pyrxaif.inference.planning.plan_linearised: one linearised plan on a
# time-varying linear Gaussian chain from a known start; what PyRxAIF.plan_linear_gaussian solves)
# ---------------------------------------------------------------------------------------------
def family_linear_gaussian_plan(rng) -> list[dict]:
    from pyrxaif.inference import planning  # noqa: PLC0415

    cases = []
    # "middle": one goal before the end (the Julia graph ends at the last goal; the steps after it
    # keep their prior / predictive moments)
    for name, d, m, H, steps in (("final", 3, 1, 5, "final"), ("all", 2, 2, 4, "all"), ("middle", 2, 1, 5, "middle")):
        A = np.eye(d) + 0.3 * rng.normal(size=(H - 1, d, d))
        B = rng.normal(size=(H - 1, d, m))
        c = 0.2 * rng.normal(size=(H - 1, d))
        S = np.stack([_spd(rng, d, 0.05) for _ in range(H - 1)])
        z_start, z_goal = rng.normal(size=d), rng.normal(size=d)
        goal_prec, u_prec = 1.0 + rng.random(d) * 50, 1.0 + rng.random(m) * 3
        mask = np.zeros(H)
        if steps == "final":
            mask[-1] = 1.0
        elif steps == "middle":
            mask[2] = 1.0
        else:
            mask[1:] = 1.0
        r = planning.plan_linearised(planning.LinearisedChain(A, B, c, S), z_start, z_goal, goal_prec, u_prec, mask)
        inputs = {"A": A, "B": B, "c": c, "W_cov": S, "z_start": z_start, "z_goal": z_goal, "goal_prec": goal_prec,
                  "u_prec": u_prec, "goal_mask": mask}
        cases.append(case(name, "plan_linear_gaussian", inputs,
                          {"u_means": r.actions, "u_covs": r.action_cov, "z_means": r.latents},
                          {"d": d, "m": m, "horizon": H}))
    return cases


# ---------------------------------------------------------------------------------------------
# family: tmaze_evaluation (pyrxaif.inference.policy.evaluate_policies: the whole T-maze model of
# LAIF, Bethe objective, learned A, the second outcome missing: the Bethe message to A of the
# missing outcome is x̂ sᵀ + 1 in both engines). Iterated to convergence, so that schedules that
# reach the same fixed point in a different order (RxInfer's reactive one, the JAX sweep) agree.
# ---------------------------------------------------------------------------------------------
TMAZE_ITERATIONS, TMAZE_BURN_IN = 80, 60


def family_tmaze_evaluation(rng) -> list[dict]:
    import jax  # noqa: PLC0415

    from pyrxaif.envs import tmaze as env  # noqa: PLC0415
    from pyrxaif.inference import policy  # noqa: PLC0415

    B = env.transition_matrices()                              # (U, n, n), B[u][z', z]
    n = B.shape[-1]
    m = env.observation_prior(0.1).shape[0]
    policies = np.array([[1, 0], [2, 3], [3, 2]])              # (P, T) actions
    trans = B[policies]                                        # (P, T, n, n)
    a = env.observation_prior(0.1) + rng.random((m, n))        # a non-uniform learned-A prior
    log_c = np.stack([env.goal_log_probs(2.0)] * 2)           # (T, m)
    d = np.exp(env.initial_state_log_probs())
    cases = []
    for name, observed in (("first_observed", (True, False)), ("none_observed", (False, False))):
        x = np.zeros((2, m))
        x[0, int(rng.integers(m))] = 1.0
        r = policy.evaluate_policies(jax.random.PRNGKey(0), np.log(d + 1e-300)[None].repeat(len(policies), 0), trans,
                                     log_c[None].repeat(len(policies), 0), a, x=x, observed=np.array(observed),
                                     objective="bethe", iterations=TMAZE_ITERATIONS, burn_in=TMAZE_BURN_IN)
        F = np.asarray(r.free_energy)
        if np.max(np.abs(np.diff(F[:, TMAZE_BURN_IN:], axis=1))) > 1e-9:
            raise RuntimeError(f"tmaze_evaluation/{name}: the JAX iteration has not converged after the burn-in")
        cases.append(case(name, "tmaze_evaluate",
                          {"A_prior": a, "C": log_c, "D": d, "trans": trans, "x": x,
                           "observed": np.array(observed, dtype=np.float64)},
                          {"G": r.G, "A_posterior": r.A_posterior, "free_energy": F, "s": r.s},
                          {"objective": "bethe", "iterations": TMAZE_ITERATIONS, "burn_in": TMAZE_BURN_IN,
                           "rtol": 1e-6}))
    return cases


FAMILIES = {"transition": ("pyrxaif.rules.transition", family_transition),
            "goal_observation": ("pyrxaif.rules.goal_observation", family_goal_observation),
            "channels": ("pyrxaif.rules.channels", family_channels),
            "discrete_transition": ("pyrxaif.rules.discrete_transition", family_discrete_transition),
            "rollout": ("pyrxaif.inference.rollout", family_rollout),
            "linear_gaussian_plan": ("pyrxaif.inference.planning", family_linear_gaussian_plan),
            "tmaze_evaluation": ("pyrxaif.inference.policy", family_tmaze_evaluation)}


def generate(family: str) -> dict | None:
    """The golden document of one family, or None (with a message) when its rule module is missing."""
    module, fn = FAMILIES[family]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        print(f"make_golden: skipping {family}: {module} not importable ({exc})")
        return None
    import pyrxaif  # noqa: F401,PLC0415  (float64)

    rng = np.random.default_rng([SEED, list(FAMILIES).index(family)])
    return {"family": family, "generator": "tools/make_golden.py", "seed": SEED, "rtol": RTOL, "atol": ATOL,
            "cases": fn(rng)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", action="append", choices=list(FAMILIES))
    ap.add_argument("--check", action="store_true", help="compare with the stored files instead of writing")
    args = ap.parse_args(argv)
    bad = 0
    for family in args.family or list(FAMILIES):
        doc = generate(family)
        if doc is None:
            continue
        path = GOLDEN_DIR / f"{family}.json"
        if args.check:
            problems = compare(doc, json.loads(path.read_text())) if path.exists() else [f"{path} missing"]
            for p in problems:
                print(f"make_golden: {family}: {p}")
            bad += bool(problems)
            continue
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"make_golden: wrote {path.relative_to(ROOT)} ({len(doc['cases'])} cases)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
