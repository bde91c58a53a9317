"""Rollout message passing for EFE planning: BP, VBP, RM-MP, AIF-MP and Nuijten-MP as one scheme.

Graph over a horizon H: joint latent s_t = (x_t, θ) (θ is carried along the chain, so the base
graph is a tree and sum-product is exact for it), actions u_t with prior E(u), sparse dynamics
B(x_{t+1}|x_t,θ,u_t), observation factors A_k(y_{t,k}|x_t,θ) with y unobserved, preferences
C(x_t,θ), and the current filtered belief b_0(x,θ) (pymdp's letters: A observations, B transitions,
C preferences, D initial prior, E action prior; build a ``RolloutModel`` from a
``pyrxaif.models.discrete_pomdp.DiscretePOMDP`` with its ``rollout_model()``). A method is a configuration of which channels
enter the kernels (see ``pyrxaif.rules.channels``):

    method       planning r(u|x)   dynamics 1/r(x'|x,u)   observation
    bp           -                 -                      -
    vbp          yes               -                      -
    rm-mp        yes               yes                    -
    aif-mp       yes               yes                    channels r(y|x,θ)² / ρ(y|x)
    nuijten-mp   yes (undamped)    yes (undamped)         epistemic prior exp(−H[A] + KL[A‖ρ])

Each iteration runs forward-backward (``lax.scan`` over time) with the current kernels, forms the
region beliefs b_t(x,u,x',θ) ∝ α_t K_t φ_{t+1} β_{t+1}, recomputes the channels as their
conditionals and damps them, ``r ← (1−λ) r + λ r*``. Methods with the planning correction also keep
the start-state marginal fixed, q(x_0) = b_0(x_0), while θ stays a latent of the plan with the factor
b_0(θ|x_0). Clamping the joint q(x_0, θ) instead would turn the objective into E_θ log Z(θ), a
log-utility across layouts that a policy maximises by *hedging* (a mixed r(u|x) at a rock, whose
argmax samples without sensing); with θ latent the objective is log E_θ Z(θ), which is linear in the
policy at each state, so the planning channel commits to one action. The channels are conditionals
on x only (r(u|x), r(x'|x,u), ρ(y|x)): a policy cannot condition on the unobserved θ. Nuijten-MP is the alternating scheme: the
same loop with λ = 1 and the observation side replaced by an epistemic prior recomputed from the
previous sweep's beliefs (not a variational parameter). Reported per iteration: the free energy
of the channel-augmented Bethe objective at the current channels, F(r) = min_q F(q, r) = −log Z(r)
(−Σ_x b_0(x) log Σ_θ b_0(θ|x) β_0(x,θ) with the start state clamped; exact, since the graph is a
tree), and the largest change of
any channel (probability space).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from pyrxaif import checks as V
from pyrxaif.rules import channels as ch

METHODS = ("bp", "vbp", "rm-mp", "aif-mp", "nuijten-mp")

__all__ = ["METHODS", "RolloutModel", "MethodConfig", "method_config", "rollout_model", "make_model", "plan", "check_plan_inputs",
           "PlanResult", "plan_unchecked", "check_log_belief", "predict", "bayes_filter", "filter_posterior", "forward_backward", "observation_loglik",
           "sample_observation"]


class RolloutModel(NamedTuple):
    """Exact model tensors (log space). S states, U actions, J successors, K layouts, M modalities.

    succ   (S,U,J) int  successor state indices (padding entries have log_B = −inf)
    log_B  (S,U,J,K)    log B(succ[x,u,j] | x, θ, u)   (transitions)
    log_A  tuple of (M_g,S,K,Y_g)  log A_k(y | x, θ), contiguous modalities of equal size grouped
    log_C  (S,K)        log preference C(x, θ) (unnormalised)
    log_E  (U,)         log action prior E(u)
    log_A_plan          the modalities of log_A that can carry epistemic value (all but those that are
                        deterministic and layout-independent, whose observation message is exactly 1,
                        dropped one by one from their group); planning uses these, filtering uses log_A
    log_A_chan          log_A_plan with the θ axis collapsed to size 1 in the groups whose likelihood does
                        not depend on θ: their observation channels are then θ-independent as well
                        (r(y|x,θ) = ρ(y|x) at every iteration), so the planner updates them once instead
                        of once per layout; the same numbers, K times less work for such a group
    """

    succ: jax.Array
    log_B: jax.Array
    log_A: tuple
    log_C: jax.Array
    log_E: jax.Array
    log_A_plan: tuple = ()
    log_A_chan: tuple = ()

    @property
    def num_states(self) -> int:
        return self.succ.shape[0]

    @property
    def num_actions(self) -> int:
        return self.succ.shape[1]

    @property
    def num_layouts(self) -> int:
        return self.log_B.shape[3]

    @property
    def num_modalities(self) -> int:
        return sum(lA.shape[0] for lA in self.log_A)

    @property
    def observation_sizes(self) -> tuple:
        return tuple(lA.shape[3] for lA in self.log_A for _ in range(lA.shape[0]))


class MethodConfig(NamedTuple):
    """Which channels are active; static (hashable) so that it can be a jit argument."""

    name: str
    planning: bool
    dynamics: bool
    observation: str  # "none" | "channel" | "prior"
    damping: float
    n_iter: int
    obs_weight: float = 1.0  # strength γ of the observation-side corrections (log ℓ ← γ log ℓ)


_DEFAULT_DAMPING = {"bp": 1.0, "vbp": 0.5, "rm-mp": 0.5, "aif-mp": 0.5, "nuijten-mp": 1.0}


def method_config(method: str, damping: float | None = None, n_iter: int = 16,
                  obs_weight: float = 1.0) -> MethodConfig:
    """Configuration of a named method; ``damping`` λ ∈ (0, 1] (1 = no damping); ``obs_weight`` γ > 0
    scales the observation-side epistemic corrections (AIF-MP, Nuijten-MP; the paper's strength knob)."""
    if not isinstance(method, str):
        raise TypeError(f"method: expected a string, got {type(method).__name__}")
    V.check_choice("method", method, METHODS)
    if damping is None:
        damping = _DEFAULT_DAMPING[method]
    if not (isinstance(damping, (int, float)) and 0.0 < float(damping) <= 1.0):
        raise ValueError(f"damping: expected a number in (0, 1], got {damping!r}")
    if not (isinstance(n_iter, (int, np.integer)) and int(n_iter) >= 1):
        raise ValueError(f"n_iter: expected a positive integer, got {n_iter!r}")
    if not (isinstance(obs_weight, (int, float)) and float(obs_weight) > 0.0):
        raise ValueError(f"obs_weight: expected a positive number, got {obs_weight!r}")
    if method == "nuijten-mp":
        damping = 1.0
    flags = {"bp": (False, False, "none"), "vbp": (True, False, "none"),
             "rm-mp": (True, True, "none"), "aif-mp": (True, True, "channel"),
             "nuijten-mp": (True, True, "prior")}[method]
    return MethodConfig(method, *flags, float(damping), int(n_iter), float(obs_weight))


def _groups(sizes) -> list[tuple[int, int, int]]:
    """Contiguous runs of modalities with equal size: [(start, stop, Y), ...]."""
    out, start = [], 0
    for i in range(1, len(sizes) + 1):
        if i == len(sizes) or sizes[i] != sizes[start]:
            out.append((start, i, int(sizes[start])))
            start = i
    return out


def rollout_model(succ, B, A, log_C, E) -> RolloutModel:
    """Validate probability tensors and return a ``RolloutModel`` in log space.

    ``succ`` (S,U,J) ints in [0,S); ``B`` (S,U,J,K) transition probabilities over the successors
    (Σ_j B = 1); ``A`` a sequence of per-modality observation likelihoods (S,K,Y_m) or (S,1,Y_m)
    (Σ_y A = 1); ``log_C`` (S,K) or (S,1) finite log-preferences; ``E`` (U,) action prior.
    Contiguous modalities of equal size are stored as one group (binary sensors are not padded to
    the size of a position modality). Most users build this with ``DiscretePOMDP.rollout_model()``.
    """
    succ_arr = np.asarray(succ)
    if succ_arr.ndim != 3 or not np.issubdtype(succ_arr.dtype, np.integer):
        raise ValueError(f"succ: expected a 3-d integer array (S,U,J), got shape {succ_arr.shape} "
                         f"dtype {succ_arr.dtype}")
    S, U, J = succ_arr.shape
    if succ_arr.min() < 0 or succ_arr.max() >= S:
        raise ValueError(f"succ: expected indices in [0, {S}), got range [{succ_arr.min()}, {succ_arr.max()}]")
    B = V.as_float_array("B", B, shape=(S, U, J, None))
    if np.any(B < 0) or not np.allclose(B.sum(axis=2), 1.0, atol=1e-8):
        raise ValueError("B: expected non-negative transition probabilities summing to 1 over successors (axis 2)")
    K = B.shape[3]
    if isinstance(A, np.ndarray) or not isinstance(A, (list, tuple)) or len(A) == 0:
        raise TypeError("A: expected a non-empty list of per-modality arrays (S, K, Y_m)")
    mods = []
    for k, a in enumerate(A):
        a = V.as_float_array(f"A[{k}]", a, ndim=3)
        if a.shape[0] != S or a.shape[1] not in (1, K):
            raise ValueError(f"A[{k}]: expected shape ({S}, {K} or 1, Y), got {a.shape}")
        if np.any(a < 0) or not np.allclose(a.sum(axis=-1), 1.0, atol=1e-8):
            raise ValueError(f"A[{k}]: expected observation probabilities summing to 1 over the last axis")
        mods.append(np.broadcast_to(a, (S, K, a.shape[2])))
    log_C = V.as_float_array("log_C", log_C, ndim=2)
    if log_C.shape[0] != S or log_C.shape[1] not in (1, K):
        raise ValueError(f"log_C: expected shape ({S}, {K} or 1), got {log_C.shape}")
    E = V.check_probability_vectors("E", V.as_float_array("E", E, shape=(U,)))
    sizes = [m.shape[2] for m in mods]
    with np.errstate(divide="ignore"):
        groups = [np.stack(mods[a:b]) for a, b, _ in _groups(sizes)]
        log_A = tuple(jnp.asarray(np.log(g)) for g in groups)
        log_A_plan, log_A_chan = [], []
        for g in groups:
            shared = np.all(g == g[:, :, :1], axis=(1, 2, 3))                # per modality: independent of θ
            keep = ~(shared & np.all((g == 0) | (g == 1), axis=(1, 2, 3)))   # drop the trivial modalities
            if keep.any():
                lA = np.log(g[keep])
                log_A_plan.append(jnp.asarray(lA))
                log_A_chan.append(jnp.asarray(lA[:, :, :1] if shared[keep].all() else lA))
        log_A_plan, log_A_chan = tuple(log_A_plan), tuple(log_A_chan)
        return RolloutModel(jnp.asarray(succ_arr, jnp.int32), jnp.asarray(np.log(B)), log_A,
                            jnp.asarray(np.broadcast_to(log_C, (S, K)).copy()), jnp.asarray(np.log(E)),
                            log_A_plan, log_A_chan)


def make_model(succ, T, B, log_C, pi, obs_sizes=None) -> RolloutModel:
    """Deprecated: the first release's letters (``T`` transitions, ``B`` padded observations (M,S,K,Y),
    ``pi`` action prior). Use ``DiscretePOMDP(...).rollout_model()`` or :func:`rollout_model`."""
    warnings.warn("rollout.make_model(succ, T, B, log_C, pi) is deprecated: build a "
                  "pyrxaif.models.discrete_pomdp.DiscretePOMDP (A observations, B transitions) and call "
                  "its rollout_model(), or rollout.rollout_model(succ, B, A, log_C, E)",
                  DeprecationWarning, stacklevel=2)
    B = V.as_float_array("B", B, ndim=4)
    M, Y = B.shape[0], B.shape[3]
    sizes = [Y] * M if obs_sizes is None else [int(s) for s in obs_sizes]
    if len(sizes) != M or min(sizes) < 1 or max(sizes) > Y:
        raise ValueError(f"obs_sizes: expected {M} sizes in [1, {Y}], got {obs_sizes!r}")
    for k, n in enumerate(sizes):
        if np.any(B[k, ..., n:] > 0):
            raise ValueError(f"B: modality {k} has mass beyond its size obs_sizes[{k}] = {n}")
    return rollout_model(succ, T, [B[k, ..., :n] for k, n in enumerate(sizes)], log_C, pi)


class Channels(NamedTuple):
    log_r_u: jax.Array    # (H,S,A)
    log_r_x: jax.Array    # (H,S,A,J)
    log_r_y: tuple        # per group (H,M_g,S,K,Y_g)  for x_1..x_H
    log_rho: tuple        # per group (H,M_g,S,Y_g)


class PlanResult(NamedTuple):
    log_q_u0: jax.Array        # (A,) action marginal at the first step
    free_energy: jax.Array     # (n_iter,) F(r) = −log Z(r) before each channel update
    channel_change: jax.Array  # (n_iter,) max |r_new − r_old| over all channels (probabilities)
    log_region: jax.Array      # (H,S,A,J,K) final region beliefs
    log_single: jax.Array      # (H+1,S,K) final singleton beliefs of (x_t, θ)
    channels: Channels
    final_free_energy: jax.Array  # () F at the returned channels (those of the returned beliefs)


def _scatter_lse(vals, succ, S):
    """out[x', θ] = log Σ_{(x,u,j): succ=x'} exp(vals[x,u,j,θ])  (segment log-sum-exp)."""
    K = vals.shape[-1]
    flat = vals.reshape(-1, K)
    seg = succ.reshape(-1)
    mx = jax.ops.segment_max(flat, seg, num_segments=S)
    mx = jnp.where(jnp.isfinite(mx), mx, 0.0)
    s = jax.ops.segment_sum(jnp.exp(flat - mx[seg]), seg, num_segments=S)
    return jnp.log(s) + mx


def forward_backward(model: RolloutModel, log_b0, log_K, log_phi, clamp_initial: bool = False):
    """Sum-product on the chain with kernels ``log_K`` (H,S,A,J,K) and unary factors ``log_phi`` (H,S,K)
    on x_1..x_H. Returns (log_region (H,S,A,J,K), log_single (H+1,S,K), log_Z) with −log_Z the free energy.

    ``clamp_initial``: the start state is not optimised, q(x_0) = b_0(x_0) (planning correction: a plan may
    not rely on a fortunate start state); θ keeps the factor b_0(θ|x_0) and is inferred with the plan
    (clamping θ too would make the policy hedge across layouts). The initial factor becomes b_0/β̄_0 with
    β̄_0(x) = Σ_θ b_0(θ|x) β_0(x,θ), and the free energy is −Σ_x b_0(x) log β̄_0(x).
    """
    S = model.num_states
    succ = model.succ

    def bwd(lb_next, inp):
        lk, lphi = inp
        g = (lphi + lb_next)[succ]                       # (S,A,J,K)
        lb = logsumexp(lk + g, axis=(1, 2))
        c = logsumexp(lb)
        c = jnp.where(jnp.isfinite(c), c, 0.0)
        return lb - c, (lb_next, g, c)

    lb_0, (lb_next_all, g_all, cb) = jax.lax.scan(bwd, jnp.zeros_like(log_b0), (log_K, log_phi), reverse=True)
    if clamp_initial:
        # q(x_0) = b_0(x_0) is kept; θ stays a latent of the plan with the factor b_0(θ|x_0):
        # α_0(x,θ) = b_0(x,θ) / β̄_0(x),  β̄_0(x) = Σ_θ b_0(θ|x) β_0(x,θ)
        lbx = logsumexp(log_b0, axis=1, keepdims=True)                      # log b_0(x)
        okx = jnp.isfinite(lbx)
        cond = jnp.where(okx, log_b0 - jnp.where(okx, lbx, 0.0), -jnp.inf)  # log b_0(θ|x)
        lbar = logsumexp(cond + lb_0, axis=1, keepdims=True)                 # log β̄_0(x)
        ok = okx & jnp.isfinite(lbar)
        la_0 = jnp.where(ok, log_b0 - jnp.where(ok, lbar, 0.0), -jnp.inf)
        la_0 = la_0 - logsumexp(la_0)
    else:
        la_0 = log_b0

    def fwd(la, inp):
        lk, lphi = inp
        nxt = _scatter_lse(la[:, None, None, :] + lk, succ, S) + lphi
        c = logsumexp(nxt)
        return nxt - c, (la, c)

    la_H, (la_all, cs) = jax.lax.scan(fwd, la_0, (log_K, log_phi))
    if clamp_initial:
        pbx = jnp.exp(lbx[:, 0])
        log_Z = jnp.sum(jnp.where(pbx > 0, pbx * jnp.where(ok[:, 0], lbar[:, 0], 0.0), 0.0)) + jnp.sum(cb)
    else:
        log_Z = jnp.sum(cs) + logsumexp(la_H)
    # region b_t ∝ α_t K_t φ_{t+1} β_{t+1}, normalised per time step
    reg = la_all[:, :, None, None, :] + log_K + g_all
    reg = reg - logsumexp(reg, axis=(1, 2, 3, 4), keepdims=True)
    la_full = jnp.concatenate([la_all, la_H[None]], axis=0)
    lb_full = jnp.concatenate([lb_0[None], lb_next_all], axis=0)
    single = la_full + lb_full
    single = single - logsumexp(single, axis=(1, 2), keepdims=True)
    return reg, single, log_Z


def _chan_groups(model: RolloutModel) -> tuple:
    """The observation groups the planner's channels run on (``log_A_chan``; ``log_A_plan`` for a model
    built without it)."""
    return model.log_A_chan if len(model.log_A_chan) == len(model.log_A_plan) else model.log_A_plan


def _layout_marginal(log_q, lA):
    """The singleton belief q(x,θ) (S,K) as a θ-independent group sees it: q(x) (S,1) when ``lA`` has one layout."""
    return logsumexp(log_q, axis=-1, keepdims=True) if lA.shape[2] == 1 else log_q


def _init_channels(model: RolloutModel, horizon: int) -> Channels:
    S, A, J = model.succ.shape
    fb = logsumexp(model.log_B, axis=3)
    fb = fb - logsumexp(fb, axis=2, keepdims=True)
    r_y, rho = [], []
    for lA in _chan_groups(model):
        M, _, K, Y = lA.shape                                   # K = 1 for a θ-independent group
        valid_y = jnp.isfinite(logsumexp(lA, axis=2))          # (M,S,Y)
        n_y = jnp.sum(valid_y, axis=-1, keepdims=True)
        lr = jnp.where(valid_y, -jnp.log(n_y), -jnp.inf)
        rho.append(jnp.broadcast_to(lr, (horizon, M, S, Y)))
        r_y.append(jnp.broadcast_to(lr[:, :, None, :], (horizon, M, S, K, Y)))
    return Channels(jnp.full((horizon, S, A), -jnp.log(A)), jnp.broadcast_to(fb, (horizon, S, A, J)),
                    tuple(r_y), tuple(rho))


def _dynamics_channel_active(model: RolloutModel, cfg: MethodConfig) -> bool:
    """Whether the dynamics channel r(x'|x,u) can differ from 1: with one successor per (x, u) (J = 1) it
    is the conditional of a single entry, exactly log 1 = 0 at every iteration (its fallback too), so the
    planner skips it; the kernels and beliefs are the same numbers."""
    return cfg.dynamics and model.succ.shape[2] > 1


def _kernels(model: RolloutModel, cfg: MethodConfig, chans: Channels):
    dynamics = _dynamics_channel_active(model, cfg)
    k_fn = lambda ru, rx: ch.dynamics_log_kernel(model.log_B, model.log_E,
                                                  ru if cfg.planning else None,
                                                  rx if dynamics else None)
    log_K = jax.vmap(k_fn)(chans.log_r_u, chans.log_r_x)
    obs = jnp.zeros((chans.log_r_u.shape[0],) + model.log_C.shape)
    for lA, lry, lrho in zip(_chan_groups(model), chans.log_r_y, chans.log_rho):
        if cfg.observation == "channel":
            obs = obs + cfg.obs_weight * jax.vmap(lambda ry, rho: ch.observation_log_message(lA, ry, rho))(lry, lrho)
        elif cfg.observation == "prior":
            obs = obs + cfg.obs_weight * jax.vmap(lambda rho: ch.epistemic_log_prior(lA, rho))(lrho)
    return log_K, model.log_C[None] + obs


def _max_change(a, b):
    pa, pb = jnp.exp(a), jnp.exp(b)
    return jnp.max(jnp.abs(pa - pb))


def plan_unchecked(model: RolloutModel, log_b0, cfg: MethodConfig, horizon: int) -> PlanResult:
    """:func:`plan` without validation (traceable: for use inside jit/vmap; ``cfg`` and ``horizon`` static)."""
    chans0 = _init_channels(model, horizon)
    lam = cfg.damping

    def sweep(chans):
        log_K, log_phi = _kernels(model, cfg, chans)
        return forward_backward(model, log_b0, log_K, log_phi, clamp_initial=cfg.planning)

    def step(chans, _):
        reg, single, log_Z = sweep(chans)
        r_u = chans.log_r_u
        r_x = chans.log_r_x
        r_y, rho = chans.log_r_y, chans.log_rho
        change = jnp.asarray(0.0)
        if cfg.planning:
            r_u = ch.damp(chans.log_r_u, jax.vmap(ch.planning_channel)(reg), lam)
            change = jnp.maximum(change, _max_change(r_u, chans.log_r_u))
        if _dynamics_channel_active(model, cfg):
            r_x = ch.damp(chans.log_r_x, jax.vmap(lambda b: ch.dynamics_channel(b, model.log_B))(reg), lam)
            change = jnp.maximum(change, _max_change(r_x, chans.log_r_x))
        if cfg.observation != "none":
            r_y, rho = [], []
            for lA, lry, lrho in zip(_chan_groups(model), chans.log_r_y, chans.log_rho):
                q_next = _layout_marginal(single[1:], lA)
                if cfg.observation == "channel":
                    ry_new, rho_new = jax.vmap(lambda ry, rho_, q: ch.observation_channels(lA, ry, rho_, q))(
                        lry, lrho, q_next)
                else:      # Nuijten-MP: epistemic prior with the model A in place of a channel
                    ry_new = lry
                    rho_new = jax.vmap(lambda q: ch.observation_channels(lA, jnp.zeros_like(lA), jnp.zeros_like(lA[:, :, 0]), q)[1])(
                        q_next)
                r_y.append(ch.damp(lry, ry_new, lam))
                rho.append(ch.damp(lrho, rho_new, lam))
                change = jnp.maximum(change, _max_change(rho[-1], lrho))
                change = jnp.maximum(change, _max_change(r_y[-1], lry))
            r_y, rho = tuple(r_y), tuple(rho)
        return Channels(r_u, r_x, r_y, rho), (-log_Z, change)

    chans, (fe, change) = jax.lax.scan(step, chans0, None, length=cfg.n_iter)
    reg, single, log_Z = sweep(chans)
    log_q_u0 = logsumexp(reg[0], axis=(0, 2, 3))
    return PlanResult(log_q_u0 - logsumexp(log_q_u0), fe, change, reg, single, chans, -log_Z)


_plan = plan_unchecked   # the first release's private name (benchmarks/wumpus_information.py)
_plan_jit = jax.jit(plan_unchecked, static_argnames=("cfg", "horizon"))


def check_plan_inputs(model: RolloutModel, log_b0, horizon) -> np.ndarray:
    """Validate a planning call (shared by both engines); returns ``log_b0`` as a float64 (S,K) array."""
    if not isinstance(model, RolloutModel):
        raise TypeError(f"model: expected a RolloutModel, got {type(model).__name__}")
    if not (isinstance(horizon, (int, np.integer)) and int(horizon) >= 1):
        raise ValueError(f"horizon: expected a positive integer, got {horizon!r}")
    if not np.all(np.isfinite(np.asarray(model.log_C))):
        raise ValueError("model.log_C: expected finite log-preferences, found NaN or ±inf")
    return check_log_belief(model, log_b0, "log_b0")


def check_log_belief(model: RolloutModel, log_b, name: str = "log_belief") -> np.ndarray:
    """A log-belief over (x, θ): shape (S, K), entries in [-inf, inf), some finite; float64 numpy."""
    S, K = model.num_states, model.num_layouts
    b = np.asarray(log_b, dtype=np.float64)
    if b.shape != (S, K):
        raise ValueError(f"{name}: expected shape ({S}, {K}), got {b.shape}")
    if np.any(np.isnan(b)) or np.any(b == np.inf) or not np.any(np.isfinite(b)):
        raise ValueError(f"{name}: expected log-probabilities in [-inf, inf) (no NaN, no +inf) with some finite "
                         "entry")
    return b


def plan(model: RolloutModel, log_b0, method: str | MethodConfig = "aif-mp", horizon: int = 8) -> PlanResult:
    """Plan from the current log-belief ``log_b0`` (S,K) over (x, θ); returns the action marginal etc."""
    cfg = method if isinstance(method, MethodConfig) else method_config(method)
    b0 = check_plan_inputs(model, log_b0, horizon)
    return _plan_jit(model, jnp.asarray(b0), cfg, int(horizon))


def bayes_filter(model: RolloutModel, log_b, u, y) -> jax.Array:
    """Exact filter on (x, θ): b'(x',θ) ∝ Σ_x B(x'|x,θ,u) b(x,θ) Π_k A_k(y_k|x',θ) (log, normalised).

    ``y`` (M,) int observation; returns (S,K). Jit-compatible (no validation).
    """
    return filter_posterior(model, log_b, u, y)[0]


def filter_posterior(model: RolloutModel, log_b, u, y) -> tuple[jax.Array, jax.Array]:
    """:func:`bayes_filter` and the log-evidence log p(y | b, u) (−inf: ``y`` impossible under the
    prediction, and the posterior is then undefined). Jit-compatible (no validation)."""
    post = predict(model, log_b, u) + observation_loglik(model, y)
    norm = logsumexp(post)
    return post - norm, norm


def predict(model: RolloutModel, log_b, u) -> jax.Array:
    """Prediction log Σ_x B(x'|x,θ,u) b(x,θ) (S,K) (unnormalised if ``log_b`` is). Jit-compatible."""
    return _scatter_lse(log_b[:, None, :] + model.log_B[:, u], model.succ[:, u], model.num_states)


def observation_loglik(model: RolloutModel, y) -> jax.Array:
    """log Π_k A_k(y_k | x, θ) for an observation vector ``y`` (M,) -> (S,K)."""
    out, off = 0.0, 0
    for lA in model.log_A:
        m = lA.shape[0]
        yy = y[off:off + m]
        out = out + jnp.sum(jnp.take_along_axis(lA, yy[:, None, None, None], axis=3)[..., 0], axis=0)
        off += m
    return out


def sample_observation(model: RolloutModel, key, x, layout) -> jax.Array:
    """y_k ~ A_k(· | x, θ) for every modality -> (M,) ints."""
    keys = jax.random.split(key, len(model.log_A))
    return jnp.concatenate([jax.random.categorical(k, lA[:, x, layout, :], axis=-1)
                            for k, lA in zip(keys, model.log_A)])
