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
