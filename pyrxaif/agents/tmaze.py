"""T-maze agents (LAIF): GFE agent, Bethe agent and the goal-learning agent.

Perception–action–learning cycle per trial (two moves):
  t=1: evaluate the 10 admissible two-move policies (nothing observed), pick one, move, observe;
  t=2: evaluate the 4 continuations of the executed first move (only "back to O" after an arm),
       with the first observation clamped, pick, move, observe;
  t=3: run the same model with both observations clamped (learning): the conjugate posterior of
       A (or of the goals) becomes the next trial's prior.
The trial is a pure function; with the JAX engine trials run under ``lax.scan`` and runs under
``vmap``. With ``engine="julia"`` the same trial function runs eagerly, trial by trial and run by
run, and each policy evaluation is RxInfer inference on PyRxAIF's T-maze model
(``pyrxaif.engines.julia.tmaze_evaluate_policies``); the environment, the policy selection and
the carried beliefs are the same code.
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
from pyrxaif.engines import engine as select_engine, resolve_engine
from pyrxaif.envs import tmaze as env
from pyrxaif.inference.policy import OBJECTIVES, SELECTIONS, choose_policy, evaluate_policies_jit

LEARN = ("A", "goals", "none")
#: What the Julia T-maze model learns (its A is a matrix-Dirichlet variable; goals are fixed).
JULIA_LEARN = ("A",)

#: Admissible two-move policies at t=1 (positions O, L, R, Cue = 0..3): after an arm, back to O.
FIRST_POLICIES = np.array([(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (3, 3)])


@dataclass(frozen=True)
class AgentConfig:
    """Static settings of an agent (hashable: used as a jit static argument)."""

    objective: str = "gfe"          # "gfe" (generalised) or "bethe"
    learn: str = "A"                # "A", "goals" or "none"
    selection: str = "sample"       # "sample" from softmax(−γG) or "argmin"
    gamma: float = 10.0             # policy precision on G in bits (LAIF: 10)
    iterations: int = 50
    burn_in: int = 10
    num_samples: int = 20
    newton_iterations: int = 20

    def validate(self):
        V.check_choice("objective", self.objective, OBJECTIVES)
        V.check_choice("learn", self.learn, LEARN)
        V.check_choice("selection", self.selection, SELECTIONS)
        if not np.isfinite(self.gamma) or self.gamma <= 0:
            raise ValueError(f"gamma: expected a positive finite precision, got {self.gamma}")
        for name in ("iterations", "num_samples", "newton_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not 0 <= self.burn_in < self.iterations:
            raise ValueError(f"burn_in: expected 0 <= burn_in < iterations, got {self.burn_in}")
        return self

    def policy_kwargs(self):
        return dict(objective=self.objective, learn_A=self.learn == "A", learn_goals=self.learn == "goals",
                    iterations=self.iterations, burn_in=self.burn_in, num_samples=self.num_samples,
                    newton_iterations=self.newton_iterations)


class World(NamedTuple):
    """Arrays of one agent–environment pair (a pytree; n states, m observations)."""

    trans: jax.Array        # (4, n, n) B_u[z', z] (agent's and environment's)
    log_d0: jax.Array       # (n,) agent's initial-state log prior
    env_d0: jax.Array       # (n,) environment's initial-state distribution
    env_A: jax.Array        # (m, n) environment's observation matrix
    A_known: jax.Array      # (m, n) agent's A when it is not learned
    log_c: jax.Array        # (2, m) fixed goal log-probabilities (when goals are not learned)


class Beliefs(NamedTuple):
    """What is carried from trial to trial."""

    A_conc: jax.Array       # (m, n) Dirichlet statistics of A
    goal_conc: jax.Array    # (2, m) Dirichlet statistics of the goals per step


class TrialRecord(NamedTuple):
    actions: jax.Array      # (2,)
    observations: jax.Array  # (2,)
    win: jax.Array          # RW observed on either move
    cue_first: jax.Array    # first move to the cue
    G1: jax.Array           # (10,) policy scores at t=1 (bits)
    G2: jax.Array           # (4,) scores of the continuations at t=2 (inf where inadmissible)
    G3: jax.Array           # free energy of the executed policy with both observations (bits)
    chosen1: jax.Array      # index into FIRST_POLICIES


def tmaze_world(alpha: float = 0.9, c: float = 2.0) -> World:
    """The agent's and the environment's arrays from the T-maze ``DiscretePOMDP`` (``env.tmaze_pomdp``)."""
    jt = env.tmaze_pomdp(alpha, c).joint_tensors()
    return World(jnp.asarray(jt.B), jnp.asarray(jt.log_D), jnp.asarray(np.exp(jt.log_D)), jnp.asarray(jt.A),
                 jnp.asarray(jt.A), jnp.asarray(np.stack([jt.log_c, jt.log_c])))


def goal_prior(eps: float = 0.1, pref: float = 10.0) -> np.ndarray:
    """LAIF's goal hyper-prior per step: 1₄ ⊗ [ε, ε, 10, ε] (a preference for reward)."""
    v = np.kron(np.ones(4), [eps, eps, pref, eps])
    return np.stack([v, v])


