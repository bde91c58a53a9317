"""Variational EM for a VAE whose latents follow a linear-Gaussian dynamical system (LDS).

Generative model per sequence: z_1 ~ N(m_1, P_1), z_{t+1} ~ N(A z_t + B u_t, W⁻¹) with q([A B]) q(W)
(Gaussian and Wishart, the VB core :mod:`pyrxaif.inference.lgssm`); the VAE encoder supplies a
Gaussian message N(μ_t, diag σ²_t) on each z_t and the decoder renders z_t.

One EM iteration (see :func:`pyrxaif.agents.jopa.train`):
  E (LDS): ``lgssm.smooth`` on the expected LDS with the encoder messages → q(z_t), q(z_t, z_{t+1})
           and the *cavity* messages α_t β_t = q(z_t) / N(μ_t, σ²_t) (the LDS belief excluding the
           encoder's own message, i.e. the VAE's latent prior);
  M (LDS): ``lgssm.vb_em`` (covariance-corrected VB updates of q([A B]) and q(W) from the statistics
           pooled over all sequences) and the initial-state prior N(m_1, P_1) from the moments of q(z_1)
           (an empirical-Bayes step: it maximises the same ELBO over m_1, P_1);
  M (VAE): a few epochs on reconstruction + KL(encoder ‖ cavity).
The locally linear planning model (:class:`LocalLDS`) is fitted with the same statistics and VB
posterior, each expert's transitions weighted by its gate.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from pyrxaif import checks as V
from pyrxaif.distributions import MvNormal, Wishart
from pyrxaif.distributions.linalg import spd_inverse_logdet, symmetrize
from pyrxaif.inference import lgssm

# weak priors of the latent dynamics, in latent units (the VAE's pre-training prior is N(0, I)):
AB_PRIOR_PRECISION = 1e-2   # p(vec [A B]) = N([I 0], 100 I): a random walk, barely informative
W_PRIOR_NOISE_VAR = 1e-3    # p(W): Wishart with E[W] = I / 1e-3 and d degrees of freedom (d pseudo-transitions)


class LDS(NamedTuple):
    """The global LDS of the variational EM: q([A B]) q(W) (``dynamics``), their prior, and the
    initial-state prior ``init`` = N(m_1, P_1) in natural form. ``A``, ``B``, ``W_cov`` = E[W]⁻¹,
    ``m1``, ``P1`` are the point summaries."""

    dynamics: lgssm.DynamicsPosterior
    prior: lgssm.DynamicsPosterior
    init: MvNormal

    def _ab(self):
        d, m = self.dynamics.dims
        return self.dynamics.q_ab.mean.reshape(d, d + m)

    @property
    def A(self):
        return self._ab()[:, :self.dynamics.dims[0]]

    @property
    def B(self):
        return self._ab()[:, self.dynamics.dims[0]:]

    @property
    def W_cov(self):
        return spd_inverse_logdet(self.dynamics.q_w.mean())[0]

    @property
    def m1(self):
        return self.init.mean

    @property
    def P1(self):
        return self.init.cov


def dynamics_prior(d: int, m: int, a_precision: float | None = None) -> lgssm.DynamicsPosterior:
    """The weak prior p([A B]) p(W) above (``m`` control inputs); ``a_precision`` replaces the
    precision of the entries of A around I (large: an integrator z' = z + B u + noise)."""
    ab = np.concatenate([np.eye(d), np.zeros((d, m))], 1)
    prec = np.full((d, d + m), AB_PRIOR_PRECISION)
    if a_precision is not None:
        if not np.isfinite(a_precision) or a_precision <= 0:
            raise ValueError(f"a_precision: expected a positive number or None, got {a_precision!r}")
        prec[:, :d] = a_precision
    return lgssm.make_prior(d, m, ab_mean=ab, ab_precision=np.diag(prec.reshape(-1)), w_df=float(d),
                            w_mean=np.eye(d) / W_PRIOR_NOISE_VAR)


def init_lds(d: int, m: int, a_precision: float | None = None) -> LDS:
    """Posterior = prior, z_1 ~ N(0, I)."""
    prior = dynamics_prior(d, m, a_precision)
    return LDS(prior, prior, MvNormal.from_mean_cov(jnp.zeros(d), jnp.eye(d)))


def point_lds(A, B, W_cov, m1, P1, certainty: float = 1e12) -> LDS:
    """An LDS whose q([A B]) q(W) are concentrated on the given values (precision ``certainty``·I on
    vec [A B]; Wishart with mean W_cov⁻¹ and ``certainty`` degrees of freedom): known dynamics."""
    A, B, W_cov = (jnp.asarray(x, jnp.float64) for x in (A, B, W_cov))
    d, m = B.shape
    ab = jnp.concatenate([A, B], 1).reshape(-1)
    post = lgssm.DynamicsPosterior(MvNormal.from_mean_precision(ab, certainty * jnp.eye(d * (d + m))),
                                   Wishart.from_mean(spd_inverse_logdet(W_cov)[0], certainty))
    return LDS(post, dynamics_prior(d, m), MvNormal.from_mean_cov(jnp.asarray(m1, jnp.float64),
                                                                  jnp.asarray(P1, jnp.float64)))


def _controls(actions, T):
    """(S, T−1, m) actions between steps → (S, T, m) controls for lgssm (the last one is unused)."""
    a = jnp.asarray(actions, jnp.float64)
    return jnp.concatenate([a, jnp.zeros(a.shape[:1] + (1,) + a.shape[2:])], 1) if a.shape[1] == T - 1 else a


def e_step(lds: LDS, enc_mean, enc_var, actions) -> lgssm.SmootherResult:
    """q(z) of every sequence on the expected LDS: enc_* (S, T, d), actions (S, T−1, m)."""
    mu = jnp.asarray(enc_mean, jnp.float64)
    return lgssm.smooth(mu, 1.0 / jnp.asarray(enc_var, jnp.float64), _controls(actions, mu.shape[1]),
                        lds.dynamics.q_ab, lds.dynamics.q_w, lds.init)


@jax.jit
def cavity_moments(result: lgssm.SmootherResult):
    """(mean, cov) of the cavity messages (the VAE's latent prior); a 1e-6 ridge on the precision
    guards round-off (the exact cavity is proper)."""
    eye = jnp.eye(result.mean.shape[-1])
    cov = symmetrize(spd_inverse_logdet(result.cavity.precision + 1e-6 * eye)[0])
    return jnp.einsum("...ij,...j->...i", cov, result.cavity.xi), cov


@jax.jit
def _init_from(result: lgssm.SmootherResult) -> MvNormal:
    m0, P0 = result.mean[:, 0], result.cov[:, 0]
    m1 = jnp.mean(m0, 0)
    dm = m0 - m1
    P1 = jnp.mean(P0, 0) + jnp.einsum("si,sj->ij", dm, dm) / m0.shape[0] + 1e-6 * jnp.eye(m0.shape[-1])
    return MvNormal.from_mean_cov(m1, P1)


def fit_lds(lds: LDS, enc_mean, enc_var, actions, iters: int = 10):
    """VB-EM of the LDS alone with fixed encoder messages: ``iters`` steps of ``lgssm.vb_em`` from the
    current q, then the initial-state prior from q(z_1). Returns (lds, free energy −ELBO per step:
    before each VB update, and once more at the end)."""
    mu = jnp.asarray(enc_mean, jnp.float64)
    lam = 1.0 / jnp.asarray(enc_var, jnp.float64)
    u = _controls(actions, mu.shape[1])
    post, trace = lgssm.vb_em(mu, lam, u, lds.prior, lds.init, num_iters=iters, posterior=lds.dynamics)
    res = lgssm.smooth(mu, lam, u, post.q_ab, post.q_w, lds.init)
    final = lgssm.elbo(res, post, lds.prior)
    fe = [-float(v) for v in trace] + [-float(final)]
    return LDS(post, lds.prior, _init_from(res)), fe


# ----------------------------------------------------------------------------- locally linear transitions

class LocalLDS(NamedTuple):
    """Locally linear (mixture-of-experts) transition model in the latent space:

      z_{t+1} ~ N(f(z_t, u_t), Σ_k g_k W_k⁻¹),   f(z, u) = Σ_k g_k (A_k z + B_k u + c_k),
      gates g = softmax_k(−|s − centre_k|² / (2 h²)),  s = [z; λ u]  (s = z when λ = 0).

    One global [A B] cannot represent a pendulum over the whole circle (the effect of a torque on the
    angle features flips sign between hanging and upright); K local affine experts, blended smoothly,
    can. With ``action_weight`` λ > 0 the experts are local in the state-action space, so the effect
    of an action may also be nonlinear in the action (a large rotation of a digit moves its latent
    along a curve, not along the straight line B u). Each expert is the VB posterior of the LDS
    (``lgssm.posterior_from_statistics``) with the transition statistics weighted by its gate;
    A_k, B_k, c_k are posterior means, W_k⁻¹ = E[W_k]⁻¹.
    """
    centres: jax.Array    # (K, d) or, with λ > 0, (K, d + m) in the gate coordinates [z; λ u]
    bandwidth: jax.Array  # () h
    A: jax.Array          # (K, d, d)
    B: jax.Array          # (K, d, m)
    c: jax.Array          # (K, d)
    W_cov: jax.Array      # (K, d, d)
    action_weight: jax.Array = 0.0   # () λ; 0: gates on z only


def _gate_point(model: LocalLDS, z, u):
    """The gate coordinates s = [z; λ u] (or z when the centres live in the state space only)."""
    if model.centres.shape[-1] == z.shape[-1]:
        return z
    if u is None:
        raise ValueError("u: these experts are gated on the state and the action; the action is required")
    return jnp.concatenate([z, model.action_weight * jnp.broadcast_to(u, z.shape[:-1] + u.shape[-1:])], -1)


def gates(model: LocalLDS, z, u=None):
    """g_k for states z (..., d) and actions u (..., m) → (..., K) (u is ignored when λ = 0)."""
    d2 = jnp.sum((_gate_point(model, z, u)[..., None, :] - model.centres) ** 2, -1)
    return jax.nn.softmax(-0.5 * d2 / model.bandwidth ** 2, axis=-1)


def local_mean(model: LocalLDS, z, u):
    """f(z, u) = Σ_k g_k(z, u)(A_k z + B_k u + c_k) for one z (d,), u (m,)."""
    g = gates(model, z, u)
    return jnp.einsum("k,ki->i", g, jnp.einsum("kij,j->ki", model.A, z) + jnp.einsum("kij,j->ki", model.B, u)
                      + model.c)


def local_cov(model: LocalLDS, z, u=None):
    """Σ_k g_k(z, u) W_k⁻¹ for one z (d,) (and u (m,) when the gates depend on it)."""
    return jnp.einsum("k,kij->ij", gates(model, z, u), model.W_cov)


@partial(jax.jit, static_argnames=("n_local", "iters"))
def kmeans(points, key, n_local: int, iters: int = 50):
    """Lloyd's algorithm on points (N, d), initialised at n_local distinct random points."""
    idx = jax.random.choice(key, points.shape[0], (n_local,), replace=False)

    def step(c, _):
        lab = jnp.argmin(jnp.sum((points[:, None] - c[None]) ** 2, -1), 1)
        one = jax.nn.one_hot(lab, n_local)
        cnt = one.sum(0)
        new = (one.T @ points) / jnp.maximum(cnt, 1.0)[:, None]
        return jnp.where(cnt[:, None] > 0, new, c), None

    c, _ = jax.lax.scan(step, points[idx], None, length=iters)
    return c


def fit_local(enc_mean, enc_var, actions, *, n_local: int, key, bandwidth_scale: float = 0.5,
              ab_precision: float = AB_PRIOR_PRECISION, num_iters: int = 20,
              action_weight: float = 0.0) -> LocalLDS:
    """Fit K local affine experts to latent transitions given as encoder messages N(μ_t, diag σ²_t).

    enc_* (S, T, d), actions (S, T−1, m). Centres by k-means on the gate coordinates s_t = μ_t
    (``action_weight`` λ = 0) or s_t = [μ_t; λ u_t] (λ > 0: experts local in the state-action space);
    h = ``bandwidth_scale`` × the median distance from a centre to its nearest other centre; expert k is q([A_k B_k c_k]) q(W_k) from
    the statistics of q(z) = the encoder messages with transition t weighted by g_k(s_t) (a constant
    input 1 appended to u carries c_k), under the weak prior of :func:`dynamics_prior` with isotropic
    precision ``ab_precision`` on [A B c].
    """
    enc_mean = jnp.asarray(enc_mean, jnp.float64)
    enc_var = jnp.asarray(enc_var, jnp.float64)
    S, T, d = enc_mean.shape
    m = actions.shape[-1]
    if not np.isfinite(action_weight) or action_weight < 0:
        raise ValueError(f"action_weight: expected a finite number >= 0, got {action_weight!r}")
    acts = jnp.asarray(actions, jnp.float64)
    lam = jnp.asarray(float(action_weight))
    pts = jnp.concatenate([enc_mean[:, :-1], lam * acts], -1) if action_weight > 0 else enc_mean
    centres = kmeans(pts.reshape(-1, pts.shape[-1]), key, n_local)
    dc = jnp.sqrt(jnp.sum((centres[:, None] - centres[None]) ** 2, -1)) + jnp.diag(jnp.full(n_local, jnp.inf))
    h = bandwidth_scale * jnp.median(jnp.min(dc, 1))
    proto = LocalLDS(centres, h, None, None, None, None, lam)
    g = gates(proto, enc_mean[:, :-1], acts)                              # (S, T−1, K)
    w = jnp.moveaxis(jnp.concatenate([g, jnp.zeros((S, 1, n_local))], 1), -1, 0)   # (K, S, T)
    q_z = lgssm.SmootherResult(enc_mean, jax.vmap(jax.vmap(jnp.diag))(enc_var), jnp.zeros((S, T, d, d)),
                               MvNormal(jnp.zeros((S, T, d)), jnp.zeros((S, T, d, d))), jnp.zeros(S))
    ua = jnp.concatenate([_controls(actions, T), jnp.ones((S, T, 1))], -1)
    stats = lgssm.sufficient_statistics(q_z, ua, weights=w)
    prior = dynamics_prior(d, m + 1)
    prior = prior._replace(q_ab=MvNormal.from_mean_precision(prior.q_ab.mean,
                                                             ab_precision * jnp.eye(d * (d + m + 1))))
    post = lgssm.posterior_from_statistics(stats, prior, num_iters)
    ab = post.q_ab.mean.reshape(n_local, d, d + m + 1)
    W_cov = spd_inverse_logdet(post.q_w.mean())[0]
    return LocalLDS(centres, h, ab[..., :d], ab[..., d:d + m], ab[..., d + m], W_cov, lam)


# ----------------------------------------------------------------------------- multi-step refinement

#: ridge of the multi-step refinement towards the one-step fit, per parameter (normalised loss units)
ROLLOUT_RIDGE = 1e-3


def _rollout_windows(enc_mean, actions, H: int):
    """Starts (N, d), action sequences (N, H, m) and targets (N, H, d) of every H-step segment."""
    S, T, d = enc_mean.shape
    n0 = T - H
    z0 = enc_mean[:, :n0].reshape(-1, d)
    us = np.stack([actions[:, j:j + n0] for j in range(H)], 2).reshape(S * n0, H, -1)
    ys = np.stack([enc_mean[:, j + 1:j + 1 + n0] for j in range(H)], 2).reshape(S * n0, H, d)
    return z0, us, ys


def rollout_loss(model: LocalLDS, z0, us, ys, spread):
    """Mean over segments and steps of |f^(h)(z0; u_1..u_h) − y_h|² / spread: the open-loop error of the
    experts' blended mean rolled through the recorded actions (z0 (N, d), us (N, H, m), ys (N, H, d))."""
    step = jax.vmap(local_mean, in_axes=(None, 0, 0))

    def body(z, uy):
        u, y = uy
        z = step(model, z, u)
        return z, jnp.mean(jnp.sum((z - y) ** 2, -1))

    _, errs = jax.lax.scan(body, z0, (jnp.swapaxes(us, 0, 1), jnp.swapaxes(ys, 0, 1)))
    return jnp.mean(errs) / spread


def refine_local_rollout(model: LocalLDS, enc_mean, actions, *, horizons=(5, 10), iters: int = 300,
                         lr: float = 1e-3, ridge: float = ROLLOUT_RIDGE, progress: bool = False) -> LocalLDS:
    """Multi-step refinement of the experts' means: A_k, B_k, c_k ← argmin :func:`rollout_loss` at H +
    ``ridge`` |θ − θ₀|², for each H of ``horizons`` in turn (Adam, ``iters`` steps each, the lowest loss kept).

    The one-step fit (:func:`fit_local`) matches each transition on its own; a plan over H steps composes
    them, and small one-step errors of many narrow experts add up to a wrong swing (docs/pixels.md). This
    fits the composition itself, as in multi-step ("data as demonstrator") learning of dynamics, from the
    one-step fit θ₀ (short horizons first: long roll-outs of a poor model have exploding gradients).
    Centres, bandwidth and the noise covariances W_k⁻¹ (one-step) are kept. enc_mean (S, T, d) latents,
    actions (S, T−1, m); every H < T."""
    if not isinstance(model, LocalLDS):
        raise TypeError(f"model: expected a LocalLDS, got {type(model).__name__}")
    d, m = np.shape(model.B)[-2:]
    mu = V.as_float_array("enc_mean", enc_mean, shape=(None, None, d))
    acts = V.as_float_array("actions", actions, shape=(mu.shape[0], mu.shape[1] - 1, m))
    hs = tuple(V.check_count("horizons", h) for h in horizons)
    if not hs or max(hs) >= mu.shape[1]:
        raise ValueError(f"horizons: expected integers in [1, {mu.shape[1] - 1}], got {horizons!r}")
    V.check_count("iters", iters)
    real = (int, float, np.integer, np.floating)
    if not (isinstance(lr, real) and not isinstance(lr, bool) and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    if not (isinstance(ridge, real) and not isinstance(ridge, bool) and np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge: expected a non-negative number, got {ridge!r}")
    spread = float(np.mean(np.sum((mu - mu.mean((0, 1))) ** 2, -1)))
    if not spread > 0:
        raise ValueError("enc_mean: expected latents that vary (the loss is normalised by their spread, here 0)")
    theta0 = {"A": jnp.asarray(model.A), "B": jnp.asarray(model.B), "c": jnp.asarray(model.c)}
    theta = dict(theta0)
    for H in hs:
        z0, us, ys = (jnp.asarray(a) for a in _rollout_windows(mu, acts, int(H)))
        value_grad = _rollout_value_grad(model, theta0, z0, us, ys, spread, ridge)
        opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))
        state = opt.init(theta)
        best, best_loss = theta, np.inf
        for _ in tqdm(range(iters), desc=f"experts' {H}-step refinement", disable=not progress):
            loss, grad = value_grad(theta)
            loss = float(loss)
            if np.isfinite(loss) and loss < best_loss:
                best, best_loss = theta, loss
            updates, state = opt.update(grad, state, theta)
            theta = optax.apply_updates(theta, updates)
        last = float(value_grad(theta)[0])
        theta = theta if np.isfinite(last) and last < best_loss else best
    return model._replace(**theta)


def _rollout_value_grad(model, theta0, z0, us, ys, spread, ridge):
    def objective(theta):
        reg = sum(jnp.sum((theta[k] - theta0[k]) ** 2) for k in theta)
        return rollout_loss(model._replace(**theta), z0, us, ys, spread) + ridge * reg

    return jax.jit(jax.value_and_grad(objective))
