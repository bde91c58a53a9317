"""The engine switch of the agents (T-maze, grid-world, pendulum): ``engine="jax"|"julia"`` and
``PYRXAIF_ENGINE``. Where Julia cannot start, asking for it fails at once with the reason (no silent
JAX fallback, no work done first). The host loops that drive the Julia engine are checked here with
the JAX scorer/planner plugged in (they must reproduce the jitted JAX agents exactly); the Julia
runs themselves are marked ``julia`` and skip with the reason where Julia is absent."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
from pyrxaif.agents import gridworld as gw
from pyrxaif.agents import pixel_control
from pyrxaif.agents import tmaze as ag
from pyrxaif.cli import main
from pyrxaif.engines import julia as ej
from pyrxaif.engines import julia_status, require_engine
from pyrxaif.envs.frozenlake import EpistemicFrozenLake
from pyrxaif.inference import em, planning, rollout

_JULIA_OK, _JULIA_WHY = julia_status()
no_julia = pytest.mark.skipif(_JULIA_OK, reason="Julia is available here; this checks the refusal where it is not")


# ----------------------------------------------------------------------------------- host loops
def test_tmaze_host_loop_reproduces_the_jitted_agent():
    """The T-maze agent with an engine object scoring on the host (the path the Julia engine takes, here
    with the JAX engine's ``evaluate_policies``) reproduces the jitted, vmapped scoring: the same
    trials and the same learned A from the same keys."""
    from pyrxaif.engines import engine
    kw = dict(iterations=20, burn_in=5, num_samples=20)
    jitted, host = ag.tmaze_agent(2, **kw), ag.tmaze_agent(2, engine=engine("jax"), **kw)
    assert host._engine is not None and jitted._engine is None
    jt = jitted.model.joint_tensors()
    A_env, d0 = jnp.asarray(jt.A), jnp.asarray(np.exp(jt.log_D))
    run_keys = jax.random.split(jax.random.PRNGKey(3), 2)
    for t in range(2):
        keys = ag._trial_keys(run_keys, t)
        rj, rh = ag.trial(jitted, A_env, d0, keys), ag.trial(host, A_env, d0, keys)
        for a, b in zip(rj, rh):
            np.testing.assert_allclose(np.asarray(b, float), np.asarray(a, float), rtol=1e-9, atol=1e-12)
    assert np.asarray(rh.actions).shape == (2, 2)
    np.testing.assert_allclose(np.asarray(host.pA), np.asarray(jitted.pA), rtol=1e-9)
    assert float(np.asarray(host.pA).sum()) > float(ag.env.observation_prior(0.1).sum()) * 2   # it learned


def test_gridworld_host_loop_reproduces_the_jitted_episodes():
    env = EpistemicFrozenLake(size=3, n_layouts=3, n_holes=2, max_steps=6)
    model, tab = env.model(), gw.tables_from_spec(env.spec_)
    cfg = rollout.method_config("aif-mp", n_iter=2)        # as test_gridworld's short episodes: one compile
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(2))
    jit = gw._episodes_jit(model, tab, cfg, 4, 6, keys)
    host = gw._episodes_host(model, tab, cfg, 4, 6, keys, rollout.plan)
    for a, b in zip(jit, host):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(np.asarray(jit[2]).max()) >= 1                      # episodes took steps


def test_pendulum_host_loop_reproduces_plan_local():
    """The Julia engine's iterated linearisation (host loop) with the JAX Gaussian solve equals the
    jitted planner, on a two-expert nonlinear model where the linearisation matters."""
    rng = np.random.default_rng(0)
    d, m, H = 3, 1, 8
    model = em.LocalLDS(jnp.asarray(rng.normal(size=(2, d))), jnp.asarray(0.8),
                        jnp.asarray(np.eye(d) + 0.2 * rng.normal(size=(2, d, d))),
                        jnp.asarray(rng.normal(size=(2, d, m))), jnp.asarray(0.1 * rng.normal(size=(2, d))),
                        jnp.asarray(np.stack([0.01 * np.eye(d), 0.02 * np.eye(d)])))
    z0, zg = rng.normal(size=d), rng.normal(size=d)
    mask = np.r_[0.0, np.ones(H - 1)]
    args = (model, z0, zg, np.full(d, 50.0), np.full(m, 2.0), mask, rng.uniform(-1, 1, (H, m)))
    want = planning.plan_local(*args, iters=2)
    got = ej.plan_local(*args, iters=2, solve=planning.plan_linearised)
    for a, b in zip(want, got):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-12)
    # several nominals: the same choice of the lowest objective
    inits = np.stack([args[-1], np.ones((H, m)), -np.ones((H, m))])
    want = planning.plan_local(*args[:-1], inits, iters=2)
    got = ej.plan_local(*args[:-1], inits, iters=2, solve=planning.plan_linearised)
    for a, b in zip(want, got):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-9, atol=1e-12)
    # the nonlinearity matters: one linearisation gives a different plan
    once = planning.plan_local(*args, iters=0)
    assert np.abs(np.asarray(once.actions) - np.asarray(want.actions)).max() > 1e-4


# ----------------------------------------------------------------------------------- selection
def test_unknown_engine_names_the_argument(monkeypatch):
    with pytest.raises(ValueError, match="engine"):
        ag.simulate(jax.random.PRNGKey(0), 1, 1, engine="torch")
    with pytest.raises(ValueError, match="engine"):
        gw.GridworldAgent(EpistemicFrozenLake(), "aif-mp", engine="torch")
    with pytest.raises(ValueError, match="engine"):
        pixel_control.planner("numpy")
    monkeypatch.setenv("PYRXAIF_ENGINE", "torch")
    with pytest.raises(ValueError, match="PYRXAIF_ENGINE"):
        ag.simulate(jax.random.PRNGKey(0), 1, 1)
    monkeypatch.setenv("PYRXAIF_ENGINE", "jax")
    assert pixel_control.planner() is planning.plan_local


def test_julia_tmaze_learns_only_A():
    with pytest.raises(ValueError, match="learn"):
        ag.simulate(jax.random.PRNGKey(0), 1, 1, engine="julia", learn="goals")
    from pyrxaif.agents.bargaining import simulate_bargaining
    with pytest.raises(ValueError, match="engine"):
        simulate_bargaining(jax.random.PRNGKey(0), 1, 1, engine="julia")


@no_julia
def test_julia_engine_refuses_at_once_where_unavailable(monkeypatch):
    t0 = time.perf_counter()
    with pytest.raises(ej.JuliaUnavailableError, match="unavailable"):
        require_engine("julia")
    with pytest.raises(ej.JuliaUnavailableError):
        ag.simulate(jax.random.PRNGKey(0), 2, 30, engine="julia", progress=False)
    with pytest.raises(ej.JuliaUnavailableError):
        gw.run_episodes(EpistemicFrozenLake(), "aif-mp", seeds=range(5), engine="julia")
    with pytest.raises(ej.JuliaUnavailableError):
        gw.GridworldAgent(EpistemicFrozenLake(), "aif-mp", engine="julia")
    with pytest.raises(ej.JuliaUnavailableError):
        pixel_control.planner("julia")
    monkeypatch.setenv("PYRXAIF_ENGINE", "julia")              # the variable selects Julia too
    with pytest.raises(ej.JuliaUnavailableError):
        ag.simulate(jax.random.PRNGKey(0), 2, 30, progress=False)
    assert time.perf_counter() - t0 < 20                        # refused before any simulation


@no_julia
@pytest.mark.parametrize("command", [["tmaze", "--runs", "2"], ["gridworld", "--episodes", "3"],
                                     ["pendulum", "--quick"], ["digits", "--quick"]])
def test_cli_engine_julia_refuses_before_work(command, tmp_path, capsys):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    assert main(command + ["--engine", "julia", "--out", str(out)]) == 3
    assert time.perf_counter() - t0 < 20
    err = capsys.readouterr().err
    assert "Julia engine unavailable" in err and command[0] in err
    assert not out.exists() or not any(out.iterdir())            # nothing was produced


# ----------------------------------------------------------------------------------- Julia runs
@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
def test_julia_gfe_agent_visits_the_cue():
    _, rec = ag.simulate(jax.random.PRNGKey(0), 2, 6, engine="julia", iterations=20, burn_in=5, progress=False)
    cue = np.asarray(rec.cue_first, float)
    assert cue[:, 1:].mean() >= 0.6


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
def test_julia_gridworld_episodes_equal_the_jax_episodes():
    env = EpistemicFrozenLake(size=3, n_layouts=3, n_holes=2, max_steps=6)
    kw = dict(seeds=[0, 1, 2], horizon=4, n_iter=3, obs_weight=0.3)
    a = gw.run_episodes(env, "aif-mp", engine="jax", **kw)
    b = gw.run_episodes(env, "aif-mp", engine="julia", **kw)
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-9)


@pytest.mark.julia
@pytest.mark.skipif(not _JULIA_OK, reason=f"Julia engine unavailable: {_JULIA_WHY}")
def test_julia_local_planner_equals_the_jax_planner():
    rng = np.random.default_rng(1)
    d, m, H = 3, 1, 8
    model = em.LocalLDS(jnp.asarray(rng.normal(size=(2, d))), jnp.asarray(0.8),
                        jnp.asarray(np.eye(d) + 0.2 * rng.normal(size=(2, d, d))),
                        jnp.asarray(rng.normal(size=(2, d, m))), jnp.asarray(0.1 * rng.normal(size=(2, d))),
                        jnp.asarray(np.stack([0.01 * np.eye(d), 0.02 * np.eye(d)])))
    args = (model, rng.normal(size=d), rng.normal(size=d), np.full(d, 50.0), np.full(m, 2.0),
            np.r_[0.0, np.ones(H - 1)], rng.uniform(-1, 1, (H, m)))
    want = planning.plan_local(*args, iters=3)
    got = ej.plan_local(*args, iters=3)
    np.testing.assert_allclose(got.actions, np.asarray(want.actions), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got.action_cov, np.asarray(want.action_cov), rtol=1e-7, atol=1e-9)
