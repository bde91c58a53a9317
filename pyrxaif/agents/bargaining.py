"""The price of information (LAIF §7.3): a seller sets the buyer's reward share, the buyer runs the T-maze.

Buyer (primary agent): LAIF's T-maze agent (``tmaze.tmaze_agent``: ``Agent``, GFE, the ten two-move
policies) on the buyer's T-maze ``buyer_pomdp``: 16 states (position × reward side × bargain state
{CV: offer accepted, NC: not}), modalities position and outcome, A known and dependent on the offer.
Visiting the cue accepts the offer α (the buyer keeps reward probability α in the correct arm, the seller
gets the rest); not visiting it leaves the full reward (probability 1) in the correct arm. Goals as in
the T-maze. The offer is chosen inside the jitted, vmapped scan, so the buyer runs ``Agent``'s pure loop
on ``agent.tensors(A=buyer_likelihoods(α), C=buyer_preferences(c))`` with α traced.

Seller (secondary agent): a goal-observation node over its offer (clamped one-hot state, 5
offers) and its observation (accepted / rejected), with a learned 2×5 matrix (Dirichlet prior 0.1)
and goal σ((1 − α)[c, −c]) (prefers acceptance, more so for low offers). Nested cycle per trial:
the seller plans over the 5 offers (GFE, importance-sampled q(matrix)), offers one, the buyer runs
a full T-maze trial under that offer, the seller observes "accepted" iff the buyer moved to the cue,
and updates its matrix by the conjugate rule.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from pyrxaif import checks as V
from pyrxaif.agents.pomdp_agent import Agent
from pyrxaif.agents.tmaze import tmaze_agent
from pyrxaif.engines import resolve_engine
from pyrxaif.envs import tmaze as env
from pyrxaif.inference.policy import SELECTIONS, choose_policy, evaluate_policies_jit
from pyrxaif.models.discrete_pomdp import DiscretePOMDP, JointTensors
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


def buyer_likelihoods(alpha) -> list:
    """The buyer's A under offer ``alpha`` (may be traced), one array per modality over the 16 states
    z = 4·position + 2·side + bargain (bargain 0 = CV accepted, 1 = NC): position (4 × 16, exact) and
    outcome (4 × 16: CL, CR, RW, NR): O says CL/CR with ½ each, the cue tells the side, the arms pay RW
    with α (correct arm, accepted), 1 (correct, not accepted), 1 − α (other arm, accepted) or 0."""
    a = jnp.asarray(alpha)
    rw = lambda p: jnp.stack([0., 0., p, 1. - p])  # noqa: E731
    cols_O = jnp.tile(jnp.array([.5, .5, 0., 0.])[:, None], (1, 4))
    cols_L = jnp.stack([rw(a), rw(1.), rw(1. - a), rw(0.)], axis=1)
    cols_R = jnp.stack([rw(1. - a), rw(0.), rw(a), rw(1.)], axis=1)
    cols_C = jnp.array([[1., 1., 0., 0.], [0., 0., 1., 1.], [0., 0., 0., 0.], [0., 0., 0., 0.]])
    position = jnp.asarray(np.kron(np.eye(4), np.ones((1, 4))))
    return [position, jnp.concatenate([cols_O, cols_L, cols_R, cols_C], axis=1)]


def buyer_preferences(c) -> list:
    """The buyer's C (``c`` may be traced): none over positions; outcomes as the T-maze's, RW by c, NR by −c."""
    c = jnp.asarray(c)
    return [jnp.zeros(4), jnp.stack([0.0, 0.0, c, -c])]


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


def buyer_pomdp(alpha: float = 0.9, c: float = 2.0) -> DiscretePOMDP:
    """The buyer's T-maze under offer ``alpha`` as a ``DiscretePOMDP``: one 16-valued state factor (position ×
    side × bargain, flattened as in :func:`buyer_likelihoods`: the bargain state changes with the move,
    which a factor of its own could not see), 4 controls (the T-maze's moves), modalities position and
    outcome, D at O, not accepted, side unknown."""
    alpha, c = (float(V.as_float_array(name, v, ndim=0)) for name, v in (("alpha", alpha), ("c", c)))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected the buyer's reward share in [0, 1], got {alpha}")
    d0 = np.zeros(16)
    d0[[4 * env.O + 1, 4 * env.O + 3]] = 0.5
    with jax.ensure_compile_time_eval():       # concrete arrays also when called while tracing
        A, C = [np.asarray(a) for a in buyer_likelihoods(alpha)], [np.asarray(v) for v in buyer_preferences(c)]
    return DiscretePOMDP(A, [np.transpose(buyer_transitions(), (1, 2, 0))], C, [d0])


def buyer_observation_matrix(alpha: float) -> np.ndarray:
    """The buyer's joint A (16 observations 4·position + outcome × 16 states) under offer ``alpha``."""
    return buyer_pomdp(alpha).joint_tensors().A


@functools.lru_cache(maxsize=16)
def buyer_agent(s: Settings) -> Agent:
    """LAIF's T-maze agent (GFE, known A, nothing learned) on :func:`buyer_pomdp`; ``bargain_trial`` gives
    it the offer's A and the goals through ``agent.tensors``. Build it outside ``jit`` (an Agent holds arrays)."""
    return tmaze_agent(1, objective="gfe", learn="none", selection=s.selection, gamma=s.gamma,
                       iterations=s.iterations, burn_in=s.burn_in, num_samples=s.num_samples, model=buyer_pomdp())


class BargainRecord(NamedTuple):
    offer: jax.Array        # index into OFFERS
    accepted: jax.Array
    G: jax.Array            # seller's G per offer (bits)
    buyer_win: jax.Array
    buyer_actions: jax.Array


def seller_goal_log_probs(c=2.0):
    """log σ((1 − α)[c, −c]) per offer α, shape (5, 1, 2) (outcomes: accepted, rejected; ``c`` may be traced)."""
    v = (1.0 - jnp.asarray(OFFERS))[:, None] * jnp.stack([c, -c])[None, :]
    return jax.nn.log_softmax(v, axis=1)[:, None, :]


def buyer_trial(agent: Agent, tensors: JointTensors, key):
    """One T-maze trial of the buyer ``agent`` (:func:`buyer_agent`) on the world ``tensors`` (the offer's
    model, known to the buyer and the world's truth): ``Agent``'s pure loop over two moves, the world
    stepped in JAX (pure; jit/vmap-safe: the tensors depend on the traced offer). The keys are split as
    the T-maze trial's (``tmaze.trial``). Returns (actions (2,), rewarded)."""
    k_env, k_o1, k_o2, k_p1, k_p2, _, k_s1, k_s2 = jax.random.split(key, 8)
    z0 = jax.random.categorical(k_env, tensors.log_D)
    episode = agent.start_episode(tensors)
    a1, episode = agent.choose_action(k_s1, agent.score_policies(k_p1, tensors, episode, 0), episode, 0)
    z1, x1 = _world_step(k_o1, tensors, z0, a1)
    episode = agent.record_observation(episode, 0, jnp.stack([x1 // 4, x1 % 4]))
    a2, _ = agent.choose_action(k_s2, agent.score_policies(k_p2, tensors, episode, 1), episode, 1)
    _, x2 = _world_step(k_o2, tensors, z1, a2)
    return jnp.stack([a1, a2]), (x1 % 4 == env.RW) | (x2 % 4 == env.RW)


def _world_step(key, tensors: JointTensors, z, u):
    """The buyer's world (deterministic moves): the next state under move ``u`` and an observation drawn from A."""
    z_new = jnp.argmax(tensors.B[u][:, z])
    return z_new, jax.random.categorical(key, jnp.log(tensors.A[:, z_new]))


def bargain_trial(s: Settings, buyer: Agent, c, seller_conc, key):
    """One trial of the nested cycle (pure): the seller's offer, the ``buyer``'s (:func:`buyer_agent`)
    T-maze trial under it, the seller's update. Returns (seller_conc, BargainRecord)."""
    k_eval, k_sel, k_buyer = jax.random.split(key, 3)
    L = len(OFFERS)
    log_d0 = jnp.where(jnp.eye(L) > 0, 0.0, -jnp.inf)
    trans = jnp.broadcast_to(jnp.eye(L), (L, 1, L, L))
    goal = seller_goal_log_probs(c)
    r = evaluate_policies_jit(k_eval, log_d0, trans, goal, seller_conc, jnp.zeros((1, 2)), (False,),
                              **s.policy_kwargs(learn_A=True))
    i = choose_policy(k_sel, r.G, jnp.ones(L, bool), s.selection, s.gamma)
    tensors = buyer.tensors(A=buyer_likelihoods(jnp.asarray(OFFERS)[i]), C=buyer_preferences(c))
    actions, win = buyer_trial(buyer, tensors, k_buyer)
    accepted = jnp.any(actions == env.CUE)
    x = jax.nn.one_hot(jnp.where(accepted, 0, 1), 2)
    seller_conc = seller_conc + go.observed_message_A(x, jax.nn.one_hot(i, L)).concentration - 1.0
    return seller_conc, BargainRecord(i, accepted, r.G, win, actions)


def _runs_impl(s, buyer, c, conc, run_keys, start, count):
    def one_run(cc, rk):
        def body(b, t):
            return bargain_trial(s, buyer, c, b, jax.random.fold_in(rk, t))
        return jax.lax.scan(body, cc, start + jnp.arange(count))
    return jax.vmap(one_run)(conc, run_keys)


_runs = jax.jit(_runs_impl, static_argnums=(0, 1, 6))   # the buyer: one Agent per Settings


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
    buyer = buyer_agent(settings)
    conc = jnp.full((n_runs, 2, len(OFFERS)), float(eps))
    run_keys = jax.random.split(key, n_runs)
    recs, t = [], 0
    bar = tqdm(total=n_trials, desc="bargaining", disable=not progress, unit="trial")
    while t < n_trials:
        cnt = min(int(chunk), n_trials - t)
        conc, rec = _runs(settings, buyer, jnp.asarray(float(c)), conc, run_keys, t, cnt)
        jax.block_until_ready(rec)
        recs.append(rec)
        t += cnt
        bar.update(cnt)
    bar.close()
    return conc, jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=1), *recs)
