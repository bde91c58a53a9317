"""The price of information (LAIF §7.3): a seller sets the buyer's reward share, the buyer runs the T-maze.

Buyer (primary agent): the T-maze agent with a known, offer-dependent A over 16 states
(position × reward side × bargain state {CV: offer accepted, NC: not}). Visiting the cue accepts the
offer α (the buyer keeps reward probability α in the correct arm, the seller gets the rest); not
visiting it leaves the full reward (probability 1) in the correct arm. Goals as in the T-maze.

Seller (secondary agent): a goal-observation node over its offer (clamped one-hot state, 5
offers) and its observation (accepted / rejected), with a learned 2×5 matrix (Dirichlet prior 0.1)
and goal σ((1 − α)[c, −c]) (prefers acceptance, more so for low offers). Nested cycle per trial:
the seller plans over the 5 offers (GFE, importance-sampled q(matrix)), offers one, the buyer runs
a full T-maze trial under that offer, the seller observes "accepted" iff the buyer moved to the cue,
and updates its matrix by the conjugate rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from pyrxaif import checks as V
from pyrxaif.agents.tmaze import FIRST_POLICIES
from pyrxaif.engines import resolve_engine
from pyrxaif.envs import tmaze as env
from pyrxaif.inference.policy import SELECTIONS, choose_policy, evaluate_policies_jit
from pyrxaif.rules import goal_observation as go

OFFERS = np.array([0.8, 0.85, 0.9, 0.95, 1.0])


@dataclass(frozen=True)
class Settings:
    """Policy selection and evaluation settings of both agents (hashable: a jit static argument)."""

    selection: str = "sample"       # "sample" from softmax(−γG) or "argmin"
    gamma: float = 10.0             # policy precision on G in bits
    iterations: int = 50
    burn_in: int = 10
    num_samples: int = 20

    def validate(self):
        V.check_choice("selection", self.selection, SELECTIONS)
        if not np.isfinite(self.gamma) or self.gamma <= 0:
            raise ValueError(f"gamma: expected a positive finite precision, got {self.gamma}")
        for name in ("iterations", "num_samples"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not 0 <= self.burn_in < self.iterations:
            raise ValueError(f"burn_in: expected 0 <= burn_in < iterations, got {self.burn_in}")
        return self

    def policy_kwargs(self, learn_A: bool):
        return dict(objective="gfe", learn_A=learn_A, iterations=self.iterations, burn_in=self.burn_in,
                    num_samples=self.num_samples)


class World(NamedTuple):
    """The buyer's T-maze under one offer (a pytree; n states, m observations; the buyer knows A)."""

    trans: jax.Array        # (4, n, n) B_u[z', z]
    log_d0: jax.Array       # (n,) initial-state log prior (also the environment's)
    A: jax.Array            # (m, n) observation matrix (the buyer's and the environment's)
    log_c: jax.Array        # (2, m) goal log-probabilities per step


def buyer_observation_matrix(alpha):
    """Buyer's A (16 × 16); state = 4·position + 2·side + bargain (0 = CV accepted, 1 = NC)."""
    a = alpha
    blocks = []
    cols_O = jnp.tile(jnp.array([.5, .5, 0., 0.])[:, None], (1, 4))
    rw = lambda p: jnp.array([0., 0., p, 1. - p])  # noqa: E731
    cols_L = jnp.stack([rw(a), rw(1.), rw(1. - a), rw(0.)], axis=1)
    cols_R = jnp.stack([rw(1. - a), rw(0.), rw(a), rw(1.)], axis=1)
    cols_C = jnp.array([[1., 1., 0., 0.], [0., 0., 1., 1.], [0., 0., 0., 0.], [0., 0., 0., 0.]])
    blocks = [cols_O, cols_L, cols_R, cols_C]
    A = jnp.zeros((16, 16))
    for p, b in enumerate(blocks):
        A = A.at[4 * p:4 * p + 4, 4 * p:4 * p + 4].set(b)
    return A