def initial_beliefs(world: World, learn: str = "A", eps: float = 0.1) -> Beliefs:
    m, n = world.env_A.shape
    A0 = env.observation_prior(eps) if (m, n) == (16, 8) else np.ones((m, n))
    return Beliefs(jnp.asarray(A0), jnp.asarray(goal_prior(eps) if m == 16 else np.ones((2, m))))


def _evaluate(cfg, key, world, beliefs, trans_pol, x, observed):
    P = trans_pol.shape[0]
    learn_goals = cfg.learn == "goals"
    goal = beliefs.goal_conc if learn_goals else world.log_c
    A_param = beliefs.A_conc if cfg.learn == "A" else world.A_known
    return evaluate_policies_jit(key, jnp.broadcast_to(world.log_d0, (P,) + world.log_d0.shape), trans_pol,
                                 jnp.broadcast_to(goal, (P,) + goal.shape), A_param, x, observed,
                                 **cfg.policy_kwargs())


class _Scores(NamedTuple):
    G: jax.Array
    A_posterior: jax.Array
    goal_posterior: jax.Array | None


def _engine_evaluator(eng):
    """``_evaluate`` by the engine object ``eng`` (the Julia engine: RxInfer's T-maze model, learn="A"
    only): G and q(A), through the engine protocol's ``evaluate_policies``."""
    def evaluate(cfg, key, world, beliefs, trans_pol, x, observed):
        G, A_post = eng.evaluate_policies(
            np.asarray(beliefs.A_conc), np.asarray(world.log_c), np.exp(np.asarray(world.log_d0)),
            np.asarray(trans_pol), np.asarray(x), tuple(bool(o) for o in observed), objective=cfg.objective,
            iterations=cfg.iterations, burn_in=cfg.burn_in, newton_iterations=cfg.newton_iterations, key=key)
        return _Scores(jnp.asarray(G), jnp.asarray(A_post), None)
    return evaluate


def trial(cfg: AgentConfig, world: World, beliefs: Beliefs, key, evaluate=_evaluate) -> tuple[Beliefs, TrialRecord]:
    """One trial of the perception–action–learning cycle (pure; jit/vmap/scan-safe with ``_evaluate``).

    ``evaluate(cfg, key, world, beliefs, trans_pol, x, observed)`` scores the policies: the JAX
    engine's ``_evaluate`` or another engine's (``_engine_evaluator``)."""
    m, n = world.env_A.shape
    k_env, k_o1, k_o2, k_p1, k_p2, k_p3, k_s1, k_s2 = jax.random.split(key, 8)
    z0 = jax.random.categorical(k_env, jnp.log(world.env_d0))

    def env_step(k, z, a):
        z_new = jnp.argmax(world.trans[a][:, z])
        return z_new, jax.random.categorical(k, jnp.log(world.env_A[:, z_new]))

    pols = jnp.asarray(FIRST_POLICIES)
    r1 = evaluate(cfg, k_p1, world, beliefs, world.trans[pols], jnp.zeros((2, m)), (False, False))
    i1 = choose_policy(k_s1, r1.G, jnp.ones(len(FIRST_POLICIES), bool), cfg.selection, cfg.gamma)
    a1 = pols[i1, 0]
    z1, x1 = env_step(k_o1, z0, a1)
    x1h = jax.nn.one_hot(x1, m)

    cont = jnp.stack([jnp.full(4, a1), jnp.arange(4)], axis=1)
    valid2 = jnp.where((a1 == env.L) | (a1 == env.R), jnp.arange(4) == env.O, True)
    xs = jnp.stack([x1h, jnp.zeros(m)])
    r2 = evaluate(cfg, k_p2, world, beliefs, world.trans[cont], xs, (True, False))
    a2 = choose_policy(k_s2, r2.G, valid2, cfg.selection, cfg.gamma)
    z2, x2 = env_step(k_o2, z1, a2)

    xs = jnp.stack([x1h, jax.nn.one_hot(x2, m)])
    done = jnp.stack([a1, a2])
    r3 = evaluate(cfg, k_p3, world, beliefs, world.trans[done][None], xs, (True, True))
    new = Beliefs(r3.A_posterior[0] if cfg.learn == "A" else beliefs.A_conc,
                  r3.goal_posterior[0] if cfg.learn == "goals" else beliefs.goal_conc)
    win = (x1 % 4 == env.RW) | (x2 % 4 == env.RW)
    rec = TrialRecord(done, jnp.stack([x1, x2]), win, a1 == env.CUE, r1.G,
                      jnp.where(valid2, r2.G, jnp.inf), r3.G[0], i1)
    return new, rec


