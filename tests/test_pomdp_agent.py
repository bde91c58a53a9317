"""Agent: pymdp's loop on a DiscretePOMDP. State inference against brute-force Bayes, behaviour of the
planners on the T-maze, batches equal single agents, Dirichlet learning of A, the deprecated
GridworldAgent equal to the Agent, the fused step equal to the three calls, the ``efe`` scores against a
brute-force expected free energy, and bad input refused by name."""

import warnings

import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.agents.pomdp_agent import METHODS, Agent
from pyrxaif.envs import tmaze
from pyrxaif.models.discrete_pomdp import DiscretePOMDP

from tests.test_discrete_pomdp import random_pomdp

GFE_FAST = dict(iterations=12, burn_in=2, num_samples=4)


def brute_force_filter(model, steps):
    """Bayes' rule on the dense joint: D at the first step, then prediction through B."""
    dense = model.dense_transitions()
    flat = model.flat_observations()
    b, out = model.initial_prior(), []
    for i, (u, y) in enumerate(steps):
        if i:
            b = np.einsum("nxk,xk->nk", dense[..., u], b)
        for m, ym in enumerate(y):
            b = b * flat[m][..., ym]
        b = b / b.sum()
        out.append(model.state_marginals(b))
    return out


def test_infer_states_equals_brute_force_bayes_per_factor():
    model, _ = random_pomdp(4)
    rng = np.random.default_rng(1)
    agent = Agent(model, method="bp", horizon=2, n_iter=1)
    steps = []
    for t in range(4):
        y = [int(rng.integers(n)) for n in model.num_obs]
        qs = agent.infer_states(y)
        agent.infer_policies()
        u = agent.sample_action()
        steps.append((steps and steps[-1][2] or 0, y, u))
        want = brute_force_filter(model, [(s[0], s[1]) for s in steps])[-1]
        assert len(qs) == model.num_factors
        for q, w in zip(qs, want):
            assert isinstance(q, np.ndarray) and q.sum() == pytest.approx(1.0, abs=1e-12)
            np.testing.assert_allclose(q, w, atol=1e-10)
    agent.reset()
    first = agent.infer_states(steps[0][1])
    for q, w in zip(first, brute_force_filter(model, [(0, steps[0][1])])[0]):
        np.testing.assert_allclose(q, w, atol=1e-12)


