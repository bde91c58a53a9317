"""Variational EM for a VAE whose latents follow a linear-Gaussian dynamical system (LDS).

Generative model per sequence: z_1 ~ N(m_1, P_1), z_{t+1} ~ N(A z_t + B u_t, W⁻¹); the VAE encoder
supplies a Gaussian message N(μ_t, diag σ²_t) on each z_t and the decoder renders z_t.

One EM iteration (see :func:`pyrxaif.agents.jopa.train`):
  E (LDS): forward-backward with the encoder messages → q(z_t), q(z_t, z_{t+1}) and the *cavity*
           messages α_t β_t = q(z_t) / N(μ_t, σ²_t) (the LDS belief excluding the encoder's own message);
  M (LDS): [A B] and W from the sufficient statistics pooled over all sequences;
  M (VAE): a few epochs on reconstruction + KL(encoder ‖ cavity).

NOTE (workaround, marked): the shared VB core ``pyrxaif.inference.lgssm`` (q([A B]) Gaussian, q(W)
Wishart, covariance-corrected messages) had not landed when this module was written, so the LDS step
here is EM with point estimates (ridge-regularised [A B], maximum-likelihood W⁻¹) on the small
smoother of :mod:`pyrxaif.inference.planning`. Swap :func:`e_step`/:func:`m_step` for the lgssm VB
update once it exists; the interfaces (encoder messages in, cavity messages out) stay the same.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pyrxaif.inference.planning import Smoothed, smoother


class LDS(NamedTuple):
    A: jax.Array      # (d, d)
    B: jax.Array      # (d, m)
    W_cov: jax.Array  # (d, d) = W⁻¹, transition noise covariance
    m1: jax.Array     # (d,)
    P1: jax.Array     # (d, d)


def init_lds(d: int, m: int) -> LDS:
    return LDS(jnp.eye(d), jnp.zeros((d, m)), jnp.eye(d), jnp.zeros(d), jnp.eye(d))


@jax.jit
def e_step(lds: LDS, enc_mean, enc_var, actions) -> Smoothed:
    """Smooth every sequence (vmap): enc_* (S, T, d), actions (S, T−1, m) → batched Smoothed."""
    def one(mu, var, u):
        return smoother(lds.m1, lds.P1, lds.A, lds.W_cov, u @ lds.B.T, mu, 1.0 / var)
    return jax.vmap(one)(enc_mean.astype(jnp.float64), enc_var.astype(jnp.float64), actions)


@jax.jit
def cavity(sm: Smoothed, enc_mean, enc_var):
    """Cavity N(m_c, P_c) = q(z_t) / N(μ_t, diag σ²_t): Λ_c = P_s⁻¹ − diag σ⁻², ξ_c = P_s⁻¹ m_s − μ/σ²."""
    d = enc_mean.shape[-1]
    eye = jnp.eye(d)
    Ps_inv = jnp.linalg.solve(sm.cov, jnp.broadcast_to(eye, sm.cov.shape))
    lam = 0.5 * (Ps_inv + jnp.swapaxes(Ps_inv, -1, -2)) - eye * (1.0 / enc_var)[..., None, :]
    xi = jnp.einsum("...ij,...j->...i", Ps_inv, sm.mean) - enc_mean / enc_var
    # the exact cavity is proper; guard round-off with a tiny ridge on its precision
    lam = lam + 1e-6 * eye
    cov = jnp.linalg.inv(lam)
    cov = 0.5 * (cov + jnp.swapaxes(cov, -1, -2))
    return jnp.einsum("...ij,...j->...i", cov, xi), cov


@jax.jit
def m_step(sm: Smoothed, actions, ridge=1e-3, weights=None) -> LDS:
    """Pooled statistics: [A B] = Σ E[z_{t+1} x_tᵀ](Σ E[x_t x_tᵀ] + ridge·I)⁻¹, x_t = [z_t; u_t];
    W⁻¹ = mean E[(z_{t+1} − [A B]x_t)(·)ᵀ]; m_1, P_1 = moments of q(z_1) across sequences.
    Optional ``weights`` (S, T−1) weight each transition's statistics (a model local to a region)."""
    m, P, C = sm.mean, sm.cov, sm.cross
    d = m.shape[-1]
    if weights is None:
        weights = jnp.ones(m.shape[:2])[:, 1:]
    sw = jnp.sqrt(weights)[..., None]
    wP = weights[..., None, None]
    z0, z1 = m[:, :-1] * sw, m[:, 1:] * sw
    actions = actions * sw
    P = jnp.concatenate([P[:, :1], P[:, 1:] * wP], axis=1)
    P0 = sm.cov[:, :-1] * wP
    C = C * wP
    Ezz = jnp.einsum("stij->ij", P0) + jnp.einsum("sti,stj->ij", z0, z0)
    Ezu = jnp.einsum("sti,stj->ij", z0, actions)
    Euu = jnp.einsum("sti,stj->ij", actions, actions)
    Sxx = jnp.block([[Ezz, Ezu], [Ezu.T, Euu]])
    Sz1z0 = jnp.einsum("stij->ij", C) + jnp.einsum("sti,stj->ij", z1, z0)
    Sz1u = jnp.einsum("sti,stj->ij", z1, actions)
    Szx = jnp.concatenate([Sz1z0, Sz1u], axis=1)
    Sz1z1 = jnp.einsum("stij->ij", P[:, 1:]) + jnp.einsum("sti,stj->ij", z1, z1)
    n = jnp.sum(weights)
    AB = jnp.linalg.solve(Sxx + ridge * jnp.eye(Sxx.shape[0]), Szx.T).T
    Wc = (Sz1z1 - AB @ Szx.T - Szx @ AB.T + AB @ Sxx @ AB.T) / n
    Wc = 0.5 * (Wc + Wc.T) + 1e-6 * jnp.eye(d)
    m1 = jnp.mean(sm.mean[:, 0], 0)
    dm = sm.mean[:, 0] - m1
    P1 = jnp.mean(sm.cov[:, 0], 0) + jnp.einsum("si,sj->ij", dm, dm) / m.shape[0] + 1e-6 * jnp.eye(d)
    return LDS(AB[:, :d], AB[:, d:], Wc, m1, P1)


