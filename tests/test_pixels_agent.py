"""JOPA agent: checkpoints, validation refusal, the `pyrxaif pendulum --quick` and `pyrxaif digits --quick` smoke runs."""

import json
import os

import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.agents import jopa
from pyrxaif.inference import em
from pyrxaif.nn import vae


def _untrained(task="pendulum"):
    cfg = jopa.JopaConfig(task=task, n_traj=2, traj_len=6, latent_dim=3, frames=2)
    params = vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(3, 2))
    lds = em.point_lds(0.9 * np.eye(3), np.ones((3, 1)), 0.1 * np.eye(3), np.zeros(3), np.eye(3))
    local = em.LocalLDS(np.zeros((2, 3)), np.asarray(1.0), np.stack([0.9 * np.eye(3)] * 2), np.ones((2, 3, 1)),
                        np.zeros((2, 3)), np.stack([0.1 * np.eye(3)] * 2))
    return jopa.JopaModel(cfg, params, lds, local)


def test_checkpoint_roundtrip(tmp_path):
    model = _untrained()
    path = str(tmp_path / "m.msgpack")
    jopa.save(model, path)
    back = jopa.load(path)
    assert back.config == model.config
    for a, b in zip(jax.tree_util.tree_leaves(model.params), jax.tree_util.tree_leaves(back.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree_util.tree_leaves((model.lds, model.local)),
                    jax.tree_util.tree_leaves((back.lds, back.local))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    w = np.random.default_rng(0).random((4, 2, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(model.encode(w)[0], back.encode(w)[0])
    # state-action experts (gates on [z; λu]) keep λ; checkpoints from before it load with λ = 0
    sa = jopa.JopaModel(model.config, model.params, model.lds,
                        model.local._replace(centres=np.zeros((2, 4)), action_weight=np.asarray(2.0)))
    jopa.save(sa, path)
    assert float(jopa.load(path).local.action_weight) == 2.0
    from flax import serialization
    with open(path, "rb") as f:
        state = serialization.msgpack_restore(f.read())
    state["local"] = {k: v for k, v in state["local"].items() if k != str(len(em.LocalLDS._fields) - 1)}
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize(state))
    assert float(jopa.load(path).local.action_weight) == 0.0
    (tmp_path / "bad.msgpack").write_bytes(b"\x80")            # empty msgpack map
    with pytest.raises(ValueError, match="not a JOPA checkpoint"):
        jopa.load(str(tmp_path / "bad.msgpack"))


def test_untrained_checkpoint_is_refused():
    model = _untrained()
    frames, actions, _ = jopa.collect(model.config, seed=0)
    metrics = jopa.validate(model, frames, actions)
    assert metrics["recon_mse"] > model.config.max_recon_mse   # random decoder ≈ 0.25 per pixel
    with pytest.raises(jopa.CheckpointRejected, match="reconstruction MSE"):
        jopa.check(model, metrics)
    with pytest.raises(ValueError, match="frames"):
        jopa.validate(model, frames[0], actions)


def test_config_and_success_checks():
    with pytest.raises(ValueError, match="task"):
        jopa.JopaConfig(task="cartpole")
    with pytest.raises(ValueError, match="horizon"):
        jopa.JopaConfig(horizon=1)
    with pytest.raises(ValueError, match="a_prior_precision"):
        jopa.JopaConfig(a_prior_precision=0.0)
    th = np.r_[np.zeros(5), np.full(50, np.pi - 0.1), np.zeros(3)]
    assert jopa.pendulum_success(th) == (True, True, 50)
    assert jopa.pendulum_success(th[:30]) == (True, False, 25)
    assert jopa.pendulum_success(np.zeros(10))[0] is False
    w = jopa.windows_of(np.arange(5.0)[None, :, None, None] * np.ones((1, 5, 2, 2)), 2)
    assert w.shape == (1, 4, 2, 2, 2) and w[0, 1, :, 0, 0].tolist() == [1.0, 2.0]


def test_closed_loop_data_is_the_controllers_own_consistent_episodes():
    """Frames render the true states, actions are the applied normalised torques (stepping the physics
    with them reproduces the states), half the episodes start near upright, and a seed repeats them."""
    from pyrxaif.envs.pendulum import pendulum_step, render_pendulum, wrap_angle

    model = _untrained()
    frames, actions, states = jopa.closed_loop_data(model, 2, seed=3, progress=False)
    T = model.config.traj_len
    assert frames.shape == (2, T, 28, 28) and actions.shape == (2, T - 1, 1) and states.shape == (2, T)
    for e in range(2):
        for t in range(T):
            np.testing.assert_allclose(frames[e, t], render_pendulum(states[e, t]), atol=1e-6)
    assert np.all(np.abs(actions) <= 1.0) and np.any(np.abs(actions) > 1e-3)
    assert np.all(np.abs(wrap_angle(states[::2, 0] - np.pi)) <= 0.5)
    # the angle sequence is the physics under the recorded torques (ω recovered from the first step)
    th, u = states[0], actions[0, :, 0] * model.config.max_torque
    omega = wrap_angle(th[1] - th[0]) / 0.05
    for t in range(1, T - 1):
        th_next, omega = pendulum_step(th[t], omega, u[t])
        assert th_next == pytest.approx(th[t + 1], abs=1e-9)
    again = jopa.closed_loop_data(model, 2, seed=3, progress=False)
    np.testing.assert_array_equal(again[2], states)
    with pytest.raises(ValueError, match="episodes"):
        jopa.closed_loop_data(model, 0, seed=3)
    with pytest.raises(ValueError, match="refit_episodes"):
        jopa.JopaConfig(refit_episodes=-1)
    with pytest.raises(ValueError, match="pretrain_prior"):
        jopa.JopaConfig(pretrain_prior="uniform")
    with pytest.raises(ValueError, match="2-d frame latents"):
        jopa.JopaConfig(pretrain_prior="ring", latent_dim=6, frames=2)


def test_cli_pendulum_quick(tmp_path, capsys):
    from pyrxaif.cli import main

    out = str(tmp_path / "pend")
    rc = main(["pendulum", "--quick", "--episodes", "2", "--steps", "20", "--out", out, "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "free energy per EM iteration" in text and "swing-up" in text
    rep = json.load(open(os.path.join(out, "results.json")))
    fe = [float(x) for x in text.split("free energy per EM iteration:")[1].splitlines()[0].split(",")]
    assert len(fe) == 2 and all(np.isfinite(fe))
    v = rep["validation"]
    assert 0.0 <= v["recon_mse"] < 0.1 and np.isfinite(v["pred_nmse"])   # learnt something: random ≈ 0.25
    s = rep["summary"]
    assert s["episodes"] == 2 and 0 <= s["swing_up"] <= 2 and 0 <= s["stabilised"] <= s["swing_up"]
    assert 0 < rep["timings"]["per_replan_s"] < 5
    for name in ("pendulum.png", "pendulum.gif", "model.msgpack"):
        assert os.path.getsize(os.path.join(out, name)) > 100
    from PIL import Image
    assert Image.open(os.path.join(out, "pendulum.gif")).n_frames == 21
    assert jopa.load(os.path.join(out, "model.msgpack")).config.refit_episodes == 2   # quick: 2 closed-loop episodes


def test_cli_digits_quick(tmp_path, capsys):
    """`pyrxaif digits --quick`: about 800 real handwritten frames, trains enough to reconstruct better
    than an untrained decoder (≈ 0.16 per-pixel MSE) and to predict latents better than their mean."""
    from pyrxaif.cli import main

    out = str(tmp_path / "dig")
    rc = main(["digits", "--quick", "--episodes", "2", "--steps", "6", "--out", out, "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "final angle within 15 degrees" in text
    rep = json.load(open(os.path.join(out, "results.json")))
    v = rep["validation"]
    assert v["recon_mse"] < 0.1 and v["pred_nmse"] < 0.6
    s = rep["summary"]
    assert s["episodes"] == 2 and 0 <= s["success"] <= 2
    errs = [e["final_error_deg"] for e in rep["episodes"]]
    assert s["median_final_error_deg"] == pytest.approx(np.median(errs))
    assert all((e["final_error_deg"] < 15.0) == e["success"] for e in rep["episodes"])
    from PIL import Image
    assert Image.open(os.path.join(out, "digits.gif")).n_frames == 7
    assert jopa.load(os.path.join(out, "model.msgpack")).config.a_prior_precision == 1e6