def _run_tmaze(method, seed=0, **kw):
    env = tmaze.TMaze(moves=2)
    agent = Agent(tmaze.tmaze_pomdp(), method=method, horizon=2, **kw)
    x, _ = env.reset(seed=seed)
    actions = []
    for _ in range(2):
        agent.infer_states([x // 4, x % 4])
        agent.infer_policies()
        u = agent.sample_action()
        actions.append(u)
        x, *_ = env.step(u)
    return actions, agent


def test_tmaze_epistemic_methods_visit_the_cue_first_and_bp_does_not():
    """With known A, AIF-MP, Nuijten-MP and the GFE agent go to the cue first; BP and the Bethe agent
    do not (no epistemic value); after the cue the GFE agent enters the cued arm."""
    for m in ("aif-mp", "nuijten-mp"):
        assert _run_tmaze(m)[0][0] == tmaze.CUE, m
    assert _run_tmaze("bp")[0][0] != tmaze.CUE
    for seed in (0, 1):
        acts, agent = _run_tmaze("gfe", seed=seed, **GFE_FAST)
        assert acts[0] == tmaze.CUE
        side = int(np.argmax(agent.belief.sum(axis=0)))
        assert acts[1] == (tmaze.L if side == 0 else tmaze.R)
    assert _run_tmaze("bethe", **GFE_FAST)[0][0] != tmaze.CUE


@pytest.mark.parametrize("method", ["aif-mp", "efe", "gfe"])
def test_batch_equals_single_agents(method):
    model = tmaze.tmaze_pomdp()
    kw = GFE_FAST if method == "gfe" else {}
    obs = [[[0, 0], [3, 1]], [[0, 1], [3, 0]], [[0, 0], [3, 0]]]         # three agents, two steps
    batch = Agent(model, method=method, horizon=2, batch_size=3, **kw)
    singles = [Agent(model, method=method, horizon=2, **kw) for _ in range(3)]
    for t in range(2):
        qb = batch.infer_states(np.array([o[t] for o in obs]))
        batch.infer_policies()
        ub = batch.sample_action()
        for i, ag in enumerate(singles):
            qs = ag.infer_states(obs[i][t])
            ag.infer_policies()
            assert ag.sample_action() == ub[i]
            for f in range(2):
                np.testing.assert_allclose(qb[f][i], qs[f], atol=1e-10)


def test_gfe_agent_learns_A_by_dirichlet_counts():
    """learn() after an episode adds the clamped observations' counts: the total concentration grows by the
    number of observed steps, and the cue's column for the true side gains the cue outcome."""
    pA = tmaze.observation_prior(0.1)
    agent = Agent(tmaze.tmaze_pomdp(), method="gfe", horizon=2, pA=pA, **GFE_FAST)
    agent.infer_states([0, 0])
    agent.infer_policies()
    agent.sample_action()
    agent.infer_states([3, 1])                 # at the cue, cue says right
    post = agent.learn()
    assert post.sum() == pytest.approx(pA.sum() + 1.0, abs=1e-9)
    assert post[13, 7] - pA[13, 7] > 0.99      # x = 4·Cue + CR, z = 2·Cue + right
    with pytest.raises(RuntimeError, match="learn"):
        Agent(tmaze.tmaze_pomdp(), method="gfe", horizon=2, **GFE_FAST).learn()


def test_deprecated_gridworld_agent_equals_agent():
    from pyrxaif.agents.gridworld import GridworldAgent
    from pyrxaif.envs.frozenlake import SCAN, EpistemicFrozenLake
    env = EpistemicFrozenLake()
    with pytest.warns(DeprecationWarning, match="GridworldAgent is deprecated"):
        old = GridworldAgent(env, "aif-mp", horizon=10, n_iter=8, obs_weight=0.3)
    new = Agent(env.pomdp, "aif-mp", horizon=10, n_iter=8, obs_weight=0.3)
    obs, _ = env.reset(seed=1, options={"layout": 5})
    qs = new.infer_states(obs)
    with np.errstate(divide="ignore"):
        lb = np.log(env.initial_belief())
    from pyrxaif.inference.rollout import observation_loglik
    lb = lb + np.asarray(observation_loglik(env.model(), np.asarray(obs)))
    lb = lb - np.logaddexp.reduce(lb.ravel())
    np.testing.assert_allclose(new.belief, np.exp(lb), atol=1e-12)
    q_u = new.infer_policies()
    assert new.sample_action() == old.act(lb) == SCAN
    np.testing.assert_allclose(q_u, np.exp(np.asarray(old.last_plan.log_q_u0)), atol=1e-10)
    obs, *_ = env.step(SCAN)
    new.infer_states(obs)
    np.testing.assert_allclose(new.belief, np.exp(np.asarray(old.update(lb, SCAN, obs))), atol=1e-10)
    assert qs[1].shape == (env.num_layouts,)


def test_gridworld_agent_update_refuses_bad_actions_and_observations():
    from pyrxaif.agents.gridworld import GridworldAgent
    from pyrxaif.envs.frozenlake import EpistemicFrozenLake
    env = EpistemicFrozenLake()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        agent = GridworldAgent(env, "bp")
    obs, _ = env.reset(seed=0)
    with np.errstate(divide="ignore"):
        lb = np.log(env.initial_belief())
    for bad, err in ((99, ValueError), (-1, ValueError), (2.7, TypeError), (np.float64(1.0), TypeError)):
        with pytest.raises(err, match="action"):
            agent.update(lb, bad, obs)
    for bad_obs in (np.where(np.arange(len(obs)) == 0, 99, obs), np.where(np.arange(len(obs)) == 3, -1, obs)):
        with pytest.raises(ValueError, match="observation: expected indices below"):
            agent.update(lb, 0, bad_obs)
    impossible = obs.copy()
    impossible[0] = 20                              # a position the agent cannot reach in one move
    with pytest.raises(ValueError, match="probability zero"):
        agent.update(lb, 0, impossible)
    bad_lb = lb.copy()
    bad_lb[0, 0] = np.nan
    with pytest.raises(ValueError, match="log_belief"):
        agent.update(bad_lb, 0, obs)


def test_agent_refuses_bad_input_by_name():
    model = tmaze.tmaze_pomdp()
    with pytest.raises(TypeError, match="model"):
        Agent("tmaze")
    with pytest.raises(ValueError, match="method"):
        Agent(model, method="dp")
    with pytest.raises(ValueError, match="horizon"):
        Agent(model, horizon=0)
    with pytest.raises(ValueError, match="horizon: 4\\^8"):
        Agent(model, method="gfe", horizon=8)
    with pytest.raises(ValueError, match="policies"):
        Agent(model, method="gfe", horizon=2, policies=np.array([[0, 5]]))
    with pytest.raises(ValueError, match="pA"):
        Agent(model, method="gfe", horizon=2, pA=-np.ones((16, 8)))
    with pytest.raises(ValueError, match="pA, pC: only the GFE/Bethe"):
        Agent(model, method="bp", pA=np.ones((16, 8)))
    with pytest.raises(ValueError, match="policies: only the efe/GFE/Bethe"):
        Agent(model, method="bp", policies=np.array([[0, 1]]))
    agent = Agent(model, method="bp", horizon=2)
    with pytest.raises(RuntimeError, match="infer_states"):
        agent.infer_policies()
    with pytest.raises(ValueError, match="obs: expected indices below"):
        agent.infer_states([4, 0])
    with pytest.raises(TypeError, match="obs"):
        agent.infer_states([0.5, 0])
    with pytest.raises(ValueError, match="probability zero"):
        agent.infer_states([0, 2])                  # RW at O never happens
    qs = agent.infer_states([0, 0])                 # the belief was left unchanged: still the prior
    np.testing.assert_allclose(qs[1], [0.5, 0.5])
    with pytest.raises(RuntimeError, match="sample_action"):
        agent.sample_action()
    assert set(METHODS) == {"bp", "vbp", "rm-mp", "aif-mp", "nuijten-mp", "efe", "gfe", "bethe"}
    gfe = Agent(model, method="gfe", horizon=2, policies=np.array([[3, 1], [3, 2]]), **GFE_FAST)
    gfe.infer_states([0, 0])
    gfe.take_action(tmaze.L)                        # not the first action of any policy in the set
    gfe.infer_states([1, 2])
    with pytest.raises(RuntimeError, match="no policy of the set continues"):
        gfe.infer_policies()
    with pytest.raises(TypeError, match="action"):
        agent.take_action(2.7)


def test_single_factor_model_from_doc():
    A = [np.array([[0.9, 0.1], [0.1, 0.9]])]
    B = [np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)]
    agent = Agent(DiscretePOMDP(A, B, C=[np.array([0.0, 3.0])]), method="bp", horizon=2)
    np.testing.assert_allclose(agent.infer_states([0])[0], [0.9, 0.1])
    agent.infer_policies()
    assert agent.sample_action() == 1          # in state 0 (likely), swap to the preferred state 1


@pytest.mark.parametrize("objective", ["gfe"])
def test_agent_scores_the_tmaze_policies_as_the_laif_trial_does(objective):
    """With known A (no sampling), the Agent's G over LAIF's ten first-move policies equals the T-maze
    trial's G1 (``pyrxaif.agents.tmaze``), and after the cue the continuations' G equal its G2.

    Not for "bethe": its score of (Cue, Cue) sits on a symmetric saddle of the Bethe fixed-point
    iteration (q(side) = ½ gives F = 35.9 nats, any rounding asymmetry runs to a side with F = 8.0), and
    whether rounding breaks the symmetry depends on how XLA fuses the vmapped call (measured: eager
    vmap 15.5 bits, jit(vmap) 51.8 bits for the same inputs)."""
    import jax
    from pyrxaif.agents import tmaze as tm
    kw = dict(iterations=12, burn_in=2)
    _, rec = tm.simulate(jax.random.PRNGKey(0), n_runs=1, n_trials=1, objective=objective, learn="none",
                         selection="argmin", progress=False, num_samples=4, **kw)
    agent = Agent(tmaze.tmaze_pomdp(), method=objective, horizon=2, policies=tm.FIRST_POLICIES,
                  action_selection="deterministic", num_samples=4, **kw)
    agent.infer_states([0, 0])
    _, G = agent.infer_policies()
    np.testing.assert_allclose(G, np.asarray(rec.G1)[0, 0], atol=1e-9)
    a1 = int(np.asarray(rec.actions)[0, 0, 0])
    assert agent.sample_action() == a1
    x1 = int(np.asarray(rec.observations)[0, 0, 0])
    agent.infer_states([x1 // 4, x1 % 4])
    _, G2 = agent.infer_policies()
    cont = [i for i, p in enumerate(tm.FIRST_POLICIES) if p[0] == a1]
    want = np.asarray(rec.G2)[0, 0][tm.FIRST_POLICIES[cont, 1]]
    np.testing.assert_allclose(G2[cont], want, atol=1e-9)
    assert np.all(np.isinf(np.delete(G2, cont)))


def test_gfe_agent_learns_goals_by_dirichlet_counts():
    """With pC (and the known A) learn() adds one count per step at the observed outcome of that step
    (LAIF §7.2's conjugate rule; the goal's observation node is clamped), and the next episode scores
    with the learned goals."""
    pC = np.full((2, 16), 0.1)
    agent = Agent(tmaze.tmaze_pomdp(), method="gfe", horizon=2, pC=pC, **GFE_FAST)
    agent.infer_states([0, 0])
    _, G_before = agent.infer_policies()
    agent.take_action(tmaze.CUE)
    agent.infer_states([3, 1])                      # x = 13
    agent.take_action(tmaze.R)
    agent.infer_states([2, 2])                      # x = 10 (reward on the right)
    post = agent.learn()
    want = pC.copy()
    want[0, 13] += 1.0
    want[1, 10] += 1.0
    np.testing.assert_allclose(post, want, atol=1e-9)
    assert agent.pA is None
    agent.reset()
    agent.infer_states([0, 0])
    _, G_after = agent.infer_policies()
    assert not np.allclose(G_after, G_before)       # the goals changed, so do the scores


def test_episode_may_start_without_an_observation():
    """infer_states(None) at the start: the belief is D (no update); a GFE agent then scores the policies
    with z_0 ~ D (equal to starting from an observation that is uninformative about z_0)."""
    model = tmaze.tmaze_pomdp()
    agent = Agent(model, method="gfe", horizon=2, policies=np.array([[3, 1], [3, 2], [0, 0]]), **GFE_FAST)
    qs = agent.infer_states(None)
    np.testing.assert_allclose(qs[0], [1, 0, 0, 0])
    np.testing.assert_allclose(qs[1], [0.5, 0.5])
    _, G_none = agent.infer_policies(key=np.asarray(jax.random.PRNGKey(1)))
    agent.reset()
    agent.infer_states([0, 0])                      # at O: CL with probability ½ on either side
    _, G_obs = agent.infer_policies(key=np.asarray(jax.random.PRNGKey(1)))
    np.testing.assert_allclose(G_none, G_obs, atol=1e-9)
    with pytest.raises(ValueError, match="obs: None"):
        agent.infer_states(None)                    # only before the first action
    bp = Agent(model, method="bp", horizon=2)
    np.testing.assert_allclose(bp.infer_states(None)[1], [0.5, 0.5])


def test_explicit_keys_replay_the_agents_random_numbers():
    """Keys passed to infer_policies / sample_action / learn replace the agent's own stream: agents with
    different seeds given the same keys score, choose and learn identically; bad keys are refused."""
    pA = tmaze.observation_prior(0.1)
    a, b = (Agent(tmaze.tmaze_pomdp(), method="gfe", horizon=2, pA=pA, action_selection="stochastic",
                  gamma=0.5, batch_size=3, seed=s, **GFE_FAST) for s in (0, 7))
    keys = np.asarray(jax.random.split(jax.random.PRNGKey(5), 3))
    for ag in (a, b):
        ag.infer_states(np.zeros((3, 2), int))
    np.testing.assert_array_equal(a.infer_policies(key=keys)[1], b.infer_policies(key=keys)[1])
    np.testing.assert_array_equal(a.sample_action(key=keys), b.sample_action(key=keys))
    for ag in (a, b):
        ag.infer_states(np.array([[3, 0], [3, 1], [0, 0]]))
    np.testing.assert_array_equal(a.learn(key=keys), b.learn(key=keys))
    with pytest.raises(ValueError, match=r"key: expected uint32 PRNG keys of shape \(3, 2\)"):
        a.infer_policies(key=keys[0])


def test_gfe_choice_is_drawn_among_the_continuing_policies_with_q_pi():
    """After the first move the stochastic choice is among the policies that continue it, with the
    probabilities q(π) that infer_policies returns (400 agents in lockstep, one draw each)."""
    N = 400
    agent = Agent(tmaze.tmaze_pomdp(), method="gfe", horizon=2, action_selection="stochastic", gamma=0.3,
                  batch_size=N, **GFE_FAST)
    agent.infer_states(np.zeros((N, 2), int))
    agent.infer_policies()
    agent.take_action(np.full(N, tmaze.O))
    agent.infer_states(np.zeros((N, 2), int))
    q, G = agent.infer_policies()
    assert np.all(np.isinf(G[:, 4:])) and np.all(np.isfinite(G[:, :4]))      # policies (O, u) come first
    u = agent.sample_action()
    freq = np.bincount(u, minlength=4) / N
    p = q[0, :4]
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / N) + 1e-12), (freq, p)
    assert p.min() > 0.05                                                     # a real spread to test


def test_learned_goals_and_engine_are_validated_by_name():
    model = tmaze.tmaze_pomdp()
    with pytest.raises(ValueError, match=r"pC: expected positive finite Dirichlet concentrations of shape \(2, 16\)"):
        Agent(model, method="gfe", horizon=2, pC=np.ones(16))
    with pytest.raises(ValueError, match="pC: only the GFE/Bethe"):
        Agent(model, method="bp", horizon=2, pC=np.ones((2, 16)))
    with pytest.raises(ValueError, match="engine: only the GFE/Bethe"):
        Agent(model, method="aif-mp", horizon=2, engine="julia")
    from pyrxaif.engines import engine
    with pytest.raises(ValueError, match="engine: the 'jax' engine scores policies with a learned A"):
        Agent(model, method="gfe", horizon=2, engine=engine("jax"))
    with pytest.raises(TypeError, match="engine: expected an engine name or an engine object"):
        Agent(model, method="gfe", horizon=2, engine=3)


# -- the fused step and the "efe" method ------------------------------------------------------------

@pytest.mark.parametrize("method", ["bp", "efe", "gfe",
                                    pytest.param("aif-mp", marks=pytest.mark.slow)])   # aif-mp: bp's code path
def test_step_equals_the_three_calls(method):
    """Agent.step(obs) gives the numbers, actions and random stream of infer_states → infer_policies →
    sample_action (stochastic selection: the key is used), and step(obs, action) those of take_action."""
    if method == "gfe":        # the T-maze (compiled for the other GFE tests); one episode: O, then the cue
        model, kw = tmaze.tmaze_pomdp(), dict(GFE_FAST)
        obs = np.array([[[0, 0]] * 3, [[3, 0], [3, 1], [3, 0]]])     # 3 agents: the batch test's compile
        replays = [None, np.full(3, tmaze.CUE)]
    else:                      # every A entry is positive: any observation is possible
        model, kw = random_pomdp(4)[0], {}
        rng = np.random.default_rng(0)
        obs = rng.integers(0, [4, 2], size=(3, 3, 2))
        replays = [None, rng.integers(0, model.num_actions, size=3), None]
    fused, calls = (Agent(model, method=method, horizon=2, batch_size=3, action_selection="stochastic",
                          gamma=3.0, seed=7, **kw) for _ in range(2))
    for t, replay in enumerate(replays):
        got = fused.step(obs[t], replay)
        qs = calls.infer_states(obs[t])
        pol = calls.infer_policies()
        if replay is None:
            u = calls.sample_action()
        else:
            calls.take_action(replay)
            u = replay
        np.testing.assert_array_equal(got.action, u)
        for a, b in zip(got.qs, qs):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
        for a, b in zip(*((p,) if method in ("bp", "aif-mp") else p for p in (got.policies, pol))):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    single = Agent(model, method=method, horizon=2, **kw)
    step = single.step(obs[0, 0])
    assert isinstance(step.action, int) and np.isclose(step.qs[0].sum(), 1.0)


def _efe_brute_force(model, belief, policy):
    """pymdp's expected free energy of one policy, by hand on the dense joint: predict through B, then
    Σ_τ [ambiguity − entropy of the predicted outcomes − their expected preference − expected C_states]."""
    dense = model.dense_transitions()                                  # (S', S, K, U)
    flat = model.flat_observations()                                   # (S, K, Y_m)
    c_states = model.flat_state_preferences()
    q, G = belief, 0.0
    for u in policy:
        q = np.einsum("tsk,sk->tk", dense[..., u], q)
        for a, c in zip(flat, model.C):
            qo = np.einsum("sky,sk->y", a, q)
            G += np.sum(q * -np.sum(a * np.log(a), axis=-1)) + np.sum(qo * np.log(qo)) - qo @ c
        G -= np.sum(q * c_states)
    return G


def test_efe_scores_equal_a_brute_force_expected_free_energy():
    """Two controlled factors with a cross dependency, a parameter factor, two modalities, state
    preferences, a non-uniform action prior; the whole policy set and a subset of it (the prefix tree of
    an uneven set)."""
    model, (A, B, C, D, ns) = random_pomdp(2)
    rng = np.random.default_rng(2)
    c_states = rng.normal(size=ns)
    E = rng.gamma(2.0, size=model.num_actions)
    model = DiscretePOMDP(A, B, C, D, E=E / E.sum(), C_states=c_states, B_dependencies=model.B_dependencies,
                          parameter_factors=model.parameter_factors)
    agent = Agent(model, method="efe", horizon=2, gamma=1.5)
    agent.infer_states([1, 0])
    q_pi, G = agent.infer_policies()
    policies = np.array([(a, b) for a in range(6) for b in range(6)])
    want = np.array([_efe_brute_force(model, agent.belief, p) for p in policies])
    np.testing.assert_allclose(G, want, rtol=0, atol=1e-12)
    logits = -1.5 * want + np.log(model.E)[policies].sum(axis=1)
    np.testing.assert_allclose(q_pi, np.exp(logits - np.logaddexp.reduce(logits)), atol=1e-12)
    q_u = np.bincount(policies[:, 0], weights=q_pi, minlength=6)
    assert agent.sample_action() == int(np.argmax(q_u)) and np.ptp(G) > 0.1
    subset = policies[rng.choice(len(policies), size=9, replace=False)][:, ::-1]       # uneven prefixes
    sub = Agent(model, method="efe", horizon=2, gamma=1.5, policies=subset)
    sub.infer_states([1, 0])
    np.testing.assert_allclose(sub.infer_policies()[1],
                               [_efe_brute_force(model, sub.belief, p) for p in subset], rtol=0, atol=1e-12)


def test_step_and_efe_refuse_bad_input_by_name(monkeypatch):
    model = tmaze.tmaze_pomdp()
    with pytest.raises(ValueError, match="pA"):
        Agent(model, method="efe", horizon=2, pA=np.ones((16, 8)))
    with pytest.raises(ValueError, match="policies"):
        Agent(model, method="efe", horizon=2, policies=np.array([[0, 4]]))
    with pytest.raises(ValueError, match="horizon: 4\\^7"):
        Agent(model, method="efe", horizon=7)
    from pyrxaif.agents import pomdp_agent
    monkeypatch.setattr(pomdp_agent, "MAX_TRANSITION_ENTRIES", 100)
    with pytest.raises(ValueError, match="method: 'efe' keeps the dense joint transition"):
        Agent(model, method="efe", horizon=1)
    monkeypatch.undo()
    for method in ("efe", "bp"):                     # the two kinds of fused policy inference
        agent = Agent(model, method=method, horizon=2)
        with pytest.raises(ValueError, match="obs: expected indices below"):
            agent.step([4, 0])
        with pytest.raises(TypeError, match="action"):
            agent.step([0, 0], 2.5)
        with pytest.raises(ValueError, match="probability zero"):
            agent.step([0, 2])                       # RW at O never happens
        step = agent.step([0, 0], tmaze.CUE)         # the belief was left unchanged: still the prior
        np.testing.assert_allclose(step.qs[1], [0.5, 0.5])
        assert step.action == tmaze.CUE
        with pytest.raises(ValueError, match="probability zero"):
            agent.step([1, 0])                       # after Cue the agent is at the cue, not at L


def test_pure_loop_with_traced_A_and_C_equals_the_host_loop_on_that_model():
    """Agent's pure loop (tensors, start_episode, score_policies, choose_action, record_observation) inside
    jit and vmap, on an agent built on the T-maze at α = 0.9 and given the outcome likelihood of another α
    and another goal c as traced arrays, gives the G and the actions of the host loop of an agent built on
    that T-maze, with the same keys."""
    import jax.numpy as jnp

    from pyrxaif.agents.tmaze import FIRST_POLICIES
    kw = dict(method="gfe", horizon=2, policies=FIRST_POLICIES, action_selection="stochastic", gamma=0.5,
              **GFE_FAST)
    agent = Agent(tmaze.tmaze_pomdp(0.9), **kw)
    position = jnp.asarray(agent.model.A[0])
    outcome_after = jnp.array([0, 2, 2, 0])                  # an outcome possible on the left side after each move

    def episode(outcome, c, keys):
        t = agent.tensors(A=[position, outcome], C=[jnp.zeros(4), jnp.stack([0.0, 0.0, c, -c])])
        ep = agent.start_episode(t)
        G1 = agent.score_policies(keys[0], t, ep, 0)
        u1, ep = agent.choose_action(keys[1], G1, ep, 0)
        ep = agent.record_observation(ep, 0, jnp.stack([u1, outcome_after[u1]]))
        G2 = agent.score_policies(keys[2], t, ep, 1)
        u2, ep = agent.choose_action(keys[3], G2, ep, 1)
        return G1, G2, ep.actions, jnp.stack([u1, u2])

    worlds = [(0.6, 3.0), (0.75, 1.0)]
    keys = jax.random.split(jax.random.PRNGKey(4), 4)
    outcomes = jnp.stack([jnp.asarray(tmaze.outcome_likelihood(a)) for a, _ in worlds])
    G1, G2, recorded, chosen = jax.jit(jax.vmap(episode, in_axes=(0, 0, None)))(
        outcomes, jnp.array([c for _, c in worlds]), keys)
    np.testing.assert_array_equal(recorded, chosen)
    assert not np.allclose(G1[0], G1[1])                     # the traced model is the one scored
    for i, (alpha, c) in enumerate(worlds):
        host = Agent(tmaze.tmaze_pomdp(alpha, c), **kw)
        host.infer_states(None)
        np.testing.assert_allclose(host.infer_policies(key=np.asarray(keys[0]))[1], G1[i], rtol=1e-12)
        u1 = host.sample_action(key=np.asarray(keys[1]))
        host.infer_states([u1, int(outcome_after[u1])])
        np.testing.assert_allclose(host.infer_policies(key=np.asarray(keys[2]))[1], G2[i], rtol=1e-12)
        assert [u1, host.sample_action(key=np.asarray(keys[3]))] == chosen[i].tolist()


def test_pure_loop_folds_a_first_observation_as_the_host_loop_does():
    """start_episode(tensors, obs): the observation made before acting conditions z_0 as infer_states does
    (a model with two state factors, a parameter factor and two modalities)."""
    import jax.numpy as jnp

    model = random_pomdp(2)[0]
    agent = Agent(model, method="gfe", horizon=1, **GFE_FAST)
    key = jax.random.PRNGKey(9)
    G = jax.jit(lambda A, y: agent.score_policies(key, agent.tensors(A=A), agent.start_episode(
        agent.tensors(A=A), y), 0))([jnp.asarray(a) for a in model.A], jnp.array([1, 0]))
    agent.infer_states([1, 0])
    np.testing.assert_allclose(agent.infer_policies(key=np.asarray(key))[1], G, rtol=1e-10)
    agent.reset()
    agent.infer_states([3, 1])
    assert not np.allclose(agent.infer_policies(key=np.asarray(key))[1], G)   # the observation matters


def test_pure_loop_refuses_what_it_cannot_run_by_name():
    model = tmaze.tmaze_pomdp()
    with pytest.raises(RuntimeError, match="tensors: the pure loop is a GFE/Bethe agent's"):
        Agent(model, method="bp", horizon=2).tensors()
    learner = Agent(model, method="gfe", horizon=2, pA=tmaze.observation_prior(0.1), **GFE_FAST)
    with pytest.raises(RuntimeError, match=r"tensors: the pure loop .*\(no pA, no pC"):
        learner.tensors()
    agent = Agent(model, method="gfe", horizon=2, **GFE_FAST)
    t = agent.tensors()
    ep = agent.start_episode(t)
    with pytest.raises(ValueError, match=r"t: expected a Python integer step in \[0, 2\), got 2"):
        agent.score_policies(jax.random.PRNGKey(0), t, ep, 2)
    with pytest.raises(ValueError, match="obs: expected 2 integer indices"):
        agent.record_observation(ep, 0, np.array([1]))
    with pytest.raises(ValueError, match=r"A: expected 2 arrays \(one per modality\)"):
        agent.tensors(A=[model.A[1]])
