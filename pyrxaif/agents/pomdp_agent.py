"""``Agent``: pymdp's perception–action loop on any ``DiscretePOMDP``, with pyrxaif's planners.

    agent = Agent(model, method="aif-mp", horizon=8)
    obs, _ = env.reset(seed=0)
    while True:
        qs = agent.infer_states(obs)      # per-factor posteriors (numpy, each sums to one)
        agent.infer_policies()
        u = agent.sample_action()         # joint action index (``model.action_controls`` splits it)
        obs, reward, terminated, truncated, _ = env.step(u)

State inference is the exact Bayes filter over the flattened state (x, θ): the first call after
construction or ``reset()`` uses the prior D, later calls the prediction through B under the last
sampled action; the posterior is returned as its marginal per state factor.

Methods.
* ``bp``, ``vbp``, ``rm-mp``, ``aif-mp``, ``nuijten-mp``: receding-horizon EFE planning by rollout message
  passing (``pyrxaif.inference.rollout``) from the current belief; ``infer_policies`` returns q(u_0).
* ``efe``: pymdp's policy inference: every policy of length ``horizon`` (default every action sequence, or
  ``policies=``) scored from the current belief by the closed-form expected free energy
  G(π) = Σ_τ [E_q(s_τ|π) H[A(·|s_τ)] − Σ_m H[q(o_m,τ|π)] − Σ_m E_q(o_m,τ|π) C[m]] (ambiguity + risk up to a
  constant; nats), q(π) = softmax(−γG + ln E(π)); ``infer_policies`` returns (q(π), G) and the action is
  taken from the marginal q(u_0) (receding horizon, as pymdp's ``sample_action``).
* ``gfe``, ``bethe``: LAIF's policy evaluation (``pyrxaif.inference.policy``) over a set of policies
  of length ``horizon`` (default every action sequence) covering one episode: at step τ the policies whose
  first τ actions are the executed ones are scored, with the τ observations since ``reset()`` clamped
  (the first observation is folded into the prior of z_0); ``infer_policies`` returns the scores G (bits)
  and q(π) = softmax(−γG). With ``pA`` (Dirichlet concentrations of the joint observation matrix) A is
  learned: ``learn()`` at the end of an episode replaces ``pA`` by the posterior of the executed episode
  with all its observations clamped (LAIF's rule; the next episode starts from it). With ``pC`` (Dirichlet
  concentrations of the goal per step) the goals are learned the same way (LAIF §7.2). The choice at step τ
  is drawn among the policies that continue the executed actions (in the set's order). An episode may
  start without an observation (``infer_states(None)``: the belief over z_0 is D; LAIF's T-maze observes
  first after its first move). ``engine="julia"`` scores the policies with RxInfer on the host (PyRxAIF's
  T-maze model: learned A, fixed goals); the belief, the choice and the carried ``pA`` are the same code.

Random keys. ``infer_policies``, ``sample_action`` and ``learn`` draw from the agent's stream (``seed``), or
from per-agent keys passed as ``key=`` ((N, 2) for a batch): an outer loop that owns its random numbers
(LAIF's T-maze simulation) replays them exactly.

Batches. ``batch_size=N`` runs N independent agents in lockstep: ``infer_states`` takes (N, M)
observations, returns (N, num_states[f]) marginals, ``sample_action`` returns (N,) actions. Every step
is one jitted, ``vmap``-ed call.

Pure loop. A GFE/Bethe agent with a known model also runs as pure functions of arrays, traceable inside
``jit``/``vmap``/``scan``: ``tensors(A=..., C=...)`` (the joint model, its A and C possibly traced),
``start_episode``, ``score_policies``, ``choose_action``, ``record_observation`` carry an ``Episode``
pytree and draw only from the keys they are given (the host loop's G and actions on the same keys).
An outer simulation that is jitted end to end (LAIF's bargaining buyer, whose A depends on an offer
chosen inside the scan) uses it.

Fused step. ``agent.step(obs)`` does ``infer_states`` → ``infer_policies`` → ``sample_action`` (or, with
``action=``, ``take_action``) in ONE compiled call for the EFE planners and ``efe`` (the same functions as
the three calls, the same random stream, the same results), with one device→host transfer at the end;
the GFE/Bethe agents run the three calls in turn (their policy evaluation dominates the step).
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, xlogy

from pyrxaif.inference import rollout as ro
from pyrxaif.inference.policy import OBJECTIVES, choose_policy, evaluate_policies_jit
from pyrxaif.models.discrete_pomdp import (MAX_TRANSITION_ENTRIES, DiscretePOMDP, JointTensors, check_actions,
                                           check_observation)

__all__ = ["Agent", "AgentStep", "Episode", "METHODS", "MAX_POLICIES"]

#: pymdp's closed-form expected free energy over enumerated policies.
EFE = "efe"
METHODS = ro.METHODS + (EFE,) + OBJECTIVES
SELECTIONS = ("deterministic", "stochastic")
#: Largest enumerated policy set of the GFE/Bethe agent (U^horizon).
MAX_POLICIES = 4096


class _GfeSetup(NamedTuple):
    """What the GFE/Bethe evaluation needs (arrays; a pytree)."""

    A_joint: jax.Array       # (O, n) p(o | z) (known model)
    B_joint: jax.Array       # (U, n, n)
    log_c: jax.Array         # (O,)
    log_D: jax.Array         # (n,)
    policies: jax.Array      # (P, H) joint actions


class _EfeSetup(NamedTuple):
    """What pymdp's expected free energy of a policy set needs (arrays; a pytree), over the full state
    z = x·K + θ (n values). The policies are scored on their tree of prefixes: the distinct prefixes of
    length τ + 1 (M_τ of them) are level τ, each the expansion of a level-(τ − 1) prefix by one action."""

    B: jax.Array             # (n, U·n) [z, u·n + z'] = p(z' | z, u): every action's prediction in one product
    A: jax.Array             # (n, Y) every modality's p(o_m | z) side by side (Y = Σ_m num_obs[m])
    C: jax.Array             # (Y,) every modality's log-preferences side by side
    state_cost: jax.Array    # (n,) Σ_m H[A_m(· | z)] − C_states(z): ambiguity less state preferences
    expand: tuple            # per level τ: (M_τ,) rows of the previous level's (M_{τ−1}·U) expansion
    prefix: tuple            # per level τ: (P,) each policy's prefix on level τ
    log_E: jax.Array         # (P,) log prior of each policy, Σ_τ log E(u_τ)
    first_action: jax.Array  # (P, U) one-hot of each policy's first action


class _PlanSpec(NamedTuple):
    """The static part of policy inference: a rollout planner's config (None: ``efe``), horizon, γ."""

    cfg: ro.MethodConfig | None
    horizon: int
    gamma: float