def buyer_transitions() -> np.ndarray:
    """B_u (4 × 16 × 16): O/L/R moves keep side and bargain; moving to the cue sets bargain to CV."""
    P = env.position_transitions()
    B = np.stack([np.kron(P[u], np.eye(4)) for u in range(4)])
    B[env.CUE] = 0.0
    for frm in range(16):
        pos, side = frm // 4, (frm % 4) // 2
        to = 4 * env.O + frm % 4 if pos in (env.L, env.R) else 4 * env.CUE + 2 * side + 0
        B[env.CUE, to, frm] = 1.0
    return B


def buyer_world(alpha, c: float = 2.0) -> World:
    A = buyer_observation_matrix(alpha)
    d0 = np.zeros(16)
    d0[[1, 3]] = 0.5       # at O, not accepted, side unknown
    with np.errstate(divide="ignore"):
        log_d0 = np.log(d0)
    log_c = env.goal_log_probs(c)
    return World(jnp.asarray(buyer_transitions()), jnp.asarray(log_d0), A, jnp.asarray(np.stack([log_c, log_c])))


class BargainRecord(NamedTuple):
    offer: jax.Array        # index into OFFERS
    accepted: jax.Array
    G: jax.Array            # seller's G per offer (bits)
    buyer_win: jax.Array
    buyer_actions: jax.Array


def seller_goal_log_probs(c: float = 2.0) -> np.ndarray:
    """log σ((1 − α)[c, −c]) per offer α, shape (5, 1, 2) (outcomes: accepted, rejected)."""
    v = (1.0 - OFFERS)[:, None] * np.array([c, -c])[None, :]
    return (v - np.log(np.sum(np.exp(v), axis=1, keepdims=True)))[:, None, :]


def buyer_trial(s: Settings, world: World, key):
    """The buyer's two moves (pure; jit/vmap-safe: the world is traced, it depends on the offer): LAIF's
    ten policies scored with nothing observed, one picked; the continuations of the first move scored
    with its observation clamped, one picked. Returns (actions (2,), rewarded). Fixed A and goals, so
    nothing is learned; the keys are split as the T-maze trial's (``tmaze._trial_keys``)."""
    m = world.A.shape[0]
    k_env, k_o1, k_o2, k_p1, k_p2, _, k_s1, k_s2 = jax.random.split(key, 8)
    z0 = jax.random.categorical(k_env, world.log_d0)

    def env_step(k, z, a):
        z_new = jnp.argmax(world.trans[a][:, z])
        return z_new, jax.random.categorical(k, jnp.log(world.A[:, z_new]))

    def scores(k, trans_pol, x, observed):
        P = trans_pol.shape[0]
        return evaluate_policies_jit(k, jnp.broadcast_to(world.log_d0, (P,) + world.log_d0.shape), trans_pol,
                                     jnp.broadcast_to(world.log_c, (P,) + world.log_c.shape), world.A, x, observed,
                                     **s.policy_kwargs(learn_A=False)).G

    pols = jnp.asarray(FIRST_POLICIES)
    G1 = scores(k_p1, world.trans[pols], jnp.zeros((2, m)), (False, False))
    a1 = pols[choose_policy(k_s1, G1, jnp.ones(len(FIRST_POLICIES), bool), s.selection, s.gamma), 0]
    z1, x1 = env_step(k_o1, z0, a1)
    x1h = jax.nn.one_hot(x1, m)
    cont = jnp.stack([jnp.full(4, a1), jnp.arange(4)], axis=1)
    valid2 = jnp.where((a1 == env.L) | (a1 == env.R), jnp.arange(4) == env.O, True)
    G2 = scores(k_p2, world.trans[cont], jnp.stack([x1h, jnp.zeros(m)]), (True, False))
    a2 = choose_policy(k_s2, G2, valid2, s.selection, s.gamma)
    _, x2 = env_step(k_o2, z1, a2)
    return jnp.stack([a1, a2]), (x1 % 4 == env.RW) | (x2 % 4 == env.RW)


