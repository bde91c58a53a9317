"""Grid-world agents: receding-horizon EFE planning by rollout message passing + exact Bayes filter.

A grid world is a ``DiscretePOMDP`` (``env.pomdp``) with the layout θ as a parameter factor; the
interactive agent is ``pyrxaif.agents.pomdp_agent.Agent`` (``GridworldAgent`` is its deprecated
predecessor with beliefs passed in and out). ``run_episodes`` simulates whole episodes in JAX from the environment's exact tensors:
``lax.while_loop`` over steps until the episode ends (plan → act → sample next state and observation →
filter), ``vmap`` over episodes (a batch runs until its last episode ends); episode i uses ``jax.random.PRNGKey(seed_i)`` for its layout θ ~ U{0..K−1} and its noise, so
the same seeds give identical results. Shapes are static: the horizon never changes, so the planner is
compiled once per (environment, method).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from pyrxaif import checks as V
from pyrxaif.engines import engine as select_engine
from pyrxaif.envs.gridworld_base import GridSpec, GridworldEnv
from pyrxaif.models.discrete_pomdp import check_action, check_observation
from pyrxaif.inference.rollout import (MethodConfig, RolloutModel, bayes_filter, check_log_belief, filter_posterior,
                                       method_config, observation_loglik, plan, plan_unchecked, sample_observation)

def _planner(eng):
    """The planning function of the engine object ``eng``: ``rollout.plan`` for JAX (its episodes run
    jitted), else the engine's ``plan_rollout`` (called on the host)."""
    return plan if eng.name == "jax" else eng.plan_rollout


class GridworldAgent:
    """Deprecated: use ``pyrxaif.agents.pomdp_agent.Agent(env.pomdp, method, horizon)`` (pymdp's loop).

    Receding-horizon planner on a grid world's ``RolloutModel`` with beliefs passed in and out:
    ``act(log_belief)`` plans (argmax q(u_0)), ``update(log_belief, action, observation)`` filters.
    Kept for the engine switch (``engine="julia"`` plans with RxInfer)."""

    def __init__(self, env: GridworldEnv | RolloutModel, method: str = "aif-mp", horizon: int = 8,
                 n_iter: int = 16, damping: float | None = None, obs_weight: float = 1.0,
                 engine: str | None = None):
        warnings.warn("GridworldAgent is deprecated: use pyrxaif.agents.pomdp_agent.Agent(env.pomdp, method, "
                      "horizon) (infer_states / infer_policies / sample_action)", DeprecationWarning, stacklevel=2)
        eng = select_engine(engine, start=True)   # started before any work, or JuliaUnavailableError says why
        self.engine = eng.name
        self._plan = _planner(eng)
        self.model = env if isinstance(env, RolloutModel) else env.unwrapped.model()
        self.config = method_config(method, damping=damping, n_iter=n_iter, obs_weight=obs_weight)
        self.horizon = int(horizon)
        self.last_plan = None

    def act(self, log_belief) -> int:
        """argmax_u q(u_0) from the log-belief (S,K) over (state, layout)."""
        self.last_plan = self._plan(self.model, log_belief, self.config, self.horizon)
        return int(np.argmax(np.asarray(self.last_plan.log_q_u0)))

    def update(self, log_belief, action: int, observation) -> jax.Array:
        """Exact Bayes filter after taking ``action`` and receiving ``observation`` (M,) ints."""
        model = self.model
        lb = check_log_belief(model, log_belief)
        u = check_action(action, model.num_actions)
        y = check_observation(observation, model.observation_sizes, name="observation")
        post, log_evidence = filter_posterior(model, jnp.asarray(lb), u, jnp.asarray(y))
        if not np.isfinite(float(log_evidence)):
            raise ValueError(f"observation: {y.tolist()} has probability zero after action {u} under this belief")
        return post


class Tables(NamedTuple):
    log_b_prior: jax.Array   # (S,K)
    terminal: jax.Array      # (S,K) bool
    success: jax.Array       # (S,K) bool
    reward: jax.Array        # (S,K)
    start: jax.Array         # ()