def _trials_impl(cfg, world, beliefs, run_keys, start, count):
    """vmap over runs of a scan over ``count`` trials starting at trial index ``start``."""
    def one_run(b, rk):
        def body(bb, t):
            return trial(cfg, world, bb, jax.random.fold_in(rk, t))
        return jax.lax.scan(body, b, start + jnp.arange(count))
    return jax.vmap(one_run)(beliefs, run_keys)


_trials = jax.jit(_trials_impl, static_argnums=(0, 5))


def _trials_eager(cfg, world, beliefs, run_keys, start, count, evaluate):
    """``_trials`` as a host loop over runs and trials (same keys), for a scorer that is not traceable
    (the Julia engine's)."""
    finals, recs = [], []
    for r in range(run_keys.shape[0]):
        b = jax.tree_util.tree_map(lambda a, r=r: a[r], beliefs)
        per_trial = []
        for t in range(start, start + count):
            b, rec = trial(cfg, world, b, jax.random.fold_in(run_keys[r], t), evaluate=evaluate)
            per_trial.append(rec)
        finals.append(b)
        recs.append(jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_trial))
    stack = lambda *xs: jnp.stack(xs)  # noqa: E731
    return jax.tree_util.tree_map(stack, *finals), jax.tree_util.tree_map(stack, *recs)


def simulate(key, n_runs: int = 100, n_trials: int = 30, *, objective: str = "gfe", learn: str = "A",
             alpha: float = 0.9, c: float = 2.0, selection: str = "sample", gamma: float = 10.0,
             iterations: int = 50, burn_in: int = 10, num_samples: int = 20, engine: str | None = None,
             chunk: int = 5, progress: bool = True, desc: str | None = None):
    """R runs × N trials of the T-maze agent; returns (final Beliefs, TrialRecord with axes (run, trial)).

    ``objective="gfe"`` is the generalised agent, ``"bethe"`` the Bethe reference agent;
    ``learn="A"`` learns the observation matrix (LAIF §7.1), ``learn="goals"`` fixes A to the truth
    and learns the goal statistics per step (LAIF §7.2). Same key → identical results.

    ``engine``: ``"jax"`` (default) or ``"julia"`` (RxInfer scores the policies; ``learn="A"``
    only); ``None`` reads ``PYRXAIF_ENGINE``. The Julia engine is started (or
    ``JuliaUnavailableError`` raised) before any trial runs.
    """
    for name, val in (("n_runs", n_runs), ("n_trials", n_trials), ("chunk", chunk)):
        if int(val) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {val}")
    cfg = AgentConfig(objective, learn, selection, float(gamma), int(iterations), int(burn_in),
                      int(num_samples)).validate()
    name = resolve_engine(engine)
    if name == "julia" and learn not in JULIA_LEARN:
        raise ValueError(f"learn: the Julia engine's T-maze model learns only {JULIA_LEARN}, got {learn!r}; "
                         "use engine='jax' for goal learning or fixed A")
    eng = select_engine(name, start=True)
    run_trials = _trials if eng.name == "jax" else functools.partial(_trials_eager, evaluate=_engine_evaluator(eng))
    world = tmaze_world(alpha, c)
    b0 = initial_beliefs(world, learn)
    beliefs = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n_runs,) + a.shape), b0)
    run_keys = jax.random.split(key, n_runs)
    records = []
    bar = tqdm(total=n_trials, desc=desc or f"T-maze {objective}", disable=not progress, unit="trial")
    t = 0
    while t < n_trials:
        cnt = min(int(chunk), n_trials - t)
        beliefs, rec = run_trials(cfg, world, beliefs, run_keys, t, cnt)
        jax.block_until_ready(rec)
        records.append(rec)
        t += cnt
        bar.update(cnt)
    bar.close()
    rec = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=1), *records)
    return beliefs, rec
