"""DiscretePOMDP: validation with named errors, flattening against brute force, the bundled
environments' models, and the conversions to the planners and to the GFE/Bethe evaluation."""

import itertools

import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.envs import tmaze
from pyrxaif.models.discrete_pomdp import MAX_STATES, DiscretePOMDP, check_action, check_actions, check_observation


def _stochastic(rng, shape, conc=1.0):
    """Random array normalised over axis 0."""
    p = rng.gamma(conc, size=shape)
    return p / p.sum(axis=0, keepdims=True)


def random_pomdp(seed=0, with_param=True):
    """Two ordinary factors (3, 2) with 2 and 3 controls, a parameter factor of 2 values on which the
    first factor's transition depends, and two modalities (4, 2)."""
    rng = np.random.default_rng(seed)
    ns = [3, 2, 2] if with_param else [3, 2]
    B0 = _stochastic(rng, (3, 3, 2, 2) if with_param else (3, 3, 2))
    B1 = _stochastic(rng, (2, 2, 3))
    B = [B0, B1] + ([np.eye(2)[:, :, None]] if with_param else [])
    deps = [[0, 2], [1]] + ([[2]] if with_param else []) if with_param else None
    A = [_stochastic(rng, (4,) + tuple(ns)), _stochastic(rng, (2,) + tuple(ns))]
    C = [rng.normal(size=4), rng.normal(size=2)]
    D = [_stochastic(rng, (n,)) for n in ns]
    model = DiscretePOMDP(A, B, C, D, B_dependencies=deps, parameter_factors=[2] if with_param else ())
    return model, (A, B, C, D, ns)


def test_flattened_tensors_equal_brute_force_products():
    model, (A, B, C, D, ns) = random_pomdp(1)
    S, K = model.flat_sizes
    assert (S, K) == (6, 2) and model.num_actions == 6 and model.num_controls == [2, 3, 1]
    dense = model.dense_transitions()                       # (S', S, K, U)
    for (x0, x1, k) in itertools.product(range(3), range(2), range(2)):
        for (n0, n1) in itertools.product(range(3), range(2)):
            for (u0, u1) in itertools.product(range(2), range(3)):
                want = B[0][n0, x0, k, u0] * B[1][n1, x1, u1]
                got = dense[n0 * 2 + n1, x0 * 2 + x1, k, u0 * 3 + u1]
                assert got == pytest.approx(want, abs=1e-15)
    flat_A = model.flat_observations()
    for m, a in enumerate(A):
        for (x0, x1, k) in itertools.product(range(3), range(2), range(2)):
            np.testing.assert_allclose(flat_A[m][x0 * 2 + x1, k], a[:, x0, x1, k])
    pref = model.state_log_preferences()
    for (x0, x1, k) in itertools.product(range(3), range(2), range(2)):
        want = sum(a[:, x0, x1, k] @ c for a, c in zip(A, C))
        assert pref[x0 * 2 + x1, k] == pytest.approx(want)
    prior = model.initial_prior()
    assert prior[5, 1] == pytest.approx(D[0][2] * D[1][1] * D[2][1])
    assert model.action_index([1, 2]) == 5
    assert model.action_controls(5) == [1, 2, 0] and model.action_controls(3) == [1, 0, 0]
    marg = model.state_marginals(prior)
    for f in range(3):
        np.testing.assert_allclose(marg[f], D[f], atol=1e-12)


def test_rollout_model_filter_equals_brute_force_bayes():
    """The planner's sparse model filters exactly as Bayes' rule on the dense joint."""
    from pyrxaif.inference.rollout import bayes_filter
    model, _ = random_pomdp(2)
    rm = model.rollout_model()
    dense = model.dense_transitions()
    flat_A = model.flat_observations()
    rng = np.random.default_rng(0)
    b = model.initial_prior()
    lb = np.log(b)
    for _ in range(3):
        u = int(rng.integers(model.num_actions))
        y = [int(rng.integers(n)) for n in model.num_obs]
        pred = np.einsum("nxk,xk->nk", dense[..., u], b)
        b = pred * flat_A[0][..., y[0]] * flat_A[1][..., y[1]]
        b /= b.sum()
        lb = bayes_filter(rm, lb, u, np.asarray(y))
        np.testing.assert_allclose(np.exp(np.asarray(lb)), b, atol=1e-12)


