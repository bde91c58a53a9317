"""pymdp (inferactively-pymdp, JAX) as an oracle: state inference equals pymdp's to 1e-6 on a random
single-factor POMDP and on the T-maze, and both libraries' agents visit the T-maze cue first.

The planners' objectives differ (docs/models.md): pymdp scores enumerated policies by the expected free
energy (risk over observations + ambiguity, softmax with precision γ); pyrxaif's EFE planners run message
passing on the rollout graph (AIF-MP's observation channels reproduce the ambiguity and information-gain
terms with preferences over states), and its GFE agent scores policies by the generalised free energy.
So only behaviour is compared for those planners; the Agent's ``efe`` method is pymdp's algorithm,
and its G, q(π) and q(u_0) are compared with pymdp's."""

import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64: pymdp then runs in float64 too)
from pyrxaif.agents.pomdp_agent import Agent
from pyrxaif.envs import tmaze
from pyrxaif.models.discrete_pomdp import DiscretePOMDP

pymdp_agent = pytest.importorskip("pymdp.agent", reason="inferactively-pymdp (dev extra) is not installed")
jnp = pytest.importorskip("jax.numpy")


def _pymdp(model: DiscretePOMDP, **kw):
    batch = lambda xs: [jnp.asarray(x)[None] for x in xs]  # noqa: E731  (pymdp's leading batch axis)
    return pymdp_agent.Agent(A=batch(model.A), B=batch(model.B), C=batch(model.C), D=batch(model.D),
                             num_controls=model.num_controls, **kw)


def _compare_filters(model, steps, num_iter=16):
    """Run both agents' state inference through (obs, action) steps; return the largest difference."""
    ours = Agent(model, method="bp", horizon=1, n_iter=1)
    theirs = _pymdp(model, policy_len=1, num_iter=num_iter)
    prior, worst = theirs.D, 0.0
    for obs, u in steps:
        qs = ours.infer_states(obs)
        ours.take_action(u)
        ref = theirs.infer_states([jnp.array([[o]]) for o in obs], prior)
        for q, r in zip(qs, ref):
            worst = max(worst, float(np.max(np.abs(q - np.asarray(r)[0, -1]))))
        controls = np.unravel_index(u, [model.num_controls[f] for f in model.state_factors])
        action = np.zeros(model.num_factors, np.int32)
        action[model.state_factors] = controls
        prior = theirs.update_empirical_prior(jnp.asarray(action)[None], ref)
    return worst


def test_state_inference_equals_pymdp_on_a_random_single_factor_pomdp():
    rng = np.random.default_rng(0)
    ns, no, nu = 5, 4, 3
    A = rng.gamma(1.0, size=(no, ns))
    B = rng.gamma(1.0, size=(ns, ns, nu))
    D = rng.gamma(1.0, size=ns)
    model = DiscretePOMDP([A / A.sum(0)], [B / B.sum(0)], D=[D / D.sum()])
    steps = [([int(rng.integers(no))], int(rng.integers(nu))) for _ in range(6)]
    assert _compare_filters(model, steps) < 1e-6