def _concentrations(name: str, value, shape: tuple, what: str, n_agents: int):
    """Checked Dirichlet concentrations ``value`` of ``shape`` broadcast to every agent (None stays None)."""
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    if value.shape != shape or not np.all(np.isfinite(value)) or np.any(value <= 0):
        raise ValueError(f"{name}: expected positive finite Dirichlet concentrations of shape {shape} ({what}), "
                         f"got shape {value.shape}")
    return jnp.broadcast_to(jnp.asarray(value), (n_agents,) + shape)


class AgentStep(NamedTuple):
    """What :meth:`Agent.step` returns: the three calls' results."""

    qs: list            # per-factor posteriors, as ``infer_states`` returns them
    policies: object    # as ``infer_policies`` returns it: q(u_0), or (q(π), G)
    action: object      # the action taken (int, or (N,) for a batch)


class Episode(NamedTuple):
    """One GFE/Bethe agent's episode so far, as arrays (a pytree): the state of the pure loop
    (:meth:`Agent.start_episode`, :meth:`Agent.score_policies`, :meth:`Agent.choose_action`,
    :meth:`Agent.record_observation`). After t steps the first t actions and observations are set."""

    log_b0: jax.Array   # (n,) log belief over z_0: D, or D conditioned on an observation made before acting
    actions: jax.Array  # (horizon,) int32 joint actions executed
    obs: jax.Array      # (horizon,) int32 joint observation (row-major over modalities) after each action


# -- jitted cores (pure; vmapped over agents) ---------------------------------------------------

def _filter_step(model: ro.RolloutModel, log_D, log_b, u, loglik, first):
    """Posterior over (x, θ) given the observation's log-likelihood ``loglik`` (S,K): the prior D at the
    first step, else the prediction of ``log_b`` through B under action ``u``. Returns (posterior, log evidence)."""
    prior = jnp.where(first, log_D, ro.predict(model, log_b, u))
    post = prior + loglik
    norm = logsumexp(post)
    return post - norm, norm


def _observe_batch_impl(model, log_D, log_b, u, y, first):
    """One filter step of every agent from its observation vector ``y`` (N, M) (the model's factorised A)."""
    loglik = jax.vmap(ro.observation_loglik, in_axes=(None, 0))(model, y)
    return jax.vmap(_filter_step, in_axes=(None, None, 0, 0, 0, None))(model, log_D, log_b, u, loglik, first)


def _joint_loglik(A_param, y_joint, learned: bool):
    """log p(o | z) (n,) of one agent's joint observation under its A (the mean of q(A) when ``learned``)."""
    A = A_param / jnp.sum(A_param, axis=0, keepdims=True) if learned else A_param
    return jnp.log(A[y_joint])


def _observe_joint_batch_impl(model, log_D, log_b, u, A_param, y_joint, first, learned):
    """One filter step of every agent from its joint observation index (GFE/Bethe: A may be learned, (N, O, n))."""
    N, S, K = log_b.shape
    loglik = jax.vmap(lambda a, y: _joint_loglik(a, y, learned).reshape(S, K))(A_param, y_joint)
    return jax.vmap(_filter_step, in_axes=(None, None, 0, 0, 0, None))(model, log_D, log_b, u, loglik, first)


# One jitted call per step and batch (the likelihood, the prediction and the update fused; the host
# transfers the posterior and the evidence once).
_observe_batch = jax.jit(_observe_batch_impl)
_observe_joint_batch = jax.jit(_observe_joint_batch_impl, static_argnames=("learned",))


def _split_batch_impl(key, n):
    """The agent's next key and ``n`` subkeys (``key, k = split(key); split(k, n)``) in one call."""
    key, k = jax.random.split(key)
    return key, jax.random.split(k, n)


_split_batch = jax.jit(_split_batch_impl, static_argnums=1)


def _choose_batch_impl(keys, q_u, method):
    """Each agent's action from its q(u_0) (EFE planners and ``efe``): "argmax" or "categorical"."""
    if method == "argmax":
        return jnp.argmax(q_u, axis=1).astype(jnp.int32)
    return jax.vmap(lambda k, q: jax.random.categorical(k, jnp.log(q)))(keys, q_u).astype(jnp.int32)


_choose_batch = jax.jit(_choose_batch_impl, static_argnames=("method",))


def _choose_continuing(key, G, width, method, gamma):
    """GFE/Bethe choice: the index of the policy picked ("argmin", or "sample" from softmax(−γG)) among
    those with finite G (the ones that continue the executed actions), taken in the set's order and padded
    to the static ``width`` with unscored ones."""
    cand = jnp.argsort(~jnp.isfinite(G), stable=True)[:width]
    g = G[cand]
    return cand[choose_policy(key, g, jnp.isfinite(g), method, gamma)]


def _choose_continuing_batch_impl(keys, G, width, method, gamma):
    return jax.vmap(lambda k, g: _choose_continuing(k, g, width, method, gamma))(keys, G)


_choose_continuing_batch = jax.jit(_choose_continuing_batch_impl, static_argnames=("width", "method", "gamma"))


def _efe_scores(setup: _EfeSetup, log_b):
    """G (P,) of every policy from one agent's log-belief ``log_b`` (S, K): pymdp's expected free energy
    (``control.compute_neg_efe_policy`` with utility and state information gain, sign flipped) on the
    joint state, G(π) = Σ_τ [q_τ·state_cost + Σ_y q(y) log q(y) − q(y) C(y)] with q_τ = q(z_τ | π) and
    q(y) = A q_τ. Each distinct prefix is predicted once, level by level: a matrix product with every
    action's transition, then the rows of the prefixes of the set (the full tree for all U^H policies)."""
    n = setup.A.shape[0]
    q = jnp.exp(log_b).reshape(1, n)
    G = jnp.zeros(setup.log_E.shape, q.dtype)
    for expand, prefix in zip(setup.expand, setup.prefix):
        q = (q @ setup.B).reshape(-1, n)[expand]                                  # (M_τ, n)
        qo = q @ setup.A
        G = G + (q @ setup.state_cost + jnp.sum(xlogy(qo, qo) - qo * setup.C, axis=1))[prefix]
    return G


