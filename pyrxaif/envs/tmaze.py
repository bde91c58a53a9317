"""T-maze (LAIF / Friston et al. 2015 setting) as matrices, pure JAX steps, and a gymnasium env.

Positions O (start), L, R (reward arms), Cue (index 0..3); reward side RL/RR (0/1). State index
z = 2·position + side (8 states); observation index x = 4·position + outcome with outcomes
CL, CR (cue says left/right), RW (reward), NR (no reward) (16 observations). Actions are the
desired next position: from O or Cue the agent moves there; from L or R every action returns to O
(a move to a reward arm is followed by a mandatory move back). Reward probability α in the
correct arm, 1 − α in the other; the cue is exact; O is uninformative.
"""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from pyrxaif import _validation as V

POSITIONS = ("O", "L", "R", "Cue")
OUTCOMES = ("CL", "CR", "RW", "NR")
O, L, R, CUE = range(4)
RW = 2


def _block_diag(blocks):
    m = sum(b.shape[0] for b in blocks)
    n = sum(b.shape[1] for b in blocks)
    out = np.zeros((m, n))
    i = j = 0
    for b in blocks:
        out[i:i + b.shape[0], j:j + b.shape[1]] = b
        i += b.shape[0]
        j += b.shape[1]
    return out


def observation_matrix(alpha: float = 0.9) -> np.ndarray:
    """True A (16 × 8), block-diagonal by position; columns RL, RR; rows CL, CR, RW, NR."""
    alpha = float(V.as_float_array("alpha", alpha, ndim=0))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a reward probability in [0, 1], got {alpha}")
    a = alpha
    blocks = [np.array([[.5, .5], [.5, .5], [0, 0], [0, 0]]),
              np.array([[0, 0], [0, 0], [a, 1 - a], [1 - a, a]]),
              np.array([[0, 0], [0, 0], [1 - a, a], [a, 1 - a]]),
              np.array([[1, 0], [0, 1], [0, 0], [0, 0]])]
    return _block_diag(blocks)


def position_transitions() -> np.ndarray:
    """P_u (4 actions × 4 × 4), P_u[to, from]: from O or Cue move to u; from L or R go back to O."""
    P = np.zeros((4, 4, 4))
    for u in range(4):
        for frm in range(4):
            to = O if frm in (L, R) else u
            P[u, to, frm] = 1.0
    return P


def transition_matrices(n_context: int = 2) -> np.ndarray:
    """B_u = P_u ⊗ I (4 × 8 × 8 for the two reward sides)."""
    return np.stack([np.kron(p, np.eye(n_context)) for p in position_transitions()])


def goal_log_probs(c: float = 2.0) -> np.ndarray:
    """log C with C = σ(1₄ ⊗ [0, 0, c, −c])."""
    c = float(V.as_float_array("c", c, ndim=0))
    v = np.kron(np.ones(4), [0.0, 0.0, c, -c])
    return v - np.log(np.sum(np.exp(v)))


def initial_state_log_probs() -> np.ndarray:
    """log D: start at O, reward side unknown (−inf elsewhere)."""
    with np.errstate(divide="ignore"):
        return np.log(np.kron([1.0, 0, 0, 0], [0.5, 0.5]))


def observation_prior(eps: float = 0.1) -> np.ndarray:
    """LAIF's Dirichlet prior on A: O block [10 10; 10 10; ε ε; ε ε], other blocks [1 ε; ε 1; ε ε; ε ε], ε elsewhere."""
    eps = float(V.check_positive("eps", eps))
    a = np.full((16, 8), eps)
    a[0:4, 0:2] = [[10, 10], [10, 10], [eps, eps], [eps, eps]]
    for p in (L, R, CUE):
        a[4 * p:4 * p + 4, 2 * p:2 * p + 2] = [[1, eps], [eps, 1], [eps, eps], [eps, eps]]
    return a


# --- pure JAX environment steps (used by the vmapped agents) --------------------------------

def env_reset(key):
    """Hidden reward side (0 = left, 1 = right), uniformly; the agent starts at O."""
    return jax.random.bernoulli(key).astype(jnp.int32)


def env_step(key, position, side, action, A):
    """Move (mandatory return from an arm), then sample an observation index from A[:, state]."""
    new_pos = jnp.where((position == L) | (position == R), O, action)
    state = 2 * new_pos + side
    x = jax.random.categorical(key, jnp.log(A[:, state]))
    return new_pos, x


class TMaze(gym.Env):
    """Gymnasium T-maze: two moves per episode, observation = index in 0..15, reward 1 on RW.

    ``info`` holds the position, the hidden reward side and the outcome name.
    """

    metadata = {"render_modes": []}

    def __init__(self, alpha: float = 0.9, moves: int = 2):
        self.A = observation_matrix(alpha)
        self.alpha = float(alpha)
        if int(moves) < 1:
            raise ValueError(f"moves: expected a positive integer, got {moves}")
        self.moves = int(moves)
        self.observation_space = spaces.Discrete(16)
        self.action_space = spaces.Discrete(4)
        self._pos = O
        self._side = 0
        self._t = 0

    def _obs(self):
        state = 2 * self._pos + self._side
        return int(self.np_random.choice(16, p=self.A[:, state]))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._side = int(self.np_random.integers(2))
        self._pos = O
        self._t = 0
        x = self._obs()
        return x, {"position": POSITIONS[self._pos], "side": self._side, "outcome": OUTCOMES[x % 4]}

    def step(self, action):
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action: expected one of 0..3 ({', '.join(POSITIONS)}), got {action!r}")
        if self._t >= self.moves:
            raise RuntimeError("step: episode is over; call reset()")
        self._pos = O if self._pos in (L, R) else int(action)
        self._t += 1
        x = self._obs()
        reward = 1.0 if x % 4 == RW else 0.0
        info = {"position": POSITIONS[self._pos], "side": self._side, "outcome": OUTCOMES[x % 4]}
        return x, reward, self._t >= self.moves, False, info
