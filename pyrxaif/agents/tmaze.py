"""T-maze agents (LAIF): GFE agent, Bethe agent and the goal-learning agent, as users of ``Agent``.

The agent is ``pyrxaif.agents.pomdp_agent.Agent`` on the T-maze ``DiscretePOMDP`` (``env.tmaze_pomdp``)
with method "gfe" or "bethe", horizon 2 and LAIF's ten admissible two-move policies, one agent per run
(a batch in lockstep). Perception–action–learning cycle per trial (two moves):
  t=1: nothing observed yet (``infer_states(None)``: z_0 ~ D); the 10 policies are scored, one is picked,
       the agent moves and observes;
  t=2: the continuations of the executed first move are scored with the first observation clamped
       (after an arm only "back to O" is in the set), one is picked, the agent moves and observes;
  t=3: ``learn()``: the conjugate posterior of A (or of the goals) with both observations clamped
       becomes the next trial's prior.
This module holds only the trial's bookkeeping: the environment (sampled in JAX from the true A), the
random keys of each trial (the agent's scoring, choices and learning draw from them, so a run is
reproducible from its key) and the record. ``engine="julia"`` scores the policies with RxInfer on
PyRxAIF's T-maze model (``Agent(engine=...)``); the environment, the choices and the carried beliefs are
the same code.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from pyrxaif import checks as V
from pyrxaif.agents.pomdp_agent import Agent
from pyrxaif.engines import resolve_engine
from pyrxaif.envs import tmaze as env
from pyrxaif.inference.policy import OBJECTIVES, SELECTIONS
from pyrxaif.models.discrete_pomdp import DiscretePOMDP

LEARN = ("A", "goals", "none")
#: What the Julia T-maze model learns (its A is a matrix-Dirichlet variable; goals are fixed).
JULIA_LEARN = ("A",)

#: Admissible two-move policies at t=1 (positions O, L, R, Cue = 0..3): after an arm, back to O.
FIRST_POLICIES = np.array([(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (3, 3)])

#: Agent's action selection per LAIF selection rule.
_SELECTION = {"sample": "stochastic", "argmin": "deterministic"}


class Beliefs(NamedTuple):
    """What is carried from trial to trial (per run)."""

    A_conc: np.ndarray      # (R, m, n) Dirichlet statistics of A
    goal_conc: np.ndarray   # (R, 2, m) Dirichlet statistics of the goals per step


class TrialRecord(NamedTuple):
    """One trial per run (axes (run, trial, ...) from :func:`simulate`)."""

    actions: np.ndarray      # (2,)
    observations: np.ndarray  # (2,) joint observation index 4·position + outcome
    win: np.ndarray          # RW observed on either move
    cue_first: np.ndarray    # first move to the cue
    G1: np.ndarray           # (10,) policy scores at t=1 (bits)
    G2: np.ndarray           # (4,) scores per second move at t=2 (inf where not in the policy set)


def goal_prior(eps: float = 0.1, pref: float = 10.0) -> np.ndarray:
    """LAIF's goal hyper-prior per step: 1₄ ⊗ [ε, ε, 10, ε] (a preference for reward)."""
    v = np.kron(np.ones(4), [eps, eps, pref, eps])
    return np.stack([v, v])


def tmaze_agent(n_runs: int, *, objective: str = "gfe", learn: str = "A", alpha: float = 0.9, c: float = 2.0,
                selection: str = "sample", gamma: float = 10.0, iterations: int = 50, burn_in: int = 10,
                num_samples: int = 20, engine: str = "jax", eps: float = 0.1,
                model: DiscretePOMDP | None = None) -> Agent:
    """``n_runs`` LAIF T-maze agents in lockstep: ``Agent`` on ``tmaze_pomdp(alpha, c)`` over
    ``FIRST_POLICIES`` learning A from LAIF's prior (``learn="A"``), the goals (``"goals"``) or nothing.
    ``model``: another T-maze with the same moves (the bargaining buyer's), instead of ``tmaze_pomdp``;
    ``learn="A"`` needs the 8 states of LAIF's prior."""
    V.check_choice("objective", objective, OBJECTIVES)
    V.check_choice("learn", learn, LEARN)
    V.check_choice("selection", selection, SELECTIONS)
    if model is None:
        model = env.tmaze_pomdp(alpha, c)
    elif not isinstance(model, DiscretePOMDP) or model.num_actions != 4:
        raise ValueError(f"model: expected a DiscretePOMDP with the T-maze's 4 moves, got {model!r}")
    return Agent(model, method=objective, horizon=2, policies=FIRST_POLICIES,
                 action_selection=_SELECTION[selection], gamma=float(gamma), iterations=int(iterations),
                 burn_in=int(burn_in), num_samples=int(num_samples), batch_size=int(n_runs), engine=engine,
                 pA=env.observation_prior(eps) if learn == "A" else None,
                 pC=goal_prior(eps) if learn == "goals" else None)


@jax.jit
def _trial_keys(run_keys, t):
    """(8, R, 2): trial ``t``'s keys of every run (environment start, two observations, three scorings,
    two choices), split from ``fold_in(run_key, t)``."""
    return jnp.swapaxes(jax.vmap(lambda rk: jax.random.split(jax.random.fold_in(rk, t), 8))(run_keys), 0, 1)