def test_state_inference_equals_pymdp_on_the_tmaze():
    """Position is observed exactly, so pymdp's factorised posterior is the exact one."""
    model = tmaze.tmaze_pomdp(0.8, 2.0)
    env = tmaze.TMaze(alpha=0.8, moves=3)
    for seed in range(3):
        x, _ = env.reset(seed=seed)
        steps = []
        for u in (tmaze.CUE, tmaze.L, tmaze.O):
            steps.append(([x // 4, x % 4], u))
            x, *_ = env.step(u)
        assert _compare_filters(model, steps) < 1e-6


def test_both_libraries_visit_the_tmaze_cue_first_with_known_A():
    model = tmaze.tmaze_pomdp(0.9, 2.0)
    theirs = _pymdp(model, policy_len=2)
    qs = theirs.infer_states([jnp.array([[0]]), jnp.array([[0]])], theirs.D)
    q_pi, _ = theirs.infer_policies(qs)
    assert int(np.asarray(theirs.sample_action(q_pi))[0, 0]) == tmaze.CUE
    for method, kw in (("aif-mp", {}), ("gfe", dict(iterations=12, burn_in=2, num_samples=4))):
        ours = Agent(model, method=method, horizon=2, **kw)
        ours.infer_states([0, 0])
        ours.infer_policies()
        assert ours.sample_action() == tmaze.CUE, method


# -- method "efe": pymdp's policy inference, like for like ---------------------------------------------

def _compare_efe(model, steps, horizon, gamma):
    """Run ``Agent(method="efe")`` and pymdp's agent through (obs, action) steps; at each step compare
    G with pymdp's −neg_efe and q(π) with its q_pi; return the largest differences (G, q(π), q(u_0))."""
    ours = Agent(model, method="efe", horizon=horizon, gamma=gamma)
    theirs = _pymdp(model, policy_len=horizon, gamma=gamma)
    prior, worst = theirs.D, np.zeros(3)
    for obs, u in steps:
        ours.infer_states(obs)
        q_pi, G = ours.infer_policies()
        q_u = ours.q_u[0]
        ours.take_action(u)
        qs = theirs.infer_states([jnp.array([[o]]) for o in obs], prior)
        ref_q, ref_neg_efe = theirs.infer_policies(qs)
        ref_q_u = np.asarray(theirs.multiaction_probabilities(ref_q))[0]      # marginal of the first action
        worst = np.maximum(worst, [np.max(np.abs(G + np.asarray(ref_neg_efe)[0])),
                                   np.max(np.abs(q_pi - np.asarray(ref_q)[0])), np.max(np.abs(q_u - ref_q_u))])
        action = np.zeros(model.num_factors, np.int32)
        action[model.state_factors] = np.unravel_index(u, [model.num_controls[f] for f in model.state_factors])
        prior = theirs.update_empirical_prior(jnp.asarray(action)[None], qs)
    return worst


def test_efe_policy_posterior_equals_pymdp_on_the_tmaze():
    """Every policy's G and q(π), at every step of three trials (cue visited or not), as pymdp's."""
    model = tmaze.tmaze_pomdp(0.8, 2.0)
    env = tmaze.TMaze(alpha=0.8, moves=3)
    for seed, moves in enumerate(((tmaze.CUE, tmaze.L, tmaze.O), (tmaze.R, tmaze.O, tmaze.CUE),
                                  (tmaze.O, tmaze.CUE, tmaze.R))):
        x, _ = env.reset(seed=seed)
        steps = []
        for u in moves:
            steps.append(([x // 4, x % 4], u))
            x, *_ = env.step(u)
        worst = _compare_efe(model, steps, horizon=2, gamma=4.0)
        assert np.all(worst < 1e-6), worst
    # the policies do differ: the epistemic Cue-first policies are preferred at the start
    agent = Agent(model, method="efe", horizon=2, gamma=4.0)
    agent.infer_states([0, 0])
    q_pi, G = agent.infer_policies()
    assert np.ptp(G) > 0.5 and agent.sample_action() == tmaze.CUE


def test_efe_policy_posterior_equals_pymdp_on_a_random_pomdp():
    """One state factor, two modalities (the ambiguity and entropy terms add over modalities), random C,
    a horizon of three, an uneven policy posterior."""
    rng = np.random.default_rng(3)
    ns, nu = 5, 3
    A = [rng.gamma(0.5, size=(no, ns)) for no in (4, 3)]
    B = rng.gamma(0.5, size=(ns, ns, nu))
    D = rng.gamma(1.0, size=ns)
    C = [rng.normal(size=a.shape[0]) for a in A]
    model = DiscretePOMDP([a / a.sum(0) for a in A], [B / B.sum(0)], C, D=[D / D.sum()])
    steps = [([int(rng.integers(4)), int(rng.integers(3))], int(rng.integers(nu))) for _ in range(4)]
    worst = _compare_efe(model, steps, horizon=3, gamma=2.0)
    assert np.all(worst < 1e-6), worst
    agent = Agent(model, method="efe", horizon=3, gamma=2.0)
    agent.infer_states(steps[0][0])
    q_pi, G = agent.infer_policies()
    assert q_pi.shape == (27,) and q_pi.max() > 2 * q_pi.min() and np.isclose(q_pi.sum(), 1.0)


def test_efe_policy_posterior_equals_pymdp_with_two_controlled_factors():
    """Two state factors with 2 and 3 controls (pymdp's policies are its product over factors and steps,
    ours over joint actions: the same order), each modality sensing one factor, so the exact posterior
    factorises and pymdp's mean-field state inference is exact: G and q(π) as pymdp's over 36 policies."""
    rng = np.random.default_rng(5)
    ns, nu = (3, 2), (2, 3)
    B = [rng.gamma(0.7, size=(n, n, u)) for n, u in zip(ns, nu)]
    A0 = rng.gamma(0.7, size=(4, 3))
    A1 = rng.gamma(0.7, size=(3, 2))
    A = [np.broadcast_to((A0 / A0.sum(0))[:, :, None], (4, 3, 2)).copy(),
         np.broadcast_to((A1 / A1.sum(0))[:, None, :], (3, 3, 2)).copy()]
    C = [rng.normal(size=4), rng.normal(size=3)]
    model = DiscretePOMDP(A, [b / b.sum(0) for b in B], C)
    steps = [([int(rng.integers(4)), int(rng.integers(3))], int(rng.integers(6))) for _ in range(3)]
    worst = _compare_efe(model, steps, horizon=2, gamma=1.0)
    assert np.all(worst < 1e-6), worst