def fit_lds(lds: LDS, enc_mean, enc_var, actions, iters: int = 10):
    """EM on the LDS alone with fixed encoder messages; returns (lds, [−log evidence per iteration])."""
    nll = []
    for _ in range(iters):
        sm = e_step(lds, enc_mean, enc_var, actions)
        nll.append(-float(jnp.sum(sm.log_evidence)))
        lds = m_step(sm, actions)
    return lds, nll


# ----------------------------------------------------------------------------- locally linear transitions

class LocalLDS(NamedTuple):
    """Locally linear (mixture-of-experts) transition model in the latent space:

      z_{t+1} ~ N(f(z_t, u_t), Σ_k g_k(z_t) W_k⁻¹),   f(z, u) = Σ_k g_k(z) (A_k z + B_k u + c_k),
      gates g(z) = softmax_k(−|z − centre_k|² / (2 h²)).

    One global [A B] cannot represent a pendulum over the whole circle (the effect of a torque on the
    angle features flips sign between hanging and upright); K local affine experts, blended smoothly,
    can. Each expert is the LDS M-step (:func:`m_step`) with the transitions weighted by its gate.
    """
    centres: jax.Array    # (K, d)
    bandwidth: jax.Array  # () h
    A: jax.Array          # (K, d, d)
    B: jax.Array          # (K, d, m)
    c: jax.Array          # (K, d)
    W_cov: jax.Array      # (K, d, d)


def gates(model: LocalLDS, z):
    """g_k(z) for z (..., d) → (..., K)."""
    d2 = jnp.sum((z[..., None, :] - model.centres) ** 2, -1)
    return jax.nn.softmax(-0.5 * d2 / model.bandwidth ** 2, axis=-1)


def local_mean(model: LocalLDS, z, u):
    """f(z, u) = Σ_k g_k(z)(A_k z + B_k u + c_k) for one z (d,), u (m,)."""
    g = gates(model, z)
    return jnp.einsum("k,ki->i", g, jnp.einsum("kij,j->ki", model.A, z) + jnp.einsum("kij,j->ki", model.B, u)
                      + model.c)


def local_cov(model: LocalLDS, z):
    """Σ_k g_k(z) W_k⁻¹ for one z (d,)."""
    return jnp.einsum("k,kij->ij", gates(model, z), model.W_cov)


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
              ridge: float = 1e-3) -> LocalLDS:
    """Fit K local affine experts to latent transitions given as encoder messages N(μ_t, diag σ²_t).

    enc_* (S, T, d), actions (S, T−1, m). Centres by k-means on the μ_t; h = ``bandwidth_scale`` × the
    median distance from a centre to its nearest other centre; expert k is the M-step of [A_k B_k c_k]
    and W_k⁻¹ with transition t weighted by g_k(μ_t) (constant input 1 appended to u for c_k).
    """
    enc_mean = jnp.asarray(enc_mean, jnp.float64)
    enc_var = jnp.asarray(enc_var, jnp.float64)
    S, T, d = enc_mean.shape
    m = actions.shape[-1]
    centres = kmeans(enc_mean.reshape(-1, d), key, n_local)
    dc = jnp.sqrt(jnp.sum((centres[:, None] - centres[None]) ** 2, -1)) + jnp.diag(jnp.full(n_local, jnp.inf))
    h = bandwidth_scale * jnp.median(jnp.min(dc, 1))
    proto = LocalLDS(centres, h, None, None, None, None)
    w = gates(proto, enc_mean[:, :-1])                                    # (S, T−1, K)
    sm = Smoothed(enc_mean, jax.vmap(jax.vmap(jnp.diag))(enc_var), jnp.zeros((S, T - 1, d, d)), jnp.zeros(()))
    ua = jnp.concatenate([jnp.asarray(actions, jnp.float64), jnp.ones((S, T - 1, 1))], -1)
    fits = jax.vmap(lambda wk: m_step(sm, ua, ridge, wk))(jnp.moveaxis(w, -1, 0))
    return LocalLDS(centres, h, fits.A, fits.B[..., :m], fits.B[..., m], fits.W_cov)
