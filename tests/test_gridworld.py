"""Grid-world environments (tensors vs. the rules of the game), agents, episodes and the CLI."""

import json
import os

import gymnasium as gym
import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.agents.gridworld import GridworldAgent, make_env, run_episodes
from pyrxaif.envs.frozenlake import SCAN, EpistemicFrozenLake
from pyrxaif.envs.rocksample import EXIT, SAMPLE, SENSE, RockSample
from pyrxaif.envs.wumpus import WumpusWorld
from pyrxaif.inference.rollout import METHODS, plan

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3


def prob(env, x, u, x_next, k):
    sp = env.spec_
    return float(sum(sp.T[x, u, j, k] for j in range(sp.T.shape[2]) if sp.succ[x, u, j] == x_next))


@pytest.mark.parametrize("env_id", ["pyrxaif/FrozenLake-v0", "pyrxaif/RockSample-v0", "pyrxaif/Wumpus-v0"])
def test_registered_envs_are_normalised_and_step(env_id):
    env = gym.make(env_id, render_mode="ansi").unwrapped
    sp = env.spec_
    np.testing.assert_allclose(sp.T.sum(axis=2), 1.0, atol=1e-12)
    np.testing.assert_allclose(sp.B.sum(axis=-1), 1.0, atol=1e-12)
    for k, n in enumerate(sp.obs_sizes):
        assert np.all(sp.B[k, ..., n:] == 0)
    env.model()                                     # validates again through make_model
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, info = env.step(0)
    assert env.observation_space.contains(obs) and isinstance(env.render(), str)
    rgb = gym.make(env_id, render_mode="rgb_array").unwrapped
    rgb.reset(seed=0)
    img = rgb.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_frozenlake_rules():
    env = EpistemicFrozenLake(slip=0.09)
    N = 16
    k = next(k for k in range(env.num_layouts) if not env.holes[k, 5] and not env.holes[k, 0])
    # slippery move from cell 5 (row 1, col 1): intended 0.91, each other direction 0.03
    assert prob(env, 5, RIGHT, 6, k) == pytest.approx(0.91)
    for other in (4, 9, 1):
        assert prob(env, 5, RIGHT, other, k) == pytest.approx(0.03)
    # border: moving LEFT from cell 0 stays with the intended probability + slips UP (also the border)
    assert prob(env, 0, LEFT, 0, k) == pytest.approx(0.91 + 0.03)
    # SCAN keeps the cell and sets the flag; a move clears it
    assert prob(env, 5, SCAN, N + 5, k) == 1.0
    assert prob(env, N + 5, RIGHT, 6, k) == pytest.approx(0.91)
    # holes and the goal are absorbing and terminal
    kh = int(np.argmax(env.holes.any(axis=1)))
    h = int(np.argmax(env.holes[kh]))
    assert prob(env, h, RIGHT, h, kh) == 1.0 and env.spec_.terminal[h, kh]
    assert env.spec_.terminal[15, 0] and env.spec_.success[15, 0] and not env.spec_.success[h, kh]
    # sensors: scanning is near-exact, unscanned noise grows with distance
    B = env.spec_.B
    m = h
    assert B[1 + m, N + 0, kh, 1] == pytest.approx(0.99)          # scanning from the start cell
    d = abs(m // 4) + abs(m % 4)
    eps = 0.5 - 0.49 * np.exp(-d / 1.0)
    assert B[1 + m, 0, kh, 1] == pytest.approx(1 - eps)
    assert B[1 + 15, 0, kh, 1] < B[1 + 1, 0, kh, 1] or not env.holes[kh, 1]
    # every layout keeps a path; preferences punish holes and reward the goal
    assert np.all(env.spec_.log_C[15] > 0) and env.spec_.log_C[h, kh] < 0


def test_rocksample_rules():
    from pyrxaif.envs.rocksample import nearest_unchecked
    env = RockSample()
    n, N, K = 4, 16, 8
    G = N * K
    GOOD, BAD, EXITED, DONE = G, G + 1, G + 2, G + 3
    assert env.spec_.T.shape[:2] == (G + 4, 7)
    for i, rc in enumerate(env.rocks):
        for k in range(K):
            good = (k >> i) & 1
            target = GOOD if good else BAD
            for mask in (0, 5):
                assert prob(env, mask * N + rc, SAMPLE, target, k) == 1.0
            assert env.spec_.reward[target, k] == (10.0 if good else -10.0)
    for end in (GOOD, BAD, EXITED):                       # every outcome moves on to DONE, preferred once
        assert prob(env, end, 0, DONE, 3) == 1.0 and env.spec_.terminal[end, 3]
        assert env.spec_.log_C[DONE, 3] == 0.0
    assert env.spec_.log_C[GOOD, 0] > env.spec_.log_C[EXITED, 0] > env.spec_.log_C[0, 0] > env.spec_.log_C[BAD, 0]
    # blind sampling is worse than exiting under the exponential utility exp(log C); a certain good rock is better
    lc = env.spec_.log_C
    assert np.log(0.5 * np.exp(lc[GOOD, 0]) + 0.5 * np.exp(lc[BAD, 0])) < lc[EXITED, 0] < lc[GOOD, 0]
    assert prob(env, 3, EXIT, EXITED, 0) == 1.0              # right edge exits
    assert prob(env, 0, EXIT, 0, 0) == 1.0                   # elsewhere EXIT does nothing
    assert prob(env, 4 * N + 2, UP, 4 * N + 2, 0) == 1.0     # moves keep the checked mask, border stays
    assert prob(env, 4 * N + 2, LEFT, 4 * N + 1, 0) == 1.0
    # SENSE checks the nearest unchecked rock (Euclidean, ties by index) and then nothing more
    start = env.spec_.start
    i0 = nearest_unchecked(start, 0, env.rocks, n)
    d = [np.hypot(start // n - rc // n, start % n - rc % n) for rc in env.rocks]
    assert i0 == int(np.argmin(d))
    assert prob(env, start, SENSE, (1 << i0) * N + start, 0) == 1.0
    assert prob(env, (K - 1) * N + start, SENSE, (K - 1) * N + start, 0) == 1.0
    B = env.spec_.B
    rc = env.rocks[0]
    k_good = 1
    assert B[1, 1 * N + rc, k_good, 1] == pytest.approx(1.0)     # a checked rock read on its cell is exact
    assert B[1, 1 * N + rc, 0, 0] == pytest.approx(1.0)
    r, c = divmod(rc, n)
    far = 15 if rc != 15 else 0
    dd = np.hypot(far // n - r, far % n - c)
    assert B[1, 1 * N + far, k_good, 1] == pytest.approx(0.5 + 0.5 * 2 ** (-dd / 4.0))
    assert 0.5 < B[1, rc, k_good, 1] < 0.65                     # unchecked readings are never decisive
    assert B[1, 2 * N + rc, k_good, 1] == B[1, rc, k_good, 1]   # checking another rock does not help
    assert np.all(B[1:, GOOD, :, 0] == 1.0)                     # null reading once over


def test_wumpus_rules():
    env = WumpusWorld()
    n, N = 5, 25
    B = env.spec_.B
    for k in range(4):
        pits = np.where(env.pits[k])[0]
        for c in range(N):
            if env.spec_.terminal[c, k]:
                continue
            r, cc = divmod(c, n)
            nb = [(r + dr) * n + cc + dc for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
                  if 0 <= r + dr < n and 0 <= cc + dc < n]
            breeze = any(p in nb for p in pits)
            stench = env.wumpus[k] in nb
            assert B[1, N + c, k, 1] == pytest.approx(0.99 if breeze else 0.01)
            assert B[2, N + c, k, 1] == pytest.approx(0.99 if stench else 0.01)
            assert B[1, c, k, 1] == pytest.approx(0.8 if breeze else 0.2)
            assert B[0, c, k, c] == pytest.approx(0.8) and B[0, N + c, k, c] == pytest.approx(0.99)
        assert env.spec_.terminal[env.gold[k], k] and env.spec_.success[env.gold[k], k]
        assert all(env.spec_.terminal[p, k] and not env.spec_.success[p, k] for p in pits)
        assert prob(env, 0, RIGHT, 1, k) == 1.0 and prob(env, 0, UP, 0, k) == 1.0
        DONE = 2 * N                                # outcomes are preferred once, then DONE
        assert prob(env, int(env.gold[k]), LEFT, DONE, k) == 1.0 and prob(env, DONE, UP, DONE, k) == 1.0
        assert env.spec_.log_C[DONE, k] == 0.0 and env.spec_.log_C[env.gold[k], k] > 0
    assert np.all(B[:, 2 * N, :, 0] == 1.0)         # DONE carries no ambiguity


def test_aif_scans_when_layout_unknown_and_not_when_known():
    env = EpistemicFrozenLake()
    model = env.model()
    with np.errstate(divide="ignore"):
        b0 = np.log(env.initial_belief())
    aif = GridworldAgent(env, "aif-mp", horizon=10, n_iter=8, obs_weight=0.3)
    bp = GridworldAgent(env, "bp", horizon=10, n_iter=8)
    assert aif.act(b0) == SCAN
    assert bp.act(b0) != SCAN
    known = np.full_like(b0, -np.inf)
    known[0, 0] = 0.0
    assert aif.act(known) != SCAN
    assert np.isfinite(aif.last_plan.free_energy).all()
    del model


def test_rocksample_aif_senses_while_bp_and_vbp_do_not_sample_blind():
    """The RockSample regime: without information a sample is worse than exiting, so VBP does not sample
    blind (no hedging across layouts: θ is not clamped at the start) and neither BP nor VBP senses;
    AIF-MP checks a rock first; with a rock
    known to be good, every planning method walks there and samples."""
    env = RockSample()
    n, N = 4, 16
    with np.errstate(divide="ignore"):
        b0 = np.log(env.initial_belief())
    agents = {m: GridworldAgent(env, m, horizon=12, n_iter=8, obs_weight=0.15) for m in ("bp", "vbp", "aif-mp")}
    assert agents["aif-mp"].act(b0) == SENSE
    rock = env.rocks[2]                                  # cell 14, next to the exit column
    on_rock = np.full_like(b0, -np.inf)
    on_rock[rock] = -np.log(8)
    for m in ("bp", "vbp"):
        assert agents[m].act(b0) != SENSE
    # ½·e^1.5 < e^1: no blind sample once the planning channel has committed (slowly: the first sweeps
    # are BP-like, so this needs more iterations than the episode default)
    vbp_long = GridworldAgent(env, "vbp", horizon=12, n_iter=64)
    assert vbp_long.act(on_rock) == RIGHT
    assert float(np.exp(vbp_long.last_plan.channels.log_r_u[0, rock, RIGHT])) > 0.7
    good = np.full_like(b0, -np.inf)
    ks = [k for k in range(8) if env.quality[k, 2]]
    good[(1 << 2) * N + rock, ks] = -np.log(len(ks))     # checked, known good
    for m in ("vbp", "aif-mp"):
        assert agents[m].act(good) == SAMPLE


def test_filter_identifies_layout_after_scan():
    env = EpistemicFrozenLake()
    agent = GridworldAgent(env, "bp", horizon=2, n_iter=1)
    obs, info = env.reset(seed=1, options={"layout": 5})
    with np.errstate(divide="ignore"):
        b = jnp.log(jnp.asarray(env.initial_belief()))
    b = b + 0.0
    obs, *_ = env.step(SCAN)
    b = agent.update(b, SCAN, obs)
    post = np.exp(np.asarray(b)).sum(axis=0)
    assert post[5] > 0.99


@pytest.mark.parametrize("method", METHODS)
def test_short_episode_per_method(method):
    env = EpistemicFrozenLake(size=3, n_layouts=3, n_holes=2, max_steps=6)
    r1 = run_episodes(env, method, seeds=[0, 1], horizon=4, n_iter=2, batch_size=2)
    r2 = run_episodes(env, method, seeds=[0, 1], horizon=4, n_iter=2, batch_size=2)
    for a, b in zip(r1, r2):                                     # same seeds -> identical
        np.testing.assert_array_equal(a, b)
    sp = env.spec_
    for i in range(2):
        k = int(r1.layout[i])
        for t in range(int(r1.steps[i])):                          # every transition is possible
            assert prob(env, int(r1.states[i, t]), int(r1.actions[i, t]), int(r1.states[i, t + 1]), k) > 0
        end = int(r1.states[i, int(r1.steps[i])])
        assert bool(r1.success[i]) == bool(sp.success[end, k])
        assert r1.steps[i] == 6 or sp.terminal[end, k]


def test_episodes_do_not_depend_on_the_batch_size():
    """Episode i uses PRNGKey(seed_i) and finished episodes are frozen, so the acceptance runs may use
    small batches (a vmapped batch runs until its slowest episode ends) without changing any result."""
    env = EpistemicFrozenLake(size=3, n_layouts=3, n_holes=2, max_steps=6)
    seeds = [3, 4, 5]
    r1 = run_episodes(env, "aif-mp", seeds=seeds, horizon=4, n_iter=2, batch_size=1)
    r3 = run_episodes(env, "aif-mp", seeds=seeds, horizon=4, n_iter=2, batch_size=3)
    r2 = run_episodes(env, "aif-mp", seeds=seeds, horizon=4, n_iter=2, batch_size=2)   # padded last batch
    for a, b, c in zip(r1, r3, r2):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert len(set(r1.steps.tolist())) > 1 or len(set(r1.layout.tolist())) > 1   # not three copies of one episode


def test_cli_writes_results(tmp_path):
    from pyrxaif.cli import main
    out = tmp_path / "gw"
    rc = main(["gridworld", "--env", "rocksample", "--method", "bp", "--episodes", "2", "--horizon", "3",
               "--iters", "1", "--out", str(out), "--render"])
    assert rc == 0
    data = json.loads((out / "results.json").read_text())
    row = data["results"][0]
    assert row["method"] == "bp" and row["episodes"] == 2
    assert 0.0 <= row["success_ci_low"] <= row["success"] <= row["success_ci_high"] <= 1.0
    assert "retrieval" in row
    for f in ("results.csv", "results.png", "episode.gif"):
        assert os.path.getsize(out / f) > 0


def test_cli_slip_option(tmp_path, capsys):
    from pyrxaif.cli import main
    assert main(["gridworld", "--env", "wumpus", "--slip", "0.1", "--out", str(tmp_path / "w")]) == 2
    assert "--slip applies to --env frozenlake only" in capsys.readouterr().err
    assert main(["gridworld", "--env", "frozenlake", "--slip", "1.0", "--out", str(tmp_path / "f")]) == 2
    assert "--slip must be a probability" in capsys.readouterr().err
    out = tmp_path / "fl"
    rc = main(["gridworld", "--env", "frozenlake", "--slip", "0.0", "--method", "bp", "--episodes", "1",
               "--horizon", "2", "--iters", "1", "--out", str(out)])
    assert rc == 0
    assert json.loads((out / "results.json").read_text())["env_kwargs"] == {"slip": 0.0}


def test_wilson_interval_closed_form():
    from pyrxaif.commands.gridworld import wilson
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)      # known value for 0/10
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="engine"):
        GridworldAgent(EpistemicFrozenLake(), "aif-mp", engine="torch")
    with pytest.raises(ValueError, match="method"):
        GridworldAgent(EpistemicFrozenLake(), "dp")
    with pytest.raises(ValueError, match="size"):
        EpistemicFrozenLake(size=1)
    with pytest.raises(ValueError, match="slip"):
        EpistemicFrozenLake(slip=1.5)
    with pytest.raises(ValueError, match="rocks"):
        RockSample(rocks=(1, 1, 2))
    with pytest.raises(ValueError, match="k"):
        RockSample(k=0)
    with pytest.raises(ValueError, match="n_pits"):
        WumpusWorld(n_pits=-1)
    with pytest.raises(ValueError, match="render_mode"):
        EpistemicFrozenLake(render_mode="human")
    with pytest.raises(ValueError, match="name"):
        make_env("pacman")
    env = EpistemicFrozenLake()
    with pytest.raises(ValueError, match="layout"):
        env.reset(options={"layout": 99})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(7)
    with pytest.raises(TypeError, match="action"):
        env.step(2.7)
    env.reset(seed=0, options={"layout": 0})
    done = False
    while not done:                                  # gymnasium: no step after termination/truncation
        _, _, term, trunc, _ = env.step(2)
        done = term or trunc
    with pytest.raises(RuntimeError, match="episode is over"):
        env.step(2)
    env.reset(seed=1)
    env.step(2)                                      # reset starts a new episode
    with pytest.raises(ValueError, match="seeds"):
        run_episodes(env, "bp", seeds=[-1])
    with pytest.raises(TypeError, match="env"):
        run_episodes("frozenlake", "bp")
    agent = GridworldAgent(env, "bp")
    with pytest.raises(ValueError, match="observation"):
        agent.update(np.zeros((32, 8)), 0, [0, 1])
    with pytest.raises(ValueError, match="log_b0"):
        plan(env.model(), np.zeros((3, 3)), "bp", 4)


def test_episodes_unchanged_by_the_discrete_pomdp_refactor():
    """Recorded with the pre-DiscretePOMDP code (commit ff0b1bb): the grid world built through
    DiscretePOMDP gives the same episodes (the full CLI-sized runs were compared too, 3 envs × bp/aif-mp)."""
    env = EpistemicFrozenLake(size=3, n_layouts=3, n_holes=2, max_steps=6)
    bp = run_episodes(env, "bp", seeds=[0, 1, 2], horizon=4, n_iter=2, batch_size=3)
    assert np.asarray(bp.actions).tolist() == [[2, -1, -1, -1, -1, -1], [1, 2, 2, -1, -1, -1],
                                               [2, -1, -1, -1, -1, -1]]
    assert np.asarray(bp.layout).tolist() == [2, 0, 2]
