"""Property-based tests (hypothesis) of the discrete side's public functions and environments: generated
input, valid or not, gives a named ValueError/TypeError/RuntimeError or a finite, correct result;
never a NaN, never a JAX-internal error."""

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.agents.pomdp_agent import Agent
from pyrxaif.distributions import Dirichlet
from pyrxaif.envs import tmaze
from pyrxaif.envs.frozenlake import EpistemicFrozenLake
from pyrxaif.inference import rollout as ro
from pyrxaif.inference.policy import select_policy
from pyrxaif.models.discrete_pomdp import DiscretePOMDP, check_action

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMED = (ValueError, TypeError)

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
small = st.floats(-3.0, 3.0)
anything = st.one_of(st.integers(-5, 20), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2),
                     st.none(), st.lists(st.integers(0, 3), max_size=3))


@SETTINGS
@given(action=anything)
def test_check_action_is_an_integer_in_range_or_a_named_error(action):
    try:
        a = check_action(action, 4)
    except NAMED as e:
        assert "action" in str(e)
        return
    assert isinstance(a, int) and 0 <= a < 4 and not isinstance(action, (bool, float))


@SETTINGS
@given(A=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 3)), elements=floats),
       B=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2)), elements=floats),
       C=st.one_of(st.none(), hnp.arrays(np.float64, st.integers(1, 3), elements=floats)))
def test_discrete_pomdp_is_valid_or_refused_by_name(A, B, C):
    try:
        model = DiscretePOMDP([A], [B], None if C is None else [C])
    except NAMED as e:
        assert any(name in str(e) for name in ("A[0]", "B[0]", "C", "num_states"))
        return
    jt = model.joint_tensors()
    np.testing.assert_allclose(jt.A.sum(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(jt.B.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(np.isfinite(jt.log_c)) and np.all(np.isfinite(model.state_log_preferences()))


@pytest.fixture(scope="module")
def tmaze_agent():
    return Agent(tmaze.tmaze_pomdp(), method="bp", horizon=2, n_iter=1)


@SETTINGS
@given(obs=st.one_of(st.lists(st.integers(-2, 6), min_size=0, max_size=3),
                     st.lists(st.floats(allow_nan=True), min_size=2, max_size=2), st.integers(-1, 5)))
def test_agent_infer_states_gives_a_distribution_or_a_named_error(tmaze_agent, obs):
    tmaze_agent.reset()
    try:
        qs = tmaze_agent.infer_states(obs)
    except NAMED as e:
        assert "obs" in str(e)
        return
    for q in qs:
        assert np.all(np.isfinite(q)) and q.sum() == pytest.approx(1.0, abs=1e-12) and np.all(q >= 0)


@pytest.fixture(scope="module")
def tiny_rollout():
    rng = np.random.default_rng(0)
    S, U, K = 3, 2, 2
    succ = np.tile(np.arange(S), (S, U, 1)).astype(np.int32)
    B = rng.dirichlet(np.ones(S), size=(S, U, K)).transpose(0, 1, 3, 2)
    A = [rng.dirichlet(np.ones(2), size=(S, K))]
    return ro.rollout_model(succ, B, A, rng.normal(size=(S, K)), np.ones(U) / U)


@SETTINGS
@given(log_b0=hnp.arrays(np.float64, (3, 2), elements=st.one_of(small, st.sampled_from([np.inf, -np.inf, np.nan]))),
       method=st.sampled_from(ro.METHODS))
def test_plan_gives_an_action_distribution_or_a_named_error(tiny_rollout, log_b0, method):
    try:
        res = ro.plan(tiny_rollout, log_b0, ro.method_config(method, n_iter=2), 2)
    except NAMED as e:
        assert "log_b0" in str(e)
        return
    q = np.exp(np.asarray(res.log_q_u0))
    assert np.all(np.isfinite(q)) and q.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(np.isfinite(np.asarray(res.free_energy)))


@SETTINGS
@given(G=hnp.arrays(np.float64, st.integers(1, 5), elements=st.one_of(small, st.sampled_from([np.inf, np.nan]))),
       data=st.data(), method=st.sampled_from(["sample", "argmin"]))
def test_select_policy_picks_a_valid_finite_policy_or_a_named_error(G, data, method):
    valid = data.draw(hnp.arrays(np.bool_, G.shape))
    try:
        i = int(select_policy(jax.random.PRNGKey(0), G, valid, method=method, gamma=2.0))
    except NAMED as e:
        assert "G" in str(e) or "valid" in str(e)
        assert np.any(np.isnan(G)) or not np.any(valid & np.isfinite(G))
        return
    assert valid[i] and np.isfinite(G[i])
    if method == "argmin":
        assert G[i] == np.min(G[valid & np.isfinite(G)])


@SETTINGS
@given(counts=hnp.arrays(np.float64, 3, elements=floats))
def test_dirichlet_update_is_conjugate_or_a_named_error(counts):
    d = Dirichlet.create(np.ones(3))
    try:
        post = d.update(counts)
    except NAMED as e:
        assert "counts" in str(e)
        assert np.any(~np.isfinite(counts)) or np.any(counts < 0)
        return
    np.testing.assert_allclose(np.asarray(post.concentration), 1.0 + counts)


@SETTINGS
@given(actions=st.lists(st.one_of(st.integers(-1, 5), st.floats(0, 4)), min_size=1, max_size=4))
def test_tmaze_env_steps_or_refuses_by_name(actions):
    env = tmaze.TMaze(moves=2)
    env.reset(seed=0)
    t = 0
    for a in actions:
        try:
            x, r, term, trunc, _ = env.step(a)
        except NAMED as e:
            assert "action" in str(e)
            assert isinstance(a, float) or not 0 <= a < 4
            continue
        except RuntimeError as e:
            assert "episode is over" in str(e) and t >= 2
            continue
        t += 1
        assert 0 <= x < 16 and r in (0.0, 1.0) and term == (t >= 2)


@pytest.fixture(scope="module")
def small_lake():
    return EpistemicFrozenLake(size=3, n_layouts=3, n_holes=2, max_steps=5)


@SETTINGS
@given(actions=st.lists(st.integers(-1, 6), min_size=1, max_size=8), seed=st.integers(0, 3))
def test_frozenlake_steps_until_the_end_then_refuses(small_lake, actions, seed):
    env = small_lake
    env.reset(seed=seed)
    over = False
    for a in actions:
        try:
            obs, r, term, trunc, info = env.step(a)
        except ValueError as e:
            assert "action" in str(e) and not 0 <= a < 5
            continue
        except RuntimeError as e:
            assert over and "episode is over" in str(e)
            continue
        assert not over
        assert env.observation_space.contains(obs) and np.isfinite(r)
        over = term or trunc
