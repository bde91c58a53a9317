"""T-maze environment, matrices, agents (short runs) and CLI."""

import gymnasium as gym
import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (registers the gymnasium ids)
from pyrxaif.agents import bargaining as bg
from pyrxaif.agents import tmaze as ag
from pyrxaif.envs import tmaze as env


def test_observation_and_transition_matrices():
    a = 0.9
    A = env.observation_matrix(a)
    assert A.shape == (16, 8)
    np.testing.assert_allclose(A.sum(0), 1.0)
    np.testing.assert_allclose(A[0:4, 0:2], [[.5, .5], [.5, .5], [0, 0], [0, 0]])
    np.testing.assert_allclose(A[4:8, 2:4], [[0, 0], [0, 0], [a, 1 - a], [1 - a, a]])
    np.testing.assert_allclose(A[8:12, 4:6], [[0, 0], [0, 0], [1 - a, a], [a, 1 - a]])
    np.testing.assert_allclose(A[12:16, 6:8], [[1, 0], [0, 1], [0, 0], [0, 0]])
    assert A[np.ix_(range(4, 16), range(0, 2))].sum() == 0  # block-diagonal
    B = env.transition_matrices()
    np.testing.assert_allclose(B.sum(1), 1.0)
    for u in range(4):
        for side in range(2):
            for frm in range(4):
                to = np.argmax(B[u][:, 2 * frm + side])
                assert to % 2 == side  # reward side never changes
                assert to // 2 == (env.O if frm in (env.L, env.R) else u)
    C = np.exp(env.goal_log_probs(2.0))
    assert np.isclose(C.sum(), 1) and np.isclose(np.log(C[2] / C[0]), 2) and np.isclose(np.log(C[3] / C[0]), -2)
    a0 = env.observation_prior(0.1)
    np.testing.assert_allclose(a0[0:4, 0:2], [[10, 10], [10, 10], [.1, .1], [.1, .1]])
    np.testing.assert_allclose(a0[12:16, 6:8], [[1, .1], [.1, 1], [.1, .1], [.1, .1]])
    with pytest.raises(ValueError, match="alpha"):
        env.observation_matrix(1.5)


def test_gym_env_behaviour():
    e = gym.make("pyrxaif/TMaze-v0").unwrapped
    assert isinstance(e, env.TMaze)
    x0, info = e.reset(seed=3)
    assert info["position"] == "O" and x0 // 4 == env.O
    side = info["side"]
    x, r, term, trunc, info = e.step(env.CUE)
    assert info["position"] == "Cue" and x % 4 == side  # the cue is exact
    arm = env.L if side == 0 else env.R
    rewards = []
    for seed in range(200):
        e.reset(seed=seed)
        s = e._side
        e.step(env.L if s == 0 else env.R)
        x, r, term, trunc, info = e.step(env.CUE)
        assert info["position"] == "O" and term  # forced return after an arm, two moves
    for seed in range(400):
        _, info = e.reset(seed=seed)
        _, r, *_ = e.step(env.L if info["side"] == 0 else env.R)
        rewards.append(r)
    assert abs(np.mean(rewards) - 0.9) < 0.05
    e.reset(seed=1)
    with pytest.raises(ValueError, match="action"):
        e.step(7)
    for bad in (1.7, -1, True):                                     # never truncated
        with pytest.raises((TypeError, ValueError), match="action"):
            e.step(bad)
    e.step(np.int64(env.CUE))
    e.step(env.O)
    with pytest.raises(RuntimeError, match="episode is over"):
        e.step(env.O)
    # same seed -> same episode
    e2 = env.TMaze()
    assert e2.reset(seed=5)[1]["side"] == env.TMaze().reset(seed=5)[1]["side"]
    del arm


def test_buyer_matrices():
    A = np.asarray(bg.buyer_observation_matrix(0.8))
    np.testing.assert_allclose(A.sum(0), 1.0)
    B = bg.buyer_transitions()
    np.testing.assert_allclose(B.sum(1), 1.0)
    # moving from O (side RR, not accepted) to the cue sets "accepted"
    frm = 4 * env.O + 2 * 1 + 1
    assert np.argmax(B[env.CUE][:, frm]) == 4 * env.CUE + 2 * 1 + 0
    # after accepting, the correct arm pays α; without accepting it pays 1
    assert np.isclose(A[4 * env.L + 2, 4 * env.L + 0], 0.8) and np.isclose(A[4 * env.L + 2, 4 * env.L + 1], 1.0)


def test_buyer_pomdp_is_the_buyer_matrices_and_its_agent_prices_the_cue():
    """The buyer's DiscretePOMDP has the buyer's A, B and the T-maze's goals; its agent (Agent's pure loop,
    jitted and vmapped over the offers and 16 trials, argmin choices) refuses offers up to 0.9 (no cue:
    the same guessed arm, rewarded only on that side) and accepts 0.95 and 1 (cue first, then the arm it
    showed: always rewarded at α = 1)."""
    import jax.numpy as jnp

    jt = bg.buyer_pomdp(0.85, c=3.0).joint_tensors()
    np.testing.assert_array_equal(jt.A, np.asarray(bg.buyer_observation_matrix(0.85)))
    np.testing.assert_array_equal(jt.B, bg.buyer_transitions())
    np.testing.assert_allclose(jt.log_c, env.goal_log_probs(3.0), atol=1e-12)
    buyer = bg.buyer_agent(bg.Settings(selection="argmin", iterations=20, burn_in=5))

    def trial(alpha, key):
        return bg.buyer_trial(buyer, buyer.tensors(A=bg.buyer_likelihoods(alpha), C=bg.buyer_preferences(2.0)), key)

    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    actions, win = jax.jit(jax.vmap(jax.vmap(trial, in_axes=(None, 0)), in_axes=(0, None)))(
        jnp.asarray(bg.OFFERS), keys)
    actions, win = np.asarray(actions), np.asarray(win)
    refused, accepted = bg.OFFERS <= 0.9, bg.OFFERS >= 0.95
    assert np.all(actions[refused, :, 0] != env.CUE) and np.all(actions[accepted, :, 0] == env.CUE)
    assert np.all(actions[refused] == actions[0, 0]) and 0 < win[0].sum() < 16
    assert np.all(win[-1])
    with pytest.raises(ValueError, match="alpha: expected the buyer's reward share"):
        bg.buyer_pomdp(1.2)


