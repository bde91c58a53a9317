"""Shared machinery of the epistemic grid-worlds (Frozen Lake, RockSample, Wumpus World).

Each environment is defined by game-rule functions; from them ``GridSpec`` holds the exact model
tensors the planner uses (sparse transitions, observation likelihoods, preferences, action prior)
and the tables the simulator needs (terminal, success, reward on entry). The gymnasium ``step``
samples from the same tensors, so the planner's model is the environment's true model; the layout
θ is the only unknown.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pyrxaif import checks as V
from pyrxaif.models.discrete_pomdp import DiscretePOMDP, check_action

# Cardinal moves in (row, col) with gymnasium's FrozenLake numbering: LEFT, DOWN, RIGHT, UP.
MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))
MOVE_NAMES = ("LEFT", "DOWN", "RIGHT", "UP")


def move(cell: int, a: int, n_rows: int, n_cols: int) -> int:
    """Cell reached by move ``a`` from ``cell``; bumping into the border stays in place."""
    r, c = divmod(cell, n_cols)
    dr, dc = MOVES[a]
    r2, c2 = r + dr, c + dc
    if 0 <= r2 < n_rows and 0 <= c2 < n_cols:
        return r2 * n_cols + c2
    return cell


def neighbours(cell: int, n_rows: int, n_cols: int) -> list[int]:
    out = []
    for a in range(4):
        n = move(cell, a, n_rows, n_cols)
        if n != cell:
            out.append(n)
    return out


def manhattan(a: int, b: int, n_cols: int) -> int:
    (r1, c1), (r2, c2) = divmod(a, n_cols), divmod(b, n_cols)
    return abs(r1 - r2) + abs(c1 - c2)


def dense_transitions(S: int, U: int, K: int, next_dist: Callable[[int, int, int], dict]) -> np.ndarray:
    """pymdp-style transitions of the position factor, B[x', x, θ, u] (S, S, K, U), from the game rule
    ``next_dist(x, u, θ) -> {x': p}``."""
    B = np.zeros((S, S, K, U))
    for x in range(S):
        for u in range(U):
            for k in range(K):
                for n, p in next_dist(x, u, k).items():
                    B[n, x, k, u] += p
    return B


class GridSpec(NamedTuple):
    """One grid-world instance: its model (a ``DiscretePOMDP`` with the state x and the layout θ as a
    parameter factor) and the simulator's tables."""

    pomdp: DiscretePOMDP
    terminal: np.ndarray    # (S,K) bool: episode ends on entering
    success: np.ndarray     # (S,K) bool: counts as success (goal / good rock)
    reward: np.ndarray      # (S,K) reward on entering
    start: int

    def rollout_model(self):
        return self.pomdp.rollout_model()

    @property
    def succ(self) -> np.ndarray:
        """(S,U,J) successor indices of the planner's sparse transitions."""
        return np.asarray(self.rollout_model().succ)

    @property
    def B_sparse(self) -> np.ndarray:
        """(S,U,J,K) transition probabilities over ``succ`` (the planner's, in probability space)."""
        return np.exp(np.asarray(self.rollout_model().log_B))

    @property
    def A_padded(self) -> np.ndarray:
        """(M,S,K,Y) observation likelihoods per modality, zero-padded to the largest modality."""
        mods = self.pomdp.flat_observations()
        Y = max(m.shape[-1] for m in mods)
        out = np.zeros((len(mods),) + mods[0].shape[:2] + (Y,))
        for i, m in enumerate(mods):
            out[i, :, :, : m.shape[-1]] = m
        return out

    @property
    def log_C(self) -> np.ndarray:
        """(S,K) log-preferences over (x, θ)."""
        return self.pomdp.state_log_preferences()

    @property
    def obs_sizes(self) -> tuple:
        return tuple(self.pomdp.num_obs)

    # Deprecated names of the first release (T transitions, B observations).
    T = B_sparse
    B = A_padded


def grid_spec(B_x: np.ndarray, mods: list[np.ndarray], log_C: np.ndarray, E: np.ndarray, terminal: np.ndarray,
              success: np.ndarray, reward: np.ndarray, start: int) -> GridSpec:
    """Build the ``DiscretePOMDP`` of a grid world: factor 0 the state x (transitions ``B_x`` (S,S,K,U),
    depending on x and θ), factor 1 the layout θ (a parameter factor, uniform prior); observation
    modalities ``mods`` as (S,K,Y_m) likelihoods; state preferences ``log_C`` (S,K); action prior ``E``."""
    S, _, K, _ = B_x.shape
    D = [np.eye(S)[start], np.full(K, 1.0 / K)]
    pomdp = DiscretePOMDP([np.moveaxis(m, -1, 0) for m in mods], [B_x, np.eye(K)[:, :, None]], D=D,
                          E=np.asarray(E) / np.sum(E), C_states=log_C, B_dependencies=[[0, 1], [1]],
                          parameter_factors=[1])
    return GridSpec(pomdp, terminal, success, reward, int(start))


def binary_modality(p_true: np.ndarray) -> np.ndarray:
    """(S,K) probability of reading 1 -> (S,K,2) likelihood [P(0), P(1)]."""
    return np.stack([1.0 - p_true, p_true], axis=-1)


PALETTE = {
    "ice": (200, 225, 245), "hole": (20, 40, 90), "goal": (250, 200, 40), "agent": (220, 40, 40),
    "wall": (80, 80, 80), "rock_good": (40, 170, 60), "rock_bad": (150, 80, 40), "exit": (170, 240, 170),
    "pit": (30, 30, 30), "wumpus": (130, 20, 130), "gold": (250, 200, 40), "grass": (225, 235, 205),
}


class GridworldEnv(gym.Env):
    """Common gymnasium logic: state index x, hidden layout θ, sampling from the exact tensors."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    cell_px = 32

    def __init__(self, spec: GridSpec, n_rows: int, n_cols: int, max_steps: int, render_mode: str | None):
        if render_mode is not None:
            V.check_choice("render_mode", render_mode, self.metadata["render_modes"])
        self.spec_ = spec
        self.n_rows, self.n_cols = n_rows, n_cols
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        S, K = spec.pomdp.flat_sizes
        A = spec.pomdp.num_actions
        self.num_layouts = K
        self.action_space = spaces.Discrete(A)
        self.observation_space = spaces.MultiDiscrete(list(spec.obs_sizes))
        self._A, self._B = spec.A_padded, spec.B_sparse      # sampling tables (the planner's tensors)
        self.state = spec.start
        self.layout = 0
        self.t = 0
        self._done = False

    # -- model access -------------------------------------------------------------------------
    def model(self):
        """The exact ``RolloutModel`` (log space) the planner uses."""
        return self.spec_.rollout_model()

    @property
    def pomdp(self) -> DiscretePOMDP:
        """The environment's model as a ``DiscretePOMDP`` (state x, layout θ as a parameter factor)."""
        return self.spec_.pomdp

    def initial_belief(self) -> np.ndarray:
        """Prior over (x, θ): known start state, uniform over layouts (probabilities, (S,K))."""
        return self.spec_.pomdp.initial_prior()

    # -- gymnasium API ------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        A = self._A
        y = np.zeros(A.shape[0], np.int64)
        for m in range(A.shape[0]):
            p = A[m, self.state, self.layout]
            y[m] = self.np_random.choice(p.shape[0], p=p / p.sum())
        return y

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        K = self.num_layouts
        layout = V.check_options(options, ("layout",)).get("layout")
        if layout is None:
            layout = int(self.np_random.integers(K))
        if isinstance(layout, (bool, np.bool_)) or not (isinstance(layout, (int, np.integer)) and 0 <= int(layout) < K):
            raise ValueError(f"options['layout']: expected an integer in [0, {K}), got {layout!r}")
        self.layout = int(layout)
        self.state = self.spec_.start
        self.t = 0
        self._done = False
        return self._observe(), {"layout": self.layout, "state": self.state}

    def step(self, action):
        action = check_action(action, int(self.action_space.n))
        if self._done:
            raise RuntimeError("step: the episode is over (terminated or truncated); call reset()")
        sp = self.spec_
        p = self._B[self.state, int(action), :, self.layout]
        j = self.np_random.choice(p.shape[0], p=p / p.sum())
        self.state = int(sp.succ[self.state, int(action), j])
        self.t += 1
        reward = float(sp.reward[self.state, self.layout])
        terminated = bool(sp.terminal[self.state, self.layout])
        truncated = self.t >= self.max_steps and not terminated
        self._done = terminated or truncated
        info = {"layout": self.layout, "state": self.state,
                "success": bool(sp.success[self.state, self.layout])}
        return self._observe(), reward, terminated, truncated, info

    def render(self):
        if self.render_mode == "ansi":
            return self.render_text(self.state, self.layout)
        if self.render_mode == "rgb_array":
            return self.render_rgb(self.state, self.layout)
        return None

    # -- drawing (subclasses provide cell_kind / cell_text / agent_cell) ----------------------
    def agent_cell(self, x: int) -> int | None:
        return x % (self.n_rows * self.n_cols)

    def render_text(self, x: int, layout: int) -> str:
        rows = []
        agent = self.agent_cell(x)
        for r in range(self.n_rows):
            row = ""
            for c in range(self.n_cols):
                cell = r * self.n_cols + c
                row += "A" if cell == agent else self.cell_char(cell, layout)
            rows.append(row)
        return "\n".join(rows) + "\n" + self.status_text(x, layout) + "\n"

    def status_text(self, x: int, layout: int) -> str:
        return ""

    def render_rgb(self, x: int, layout: int) -> np.ndarray:
        px = self.cell_px
        img = np.zeros((self.n_rows * px, self.n_cols * px, 3), np.uint8)
        agent = self.agent_cell(x)
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                cell = r * self.n_cols + c
                img[r * px:(r + 1) * px, c * px:(c + 1) * px] = PALETTE[self.cell_kind(cell, layout)]
                img[r * px, c * px:(c + 1) * px] = 255
                img[r * px:(r + 1) * px, c * px] = 255
                if cell == agent:
                    q = px // 4
                    img[r * px + q:(r + 1) * px - q, c * px + q:(c + 1) * px - q] = PALETTE["agent"]
        return img