def bargain_trial(s: Settings, c, seller_conc, key):
    k_eval, k_sel, k_buyer = jax.random.split(key, 3)
    L = len(OFFERS)
    log_d0 = jnp.where(jnp.eye(L) > 0, 0.0, -jnp.inf)
    trans = jnp.broadcast_to(jnp.eye(L), (L, 1, L, L))
    goal = _seller_goal(c)
    r = evaluate_policies_jit(k_eval, log_d0, trans, goal, seller_conc, jnp.zeros((1, 2)), (False,),
                              **s.policy_kwargs(learn_A=True))
    i = choose_policy(k_sel, r.G, jnp.ones(L, bool), s.selection, s.gamma)
    actions, win = buyer_trial(s, buyer_world_jax(jnp.asarray(OFFERS)[i], c), k_buyer)
    accepted = jnp.any(actions == env.CUE)
    x = jax.nn.one_hot(jnp.where(accepted, 0, 1), 2)
    seller_conc = seller_conc + go.observed_message_A(x, jax.nn.one_hot(i, L)).concentration - 1.0
    return seller_conc, BargainRecord(i, accepted, r.G, win, actions)


def _seller_goal(c):
    v = (1.0 - jnp.asarray(OFFERS))[:, None] * jnp.stack([c, -c])[None, :]
    return jax.nn.log_softmax(v, axis=1)[:, None, :]


def buyer_world_jax(alpha, c):
    """:func:`buyer_world` with traced α and c (inside jit)."""
    A = buyer_observation_matrix(alpha)
    d0 = jnp.zeros(16).at[jnp.array([1, 3])].set(0.5)
    v = jnp.kron(jnp.ones(4), jnp.stack([0.0, 0.0, c, -c]))
    log_c = jax.nn.log_softmax(v)
    return World(jnp.asarray(buyer_transitions()), jnp.log(d0), A, jnp.stack([log_c, log_c]))


def _runs_impl(s, c, conc, run_keys, start, count):
    def one_run(cc, rk):
        def body(b, t):
            return bargain_trial(s, c, b, jax.random.fold_in(rk, t))
        return jax.lax.scan(body, cc, start + jnp.arange(count))
    return jax.vmap(one_run)(conc, run_keys)


_runs = jax.jit(_runs_impl, static_argnums=(0, 5))


def simulate_bargaining(key, n_runs: int = 1, n_trials: int = 30, *, c: float = 2.0, eps: float = 0.1,
                        selection: str = "sample", gamma: float = 10.0, iterations: int = 50,
                        burn_in: int = 10, num_samples: int = 20, engine: str | None = "jax", chunk: int = 5,
                        progress: bool = True):
    """Nested seller–buyer cycle; returns (seller's final 2×5 statistics per run, BargainRecord (run, trial))."""
    if resolve_engine(engine) != "jax":
        raise ValueError("engine: the bargaining setting runs on the JAX engine only (the buyer's fixed-A "
                         f"model has no Julia counterpart), got {engine!r}")
    for name, val in (("n_runs", n_runs), ("n_trials", n_trials), ("chunk", chunk)):
        if int(val) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {val}")
    V.check_positive("eps", eps)
    settings = Settings(selection, float(gamma), int(iterations), int(burn_in), int(num_samples)).validate()
    conc = jnp.full((n_runs, 2, len(OFFERS)), float(eps))
    run_keys = jax.random.split(key, n_runs)
    recs, t = [], 0
    bar = tqdm(total=n_trials, desc="bargaining", disable=not progress, unit="trial")
    while t < n_trials:
        cnt = min(int(chunk), n_trials - t)
        conc, rec = _runs(settings, jnp.asarray(float(c)), conc, run_keys, t, cnt)
        jax.block_until_ready(rec)
        recs.append(rec)
        t += cnt
        bar.update(cnt)
    bar.close()
    return conc, jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=1), *recs)
