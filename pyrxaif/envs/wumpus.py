"""Epistemic Wumpus World (simplified, 5×5): unknown pits, wumpus and gold; noisy local percepts.

K layouts (sampled once with ``layout_seed``) each place ``n_pits`` pits, one wumpus and one gold on
distinct cells other than the start (top-left), with a hazard-free path from the start to the gold.
No orientation or inventory: state x = (cell, sense flag) plus an absorbing DONE state, S = 2·25 + 1.
Actions LEFT, DOWN, RIGHT, UP (deterministic, bumping stays, clear the flag) and SENSE (stay, flag on).
Pits and the wumpus end the episode in failure, the gold in success; from any of them every action
leads to DONE (an outcome is preferred once, on entering it).
Observations (all noisy unless sensing): modality 0 = cell, correct with ``pos_acc`` (0.99 sensing),
otherwise uniform over the neighbouring cells; breeze (a pit is adjacent), stench (the wumpus is
adjacent), glitter (the gold is on or adjacent to the cell): P(1 | true) = tp, P(1 | false) = fp with
(tp, fp) = (0.8, 0.2) unscanned and (0.99, 0.01) sensing; in an end state (pit, wumpus, gold)
the percepts read 0, and in DONE every modality reads 0. A breeze says a pit is near, not which
neighbour: the observations are suggestive, not decisive.
Preferences: log C = +goal_pref on the gold, −hazard_pref on a pit or the wumpus, 0 elsewhere and in DONE.
Action prior: moves weight 1, SENSE ``sense_weight`` (default 1: a SENSE costs its time step and nothing
more; with 0.5 the extra log 2 nats of prior cost kept every planner from sensing, see docs/gridworld.md).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from pyrxaif.envs.gridworld_base import (GridworldEnv, binary_modality, move, neighbours,
                                            grid_spec, dense_transitions)

SENSE = 4


def _reachable(start: int, goal: int, blocked: set, n: int) -> bool:
    seen, todo = {start}, deque([start])
    while todo:
        c = todo.popleft()
        if c == goal:
            return True
        for m in neighbours(c, n, n):
            if m not in seen and m not in blocked:
                seen.add(m)
                todo.append(m)
    return False


def wumpus_layouts(n: int, n_layouts: int, n_pits: int, seed: int):
    """(pits (K,n²) bool, wumpus (K,) int, gold (K,) int) for K distinct solvable layouts."""
    rng = np.random.default_rng(seed)
    pits, wump, gold, seen = [], [], [], set()
    for _ in range(10000 * n_layouts):
        cells = rng.choice(np.arange(1, n * n), size=n_pits + 2, replace=False)
        p, w, g = frozenset(int(c) for c in cells[:n_pits]), int(cells[n_pits]), int(cells[n_pits + 1])
        key = (p, w, g)
        if key in seen or not _reachable(0, g, set(p) | {w}, n):
            continue
        seen.add(key)
        row = np.zeros(n * n, bool)
        row[list(p)] = True
        pits.append(row), wump.append(w), gold.append(g)
        if len(pits) == n_layouts:
            return np.stack(pits), np.array(wump), np.array(gold)
    raise ValueError(f"n_layouts: could not find {n_layouts} distinct solvable layouts")


def build_spec(n: int = 5, n_layouts: int = 16, n_pits: int = 2, pos_acc: float = 0.8,
               noise: tuple = (0.8, 0.2), sense_noise: tuple = (0.99, 0.01), goal_pref: float = 3.0,
               hazard_pref: float = 6.0, sense_weight: float = 1.0, layout_seed: int = 0):
    N = n * n
    S, A, K = 2 * N + 1, 5, n_layouts
    DONE = 2 * N
    pits, wump, gold = wumpus_layouts(n, K, n_pits, layout_seed)
    hazard = pits.copy()
    hazard[np.arange(K), wump] = True                                    # (K,N)
    is_gold = np.zeros((K, N), bool)
    is_gold[np.arange(K), gold] = True
    absorbing = hazard | is_gold

    def next_dist(x, u, k):
        c = x % N
        if x == DONE or absorbing[k, c]:
            return {DONE: 1.0}
        if u == SENSE:
            return {N + c: 1.0}
        return {move(c, u, n, n): 1.0}

    B_x = dense_transitions(S, A, K, next_dist)
    pos = np.zeros((S, K, N))
    pos[DONE, :, 0] = 1.0
    for x in range(2 * N):
        c = x % N
        acc = sense_noise[0] if x >= N else pos_acc
        nb = neighbours(c, n, n)
        pos[x, :, c] = acc
        pos[x, :, nb] = (1.0 - acc) / len(nb)
    adj = np.zeros((N, N), bool)
    for c in range(N):
        adj[c, neighbours(c, n, n)] = True
    breeze = (pits.astype(int) @ adj.T.astype(int)) > 0                  # (K,N): a pit adjacent to c
    stench = adj[:, wump].T                                                # (K,N)
    glitter = is_gold | adj[:, gold].T
    mods = [pos]
    for truth in (breeze, stench, glitter):
        p1 = np.zeros((S, K))
        for x in range(2 * N):
            tp, fp = sense_noise if x >= N else noise
            p1[x] = np.where(truth[:, x % N], tp, fp)
            p1[x] = np.where(absorbing[:, x % N], 0.0, p1[x])   # episode over: null reading 0
        mods.append(binary_modality(p1))
    cell = np.arange(S) % N
    haz_s, gold_s = hazard[:, cell].T, is_gold[:, cell].T                  # (S,K)
    haz_s[DONE], gold_s[DONE] = False, False
    log_C = np.where(gold_s, goal_pref, 0.0) - np.where(haz_s, hazard_pref, 0.0)
    pi = np.array([1.0, 1.0, 1.0, 1.0, sense_weight])
    terminal = haz_s | gold_s
    terminal[DONE] = True
    spec = grid_spec(B_x, mods, log_C, pi, terminal, gold_s.copy(), gold_s.astype(float),
                    0)
    return spec, (pits, wump, gold, breeze, stench, glitter)


class WumpusWorld(GridworldEnv):
    """Simplified Wumpus World with K unknown layouts; see the module docstring for the rules.

    Examples
    --------
    >>> from pyrxaif.envs.wumpus import WumpusWorld
    >>> env = WumpusWorld()
    >>> obs, info = env.reset(seed=0)
    >>> env.action_space, obs.shape, sorted(info)
    (Discrete(5), (4,), ['layout', 'state'])
    >>> model = env.pomdp                 # the agent's model: a pyrxaif.DiscretePOMDP
    >>> type(model).__name__
    'DiscretePOMDP'
    """

    def __init__(self, render_mode: str | None = None, size: int = 5, n_layouts: int = 16, n_pits: int = 2,
                 max_steps: int = 30, layout_seed: int = 0, **kwargs):
        if not (isinstance(size, int) and 3 <= size <= 8):
            raise ValueError(f"size: expected an integer in [3, 8], got {size!r}")
        if not (isinstance(n_layouts, int) and n_layouts >= 1):
            raise ValueError(f"n_layouts: expected a positive integer, got {n_layouts!r}")
        if not (isinstance(n_pits, int) and 0 <= n_pits <= size * size - 3):
            raise ValueError(f"n_pits: expected an integer in [0, {size * size - 3}], got {n_pits!r}")
        self.size = size
        spec, (self.pits, self.wumpus, self.gold, self.breeze, self.stench, self.glitter) = build_spec(
            size, n_layouts, n_pits, layout_seed=layout_seed, **kwargs)
        super().__init__(spec, size, size, max_steps, render_mode)

    def agent_cell(self, x: int):
        return x % self.size ** 2 if x < 2 * self.size ** 2 else None

    def cell_kind(self, cell: int, layout: int) -> str:
        if self.pits[layout, cell]:
            return "pit"
        if cell == self.wumpus[layout]:
            return "wumpus"
        return "gold" if cell == self.gold[layout] else "grass"

    def cell_char(self, cell: int, layout: int) -> str:
        return {"pit": "P", "wumpus": "W", "gold": "G", "grass": "."}[self.cell_kind(cell, layout)]

    def status_text(self, x: int, layout: int) -> str:
        return "done" if x == 2 * self.size ** 2 else f"layout {layout}, sensing={x >= self.size ** 2}"
