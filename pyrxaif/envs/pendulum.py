"""Pendulum seen through pixels.

θ = 0 hanging, θ = π upright. ``inertia="point"`` (default): a point mass on a massless rod,
θ̈ = −(g/l) sin θ + τ/(m l²); ``inertia="rod"``: a uniform rod pivoted at its end (moment of inertia
m l²/3, centre of mass at l/2), θ̈ = −(3g/(2l)) sin θ + 3τ/(m l²), the physics of gymnasium's
Pendulum-v1 (whose angle is measured from upright). Defaults g = 9.81, m = l = 1, dt = 0.05, no damping,
semi-implicit Euler (ω first, then θ with the new ω), ω clipped to ±8, θ wrapped to [−π, π).
``UNDERACTUATED`` holds Pendulum-v1's settings (g = 10, rod, |τ| ≤ 2): gravity's largest angular
acceleration (15 rad/s²) is 2.5 times the torque's (6 rad/s²), so swinging up needs several pumps.
Observations are 28×28 grayscale frames in [0, 1] with an anti-aliased rod and bob; the true angle
and velocity are in ``info``. ``reset`` options: "theta" (any finite angle, wrapped) and "omega" (within
±max_speed); other keys are refused. Rendering is numpy only (no display, no pygame).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pyrxaif import checks as V

SIZE = 28
INERTIA = ("point", "rod")
# gymnasium Pendulum-v1: g = 10, m = l = 1, dt = 0.05, |torque| <= 2, |ω| <= 8, uniform rod
UNDERACTUATED = {"max_torque": 2.0, "g": 10.0, "m": 1.0, "l": 1.0, "dt": 0.05, "max_speed": 8.0, "inertia": "rod"}


def wrap_angle(theta):
    """Wrap to [−π, π)."""
    return (np.asarray(theta) + np.pi) % (2.0 * np.pi) - np.pi


def angular_acceleration(theta, torque, *, g=9.81, m=1.0, l=1.0, inertia="point"):
    """θ̈ = (τ − m g l_c sin θ) / I = −(g l_c m / I) sin θ + τ / I: point mass (I = m l², l_c = l, so
    −(g/l) sin θ + τ/(m l²)) or uniform rod (I = m l²/3, l_c = l/2, so −(3g/(2l)) sin θ + 3τ/(m l²))."""
    V.check_choice("inertia", inertia, INERTIA)
    gravity, moment = (g / l, m * l * l) if inertia == "point" else (1.5 * g / l, m * l * l / 3.0)
    return -gravity * np.sin(theta) + torque / moment


def pendulum_step(theta, omega, torque, *, g=9.81, m=1.0, l=1.0, dt=0.05, max_speed=8.0, inertia="point"):
    """One semi-implicit Euler step: ω' = clip(ω + dt θ̈(θ, τ), ±max_speed), θ' = wrap(θ + dt ω')."""
    acc = angular_acceleration(theta, torque, g=g, m=m, l=l, inertia=inertia)
    omega = np.clip(omega + dt * acc, -max_speed, max_speed)
    return wrap_angle(theta + dt * omega), omega


def bob_pixel(theta, size: int = SIZE, length_px: float | None = None) -> tuple[float, float]:
    """(row, col) of the bob centre: hanging (θ=0) is straight below the pivot at the image centre."""
    c = (size - 1) / 2.0
    r = 0.38 * size if length_px is None else length_px
    return c + r * np.cos(theta), c + r * np.sin(theta)


def render_pendulum(theta, size: int = SIZE) -> np.ndarray:
    """Anti-aliased frame: rod of half-width 0.9 px and bob of radius 2.6 px, coverage ≈ clip(r + ½ − d)."""
    c = (size - 1) / 2.0
    by, bx = bob_pixel(theta, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = by - c, bx - c
    t = np.clip(((yy - c) * dy + (xx - c) * dx) / (dy * dy + dx * dx), 0.0, 1.0)
    d_rod = np.hypot(yy - c - t * dy, xx - c - t * dx)
    d_bob = np.hypot(yy - by, xx - bx)
    rod = np.clip(0.9 + 0.5 - d_rod, 0.0, 1.0) * 0.6
    bob = np.clip(2.6 + 0.5 - d_bob, 0.0, 1.0)
    return np.maximum(rod, bob).astype(np.float32)


class PixelPendulum(gym.Env):
    """Torque-controlled pendulum whose observation is a 28×28 frame; see the module docstring.

    Examples
    --------
    >>> from pyrxaif.envs.pendulum import PixelPendulum
    >>> env = PixelPendulum()
    >>> frame, info = env.reset(seed=0, options={"theta": 0.0, "omega": 0.0})    # hanging, at rest
    >>> frame.shape, frame.dtype, info["theta"]
    ((28, 28), dtype('float32'), 0.0)
    >>> frame, reward, terminated, truncated, info = env.step([1.0])              # torque 1
    >>> info["omega"] > 0
    True
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, max_torque: float = 50.0, dt: float = 0.05, g: float = 9.81, m: float = 1.0,
                 l: float = 1.0, max_speed: float = 8.0, inertia: str = "point", render_mode: str | None = None):
        for name, val in (("max_torque", max_torque), ("dt", dt), ("g", g), ("m", m), ("l", l),
                          ("max_speed", max_speed)):
            V.check_positive(name, val)
        V.check_choice("inertia", inertia, INERTIA)
        if render_mode is not None:
            V.check_choice("render_mode", render_mode, self.metadata["render_modes"])
        self.max_torque, self.dt, self.g, self.m, self.l = float(max_torque), float(dt), float(g), float(m), float(l)
        self.max_speed, self.inertia = float(max_speed), inertia
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, (SIZE, SIZE), np.float32)
        self.action_space = spaces.Box(-self.max_torque, self.max_torque, (1,), np.float64)
        self.theta, self.omega = 0.0, 0.0

    def _obs(self):
        return render_pendulum(self.theta)

    def _info(self):
        return {"theta": float(self.theta), "omega": float(self.omega)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = V.check_options(options, ("theta", "omega"))
        theta = options["theta"] if "theta" in options else self.np_random.uniform(-np.pi, np.pi)
        omega = options["omega"] if "omega" in options else self.np_random.uniform(-1.0, 1.0)
        theta = float(V.as_float_array("options['theta']", theta, ndim=0))
        omega = float(V.as_float_array("options['omega']", omega, ndim=0))
        if abs(omega) > self.max_speed:
            raise ValueError(f"options['omega']: expected an angular velocity within ±max_speed = ±{self.max_speed}, "
                             f"got {omega!r}")
        self.theta, self.omega = float(wrap_angle(theta)), omega
        return self._obs(), self._info()

    def step(self, action):
        a = V.as_float_array("action", action).reshape(-1)
        if a.size != 1:
            raise ValueError(f"action: expected one torque value, got shape {np.shape(action)}")
        torque = float(np.clip(a[0], -self.max_torque, self.max_torque))
        self.theta, self.omega = (float(v) for v in pendulum_step(
            self.theta, self.omega, torque, g=self.g, m=self.m, l=self.l, dt=self.dt, max_speed=self.max_speed,
            inertia=self.inertia))
        reward = -float(abs(wrap_angle(self.theta - np.pi)))
        info = self._info() | {"torque": torque}
        return self._obs(), reward, False, False, info

    def render(self):
        frame = (self._obs() * 255).astype(np.uint8)
        return np.repeat(frame[:, :, None], 3, axis=2)