def test_agent_settings_errors():
    with pytest.raises(ValueError, match="engine"):
        ag.simulate(jax.random.PRNGKey(0), 1, 1, engine="julia-ish")
    with pytest.raises(ValueError, match="objective"):
        ag.simulate(jax.random.PRNGKey(0), 1, 1, objective="efe")
    with pytest.raises(ValueError, match="selection"):
        ag.simulate(jax.random.PRNGKey(0), 1, 1, selection="greedy")
    with pytest.raises(ValueError, match="n_runs"):
        ag.simulate(jax.random.PRNGKey(0), 0, 1)


FAST = dict(iterations=20, burn_in=5, progress=False)


def test_gfe_agent_learns_to_visit_the_cue():
    key = jax.random.PRNGKey(0)
    b, rec = ag.simulate(key, n_runs=4, n_trials=8, **FAST)
    cue = np.asarray(rec.cue_first, float)
    assert cue[:, 3:].mean() >= 0.7
    # learned A: the cue column for the true side got confident counts
    A = np.asarray(b.A_conc).mean(0)
    assert A[12, 6] > 2 and A[13, 7] > 2
    # deterministic given the key
    _, rec2 = ag.simulate(key, n_runs=4, n_trials=8, **FAST)
    np.testing.assert_array_equal(np.asarray(rec.actions), np.asarray(rec2.actions))


@pytest.mark.slow
def test_bethe_agent_does_not_visit_the_cue_short():
    _, rb = ag.simulate(jax.random.PRNGKey(0), n_runs=4, n_trials=8, objective="bethe", **FAST)
    assert np.asarray(rb.cue_first, float)[:, 3:].mean() <= 0.2


@pytest.mark.slow
def test_goal_learning_and_bargaining_short():
    """Fast variants of the extensions: goal statistics count what was observed; the seller's
    matrix counts acceptances of its offers."""
    b, rec = ag.simulate(jax.random.PRNGKey(1), n_runs=2, n_trials=3, learn="goals", **FAST)
    x = np.asarray(rec.observations)
    C0 = ag.goal_prior()
    for r in range(2):
        want = C0.copy()
        for t in range(3):
            for k in range(2):
                want[k, x[r, t, k]] += 1.0
        np.testing.assert_allclose(np.asarray(b.goal_conc[r]), want, atol=1e-9)
    conc, brec = bg.simulate_bargaining(jax.random.PRNGKey(2), 1, 3, chunk=3, progress=False,
                                        iterations=20, burn_in=5)
    want = np.full((2, 5), 0.1)
    for t in range(3):
        want[0 if bool(brec.accepted[0, t]) else 1, int(brec.offer[0, t])] += 1
    np.testing.assert_allclose(np.asarray(conc[0]), want)
    # accepted iff the buyer moved to the cue
    np.testing.assert_array_equal(np.asarray(brec.accepted[0]),
                                  np.any(np.asarray(brec.buyer_actions[0]) == 3, axis=-1))


def test_cli_rejects_bad_names(tmp_path, capsys):
    """Usage errors: exit code 2 and a one-line message naming the flag (pyrxaif.exit_codes)."""
    from pyrxaif.cli import main
    assert main(["tmaze", "--engine", "torch", "--out", str(tmp_path)]) == 2
    assert "--engine" in capsys.readouterr().err
    assert main(["tmaze", "--extension", "price", "--out", str(tmp_path)]) == 2
    assert "--extension" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_small_run_writes_figures(tmp_path):
    from pyrxaif.cli import main
    assert main(["tmaze", "--runs", "2", "--trials", "2", "--iterations", "5", "--burn-in", "1",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    for name in ("win_rate.png", "wins_histogram.png", "learned_A_gfe.png", "policy_G.png", "results.json"):
        assert (tmp_path / name).exists()


def test_trials_unchanged_by_the_discrete_pomdp_refactor():
    """Recorded with the pre-DiscretePOMDP code (commit ff0b1bb): the T-maze tensors now come from
    ``tmaze_pomdp`` (bit-identical), and the trials are the same."""
    import jax
    from pyrxaif.agents import tmaze as tm
    _, rec = tm.simulate(jax.random.PRNGKey(3), n_runs=2, n_trials=3, objective="gfe", iterations=8, burn_in=2,
                         num_samples=4, progress=False)
    assert np.asarray(rec.actions).tolist() == [[[3, 2], [3, 1], [3, 1]], [[3, 1], [3, 2], [3, 0]]]
    assert np.asarray(rec.observations).tolist() == [[[13, 10], [12, 6], [12, 6]], [[13, 7], [12, 11], [12, 0]]]
    np.testing.assert_allclose(np.asarray(rec.G1)[0, 0], [9.907885, 9.096549, 8.616842, 8.895075, 9.096558,
                                                          8.616856, 8.893542, 7.968159, 7.609555, 9.903488],
                               atol=2e-6)
