"""Rollout message passing: BP against brute-force enumeration, channel fixed points, and the
channel-augmented free energy against the entropy-corrected VFE computed by enumeration."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.inference.rollout import (METHODS, bayes_filter, make_model, method_config, plan, rollout_model)

S, U, J, K, Y, H = 3, 2, 2, 2, 2, 2


def tiny_model(seed=0):
    rng = np.random.default_rng(seed)
    succ = np.stack([np.stack([rng.choice(S, size=J, replace=False) for _ in range(U)]) for _ in range(S)])
    B = rng.dirichlet(np.ones(J), size=(S, U, K)).transpose(0, 1, 3, 2)          # (S,U,J,K)
    A = rng.dirichlet(np.ones(Y) * 0.7, size=(1, S, K))                          # (1,S,K,Y)
    log_C = rng.normal(size=(S, K))
    E = rng.dirichlet(np.ones(U) * 3)
    b0 = rng.dirichlet(np.ones(S * K)).reshape(S, K)
    return succ, B, A, log_C, E, b0


def enumerate_joint(succ, B, A, log_C, E, b0, ch=None, cfg=None):
    """All trajectories (θ, x_0..x_H, u_0..u_{H-1}, y_1..y_H) with log-weights of the model p
    and of the channel-modified model p̃ (channels from a PlanResult)."""
    rows, logp, logpt = [], [], []
    for th in range(K):
        for xs in itertools.product(range(S), repeat=H + 1):
            for us in itertools.product(range(U), repeat=H):
                ok, lp, lpt = True, np.log(b0[xs[0], th]), np.log(b0[xs[0], th])
                for t in range(H):
                    js = np.where(succ[xs[t], us[t]] == xs[t + 1])[0]
                    if len(js) == 0 or B[xs[t], us[t], js[0], th] == 0:
                        ok = False
                        break
                    j = js[0]
                    step = np.log(E[us[t]] * B[xs[t], us[t], j, th]) + log_C[xs[t + 1], th]
                    lp += step
                    lpt += step
                    if ch is not None and cfg.planning:
                        lpt += float(ch.log_r_u[t, xs[t], us[t]])
                    if ch is not None and cfg.dynamics:
                        lpt -= float(ch.log_r_x[t, xs[t], us[t], j])
                if not ok or lp == -np.inf:
                    continue
                for ys in itertools.product(range(Y), repeat=H):
                    lpy, lpty = lp, lpt
                    for t in range(H):
                        x = xs[t + 1]
                        lb = np.log(A[0, x, th, ys[t]])
                        lpy += lb
                        lpty += lb
                        if ch is not None and cfg.observation == "channel":
                            lpty += 2 * float(ch.log_r_y[0][t, 0, x, th, ys[t]]) - float(ch.log_rho[0][t, 0, x, ys[t]])
                    rows.append((th, xs, us, ys))
                    logp.append(lpy)
                    logpt.append(lpty)
    return rows, np.array(logp), np.array(logpt)


def cond_entropy(q, rows, key_joint, key_cond):
    """H(a | c) = −Σ q log q(a,c)/q(c) with a,c given by functions of a row."""
    from collections import defaultdict
    pj, pc = defaultdict(float), defaultdict(float)
    for w, r in zip(q, rows):
        pj[key_joint(r)] += w
        pc[key_cond(r)] += w
    return -sum(w * np.log(pj[key_joint(r)] / pc[key_cond(r)]) for w, r in zip(q, rows) if w > 0)


def test_bp_marginals_equal_brute_force():
    succ, B, A, log_C, E, b0 = tiny_model(1)
    model = rollout_model(succ, B, list(A), log_C, E)
    res = plan(model, np.log(b0), "bp", H)
    rows, logp, _ = enumerate_joint(succ, B, A, log_C, E, b0)
    q = np.exp(logp - np.logaddexp.reduce(logp))
    qu0 = np.zeros(U)
    qx = np.zeros((H + 1, S, K))
    for w, (th, xs, us, ys) in zip(q, rows):
        qu0[us[0]] += w
        for t in range(H + 1):
            qx[t, xs[t], th] += w
    np.testing.assert_allclose(np.exp(res.log_q_u0), qu0, atol=1e-10)
    np.testing.assert_allclose(np.exp(res.log_single), qx, atol=1e-10)
    # F = −log Z with Z = Σ p (the obs factors sum to one over unobserved y)
    np.testing.assert_allclose(float(res.final_free_energy), -np.logaddexp.reduce(logp), atol=1e-10)


@pytest.mark.parametrize("method", ["vbp", "rm-mp", "aif-mp"])
def test_channels_at_fixed_point_equal_region_conditionals(method):
    from pyrxaif.rules import channels as ch
    succ, B, A, log_C, E, b0 = tiny_model(2)
    model = rollout_model(succ, B, list(A), log_C, E)
    cfg = method_config(method, damping=0.3, n_iter=400)
    res = plan(model, np.log(b0), cfg, H)
    assert float(res.channel_change[-1]) < 1e-8
    reg, single, c = res.log_region, res.log_single, res.channels
    mass_x = np.exp(np.asarray(single[:-1]).max(axis=2)) > 1e-8          # (H,S) states with mass
    r_u = np.exp(np.stack([ch.planning_channel(reg[t]) for t in range(H)]))
    np.testing.assert_allclose(r_u[mass_x], np.exp(c.log_r_u)[mass_x], atol=1e-6)
    if cfg.dynamics:
        r_x = np.exp(np.stack([ch.dynamics_channel(reg[t], model.log_B) for t in range(H)]))
        np.testing.assert_allclose(r_x[mass_x], np.exp(c.log_r_x)[mass_x], atol=1e-6)
    if cfg.observation == "channel":
        ry, rho = zip(*[ch.observation_channels(model.log_A_plan[0], c.log_r_y[0][t], c.log_rho[0][t], single[t + 1])
                        for t in range(H)])
        np.testing.assert_allclose(np.exp(np.stack(ry)), np.exp(c.log_r_y[0]), atol=1e-6)
        np.testing.assert_allclose(np.exp(np.stack(rho)), np.exp(c.log_rho[0]), atol=1e-6)


@pytest.mark.parametrize("method", ["bp", "vbp", "rm-mp", "aif-mp"])
def test_channel_objective_equals_entropy_corrected_free_energy(method):
    """At the fixed point F(r) = VFE(q) + H(u|x) − H(x'|x,u) + 2H(y|x,θ) − H(y|x) (active terms only),
    with q the channel-modified joint (start-state marginal b_0(x_0) kept for planning methods; θ is
    not clamped, so the plan cannot hedge across layouts), by enumeration."""
    succ, B, A, log_C, E, b0 = tiny_model(3)
    model = rollout_model(succ, B, list(A), log_C, E)
    cfg = method_config(method, damping=0.3, n_iter=400)
    res = plan(model, np.log(b0), cfg, H)
    rows, logp, logpt = enumerate_joint(succ, B, A, log_C, E, b0, res.channels, cfg)
    if cfg.planning:   # the start state keeps its belief, θ does not: q = b_0(x_0) p̃(θ, rest | x_0)
        start = np.array([r[1][0] for r in rows])
        b0x = b0.sum(axis=1)
        log_zs = {x0: np.logaddexp.reduce(logpt[start == x0]) for x0 in set(start)}
        lz = np.array([log_zs[x0] for x0 in start])
        q = np.exp(logpt - lz) * b0x[start]
        # expected log-evidence of the rollout from the start belief: Σ_x b0(x) log β̄0(x), β̄0 = Z(x0)/b0(x0)
        want_f = -sum(b0x[x0] * (log_zs[x0] - np.log(b0x[x0])) for x0 in log_zs)
    else:
        q = np.exp(logpt - np.logaddexp.reduce(logpt))
        want_f = -np.logaddexp.reduce(logpt)
    nz = q > 0
    vfe = float(np.sum(q[nz] * (np.log(q[nz]) - logp[nz])))
    corr = 0.0
    for t in range(H):
        if cfg.planning:
            corr += cond_entropy(q, rows, lambda r: (r[1][t], r[2][t]), lambda r: r[1][t])
        if cfg.dynamics:
            corr -= cond_entropy(q, rows, lambda r: (r[1][t], r[2][t], r[1][t + 1]), lambda r: (r[1][t], r[2][t]))
        if cfg.observation == "channel":
            corr += 2 * cond_entropy(q, rows, lambda r: (r[1][t + 1], r[0], r[3][t]), lambda r: (r[1][t + 1], r[0]))
            corr -= cond_entropy(q, rows, lambda r: (r[1][t + 1], r[3][t]), lambda r: r[1][t + 1])
    np.testing.assert_allclose(float(res.final_free_energy), vfe + corr, atol=1e-6)
    # and the reported value is −log Z of the channel-modified model (per start state when clamped)
    np.testing.assert_allclose(float(res.final_free_energy), want_f, atol=1e-8)


def test_vbp_commits_to_a_deterministic_policy():
    succ, B, A, log_C, E, b0 = tiny_model(4)
    model = rollout_model(succ, B, list(A), log_C, E)
    bp = plan(model, np.log(b0), "bp", H)
    vbp = plan(model, np.log(b0), method_config("vbp", damping=0.5, n_iter=200), H)
    assert float(jnp.max(jnp.exp(vbp.channels.log_r_u))) > 0.999
    assert float(jnp.max(jnp.exp(vbp.log_q_u0))) > float(jnp.max(jnp.exp(bp.log_q_u0)))


def test_bayes_filter_matches_direct_computation():
    succ, B, A, log_C, E, b0 = tiny_model(5)
    model = rollout_model(succ, B, list(A), log_C, E)
    u, y = 1, np.array([1])
    post = np.zeros((S, K))
    for x in range(S):
        for j in range(J):
            post[succ[x, u, j]] += B[x, u, j] * b0[x]
    post *= A[0, :, :, y[0]]
    post /= post.sum()
    got = np.exp(bayes_filter(model, jnp.log(b0), u, jnp.asarray(y)))
    np.testing.assert_allclose(got, post, atol=1e-12)


def test_free_energy_and_change_are_reported_per_iteration():
    succ, B, A, log_C, E, b0 = tiny_model(6)
    model = rollout_model(succ, B, list(A), log_C, E)
    res = plan(model, np.log(b0), method_config("vbp", n_iter=7), H)
    assert res.free_energy.shape == (7,) and np.all(np.isfinite(res.free_energy))
    assert float(res.channel_change[0]) > float(res.channel_change[-1])


def test_bad_inputs():
    succ, B, A, log_C, E, b0 = tiny_model(0)
    with pytest.raises(ValueError, match="method.*'bp'.*'vbp'.*'rm-mp'.*'aif-mp'.*'nuijten-mp'"):
        method_config("bogus")
    with pytest.raises(ValueError, match="damping"):
        method_config("vbp", damping=1.5)
    with pytest.raises(ValueError, match="n_iter"):
        method_config("vbp", n_iter=0)
    with pytest.raises(ValueError, match="obs_weight"):
        method_config("aif-mp", obs_weight=-1.0)
    with pytest.raises(TypeError, match="method"):
        method_config(3)
    with pytest.raises(ValueError, match="B:"):
        rollout_model(succ, B * 2, list(A), log_C, E)
    with pytest.raises(ValueError, match=r"A\[0\]"):
        rollout_model(succ, B, list(A[..., :1]), log_C, E)
    with pytest.raises(ValueError, match="succ"):
        rollout_model(succ + S, B, list(A), log_C, E)
    with pytest.raises(TypeError, match="A: expected a non-empty list"):
        rollout_model(succ, B, A, log_C, E)
    with pytest.raises(ValueError, match="finite"):
        rollout_model(succ, B, list(A), np.full((S, K), np.nan), E)
    model = rollout_model(succ, B, list(A), log_C, E)
    with pytest.raises(ValueError, match="log_b0"):
        plan(model, np.zeros((S + 1, K)), "bp", H)
    with pytest.raises(ValueError, match="horizon"):
        plan(model, np.log(b0), "bp", 0)
    assert set(METHODS) == {"bp", "vbp", "rm-mp", "aif-mp", "nuijten-mp"}


@pytest.mark.parametrize("method", ["aif-mp", "nuijten-mp"])
def test_layout_independent_group_channels_run_once(method):
    """U modality whose likelihood does not depend on θ gets channels with one layout (log_A_chan); the
    plan equals the one with per-layout channels for that group, and a θ-dependent group keeps K."""
    succ, B, A, log_C, E, b0 = tiny_model(3)
    rng = np.random.default_rng(7)
    shared = np.broadcast_to(rng.dirichlet(np.ones(A.shape[-1]), size=(1, S, 1)), A.shape)
    model = rollout_model(succ, B, list(np.concatenate([A, shared])), log_C, E)
    assert [g.shape[2] for g in model.log_A_chan] == [K]          # both modalities in one group: θ-dependent
    only_shared = rollout_model(succ, B, list(shared), log_C, E)
    assert [g.shape[2] for g in only_shared.log_A_chan] == [1]
    full = only_shared._replace(log_A_chan=only_shared.log_A_plan)
    cfg = method_config(method, damping=0.5, n_iter=12, obs_weight=0.7)
    a, b = plan(only_shared, np.log(b0), cfg, H), plan(full, np.log(b0), cfg, H)
    np.testing.assert_allclose(np.asarray(a.log_q_u0), np.asarray(b.log_q_u0), atol=1e-10)
    np.testing.assert_allclose(np.asarray(a.free_energy), np.asarray(b.free_energy), atol=1e-10)
    assert a.channels.log_r_y[0].shape[3] == 1 and b.channels.log_r_y[0].shape[3] == K
    np.testing.assert_allclose(np.exp(np.asarray(a.channels.log_r_y[0][:, :, :, 0])),
                               np.exp(np.asarray(b.channels.log_r_y[0][:, :, :, 1])), atol=1e-10)


@pytest.mark.parametrize("method", ["rm-mp", "aif-mp"])
def test_trivial_modality_in_a_mixed_group_and_single_successor_dynamics_are_skipped_exactly(method):
    """Two shortcuts of the planner that must not change the plan: (1) a deterministic, θ-independent
    modality grouped with an informative one of the same size is dropped from the planning groups
    (its observation message is 1); (2) with one successor per (x, u) (J = 1) the dynamics channel is
    exactly 1 and is skipped. Reference: the same model with the trivial modality in its own group
    (the first release's pruning) and with a padded second successor of probability 0 (J = 2, so
    the dynamics channel is computed)."""
    rng = np.random.default_rng(11)
    succ1 = rng.integers(0, S, size=(S, U, 1))
    B1 = np.ones((S, U, 1, K))
    A_info = rng.dirichlet(np.ones(Y), size=(S, K))                                # θ-dependent (S,K,Y)
    pos = np.broadcast_to(np.eye(Y)[np.arange(S) % Y][:, None, :], (S, K, Y))           # deterministic, θ-free
    _, _, _, log_C, E, b0 = tiny_model(2)
    mixed = rollout_model(succ1, B1, [A_info, pos], log_C, E)
    assert [g.shape[0] for g in mixed.log_A] == [2] and [g.shape[0] for g in mixed.log_A_plan] == [1]
    np.testing.assert_array_equal(np.asarray(mixed.log_A_plan[0][0]), np.log(A_info))
    succ2 = np.concatenate([succ1, (succ1 + 1) % S], axis=2)
    B2 = np.concatenate([B1, np.zeros_like(B1)], axis=2)
    cfg = method_config(method, damping=0.5, n_iter=12)
    a = plan(mixed, np.log(b0), cfg, H)
    ref_model = rollout_model(succ2, B2, [A_info, pos], log_C, E)
    full = ref_model._replace(log_A_plan=ref_model.log_A, log_A_chan=ref_model.log_A)   # nothing skipped
    b = plan(full, np.log(b0), cfg, H)
    np.testing.assert_allclose(np.asarray(a.log_q_u0), np.asarray(b.log_q_u0), atol=1e-12)
    np.testing.assert_allclose(np.asarray(a.free_energy), np.asarray(b.free_energy), atol=1e-12)
    np.testing.assert_allclose(np.asarray(a.log_single), np.asarray(b.log_single), atol=1e-12)
    assert np.allclose(np.exp(np.asarray(b.channels.log_r_x[..., 0])), 1.0, atol=1e-12)   # the skipped channel


def test_deprecated_make_model_with_the_old_letters_equals_rollout_model():
    """``make_model(succ, T, B, log_C, pi)`` (T transitions, B padded observations) warns and builds the
    same model as ``rollout_model(succ, B, A, log_C, E)``; the old attribute names alias the new ones."""
    succ, B, A, log_C, E, b0 = tiny_model(5)
    padded = np.concatenate([A, np.zeros(A.shape[:3] + (1,))], axis=-1)        # one padded value
    with pytest.warns(DeprecationWarning, match="make_model"):
        old = make_model(succ, B, padded, log_C, E, obs_sizes=[Y])
    new = rollout_model(succ, B, list(A), log_C, E)
    for a, b in zip(old, new):
        np.testing.assert_array_equal(np.asarray(a) if not isinstance(a, tuple) else np.stack(a),
                                      np.asarray(b) if not isinstance(b, tuple) else np.stack(b))
    assert not any(hasattr(new, old_name) for old_name in ("log_T", "log_pi", "log_B_plan"))  # one letter each


def test_plan_refuses_inf_or_nan_in_beliefs_and_preferences():
    succ, B, A, log_C, E, b0 = tiny_model(2)
    model = rollout_model(succ, B, list(A), log_C, E)
    for bad in (np.inf, np.nan):
        lb = np.log(b0)
        lb[0, 0] = bad
        with pytest.raises(ValueError, match=r"log_b0: expected log-probabilities in \[-inf, inf\)"):
            plan(model, lb, "aif-mp", H)
        with pytest.raises(ValueError, match="log_C"):
            rollout_model(succ, B, list(A), np.where(np.arange(S)[:, None] == 0, bad, log_C), E)
        with pytest.raises(ValueError, match="model.log_C"):
            plan(model._replace(log_C=model.log_C.at[0, 0].set(bad)), np.log(b0), "bp", H)
