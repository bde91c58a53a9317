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

from pyrxaif import _validation as V

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


def sparse_transitions(S: int, A: int, K: int, next_dist: Callable[[int, int, int], dict]):
    """Build (succ (S,A,J), T (S,A,J,K)) from ``next_dist(x, u, θ) -> {x': p}``; successors of (x,u)
    are the union over θ (unique, so channels over x' need no aggregation), padded with x itself."""
    dists = [[[next_dist(x, u, k) for k in range(K)] for u in range(A)] for x in range(S)]
    J = max(len({n for d in dists[x][u] for n in d}) for x in range(S) for u in range(A))
    succ = np.zeros((S, A, J), np.int32)
    T = np.zeros((S, A, J, K))
    for x in range(S):
        for u in range(A):
            nxt = sorted({n for d in dists[x][u] for n in d})
            for j in range(J):
                succ[x, u, j] = nxt[j] if j < len(nxt) else x
            for k in range(K):
                for n, p in dists[x][u][k].items():
                    T[x, u, nxt.index(n), k] += p
    return succ, T


class GridSpec(NamedTuple):
    """Model tensors (probabilities, numpy) and simulator tables of one grid-world instance."""

    succ: np.ndarray        # (S,A,J)
    T: np.ndarray           # (S,A,J,K)
    B: np.ndarray           # (M,S,K,Y)
    log_C: np.ndarray       # (S,K)
    pi: np.ndarray          # (A,)
    terminal: np.ndarray    # (S,K) bool: episode ends on entering
    success: np.ndarray     # (S,K) bool: counts as success (goal / good rock)
    reward: np.ndarray      # (S,K) reward on entering
    start: int
    obs_sizes: tuple        # number of values per modality

    def rollout_model(self):
        from pyrxaif.inference.rollout import make_model
        return make_model(self.succ, self.T, self.B, self.log_C, self.pi, self.obs_sizes)


def pad_modalities(mods: list[np.ndarray]) -> tuple[np.ndarray, tuple]:
    """Stack per-modality likelihoods (S,K,Y_k) into (M,S,K,max Y) with zero padding."""
    Y = max(m.shape[-1] for m in mods)
    out = np.zeros((len(mods),) + mods[0].shape[:2] + (Y,))
    for i, m in enumerate(mods):
        out[i, :, :, : m.shape[-1]] = m
    return out, tuple(int(m.shape[-1]) for m in mods)


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
        S, A, _, K = spec.T.shape
        self.num_layouts = K
        self.action_space = spaces.Discrete(A)
        self.observation_space = spaces.MultiDiscrete(list(spec.obs_sizes))
        self.state = spec.start
        self.layout = 0
        self.t = 0

    # -- model access -------------------------------------------------------------------------
    def model(self):
        """The exact ``RolloutModel`` (log space) the planner uses."""
        return self.spec_.rollout_model()

    def initial_belief(self) -> np.ndarray:
        """Prior over (x, θ): known start state, uniform over layouts (probabilities, (S,K))."""
        S, K = self.spec_.log_C.shape
        b = np.zeros((S, K))
        b[self.spec_.start] = 1.0 / K
        return b

    # -- gymnasium API ------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        B = self.spec_.B
        y = np.zeros(B.shape[0], np.int64)
        for m in range(B.shape[0]):
            p = B[m, self.state, self.layout]
            y[m] = self.np_random.choice(p.shape[0], p=p / p.sum())
        return y

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        K = self.num_layouts
        layout = None if options is None else options.get("layout")
        if layout is None:
            layout = int(self.np_random.integers(K))
        if not (isinstance(layout, (int, np.integer)) and 0 <= int(layout) < K):
            raise ValueError(f"options['layout']: expected an integer in [0, {K}), got {layout!r}")
        self.layout = int(layout)
        self.state = self.spec_.start
        self.t = 0
        return self._observe(), {"layout": self.layout, "state": self.state}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action: expected an integer in [0, {self.action_space.n}), got {action!r}")
        sp = self.spec_
        p = sp.T[self.state, int(action), :, self.layout]
        j = self.np_random.choice(p.shape[0], p=p / p.sum())
        self.state = int(sp.succ[self.state, int(action), j])
        self.t += 1
        reward = float(sp.reward[self.state, self.layout])
        terminated = bool(sp.terminal[self.state, self.layout])
        truncated = self.t >= self.max_steps and not terminated
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