def _policies_batch_impl(arrays, log_b, spec: _PlanSpec):
    """Policy inference of every agent from its log-belief (N, S, K): (q(u_0) (N, U), q(π), G) with
    q(π), G = None for the rollout planners (``arrays``: their RolloutModel; for ``efe`` an _EfeSetup)."""
    if spec.cfg is not None:
        log_q = jax.vmap(lambda b: ro.plan_unchecked(arrays, b, spec.cfg, spec.horizon).log_q_u0)(log_b)
        return jnp.exp(log_q), None, None
    G = jax.vmap(lambda b: _efe_scores(arrays, b))(log_b)
    logits = arrays.log_E - spec.gamma * G
    q_pi = jnp.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    return q_pi @ arrays.first_action, q_pi, G


_policies_batch = jax.jit(_policies_batch_impl, static_argnames=("spec",))


def _step_batch_impl(filter_model, log_D, log_b, u_prev, y, first, key, arrays, given, *, spec, selection):
    """One whole agent step of every agent, fused: the filter step (``_observe_batch_impl``), policy
    inference (``_policies_batch_impl``), and the choice (``_split_batch_impl``, ``_choose_batch_impl``)
    unless the actions are ``given`` (then the key is not used). The next step's prediction through the
    chosen action is the start of the next call's filter step, as in the three-call loop.

    Returns the new log-belief and key (they stay on the device) and, for the host, every agent's
    results packed side by side in one (N, ·) float array (``Agent._step_columns`` gives the layout): one
    device→host transfer instead of one per array."""
    log_b, log_norm = _observe_batch_impl(filter_model, log_D, log_b, u_prev, y, first)
    q_u, q_pi, G = _policies_batch_impl(arrays, log_b, spec)
    if given is None:
        key, keys = _split_batch_impl(key, log_b.shape[0])
        given = _choose_batch_impl(keys, q_u, selection)
    parts = (log_b, log_norm, q_u, q_pi, G, given)
    N = log_b.shape[0]
    packed = jnp.concatenate([p.reshape(N, -1).astype(log_b.dtype) for p in parts if p is not None], axis=1)
    return log_b, key, packed


_step_batch = jax.jit(_step_batch_impl, static_argnames=("spec", "selection"))


def _policy_set(num_actions: int, horizon: int, policies) -> np.ndarray:
    """(P, horizon) int32 policies: every action sequence when ``policies`` is None (at most MAX_POLICIES),
    else the given set, checked."""
    U, H = num_actions, horizon
    if policies is None:
        if U ** H > MAX_POLICIES:
            raise ValueError(f"horizon: {U}^{H} = {U ** H} policies exceed MAX_POLICIES = {MAX_POLICIES}; "
                             "pass a policy set (policies=...) or a shorter horizon")
        return np.array(list(itertools.product(range(U), repeat=H)), np.int32).reshape(-1, H)
    pol = np.asarray(policies)
    if (pol.ndim != 2 or pol.shape[1] != H or pol.shape[0] == 0 or not np.issubdtype(pol.dtype, np.integer)
            or np.any(pol < 0) or np.any(pol >= U)):
        raise ValueError(f"policies: expected a non-empty (P, {H}) integer array of actions in [0, {U}), "
                         f"got {pol.dtype} {pol.shape}")
    return pol.astype(np.int32)


def _prefix_tree(policies: np.ndarray, num_actions: int) -> tuple[tuple, tuple]:
    """Per level τ: the rows of the distinct prefixes of length τ + 1 in the (M_{τ−1}·U) expansion of
    level τ − 1 (parent row · U + action), and each policy's prefix row on level τ."""
    expand, prefix = [], []
    parent = np.zeros(len(policies), np.int64)            # each policy's row on the previous level
    for t in range(policies.shape[1]):
        rows, inverse = np.unique(parent * num_actions + policies[:, t], return_inverse=True)
        expand.append(rows.astype(np.int32))
        prefix.append(inverse.reshape(-1).astype(np.int32))
        parent = inverse.reshape(-1)
    return tuple(expand), tuple(prefix)


def _efe_setup(model: DiscretePOMDP, policies: np.ndarray) -> _EfeSetup:
    """The tensors of ``_efe_scores`` for ``model`` and a checked policy set."""
    S, K = model.flat_sizes
    n, U = S * K, model.num_actions
    if U * n * n > MAX_TRANSITION_ENTRIES:
        raise ValueError(f"method: 'efe' keeps the dense joint transition over (x, θ), {U}·{n}·{n} = {U * n * n} "
                         f"entries, above {MAX_TRANSITION_ENTRIES}; use a smaller model or a rollout planner")
    A = np.concatenate(model.flat_observations(), axis=-1).reshape(n, -1)     # (n, Y)
    ambiguity = -np.sum(A * _log(np.where(A > 0, A, 1.0)), axis=1)          # Σ_m H[A_m(· | z)]: entropies add up
    B = np.transpose(model.joint_transitions(), (2, 0, 1)).reshape(n, U * n)
    expand, prefix = _prefix_tree(policies, U)
    return _EfeSetup(jnp.asarray(B), jnp.asarray(A), jnp.asarray(np.concatenate(model.C)),
                     jnp.asarray(ambiguity - model.flat_state_preferences().reshape(n)),
                     tuple(map(jnp.asarray, expand)), tuple(map(jnp.asarray, prefix)),
                     jnp.asarray(np.sum(_log(model.E)[policies], axis=1)),
                     jnp.asarray(np.eye(U)[policies[:, 0]]))


def _gfe_scores(key, setup: _GfeSetup, A_param, pC, log_b0, actions, obs, tau, *, width, objective, learn_A,
                iterations, burn_in, num_samples):
    """G (P,) of every policy for one agent at step ``tau`` (static): the first ``tau`` observations clamped.

    Only the policies that continue the executed actions are evaluated (``width``, static: the most
    policies of the set that share a prefix of length ``tau``; the valid ones first, padded with
    invalid ones); the others get G = inf. Each policy's evaluation is independent of the others (the
    importance-sampling noise is per step, shared), so this is the same G for the valid policies.
    ``pC`` (H, O): the agent's goal concentrations (learned goals), or None (the model's C)."""
    P, H = setup.policies.shape
    valid = _continues(setup.policies, actions, tau)
    idx = jnp.argsort(~valid, stable=True)[:width] if width < P else jnp.arange(P)
    trans = setup.B_joint[setup.policies[idx]]                              # (width,H,n,n)
    x, observed = _clamped(setup, obs, tau, H)
    r = evaluate_policies_jit(key, jnp.broadcast_to(log_b0, (width,) + log_b0.shape), trans,
                              _goal(setup, pC, H, width), A_param, x, observed, objective=objective,
                              learn_A=learn_A, learn_goals=pC is not None, iterations=iterations, burn_in=burn_in,
                              num_samples=num_samples)
    return jnp.full(P, jnp.inf, r.G.dtype).at[idx].set(r.G), valid


