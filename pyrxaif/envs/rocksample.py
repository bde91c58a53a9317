"""Epistemic RockSample[n, k] (default [4, 3]): known rock positions, unknown rock qualities.

Grid n×n, the agent starts on the left edge; k rocks at fixed cells, each good or bad: layout θ ∈
{0..2^k−1}, bit i = quality of rock i (1 = good), uniform prior.
States: (cell, checked mask) — bit i of the mask says that rock i has been SENSEd — plus the outcome
states GOOD (sampled a good rock), BAD (sampled a bad rock), EXITED and an absorbing DONE that every
outcome state moves to (an outcome is preferred once, on entering it); S = n²·2^k + 4.
Actions: LEFT, DOWN, RIGHT, UP (deterministic; bumping the border stays), SENSE (stay; checks the
nearest unchecked rock, ties by index), SAMPLE (on a rock cell: go to GOOD or BAD by θ; elsewhere
stay), EXIT (from the right edge: go to EXITED; elsewhere stay).
Observations: modality 0 = the state (exact); modality 1+i = binary quality reading of rock i, correct
with probability ½ + ½·2^(−d/sense_half) at Euclidean distance d once rock i is checked (exact on the
rock: distance-dependent SENSE per rock) and ½ + ½·passive_gain·2^(−d/passive_half) before (passive
readings are never decisive); reading 0 in the outcome states.
Preferences: log C = +good_pref (GOOD), −bad_pref (BAD), +exit_pref (EXITED), −step_cost on the grid,
0 in DONE. With the defaults a plan without information does not sample (½e^good_pref < e^exit_pref)
and a sample needs P(good) > e^(exit_pref − good_pref) ≈ 0.61.
Rewards: +10 good sample, −10 bad sample, +exit_reward on exit. Retrieval = reaching GOOD.
"""

from __future__ import annotations

import numpy as np

from pyrxaif.envs.gridworld_base import (GridSpec, GridworldEnv, binary_modality, move, grid_spec,
                                            dense_transitions)

SENSE, SAMPLE, EXIT = 4, 5, 6
DEFAULT_ROCKS = {(4, 3): (1, 7, 14)}