def tables_from_spec(spec: GridSpec) -> Tables:
    S, K = spec.log_C.shape
    b = np.full((S, K), -np.inf)
    b[spec.start] = -np.log(K)
    return Tables(jnp.asarray(b), jnp.asarray(spec.terminal), jnp.asarray(spec.success),
                  jnp.asarray(spec.reward), jnp.asarray(spec.start))


class EpisodeResult(NamedTuple):
    success: jax.Array   # (N,) bool
    reward: jax.Array    # (N,) total reward
    steps: jax.Array     # (N,) steps taken
    layout: jax.Array    # (N,) true layout
    states: jax.Array    # (N, max_steps+1) state trajectory (frozen after the end)
    actions: jax.Array   # (N, max_steps) actions (−1 after the end)


def _episode_start(model: RolloutModel, tab: Tables, max_steps: int, key):
    """Draw the layout θ and the first observation; the loop state before the first step."""
    k_layout, k_obs, k_run = jax.random.split(key, 3)
    layout = jax.random.randint(k_layout, (), 0, model.num_layouts)
    x0 = tab.start
    log_b = tab.log_b_prior + observation_loglik(model, sample_observation(model, k_obs, x0, layout))
    log_b = log_b - logsumexp(log_b)
    xs = jnp.full((max_steps + 1,), x0).astype(jnp.int32)
    us = jnp.full((max_steps,), -1, jnp.int32)
    return layout, k_run, (jnp.asarray(0), x0.astype(jnp.int32), log_b, jnp.asarray(False), jnp.asarray(0.0), xs, us)


def _advance(model: RolloutModel, tab: Tables, layout, k_run, carry, u):
    """Take action ``u``: sample the next state and observation, filter, book reward and termination."""
    t, x, log_b, done, total, xs, us = carry
    k1, k2 = jax.random.split(jax.random.fold_in(k_run, t))
    j = jax.random.categorical(k1, model.log_B[x, u, :, layout])
    x_new = model.succ[x, u, j]
    y = sample_observation(model, k2, x_new, layout)
    log_b = bayes_filter(model, log_b, u, y)
    total = total + tab.reward[x_new, layout]
    done = tab.terminal[x_new, layout]
    return t + 1, x_new, log_b, done, total, xs.at[t + 1].set(x_new), us.at[t].set(u)


def _episode_end(tab: Tables, max_steps: int, layout, carry):
    t, x, _, _, total, xs, us = carry
    xs = jnp.where(jnp.arange(max_steps + 1) > t, x, xs)          # state frozen after the end
    return (tab.success[x, layout], total, t, layout, xs, us)


def _episode(model: RolloutModel, tab: Tables, cfg: MethodConfig, horizon: int, max_steps: int, key):
    layout, k_run, init = _episode_start(model, tab, max_steps, key)

    def body(carry):
        u = jnp.argmax(plan_unchecked(model, carry[2], cfg, horizon).log_q_u0).astype(jnp.int32)
        return _advance(model, tab, layout, k_run, carry, u)

    # steps until the episode ends (a batch of vmapped episodes runs until all have ended; finished
    # episodes are frozen by the batched loop)
    final = jax.lax.while_loop(lambda c: (c[0] < max_steps) & ~c[3], body, init)
    return _episode_end(tab, max_steps, layout, final)


_episodes_jit = jax.jit(jax.vmap(_episode, in_axes=(None, None, None, None, None, 0)),
                        static_argnames=("cfg", "horizon", "max_steps"))
_episode_start_jit = jax.jit(_episode_start, static_argnames=("max_steps",))
_advance_jit = jax.jit(_advance)
_episode_end_jit = jax.jit(_episode_end, static_argnames=("max_steps",))