def test_joint_tensors_are_the_product_model():
    model, (A, B, C, D, ns) = random_pomdp(3)
    jt = model.joint_tensors()
    S, K = model.flat_sizes
    assert jt.A.shape == (8, S * K) and jt.B.shape == (6, S * K, S * K)
    np.testing.assert_allclose(jt.A.sum(axis=0), 1.0)
    np.testing.assert_allclose(jt.B.sum(axis=1), 1.0)
    z = (1 * 2 + 0) * K + 1                                   # x0 = 1, x1 = 0, θ = 1
    np.testing.assert_allclose(jt.A[3 * 2 + 1, z], A[0][3, 1, 0, 1] * A[1][1, 1, 0, 1])
    c = np.add.outer(C[0], C[1]).ravel()
    np.testing.assert_allclose(jt.log_c, c - np.log(np.exp(c).sum()))
    assert np.all(jt.B.reshape(6, S, K, S, K)[:, :, 0, :, 1] == 0)    # θ never changes


def test_tmaze_model_is_laif_matrices():
    """tmaze_pomdp's joint tensors are LAIF's T-maze: A block-diagonal by position, B_u = P_u ⊗ I₂,
    C = σ(1₄ ⊗ [0, 0, c, −c]), D at O with the side unknown."""
    a, c = 0.8, 1.5
    jt = tmaze.tmaze_pomdp(a, c).joint_tensors()
    arm = np.array([[0, 0], [0, 0], [a, 1 - a], [1 - a, a]])
    np.testing.assert_allclose(jt.A[4:8, 2:4], arm)
    np.testing.assert_allclose(jt.A[12:16, 6:8], [[1, 0], [0, 1], [0, 0], [0, 0]])
    assert jt.A[0:4, 2:].sum() == 0 and jt.A[4:, 0:2].sum() == 0
    for u in range(4):
        np.testing.assert_array_equal(jt.B[u], np.kron(tmaze.position_transitions()[u], np.eye(2)))
    v = np.kron(np.ones(4), [0, 0, c, -c])
    np.testing.assert_allclose(jt.log_c, v - np.log(np.exp(v).sum()), atol=1e-14)
    np.testing.assert_allclose(np.exp(jt.log_D), [0.5, 0.5, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("name", ["frozenlake", "rocksample", "wumpus"])
def test_grid_worlds_are_built_through_discrete_pomdp(name):
    """The env samples from the planner's tensors; the layout is the POMDP's parameter factor."""
    from pyrxaif.agents.gridworld import make_env
    env = make_env(name)
    pomdp = env.pomdp
    assert isinstance(pomdp, DiscretePOMDP) and pomdp.parameter_factors == [1]
    rm = pomdp.rollout_model()
    S, K = pomdp.flat_sizes
    assert rm.log_B.shape[0] == S and rm.log_B.shape[3] == K == env.num_layouts
    np.testing.assert_array_equal(env.spec_.B_sparse, np.exp(np.asarray(rm.log_B)))
    flat = pomdp.flat_observations()
    for m in range(len(flat)):
        np.testing.assert_array_equal(env.spec_.A_padded[m, :, :, :flat[m].shape[-1]], flat[m])
    np.testing.assert_allclose(env.initial_belief().sum(axis=0), 1.0 / K)


def test_validation_names_the_argument():
    ok_A, ok_B = [np.array([[0.9, 0.2], [0.1, 0.8]])], [np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)]
    DiscretePOMDP(ok_A, ok_B)
    with pytest.raises(ValueError, match=r"A\[0\]: expected columns .* sum to one"):
        DiscretePOMDP([np.array([[0.9, 0.2], [0.2, 0.8]])], ok_B)
    with pytest.raises(ValueError, match=r"A\[0\]: expected non-negative"):
        DiscretePOMDP([np.array([[1.1, 0.2], [-0.1, 0.8]])], ok_B)
    with pytest.raises(ValueError, match=r"A\[0\]: expected shape"):
        DiscretePOMDP([np.ones((2, 3)) / 2], ok_B)
    with pytest.raises(ValueError, match=r"B\[0\]: expected columns"):
        DiscretePOMDP(ok_A, [np.ones((2, 2, 2))])
    with pytest.raises(ValueError, match=r"B\[0\]: expected 3 axes"):
        DiscretePOMDP(ok_A, [np.eye(2)])
    with pytest.raises(ValueError, match=r"B\[0\]: expected shape"):
        DiscretePOMDP(ok_A, [np.ones((2, 3, 1)) / 2])
    with pytest.raises(ValueError, match="C: expected 1 finite vectors"):
        DiscretePOMDP(ok_A, ok_B, C=[np.zeros(3)])
    with pytest.raises(ValueError, match=r"C\[0\]"):
        DiscretePOMDP(ok_A, ok_B, C=[np.array([0.0, np.inf])])
    with pytest.raises(ValueError, match=r"D\[0\]: expected columns"):
        DiscretePOMDP(ok_A, ok_B, D=[np.array([0.5, 0.6])])
    with pytest.raises(ValueError, match="E"):
        DiscretePOMDP(ok_A, ok_B, E=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="B_dependencies"):
        DiscretePOMDP(ok_A, ok_B, B_dependencies=[[1]])
    with pytest.raises(ValueError, match="parameter_factors"):
        DiscretePOMDP(ok_A, ok_B, parameter_factors=[0])
    with pytest.raises(ValueError, match="parameter_factors: factor 1 must keep its value"):
        DiscretePOMDP([np.ones((2, 2, 2)) / 2], ok_B + [np.ones((2, 2, 1)) / 2], parameter_factors=[1])
    with pytest.raises(TypeError, match="A: expected a non-empty list"):
        DiscretePOMDP([], ok_B)
    with pytest.raises(ValueError, match="C_states"):
        DiscretePOMDP(ok_A, ok_B, C_states=np.zeros(3))


def test_size_limit_refuses_with_a_clear_error():
    n = 200
    A = [np.ones((1, n, n))]
    B = [np.ones((n, n, 1)) / n, np.ones((n, n, 1)) / n]
    with pytest.raises(ValueError, match=rf"40000 states, above max_states = {MAX_STATES}"):
        DiscretePOMDP(A, B)
    with pytest.raises(ValueError, match="dense joint transition"):
        DiscretePOMDP([np.ones((1, 3000))], [np.ones((3000, 3000, 8)) / 3000], max_states=10 ** 5)


def test_check_action_and_observation():
    assert check_action(np.int64(2), 3) == 2
    for bad, err in ((2.7, TypeError), (True, TypeError), (-1, ValueError), (3, ValueError), ("1", TypeError)):
        with pytest.raises(err, match="action"):
            check_action(bad, 3)
    np.testing.assert_array_equal(check_observation([1, 0], [2, 3]), [1, 0])
    with pytest.raises(ValueError, match="obs: expected indices below"):
        check_observation([2, 0], [2, 3])
    with pytest.raises(TypeError, match="obs: expected integer"):
        check_observation([1.0, 0.0], [2, 3])
    with pytest.raises(ValueError, match="obs: expected shape"):
        check_observation([1], [2, 3])


def test_check_actions_vectorised_and_elementwise_paths_agree():
    # integer arrays take the vectorised path, lists/object arrays the element-wise one: same results, same errors
    for acts in (np.array([0, 2, 1]), np.array([0, 2, 1], np.uint8), [0, np.int64(2), 1]):
        out = check_actions(acts, 3, 3)
        assert out.dtype == np.int32 and out.tolist() == [0, 2, 1]
    for bad in (np.array([0, 3, 1]), [0, 3, 1], np.array([-1, 0, 0]), [-1, 0, 0]):
        with pytest.raises(ValueError, match=r"action: expected an integer in \[0, 3\)"):
            check_actions(bad, 3, 3)
    for bad in (np.array([0.0, 2.0, 1.0]), np.array([True, False, True]), [0, 2.7, 1]):
        with pytest.raises(TypeError, match="action"):
            check_actions(bad, 3, 3)
    with pytest.raises(ValueError, match="action: expected 3 actions"):
        check_actions(np.array([0, 1]), 3, 3)
    with pytest.raises(ValueError, match="action: expected 3 actions"):
        check_actions(np.zeros((3, 1), int), 3, 3)


def test_joint_likelihood_and_goal_take_traced_arrays():
    """Per-modality A and C passed into jit (traced) give the joint tensors of the model that has them: A
    bit for bit (the same products), log C to rounding (JAX's log-softmax); without them, the model's own.
    Replacements of the wrong shapes, and concrete A whose columns do not sum to one, are refused by name."""
    import jax

    model, _ = random_pomdp(3)
    other, (A2, _, C2, _, _) = random_pomdp(4)                 # same structure, other numbers
    want = other.joint_tensors()
    A_j, c_j = jax.jit(lambda a, c: (model.joint_likelihood(a), model.joint_log_goal(c)))(A2, C2)
    assert isinstance(A_j, jax.Array) and not np.array_equal(np.asarray(A_j), model.joint_tensors().A)
    np.testing.assert_array_equal(np.asarray(A_j), want.A)
    np.testing.assert_allclose(np.asarray(c_j), want.log_c, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(model.joint_likelihood(), model.joint_tensors().A)
    with pytest.raises(ValueError, match=r"A: expected 2 arrays \(one per modality\) of shapes"):
        model.joint_likelihood(A2[:1])
    with pytest.raises(ValueError, match=r"C: expected 2 arrays \(one per modality\) of shapes \[\(4,\), \(2,\)\]"):
        model.joint_log_goal([C2[0], C2[0]])
    with pytest.raises(ValueError, match=r"A\[1\]: expected columns \(axis 0\) that sum to one"):
        model.joint_likelihood([A2[0], 2 * A2[1]])
