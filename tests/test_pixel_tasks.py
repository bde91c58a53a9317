"""Pixel tasks: the underactuated pendulum's physics (gymnasium's Pendulum-v1 as the oracle, energy
and the small-angle closed form), PC3's score (brute force), task objects and bad reset options."""

import gymnasium as gym
import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.agents.pixel_tasks import (DMC_BAND, PC3_BAND, TASKS, DigitsTask, PendulumTask, task_from_dict,
                                        upright_percentage)
from pyrxaif.envs.digits import RotatingDigits
from pyrxaif.envs.pendulum import UNDERACTUATED, PixelPendulum, pendulum_step, wrap_angle


def test_underactuated_preset_is_gym_pendulum_v1():
    """Same torques, same start: our θ (0 hanging) equals gym's θ (0 upright) + π at every step, and
    ω agrees, over 200 steps including clipped torques and the ω clip."""
    task = PendulumTask.preset("underactuated")
    ours = task.make_env()
    ref = gym.make("Pendulum-v1").unwrapped
    ref.reset(seed=0)
    rng = np.random.default_rng(0)
    ours.reset(options={"theta": 0.2, "omega": -0.3})
    ref.state = np.array([0.2 - np.pi, -0.3])
    assert ref.max_torque == task.max_torque == 2.0 and ref.max_speed == 8.0 and ref.g == 10.0
    for t in range(200):
        u = float(rng.uniform(-3.0, 3.0))          # beyond ±2: both clip
        _, _, _, _, info = ours.step(np.array([u]))
        ref.step(np.array([u]))
        th_ref, om_ref = ref.state
        assert info["theta"] == pytest.approx(float(wrap_angle(th_ref + np.pi)), abs=1e-9)
        assert info["omega"] == pytest.approx(float(om_ref), abs=1e-9)
    env = PixelPendulum(max_torque=50.0, g=10.0, inertia="rod")
    env.reset(options={"theta": 0.0, "omega": 7.9})
    for _ in range(5):
        env.step(np.array([50.0]))
    assert abs(env.omega) == 8.0                    # the ω clip of Pendulum-v1 (|ω| <= 8)


@pytest.mark.parametrize("inertia,moment,lever", [("point", 1.0, 1.0), ("rod", 1.0 / 3.0, 0.5)])
def test_energy_and_small_angle_period(inertia, moment, lever):
    """Without torque the energy ½ I ω² − m g l_c cos θ is conserved (fine step), and small swings follow
    θ(t) = θ₀ cos(√(m g l_c / I) t): for the rod ω₀² = 3g/(2l), for the point mass g/l."""
    g, dt = 10.0, 1e-4
    energy = lambda th, om: 0.5 * moment * om ** 2 - g * lever * np.cos(th)  # noqa: E731
    th, om = 2.0, 0.0
    e0 = energy(th, om)
    for _ in range(20000):
        th, om = pendulum_step(th, om, 0.0, g=g, dt=dt, inertia=inertia, max_speed=100.0)
    assert energy(th, om) == pytest.approx(e0, rel=2e-3)
    w0 = np.sqrt(g * lever / moment)
    th, om, th0 = 0.01, 0.0, 0.01
    T = 1.0
    for _ in range(int(T / dt)):
        th, om = pendulum_step(th, om, 0.0, g=g, dt=dt, inertia=inertia)
    assert th == pytest.approx(th0 * np.cos(w0 * T), abs=2e-5)


def test_underactuated_needs_pumping_and_reference_does_not():
    """Constant full torque from hanging at rest: the underactuated pendulum stops short of horizontal
    (gravity's torque m g l/2 = 5 > 2: it oscillates about sin θ = 0.4), the reference one goes over the top."""
    for task, reaches in ((PendulumTask.preset("underactuated"), False), (PendulumTask.preset("reference"), True)):
        env = task.make_env()
        env.reset(options={"theta": 0.0, "omega": 0.0})
        top = 0.0
        for _ in range(200):
            _, _, _, _, info = env.step(np.array([task.max_torque]))
            top = max(top, abs(info["theta"]))
        assert (top > 3.0) is reaches, (task, top)
        if not reaches:
            assert top <= 2 * np.arcsin(0.4) + 0.05


def test_upright_percentage_against_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(20):
        theta = rng.uniform(-4 * np.pi, 4 * np.pi, size=rng.integers(1, 150))
        for band in (PC3_BAND, DMC_BAND):
            count = 0
            for th in theta:                  # distance to upright by arccos(cos), not by wrapping
                count += np.arccos(np.clip(np.cos(th - np.pi), -1, 1)) < band
            assert upright_percentage(theta, band) == pytest.approx(100.0 * count / len(theta))
    task = PendulumTask()
    states = np.r_[np.pi, np.full(30, np.pi + 0.1), np.full(20, np.pi + 0.3), np.zeros(50)]  # first: the start
    s = task.score(states, np.pi)
    assert s == {"within_pi_6_pct": 50.0, "within_8deg_pct": 30.0}
    with pytest.raises(ValueError, match="theta"):
        upright_percentage([], PC3_BAND)
    with pytest.raises(ValueError, match="band"):
        upright_percentage([0.0], 0.0)


def test_pc3_protocol_starts():
    sw, bal = PendulumTask().protocols()
    assert (sw.name, sw.steps, bal.name, bal.steps) == ("swing_up", 100, "balance", 100)
    rng = np.random.default_rng(0)
    for _ in range(50):
        (s, g), (b, g2) = sw.start(rng), bal.start(rng)
        assert abs(s["theta"]) <= 0.3 and abs(b["theta"] - np.pi) <= 0.1 and b["omega"] == 0.0
        assert g == g2 == pytest.approx(np.pi)
    assert DigitsTask().protocols() == ()


def test_tasks_round_trip_and_refuse_bad_settings():
    for task in (PendulumTask(), PendulumTask(**UNDERACTUATED), DigitsTask(digit=-1)):
        assert task_from_dict(task.to_dict()) == task
    assert set(TASKS) == {"pendulum", "digits"}
    with pytest.raises(ValueError, match="preset"):
        PendulumTask.preset("hard")
    with pytest.raises(ValueError, match="inertia"):
        PendulumTask(inertia="disc")
    with pytest.raises(ValueError, match="max_torque"):
        PendulumTask(max_torque=-1.0)
    with pytest.raises(ValueError, match="exploration_goal_fraction"):
        PendulumTask(exploration_goal_fraction=1.5)
    with pytest.raises(ValueError, match="unknown settings"):
        task_from_dict({"name": "pendulum", "mass": 2.0})
    with pytest.raises(ValueError, match="task"):
        task_from_dict({"name": "cartpole"})


def test_reset_options_are_checked():
    env = RotatingDigits(images=np.zeros((3, 28, 28), np.float32))
    for bad in (np.nan, np.inf, "x"):
        with pytest.raises((ValueError, TypeError), match="angle"):
            env.reset(options={"angle": bad})
    for bad in (3, -1, 1.5, True):
        with pytest.raises(ValueError, match="index"):
            env.reset(options={"index": bad})
    _, info = env.reset(options={"index": 2, "angle": 0.25})
    assert info == {"angle": 0.25, "index": 2}
    with pytest.raises(ValueError, match="inertia"):
        PixelPendulum(inertia="disc")