def _default_rocks(n: int, k: int) -> tuple:
    if (n, k) in DEFAULT_ROCKS:
        return DEFAULT_ROCKS[(n, k)]
    rng = np.random.default_rng(1234 + 17 * n + k)
    start = (n // 2) * n
    cells = [c for c in range(n * n) if c != start]
    return tuple(int(c) for c in sorted(rng.choice(cells, size=k, replace=False)))


def nearest_unchecked(cell: int, mask: int, rocks: tuple, n: int) -> int:
    """Index of the nearest rock (Euclidean) whose bit is not in ``mask``, ties by index; −1 if none."""
    r, c = divmod(cell, n)
    best, best_d = -1, np.inf
    for i, rc in enumerate(rocks):
        if mask >> i & 1:
            continue
        d = np.hypot(r - rc // n, c - rc % n)
        if d < best_d - 1e-12:
            best, best_d = i, d
    return best


def build_spec(n: int = 4, k: int = 3, rocks: tuple | None = None, sense_half: float = 4.0,
               passive_half: float = 1.0, passive_gain: float = 0.2, good_pref: float = 1.5, bad_pref: float = 8.0,
               exit_pref: float = 1.0, step_cost: float = 0.1, move_weight: float = 1.0,
               exit_reward: float = 1.0) -> GridSpec:
    N = n * n
    rocks = _default_rocks(n, k) if rocks is None else tuple(rocks)
    K = 2 ** k
    quality = (np.arange(K)[:, None] >> np.arange(k)[None, :]) & 1          # (K,k) 1 = good
    G = N * K                                                                # grid states (cell, mask)
    GOOD, BAD, EXITED, DONE = G, G + 1, G + 2, G + 3
    S, A = G + 4, 7
    start = (n // 2) * n

    def next_dist(x, u, th):
        if x >= G:         # an outcome is preferred once, on entering it; then the episode is over
            return {DONE: 1.0}
        mask, c = divmod(x, N)
        if u < 4:
            return {mask * N + move(c, u, n, n): 1.0}
        if u == SENSE:
            i = nearest_unchecked(c, mask, rocks, n)
            return {x: 1.0} if i < 0 else {(mask | 1 << i) * N + c: 1.0}
        if u == SAMPLE and c in rocks:
            return {GOOD if quality[th, rocks.index(c)] else BAD: 1.0}
        if u == EXIT and c % n == n - 1:
            return {EXITED: 1.0}
        return {x: 1.0}

    B_x = dense_transitions(S, A, K, next_dist)
    mods = [np.broadcast_to(np.eye(S)[:, None, :], (S, K, S))]
    for i, rc in enumerate(rocks):
        p1 = np.zeros((S, K))      # outcome states: null reading 0 (no ambiguity once the episode is over)
        rr, cc = divmod(rc, n)
        for x in range(G):
            mask, cell = divmod(x, N)
            r, c = divmod(cell, n)
            d = np.hypot(r - rr, c - cc)
            acc = 0.5 + 0.5 * (2.0 ** (-d / sense_half) if mask >> i & 1 else passive_gain * 2.0 ** (-d / passive_half))
            p1[x] = np.where(quality[:, i] == 1, acc, 1.0 - acc)
        mods.append(binary_modality(p1))
    log_C = np.full((S, K), -step_cost)
    log_C[GOOD], log_C[BAD], log_C[EXITED], log_C[DONE] = good_pref, -bad_pref, exit_pref, 0.0
    terminal = np.zeros((S, K), bool)
    terminal[[GOOD, BAD, EXITED, DONE]] = True
    success = np.zeros((S, K), bool)
    success[GOOD] = True
    reward = np.zeros((S, K))
    reward[GOOD], reward[BAD], reward[EXITED] = 10.0, -10.0, exit_reward
    pi = np.array([move_weight] * 4 + [1.0, 1.0, 1.0])
    return grid_spec(B_x, mods, log_C, pi, terminal, success, reward, start), rocks, quality


class RockSample(GridworldEnv):
    """RockSample[n, k] with unknown rock qualities; see the module docstring for the rules.

    Examples
    --------
    >>> from pyrxaif.envs.rocksample import RockSample
    >>> env = RockSample()
    >>> obs, info = env.reset(seed=0)
    >>> env.action_space, obs.shape, sorted(info)
    (Discrete(7), (4,), ['layout', 'state'])
    >>> model = env.pomdp                 # the agent's model: a pyrxaif.DiscretePOMDP
    >>> type(model).__name__
    'DiscretePOMDP'
    """

    def __init__(self, render_mode: str | None = None, n: int = 4, k: int = 3, rocks: tuple | None = None,
                 max_steps: int = 30, **kwargs):
        if not (isinstance(n, int) and 2 <= n <= 8):
            raise ValueError(f"n: expected an integer in [2, 8], got {n!r}")
        if not (isinstance(k, int) and 1 <= k <= min(6, n * n - 1)):
            raise ValueError(f"k: expected an integer in [1, {min(6, n * n - 1)}], got {k!r}")
        if rocks is not None:
            rocks = tuple(int(r) for r in rocks)
            if len(rocks) != k or len(set(rocks)) != k or min(rocks) < 0 or max(rocks) >= n * n:
                raise ValueError(f"rocks: expected {k} distinct cells in [0, {n * n}), got {rocks!r}")
        self.n, self.k = n, k
        spec, self.rocks, self.quality = build_spec(n, k, rocks, **kwargs)
        super().__init__(spec, n, n, max_steps, render_mode)

    def agent_cell(self, x: int):
        N = self.n * self.n
        return x % N if x < N * 2 ** self.k else None

    def cell_kind(self, cell: int, layout: int) -> str:
        if cell in self.rocks:
            return "rock_good" if self.quality[layout, self.rocks.index(cell)] else "rock_bad"
        return "exit" if cell % self.n == self.n - 1 else "grass"

    def cell_char(self, cell: int, layout: int) -> str:
        return {"rock_good": "R", "rock_bad": "r", "exit": ">", "grass": "."}[self.cell_kind(cell, layout)]

    def status_text(self, x: int, layout: int) -> str:
        N = self.n * self.n
        G = N * 2 ** self.k
        end = {G: "sampled a GOOD rock", G + 1: "sampled a BAD rock", G + 2: "exited", G + 3: "done"}
        checked = [i for i in range(self.k) if (x // N) >> i & 1] if x < G else []
        return end.get(x, f"checked rocks {checked}") + f", qualities {self.quality[layout].tolist()}"