def _continues(policies, actions, tau):
    """(P,) which policies continue the first ``tau`` (static) executed ``actions``."""
    return (jnp.all(policies[:, :tau] == actions[None, :tau], axis=1) if tau
            else jnp.ones(policies.shape[0], bool))


def _clamped(setup, obs, tau, T):
    """One-hot observations (T, O) of an episode's first ``T`` steps with the first ``tau`` clamped, and
    the static observed pattern."""
    x = jax.nn.one_hot(obs[:T], setup.A_joint.shape[0]) * (jnp.arange(T) < tau)[:, None]
    return x, tuple(t < tau for t in range(T))


def _goal(setup, pC, T, P):
    """The goal argument of the policy evaluation for ``P`` policies of length ``T``: the model's log C
    (fixed goals) or the agent's first ``T`` goal concentrations ``pC`` (learned goals)."""
    goal = jnp.broadcast_to(setup.log_c, (T, setup.log_c.shape[0])) if pC is None else pC[:T]
    return jnp.broadcast_to(goal, (P,) + goal.shape)


def _gfe_batch_impl(keys, setup, A_param, pC, log_b0, actions, obs, tau, **kw):
    return jax.vmap(lambda k, a, c, b, u, o: _gfe_scores(k, setup, a, c, b, u, o, tau, **kw))(
        keys, A_param, pC, log_b0, actions, obs)


_gfe_batch = jax.jit(_gfe_batch_impl, static_argnames=("tau", "width", "objective", "learn_A", "iterations",
                                                        "burn_in", "num_samples"))


def _prefix_widths(policies: np.ndarray) -> tuple:
    """Per step τ, the most policies of the set that share one prefix of length τ (the valid ones at τ)."""
    return tuple(max(np.unique(policies[:, :tau], axis=0, return_counts=True)[1]) if tau else len(policies)
                 for tau in range(policies.shape[1]))


def _learn_impl(key, setup, A_param, pC, log_b0, actions, obs, tau, *, objective, learn_A, iterations, burn_in,
                num_samples):
    """Posterior Dirichlet concentrations after an episode of ``tau`` steps, all observed: of the joint A
    (``learn_A``; else the known A comes back) and of the goals (``pC`` given; else None)."""
    trans = setup.B_joint[actions[:tau]][None]
    x, observed = _clamped(setup, obs, tau, tau)
    r = evaluate_policies_jit(key, log_b0[None], trans, _goal(setup, pC, tau, 1), A_param, x, observed,
                              objective=objective, learn_A=learn_A, learn_goals=pC is not None,
                              iterations=iterations, burn_in=burn_in, num_samples=num_samples)
    new_pC = None if pC is None else pC.at[:tau].set(r.goal_posterior[0])
    return (r.A_posterior[0] if learn_A else A_param), new_pC


def _learn_batch_impl(keys, setup, A_param, pC, log_b0, actions, obs, tau, **kw):
    return jax.vmap(lambda k, a, c, b, u, o: _learn_impl(k, setup, a, c, b, u, o, tau, **kw))(
        keys, A_param, pC, log_b0, actions, obs)


_learn_batch = jax.jit(_learn_batch_impl, static_argnames=("tau", "objective", "learn_A", "iterations", "burn_in",
                                                            "num_samples"))