def _episodes_host(model: RolloutModel, tab: Tables, cfg: MethodConfig, horizon: int, max_steps: int, keys,
                   plan_fn):
    """``_episodes_jit`` with a planner that is not traceable (the Julia engine's): the same
    environment steps, random streams and filter, jitted, with the loop over steps on the host."""
    outs = []
    for key in keys:
        layout, k_run, carry = _episode_start_jit(model, tab, max_steps, key)
        while int(carry[0]) < max_steps and not bool(carry[3]):
            log_q_u0 = plan_fn(model, np.asarray(carry[2]), cfg, horizon).log_q_u0
            carry = _advance_jit(model, tab, layout, k_run, carry, jnp.asarray(np.argmax(log_q_u0), jnp.int32))
        outs.append(_episode_end_jit(tab, max_steps, layout, carry))
    return [jnp.stack(parts) for parts in zip(*outs)]


def run_episodes(env: GridworldEnv, method: str = "aif-mp", seeds=(0,), horizon: int = 8, n_iter: int = 16,
                 damping: float | None = None, obs_weight: float = 1.0, max_steps: int | None = None,
                 engine: str | None = None,
                 batch_size: int = 50, progress: bool = False) -> EpisodeResult:
    """Simulate one episode per seed (vmapped in batches of ``batch_size``); see the module docstring.

    ``engine="julia"`` plans every step with RxInfer (``pyrxaif.engines.julia.plan_rollout``) and
    runs the episodes one by one, steps on the host; environment, filter and random streams are the
    JAX engine's, so equal plans give equal episodes. ``None`` reads ``PYRXAIF_ENGINE``."""
    if not isinstance(env, GridworldEnv):
        raise TypeError(f"env: expected a grid-world environment, got {type(env).__name__}")
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer) or np.any(seeds < 0):
        raise ValueError(f"seeds: expected a non-empty 1-d sequence of non-negative integers, got {seeds!r}")
    cfg = method_config(method, damping=damping, n_iter=n_iter, obs_weight=obs_weight)
    if not (isinstance(horizon, (int, np.integer)) and horizon >= 1):
        raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
    max_steps = env.max_steps if max_steps is None else int(max_steps)
    plan_fn = _planner(select_engine(engine, start=True))
    model, tab = env.model(), tables_from_spec(env.spec_)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    batches = [keys[i:i + batch_size] for i in range(0, len(seeds), batch_size)]
    it = batches
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(batches, desc=f"{method}", unit="batch", leave=False)
    outs = []
    for kb in it:
        n = kb.shape[0]
        if n < batch_size and len(batches) > 1 and plan_fn is plan:  # pad the last batch: one compiled shape
            kb = jnp.concatenate([kb, jnp.broadcast_to(kb[-1:], (batch_size - n,) + kb.shape[1:])])
        if plan_fn is plan:
            out = _episodes_jit(model, tab, cfg, int(horizon), max_steps, kb)
        else:
            out = _episodes_host(model, tab, cfg, int(horizon), max_steps, kb, plan_fn)
        outs.append([np.asarray(o)[:n] for o in out])
    cat = [np.concatenate(parts) for parts in zip(*outs)]
    return EpisodeResult(*cat)


# Recommended planner settings per environment (horizon, iterations, observation-side strength γ).
ENV_DEFAULTS = {
    "frozenlake": {"horizon": 10, "n_iter": 8, "obs_weight": 0.3},
    "rocksample": {"horizon": 12, "n_iter": 8, "obs_weight": 0.15},
    "wumpus": {"horizon": 10, "n_iter": 16, "obs_weight": 0.2},
}


def make_env(name: str, **kwargs) -> GridworldEnv:
    """Environment by short name: 'frozenlake', 'rocksample' or 'wumpus' (kwargs go to its constructor)."""
    V.check_choice("name", name, tuple(ENV_DEFAULTS))
    if name == "frozenlake":
        from pyrxaif.envs.frozenlake import EpistemicFrozenLake as cls
    elif name == "rocksample":
        from pyrxaif.envs.rocksample import RockSample as cls
    else:
        from pyrxaif.envs.wumpus import WumpusWorld as cls
    return cls(**kwargs)
