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

from pyrxaif import checks as V
from pyrxaif.models.discrete_pomdp import DiscretePOMDP, check_action

POSITIONS = ("O", "L", "R", "Cue")
OUTCOMES = ("CL", "CR", "RW", "NR")
O, L, R, CUE = range(4)
RW = 2


def outcome_likelihood(alpha: float = 0.9) -> np.ndarray:
    """Outcome modality A[o, position, side] (4 × 4 × 2): O says CL/CR with ½ each, the arms give RW with
    probability α on the rewarded side (1 − α on the other), the cue tells the side exactly."""
    alpha = float(V.as_float_array("alpha", alpha, ndim=0))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a reward probability in [0, 1], got {alpha}")
    a = alpha
    blocks = [np.array([[.5, .5], [.5, .5], [0, 0], [0, 0]]),
              np.array([[0, 0], [0, 0], [a, 1 - a], [1 - a, a]]),
              np.array([[0, 0], [0, 0], [1 - a, a], [a, 1 - a]]),
              np.array([[1, 0], [0, 1], [0, 0], [0, 0]])]
    return np.stack(blocks, axis=1)


def position_transitions() -> np.ndarray:
    """P_u (4 actions × 4 × 4), P_u[to, from]: from O or Cue move to u; from L or R go back to O."""
    P = np.zeros((4, 4, 4))
    for u in range(4):
        for frm in range(4):
            to = O if frm in (L, R) else u
            P[u, to, frm] = 1.0
    return P


def tmaze_pomdp(alpha: float = 0.9, c: float = 2.0) -> DiscretePOMDP:
    """The T-maze as a ``DiscretePOMDP``: factors position (4, controlled) and reward side (2, a parameter
    factor fixed during a trial); modalities position (exact) and outcome (CL, CR, RW, NR); C prefers RW by
    ``c`` and avoids NR by ``c``; D starts at O with the side unknown."""
    c = float(V.as_float_array("c", c, ndim=0))
    A = [np.broadcast_to(np.eye(4)[:, :, None], (4, 4, 2)), outcome_likelihood(alpha)]
    B = [np.transpose(position_transitions(), (1, 2, 0)), np.eye(2)[:, :, None]]
    C = [np.zeros(4), np.array([0.0, 0.0, c, -c])]
    D = [np.eye(4)[O], np.array([0.5, 0.5])]
    return DiscretePOMDP(A, B, C, D, parameter_factors=[1])


def observation_matrix(alpha: float = 0.9) -> np.ndarray:
    """True A (16 × 8) over the joint observation x = 4·position + outcome and the state z = 2·position + side
    (block-diagonal by position; ``tmaze_pomdp(alpha).joint_tensors().A``)."""
    return tmaze_pomdp(alpha).joint_tensors().A


def transition_matrices() -> np.ndarray:
    """B_u[z', z] (4 × 8 × 8) = P_u ⊗ I over the two reward sides (``tmaze_pomdp().joint_tensors().B``)."""
    return tmaze_pomdp().joint_tensors().B


def goal_log_probs(c: float = 2.0) -> np.ndarray:
    """log C over the 16 joint observations: log σ(1₄ ⊗ [0, 0, c, −c])."""
    return tmaze_pomdp(c=c).joint_tensors().log_c


def initial_state_log_probs() -> np.ndarray:
    """log D over the 8 states: start at O, reward side unknown (−inf elsewhere)."""
    return tmaze_pomdp().joint_tensors().log_D


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

    Examples
    --------
    >>> from pyrxaif.envs.tmaze import TMaze
    >>> env = TMaze()
    >>> obs, info = env.reset(seed=0)
    >>> obs, sorted(info)[:2]
    (0, ['outcome', 'position'])
    >>> obs, reward, terminated, truncated, info = env.step(3)        # go to the cue
    >>> info["position"], terminated
    ('Cue', False)
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
        V.check_options(options, ())
        super().reset(seed=seed)
        self._side = int(self.np_random.integers(2))
        self._pos = O
        self._t = 0
        x = self._obs()
        return x, {"position": POSITIONS[self._pos], "side": self._side, "outcome": OUTCOMES[x % 4]}

    def step(self, action):
        action = check_action(action, 4)
        if self._t >= self.moves:
            raise RuntimeError("step: episode is over; call reset()")
        self._pos = O if self._pos in (L, R) else action
        self._t += 1
        x = self._obs()
        reward = 1.0 if x % 4 == RW else 0.0
        info = {"position": POSITIONS[self._pos], "side": self._side, "outcome": OUTCOMES[x % 4]}
        return x, reward, self._t >= self.moves, False, info