class Agent:
    """Active-inference agent on a ``DiscretePOMDP`` (see the module docstring for the loop).

    Parameters
    ----------
    model : DiscretePOMDP
    method : one of ``METHODS``: "bp", "vbp", "rm-mp", "aif-mp", "nuijten-mp", "efe", "gfe", "bethe".
    horizon : planning horizon (EFE planners, ``efe``: receding) or policy length = episode length (GFE/Bethe).
    action_selection : "deterministic" (argmax q(u_0) / argmin G) or "stochastic" (sample q).
    gamma : policy precision of q(π) = softmax(−γG) (``efe``: G in nats, as pymdp's ``gamma``; GFE/Bethe:
        G in bits).
    n_iter, damping, obs_weight : planner settings (``rollout.method_config``).
    policies : (P, horizon) joint-action sequences for efe/GFE/Bethe (default: all U^horizon, at most
        MAX_POLICIES).
    pA : (O, n) Dirichlet concentrations of the joint observation matrix (GFE/Bethe only): learn A.
    pC : (horizon, O) Dirichlet concentrations of the goal over joint observations per step (GFE/Bethe
        only): learn the goals (they replace C in the scoring).
    engine : "jax" (jitted, vmapped scoring) or another engine's name or object (``pyrxaif.engines``):
        GFE/Bethe with ``pA`` and fixed goals only; the engine's ``evaluate_policies`` scores each agent's
        policies on the host.
    iterations, burn_in, num_samples : policy-evaluation settings (``policy.evaluate_policies``).
    batch_size : None (one agent) or N agents in lockstep.
    seed : seed of the agent's random stream (stochastic selection, importance sampling).

    Examples
    --------
    >>> import numpy as np
    >>> from pyrxaif.models.discrete_pomdp import DiscretePOMDP, check_actions, check_observation
    >>> from pyrxaif.agents.pomdp_agent import Agent
    >>> A = [np.array([[0.9, 0.1], [0.1, 0.9]])]
    >>> B = [np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)]      # action 0 stays, 1 swaps
    >>> agent = Agent(DiscretePOMDP(A, B, C=[np.array([0.0, 3.0])]), method="bp", horizon=2)
    >>> [np.round(q, 3) for q in agent.infer_states([0])]
    [array([0.9, 0.1])]
    >>> _ = agent.infer_policies(); agent.sample_action()
    1
    >>> step = agent.step([1])          # infer_states → infer_policies → sample_action, one compiled call
    >>> step.action, np.round(step.qs[0], 3)
    (0, array([0.012, 0.988]))
    >>> efe = Agent(DiscretePOMDP(A, B, C=[np.array([0.0, 3.0])]), method="efe", horizon=2)
    >>> np.round(efe.step([0]).policies[1], 3)         # pymdp's G of the 4 policies (nats)
    array([-1.373, -3.293, -5.213, -3.293])
    """

    def __init__(self, model: DiscretePOMDP, method: str = "aif-mp", horizon: int = 8, *,
                 action_selection: str = "deterministic", gamma: float = 10.0, n_iter: int = 16,
                 damping: float | None = None, obs_weight: float = 1.0, policies=None, pA=None, pC=None,
                 iterations: int = 50, burn_in: int = 10, num_samples: int = 20, batch_size: int | None = None,
                 seed: int = 0, engine="jax"):
        if not isinstance(model, DiscretePOMDP):
            raise TypeError(f"model: expected a DiscretePOMDP, got {type(model).__name__}")
        if not isinstance(method, str) or method not in METHODS:
            raise ValueError(f"method: unknown value {method!r}; expected one of {', '.join(map(repr, METHODS))}")
        if isinstance(horizon, bool) or not (isinstance(horizon, (int, np.integer)) and horizon >= 1):
            raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
        if action_selection not in SELECTIONS:
            raise ValueError(f"action_selection: unknown value {action_selection!r}; expected one of {SELECTIONS}")
        if not (isinstance(gamma, (int, float)) and np.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma: expected a positive finite precision, got {gamma!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size < 1):
            raise ValueError(f"batch_size: expected None or a positive integer, got {batch_size!r}")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        self.model, self.method, self.horizon = model, method, int(horizon)
        self.action_selection, self.gamma = action_selection, float(gamma)
        self.batch_size = batch_size
        self._N = 1 if batch_size is None else int(batch_size)
        self._key = jax.random.PRNGKey(int(seed))
        S, K = model.flat_sizes
        self._log_D = jnp.asarray(_log(model.initial_prior()))
        self._log_b_initial = jnp.broadcast_to(self._log_D, (self._N, S, K))    # reset()'s, made once
        self.gfe = method in OBJECTIVES
        if self.gfe:
            self._setup_gfe(policies, pA, pC, iterations, burn_in, num_samples)
            self._engine = _policy_engine(engine, self.pA is not None and self.pC is None)
        else:
            if engine != "jax":
                raise ValueError(f"engine: only the GFE/Bethe agents score policies with another engine, not "
                                 f"method {method!r}; expected 'jax'")
            if pA is not None or pC is not None:
                raise ValueError(f"pA, pC: only the GFE/Bethe agents learn A or goals, not method {method!r}")
        if method == EFE:
            self._plan_arrays = _efe_setup(model, _policy_set(model.num_actions, self.horizon, policies))
            self._spec = _PlanSpec(None, self.horizon, self.gamma)
            self._filter_model = model.rollout_model()
        elif not self.gfe:
            if policies is not None:
                raise ValueError(f"policies: only the efe/GFE/Bethe agents take a policy set, not method {method!r}")
            self.config = ro.method_config(method, damping=damping, n_iter=n_iter, obs_weight=obs_weight)
            self._filter_model = model.rollout_model()
            self._plan_arrays = self._filter_model
            self._spec = _PlanSpec(self.config, self.horizon, self.gamma)
        self.reset()

    # -- set-up -----------------------------------------------------------------------------------
    def _setup_gfe(self, policies, pA, pC, iterations, burn_in, num_samples):
        model, H = self.model, self.horizon
        pol = _policy_set(model.num_actions, H, policies)
        jt = model.joint_tensors()
        self._setup = _GfeSetup(jnp.asarray(jt.A), jnp.asarray(jt.B), jnp.asarray(jt.log_c), jnp.asarray(jt.log_D),
                                jnp.asarray(pol, jnp.int32))
        O, n = jt.A.shape
        self.pA = _concentrations("pA", pA, (O, n), "joint observation × joint state", self._N)
        self.pC = _concentrations("pC", pC, (H, O), "step × joint observation", self._N)
        for name, val in (("iterations", iterations), ("num_samples", num_samples)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{name}: expected a positive integer, got {val!r}")
        if not (isinstance(burn_in, (int, np.integer)) and 0 <= burn_in < iterations):
            raise ValueError(f"burn_in: expected 0 <= burn_in < iterations ({iterations}), got {burn_in!r}")
        self._eval_kw = dict(objective=self.method, iterations=int(iterations), burn_in=int(burn_in),
                             num_samples=int(num_samples))
        self._filter_model = model.rollout_model()
        self._obs_strides = np.cumprod([1] + model.num_obs[::-1][:-1])[::-1]
        self._A_known = jnp.broadcast_to(self._setup.A_joint, (self._N, O, n))
        self._policies_host = np.asarray(pol, np.int32)
        # GFE: evaluate only the policies that continue the executed actions (the same G, checked bit for bit).
        # Bethe: always the whole set, because its score on a symmetric fixed point (docs/models.md, known
        # limitation) depends on how XLA fuses the call, and a smaller batch fuses differently.
        self._choice_widths = _prefix_widths(self._policies_host)
        self._widths = self._choice_widths if self.method == "gfe" else (len(self._policies_host),) * H

    def _A_param(self) -> jax.Array:
        """(N, O, n): each agent's Dirichlet concentrations of A when learned, else the known A."""
        return self._A_known if self.pA is None else self.pA

    # -- the loop ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new episode: the next ``infer_states`` uses the prior D."""
        self._log_b = self._log_b_initial
        self._first = True
        self._last_action = None
        self._t = 0
        H = self.horizon
        self._actions = np.zeros((self._N, H), np.int32)
        self._obs = np.zeros((self._N, H), np.int32)
        self._log_b0 = None
        self.q_u = self.G = self.q_pi = None

    def _filter_inputs(self, obs, caller: str):
        """The checked observations (N, M) and the action to predict through (N,) of the next filter step."""
        y = check_observation(obs, self.model.num_obs, batch=self.batch_size)
        Y = y if self.batch_size is not None else y[None]
        if not self._first and self._last_action is None:
            raise RuntimeError(f"{caller}: call sample_action() before the next observation (or reset())")
        return Y, (np.zeros(self._N, np.int32) if self._first else self._last_action)

    def _check_evidence(self, Y, log_norm) -> None:
        """Refuse (before the belief changes) an observation of probability zero under the prediction."""
        if not np.all(np.isfinite(log_norm)):
            bad = np.flatnonzero(~np.isfinite(log_norm))
            raise ValueError(f"obs: observation {Y[bad[0]].tolist()} has probability zero under the model's "
                             f"prediction (agent {int(bad[0])}); the belief is left unchanged")

    def _marginals(self, b_host) -> list[np.ndarray]:
        marg = self.model.state_marginals(np.exp(b_host))
        return marg if self.batch_size is not None else [m[0] for m in marg]

    def infer_states(self, obs) -> list[np.ndarray]:
        """Filter with ``obs`` (one index per modality; (N, M) for a batch); per-factor posteriors.

        ``obs=None`` at the start of an episode: nothing is observed before the first action (the belief
        over z_0 is the prior D)."""
        if obs is None:
            return self._start_unobserved()
        Y, u = self._filter_inputs(obs, "infer_states")
        if self.gfe:
            yj = (Y * self._obs_strides).sum(axis=1)
            if not self._first and self._t >= self.horizon:
                raise RuntimeError(f"infer_states: the episode has reached the horizon ({self.horizon} "
                                   "steps) of the GFE/Bethe agent; call learn() and/or reset()")
            log_b, log_norm = _observe_joint_batch(self._filter_model, self._log_D, self._log_b, u, self._A_param(),
                                                   yj.astype(np.int32), self._first, learned=self.pA is not None)
        else:
            log_b, log_norm = _observe_batch(self._filter_model, self._log_D, self._log_b, u, Y.astype(np.int32),
                                             self._first)
        b_host, log_norm = jax.device_get((log_b, log_norm))
        self._check_evidence(Y, log_norm)
        if self.gfe and self._first:
            self._log_b0 = log_b.reshape(self._N, -1)
        elif self.gfe:
            self._obs[:, self._t] = yj
            self._t += 1
        self._log_b, self._first, self._last_action = log_b, False, None
        self.q_u = self.G = self.q_pi = None
        return self._marginals(b_host)

    def _start_unobserved(self) -> list[np.ndarray]:
        if not self._first:
            raise ValueError("obs: None (nothing observed) is accepted only at the start of an episode, "
                             "before the first action; expected one index per modality")
        log_b = jnp.broadcast_to(self._log_D, self._log_b.shape)
        if self.gfe:
            self._log_b0 = log_b.reshape(self._N, -1)
        self._log_b, self._first, self._last_action = log_b, False, None
        self.q_u = self.G = self.q_pi = None
        return self._marginals(np.asarray(log_b))

    def _keys(self, key):
        """(N, 2) per-agent keys: ``key`` ((N, 2) for a batch, (2,) for one agent) or the next of the
        agent's own stream."""
        if key is None:
            self._key, keys = _split_batch(self._key, self._N)
            return keys
        want = (self._N, 2) if self.batch_size is not None else (2,)
        k = np.asarray(key)
        if k.shape != want or k.dtype != np.uint32:
            raise ValueError(f"key: expected uint32 PRNG keys of shape {want} (jax.random.PRNGKey), got "
                             f"{k.dtype} {k.shape}")
        return jnp.asarray(k.reshape(self._N, 2))

    @property
    def belief(self) -> np.ndarray:
        """The current joint posterior over (x, θ), (S, K) (or (N, S, K))."""
        b = np.exp(np.asarray(self._log_b))
        return b if self.batch_size is not None else b[0]

    def infer_policies(self, key=None):
        """EFE planners: q(u_0) (U,) (or (N, U)); efe: (q(π), G) over the policy set (G in nats, pymdp's
        −neg_efe); GFE/Bethe: (q(π), G) over the policy set (invalid: 0, inf). ``key``: the per-agent keys
        of the scoring's importance sampling (GFE/Bethe; see ``_keys``)."""
        if self._first:
            raise RuntimeError("infer_policies: call infer_states(obs) first")
        if self.gfe:
            if self._t >= self.horizon:
                raise RuntimeError(f"infer_policies: the episode has reached the horizon ({self.horizon} steps)")
            keys = self._keys(key)
            if self._engine is None:
                G, valid = jax.device_get(_gfe_batch(keys, self._setup, self._A_param(), self.pC, self._log_b0,
                                                     self._actions, self._obs, self._t,
                                                     width=int(self._widths[self._t]), learn_A=self.pA is not None,
                                                     **self._eval_kw))
            else:
                G, valid = self._engine_scores(keys)
            G = np.where(valid, G, np.inf)
            if np.any(np.isnan(G)):
                raise FloatingPointError("infer_policies: a policy score G is NaN")
            if not np.all(np.any(np.isfinite(G), axis=1)):
                raise RuntimeError("infer_policies: no policy of the set continues the executed actions "
                                   f"{self._actions[:, :self._t].tolist()}; reset() or pass a policy set that does")
            logits = -self.gamma * (G - G.min(axis=1, keepdims=True))
            q = np.exp(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
            self.G, self.q_pi = G, q
            return (q, G) if self.batch_size is not None else (q[0], G[0])
        return self._policies_result(*jax.device_get(_policies_batch(self._plan_arrays, self._log_b,
                                                                     spec=self._spec)))

    def _policies_result(self, q_u, q_pi, G):
        """Keep policy inference's (host) results for ``sample_action``; return them as ``infer_policies`` does."""
        self.q_u, self.q_pi, self.G = q_u, q_pi, G
        out = q_u if q_pi is None else (q_pi, G)
        if self.batch_size is None:
            out = q_u[0] if q_pi is None else (q_pi[0], G[0])
        return out

    def _selection(self) -> str:
        """How ``_choose_batch_impl`` picks from q(u_0) (EFE planners, efe)."""
        return "argmax" if self.action_selection == "deterministic" else "categorical"

    def _choice_kw(self, t: int) -> dict:
        """Static arguments of ``_choose_continuing`` at step ``t`` (GFE/Bethe)."""
        return dict(width=int(self._choice_widths[t]),
                    method="argmin" if self.action_selection == "deterministic" else "sample", gamma=self.gamma)

    def sample_action(self, key=None):
        """The next action (joint index; (N,) for a batch) from the last ``infer_policies``; ``key``: the
        per-agent keys of a stochastic choice (see ``_keys``)."""
        if self.q_u is None and self.q_pi is None:
            raise RuntimeError("sample_action: call infer_policies() first")
        keys = self._keys(key)
        if self.gfe:
            idx = np.asarray(_choose_continuing_batch(keys, self.G, **self._choice_kw(self._t)))
            u = self._policies_host[idx, self._t]
            self._actions[:, self._t] = u
        else:
            u = np.asarray(_choose_batch(keys, self.q_u, method=self._selection()))
        self._last_action = u.astype(np.int32)
        self.q_u = self.q_pi = None
        return self._last_action.copy() if self.batch_size is not None else int(self._last_action[0])

    def step(self, obs, action=None) -> AgentStep:
        """``infer_states(obs)`` → ``infer_policies()`` → ``sample_action()`` (or ``take_action(action)`` when
        ``action`` is given: a replay; policy inference still runs) as one call; returns what the three
        return. For the EFE planners and ``efe`` this is ONE compiled call of the same functions (the same
        numbers and random stream as the three calls) with one device→host transfer at the end; the
        GFE/Bethe agents make the three calls in turn."""
        if self.gfe:
            qs = self.infer_states(obs)
            pol = self.infer_policies()
            if action is None:
                return AgentStep(qs, pol, self.sample_action())
            self.take_action(action)
            return AgentStep(qs, pol, int(self._last_action[0]) if self.batch_size is None
                             else self._last_action.copy())
        Y, u = self._filter_inputs(obs, "step")
        given = None if action is None else check_actions(action if self.batch_size is not None else [action],
                                                          self.model.num_actions, self._N)
        log_b, key, packed = _step_batch(
            self._filter_model, self._log_D, self._log_b, u, Y.astype(np.int32), self._first, self._key,
            self._plan_arrays, given, spec=self._spec, selection=self._selection())
        packed = np.asarray(packed)
        b_host, log_norm, q_u, *pol_G, act = (packed[:, i:j] for i, j in self._step_columns)
        self._check_evidence(Y, log_norm[:, 0])
        self._log_b, self._first, self._key = log_b, False, key
        self._last_action = act[:, 0].astype(np.int32)
        pol = self._policies_result(q_u, *(pol_G or (None, None)))
        self.q_u = self.q_pi = None
        act = self._last_action.copy() if self.batch_size is not None else int(self._last_action[0])
        return AgentStep(self._marginals(b_host.reshape(self._log_b.shape)), pol, act)

    @functools.cached_property
    def _step_columns(self) -> list[tuple[int, int]]:
        """Column ranges of ``_step_batch``'s packed results: log-belief, log-evidence, q(u_0), [q(π), G,]
        action."""
        S, K = self.model.flat_sizes
        P = [] if self._spec.cfg is not None else [self._plan_arrays.log_E.shape[0]] * 2
        ends = np.cumsum([S * K, 1, self.model.num_actions] + P + [1]).tolist()
        return list(zip([0] + ends[:-1], ends))

    def take_action(self, action) -> None:
        """Record that ``action`` (joint index; (N,) for a batch) was taken instead of a sampled one (replays,
        external control); the next ``infer_states`` predicts through it."""
        if self._first:
            raise RuntimeError("take_action: call infer_states(obs) first")
        u = check_actions(action if self.batch_size is not None else [action], self.model.num_actions, self._N)
        if self.gfe:
            if self._t >= self.horizon:
                raise RuntimeError(f"take_action: the episode has reached the horizon ({self.horizon} steps)")
            self._actions[:, self._t] = u
        self._last_action = u
        self.q_u = self.q_pi = None

    def learn(self, key=None):
        """GFE/Bethe with ``pA`` and/or ``pC``: q(A) and q(goals) after the episode so far (all observations
        clamped) become ``pA`` and ``pC`` (the goals of the steps observed). Returns the new ``pA`` (the new
        ``pC`` when only the goals are learned); ``key``: the per-agent keys (see ``_keys``)."""
        if not self.gfe or (self.pA is None and self.pC is None):
            raise RuntimeError("learn: only a GFE/Bethe agent constructed with pA or pC learns A or goals")
        if self._t == 0:
            raise RuntimeError("learn: no step of this episode has been observed yet")
        keys = self._keys(key)
        if self._engine is None:
            pA, self.pC = _learn_batch(keys, self._setup, self._A_param(), self.pC, self._log_b0, self._actions,
                                       self._obs, self._t, learn_A=self.pA is not None, **self._eval_kw)
        else:
            pA = self._engine_learn(keys)
        self.pA = None if self.pA is None else pA
        new = self.pA if self.pA is not None else self.pC
        return np.asarray(new) if self.batch_size is not None else np.asarray(new[0])

    # -- the pure loop (GFE/Bethe, known model; traceable) ------------------------------------------
    def tensors(self, A=None, C=None) -> JointTensors:
        """The joint model that the GFE/Bethe policy scoring reads, as JAX arrays (a pytree): the agent's
        model, or that model with its observation likelihoods ``A`` and/or log-preferences ``C`` replaced
        (one array per modality of the model's shapes, pymdp's letters; see
        ``DiscretePOMDP.joint_likelihood``). ``A`` and ``C`` may be traced: an agent whose observation model
        or goals depend on a value computed inside ``jit``/``vmap``/``scan`` (a bargaining offer).

        >>> import jax, numpy as np
        >>> from pyrxaif.models.discrete_pomdp import DiscretePOMDP
        >>> from pyrxaif.agents.pomdp_agent import Agent
        >>> B = [np.stack([np.eye(2), np.eye(2)[::-1]], axis=-1)]
        >>> model = DiscretePOMDP([np.array([[0.9, 0.2], [0.1, 0.8]])], B, C=[np.array([0.0, 2.0])])
        >>> agent = Agent(model, method="gfe", horizon=1, iterations=10, burn_in=2)
        >>> noisy = lambda p: [jax.numpy.stack([jax.numpy.stack([p, 1 - p]), jax.numpy.stack([1 - p, p])])]
        >>> jax.jit(lambda p: agent.tensors(A=noisy(p)).A)(0.75).tolist()
        [[0.75, 0.25], [0.25, 0.75]]
        """
        self._require_pure("tensors")
        s = self._setup
        return JointTensors(s.A_joint if A is None else jnp.asarray(self.model.joint_likelihood(A)), s.B_joint,
                            s.log_c if C is None else jnp.asarray(self.model.joint_log_goal(C)), s.log_D)

    def start_episode(self, tensors: JointTensors, obs=None) -> Episode:
        """Pure counterpart of ``reset()`` + ``infer_states(obs)``: the episode before the first action.
        ``obs``: an observation made before acting (one index per modality; may be traced), or None
        (nothing observed: the belief over z_0 is D).

        The pure loop runs one agent with a known model inside ``jit``/``vmap``/``scan`` (batch it with
        ``vmap``), drawing only from the keys it is given; on the same model and keys it gives the host
        loop's G and actions (``tests/test_pomdp_agent.py``). One episode of two steps::

            ep = agent.start_episode(tensors)
            G = agent.score_policies(k_score, tensors, ep, 0)
            u, ep = agent.choose_action(k_choice, G, ep, 0)
            ...                                       # the environment moves and emits obs
            ep = agent.record_observation(ep, 0, obs)
            G = agent.score_policies(k_score2, tensors, ep, 1)
            ...
        """
        self._require_pure("start_episode")
        log_b0 = tensors.log_D
        if obs is not None:
            post = log_b0 + jnp.log(tensors.A[self._joint_observation(obs)])
            log_b0 = post - logsumexp(post)
        zeros = jnp.zeros(self.horizon, jnp.int32)
        return Episode(log_b0, zeros, zeros)

    def score_policies(self, key, tensors: JointTensors, episode: Episode, t: int):
        """Pure counterpart of ``infer_policies(key=key)`` at step ``t`` (a Python int: the actions taken so
        far): G (P,) in bits of every policy of the set under ``tensors``, with the first ``t`` observations
        of ``episode`` clamped; +inf for the policies that do not continue its first ``t`` actions."""
        self._require_pure("score_policies")
        self._check_step(t)
        setup = _GfeSetup(*tensors, self._setup.policies)
        G, valid = _gfe_scores(key, setup, tensors.A, None, episode.log_b0, episode.actions, episode.obs, t,
                               width=int(self._widths[t]), learn_A=False, **self._eval_kw)
        return jnp.where(valid, G, jnp.inf)

    def choose_action(self, key, G, episode: Episode, t: int):
        """Pure counterpart of ``sample_action(key=key)`` at step ``t``: the joint action (int32) of the policy
        picked among those with finite ``G`` (from :meth:`score_policies`), and ``episode`` with it recorded."""
        self._require_pure("choose_action")
        self._check_step(t)
        u = self._setup.policies[_choose_continuing(key, G, **self._choice_kw(t)), t]
        return u, episode._replace(actions=episode.actions.at[t].set(u))

    def record_observation(self, episode: Episode, t: int, obs) -> Episode:
        """Pure counterpart of ``infer_states(obs)`` after the action of step ``t``: ``episode`` with the
        observation (one index per modality; may be traced) recorded."""
        self._require_pure("record_observation")
        self._check_step(t)
        return episode._replace(obs=episode.obs.at[t].set(self._joint_observation(obs)))

    def _require_pure(self, caller: str) -> None:
        if not self.gfe or self._engine is not None or self.pA is not None or self.pC is not None:
            raise RuntimeError(f"{caller}: the pure loop is a GFE/Bethe agent's with a known model on the JAX "
                               "engine (no pA, no pC; those agents learn on the host loop)")

    def _check_step(self, t) -> None:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < self.horizon:
            raise ValueError(f"t: expected a Python integer step in [0, {self.horizon}), got {t!r}")

    def _joint_observation(self, obs):
        """The joint observation index (row-major over modalities) of ``obs`` (M,) (may be traced)."""
        obs = jnp.asarray(obs)
        if obs.shape != (self.model.num_modalities,) or not jnp.issubdtype(obs.dtype, jnp.integer):
            raise ValueError(f"obs: expected {self.model.num_modalities} integer indices (one per modality), "
                             f"got {obs.dtype} {obs.shape}")
        return jnp.sum(obs * jnp.asarray(self._obs_strides, obs.dtype)).astype(jnp.int32)

    # -- another engine's policy scoring (host loop over agents) ------------------------------------
    def _engine_call(self, n, key, trans, tau, T):
        """Agent ``n``'s policies ``trans`` (P, T, n, n) scored by the engine with its first ``tau`` of ``T``
        observations clamped: (G (P,), q(A) (P, O, n))."""
        x, observed = _clamped(self._setup, jnp.asarray(self._obs[n]), tau, T)
        log_c = np.broadcast_to(np.asarray(self._setup.log_c), (T, self._setup.log_c.shape[0]))
        return self._engine.evaluate_policies(
            np.asarray(self.pA[n]), log_c, np.exp(np.asarray(self._log_b0[n])), trans, np.asarray(x), observed,
            objective=self.method, iterations=self._eval_kw["iterations"], burn_in=self._eval_kw["burn_in"],
            key=key)

    def _engine_scores(self, keys):
        """``_gfe_batch`` by the engine: each agent's continuing policies (the same widths) scored on the host."""
        P, H = self._policies_host.shape
        B = np.asarray(self._setup.B_joint)
        G, valid = np.full((self._N, P), np.inf), np.zeros((self._N, P), bool)
        for n in range(self._N):
            valid[n] = np.asarray(_continues(self._policies_host, self._actions[n], self._t))
            idx = np.argsort(~valid[n], kind="stable")[:int(self._widths[self._t])]
            G[n, idx] = self._engine_call(n, keys[n], B[self._policies_host[idx]], self._t, H)[0]
        return G, valid

    def _engine_learn(self, keys):
        """``_learn_batch`` by the engine: q(A) of each agent's executed episode."""
        B = np.asarray(self._setup.B_joint)
        return jnp.stack([jnp.asarray(self._engine_call(n, keys[n], B[self._actions[n, :self._t]][None], self._t,
                                                        self._t)[1][0]) for n in range(self._N)])


def _policy_engine(engine, learns_A_only: bool):
    """None for the JAX engine (jitted scoring), else the started engine object scoring on the host."""
    if engine == "jax":
        return None
    if not isinstance(engine, str) and not callable(getattr(engine, "evaluate_policies", None)):
        raise TypeError(f"engine: expected an engine name or an engine object with evaluate_policies, got "
                        f"{type(engine).__name__}")
    if not learns_A_only:
        name = engine if isinstance(engine, str) else engine.name
        raise ValueError(f"engine: the {name!r} engine scores policies with a learned A and fixed goals "
                         "only; pass pA (and no pC) or use engine='jax'")
    if isinstance(engine, str):
        from pyrxaif.engines import engine as select_engine  # noqa: PLC0415

        engine = select_engine(engine, start=True)   # started now, or JuliaUnavailableError says why
    return engine


def _log(p):
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(p, dtype=np.float64))