@jax.jit
def _initial_states(keys, d0):
    """Each run's hidden start state z_0 ~ D (R,)."""
    return jax.vmap(lambda k: jax.random.categorical(k, jnp.log(d0)))(keys)


_env_steps = jax.jit(jax.vmap(env.env_step, in_axes=(0, 0, 0, 0, None)))


def _modalities(x):
    """Joint observation index (R,) → (R, 2) (position, outcome), the model's modalities."""
    x = np.asarray(x)
    return np.stack([x // 4, x % 4], axis=1)


def _next_move_scores(G, first):
    """(R, 4): per run, G of the policy (first move, u) for each second move u (inf where not in the set)."""
    G2 = np.full((len(first), 4), np.inf)
    for k, (u1, u2) in enumerate(FIRST_POLICIES):
        G2[first == u1, u2] = G[first == u1, k]
    return G2


def trial(agent: Agent, A_env, d0, keys) -> TrialRecord:
    """One trial of every run of ``agent`` (a batch, see :func:`tmaze_agent`) in the T-maze with the true
    observation matrix ``A_env`` (16, 8) and start distribution ``d0`` (8,); ``keys`` (8, R, 2) from
    ``_trial_keys``. The agent learns at the end when it has ``pA`` or ``pC``."""
    k_env, k_o1, k_o2, k_p1, k_p2, k_p3, k_s1, k_s2 = keys
    z0 = _initial_states(k_env, d0)
    pos, side = z0 // 2, z0 % 2
    agent.reset()
    agent.infer_states(None)
    agent.infer_policies(key=k_p1)
    G1 = agent.G
    a1 = agent.sample_action(key=k_s1)
    pos, x1 = _env_steps(k_o1, pos, side, jnp.asarray(a1), A_env)
    agent.infer_states(_modalities(x1))
    agent.infer_policies(key=k_p2)
    G2 = _next_move_scores(agent.G, a1)
    a2 = agent.sample_action(key=k_s2)
    _, x2 = _env_steps(k_o2, pos, side, jnp.asarray(a2), A_env)
    agent.infer_states(_modalities(x2))
    if agent.pA is not None or agent.pC is not None:
        agent.learn(key=k_p3)
    x = np.stack([np.asarray(x1), np.asarray(x2)], axis=1)
    return TrialRecord(np.stack([a1, a2], axis=1), x, np.any(x % 4 == env.RW, axis=1), a1 == env.CUE, G1, G2)


def simulate(key, n_runs: int = 100, n_trials: int = 30, *, objective: str = "gfe", learn: str = "A",
             alpha: float = 0.9, c: float = 2.0, selection: str = "sample", gamma: float = 10.0,
             iterations: int = 50, burn_in: int = 10, num_samples: int = 20, engine: str | None = None,
             progress: bool = True, desc: str | None = None):
    """R runs × N trials of the T-maze agent; returns (final Beliefs, TrialRecord with axes (run, trial)).

    ``objective="gfe"`` is the generalised agent, ``"bethe"`` the Bethe reference agent;
    ``learn="A"`` learns the observation matrix (LAIF §7.1), ``learn="goals"`` fixes A to the truth
    and learns the goal statistics per step (LAIF §7.2). Same key → identical results.

    ``engine``: ``"jax"`` (default) or ``"julia"`` (RxInfer scores the policies; ``learn="A"``
    only); ``None`` reads ``PYRXAIF_ENGINE``. The Julia engine is started (or
    ``JuliaUnavailableError`` raised) before any trial runs.
    """
    for name, val in (("n_runs", n_runs), ("n_trials", n_trials)):
        if int(val) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {val}")
    name = resolve_engine(engine)
    if name == "julia" and learn not in JULIA_LEARN:
        raise ValueError(f"learn: the Julia engine's T-maze model learns only {JULIA_LEARN}, got {learn!r}; "
                         "use engine='jax' for goal learning or fixed A")
    agent = tmaze_agent(int(n_runs), objective=objective, learn=learn, alpha=alpha, c=c, selection=selection,
                        gamma=gamma, iterations=iterations, burn_in=burn_in, num_samples=num_samples, engine=name)
    jt = agent.model.joint_tensors()
    A_env, d0 = jnp.asarray(jt.A), jnp.asarray(np.exp(jt.log_D))
    run_keys = jax.random.split(key, n_runs)
    records = []
    for t in tqdm(range(n_trials), desc=desc or f"T-maze {objective}", disable=not progress, unit="trial"):
        records.append(trial(agent, A_env, d0, _trial_keys(run_keys, t)))
    rec = TrialRecord(*(np.stack(field, axis=1) for field in zip(*records)))
    A_conc = env.observation_prior(0.1) if agent.pA is None else agent.pA
    goal_conc = goal_prior(0.1) if agent.pC is None else agent.pC
    return Beliefs(*(np.array(np.broadcast_to(a, (n_runs,) + np.shape(a)[-2:])) for a in (A_conc, goal_conc))), rec
