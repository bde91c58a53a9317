"""Convolutional VAE for small grayscale frames (Flax linen, float32 parameters).

The encoder maps a stack of the K most recent frames (K = 1: single-frame encoder; K ≥ 2: the
multi-frame variant whose latent can carry angular velocity) to a Gaussian message N(μ, diag σ²) on
the latent state z_t; the decoder renders z_t as Bernoulli pixel probabilities of all K frames of the
window. Decoding the whole window (not only the newest frame) is what makes the latent carry the
velocity: the newest frame alone can be reconstructed from the position, so a decoder of the newest
frame gives the encoder no reason to keep the motion between frames.

Loss pieces (per window, summed over pixels / latent dimensions):
  reconstruction  −E_q[log p(x|z)] = Σ_frames Σ_pixels BCE(x, σ(logits(z))), one reparameterised sample;
  KL              KL(N(μ, diag σ²) ‖ N(m, P)) = ½[tr(P⁻¹ diag σ²) + (m−μ)ᵀP⁻¹(m−μ) − d + log|P| − Σ log σ²],
with prior N(m, P) = N(0, I) during pre-training and the LDS cavity message during variational EM.
For a cyclic latent (a pendulum's angle) pre-training can instead use a :class:`RingPrior` on each frame's
2-d latent, whose KL has no closed form and is estimated by the same sample: log q(z) − log p(z).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pyrxaif import checks as V
from pyrxaif.distributions.linalg import spd_inverse_logdet


class Encoder(nn.Module):
    latent_dim: int

    @nn.compact
    def __call__(self, x):  # x: (N, H, W, K)
        x = nn.relu(nn.Conv(16, (3, 3), strides=2, dtype=jnp.float32, param_dtype=jnp.float32)(x))
        x = nn.relu(nn.Conv(32, (3, 3), strides=2, dtype=jnp.float32, param_dtype=jnp.float32)(x))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(128, dtype=jnp.float32, param_dtype=jnp.float32)(x))
        mean = nn.Dense(self.latent_dim, dtype=jnp.float32, param_dtype=jnp.float32)(x)
        logvar = nn.Dense(self.latent_dim, dtype=jnp.float32, param_dtype=jnp.float32)(x)
        return mean, jnp.clip(logvar, -12.0, 4.0)


class Decoder(nn.Module):
    size: int = 28
    frames: int = 1

    @nn.compact
    def __call__(self, z):  # z: (N, d) -> logits (N, K, H, W)
        s = self.size // 4
        h = nn.relu(nn.Dense(128, dtype=jnp.float32, param_dtype=jnp.float32)(z))
        h = nn.relu(nn.Dense(s * s * 32, dtype=jnp.float32, param_dtype=jnp.float32)(h)).reshape(z.shape[0], s, s, 32)
        h = nn.relu(nn.ConvTranspose(32, (3, 3), strides=(2, 2), dtype=jnp.float32, param_dtype=jnp.float32)(h))
        h = nn.relu(nn.ConvTranspose(16, (3, 3), strides=(2, 2), dtype=jnp.float32, param_dtype=jnp.float32)(h))
        return jnp.moveaxis(nn.Conv(self.frames, (3, 3), dtype=jnp.float32, param_dtype=jnp.float32)(h), -1, 1)


class VAEConfig(NamedTuple):
    latent_dim: int = 4
    frames: int = 2     # K, frames stacked into the encoder input
    size: int = 28
    per_frame: bool = False   # multi-frame variant: one shared frame encoder/decoder, latents stacked


def init_vae(key, config: VAEConfig):
    """Parameters {'encoder', 'decoder'} in float32.

    ``per_frame=False``: the encoder sees the K frames as channels and the decoder renders K channels.
    ``per_frame=True`` (K ≥ 2): the latent is the stack [p_{t−K+1}; …; p_t] of K per-frame latents of
    size latent_dim / K from one shared frame encoder, each frame rendered from its own p; the motion
    between frames (the velocity) is then carried exactly by the differences of the stacked parts.
    """
    V.check_positive("latent_dim", config.latent_dim)
    k1, k2 = jax.random.split(key)
    if config.per_frame:
        if config.latent_dim % config.frames:
            raise ValueError(f"latent_dim: expected a multiple of frames = {config.frames} with per_frame=True, "
                             f"got {config.latent_dim}")
        p = config.latent_dim // config.frames
        enc = Encoder(p).init(k1, jnp.zeros((1, config.size, config.size, 1), jnp.float32))
        dec = Decoder(config.size, 1).init(k2, jnp.zeros((1, p), jnp.float32))
    else:
        enc = Encoder(config.latent_dim).init(k1, jnp.zeros((1, config.size, config.size, config.frames),
                                                           jnp.float32))
        dec = Decoder(config.size, config.frames).init(k2, jnp.zeros((1, config.latent_dim), jnp.float32))
    return {"encoder": enc["params"], "decoder": dec["params"]}


def _encode(params, windows, latent_dim: int):
    windows = jnp.asarray(windows, jnp.float32)
    N, K = windows.shape[:2]
    if params["encoder"]["Conv_0"]["kernel"].shape[2] == 1 and K > 1:       # per-frame encoder, stacked
        p = latent_dim // K
        mean, logvar = Encoder(p).apply({"params": params["encoder"]}, windows.reshape(N * K, *windows.shape[2:], 1))
        return mean.reshape(N, K * p), jnp.exp(logvar).reshape(N, K * p)
    mean, logvar = Encoder(latent_dim).apply({"params": params["encoder"]}, jnp.moveaxis(windows, 1, -1))
    return mean, jnp.exp(logvar)


def _logits(params, z, size: int):
    """Logits (N, K, H, W); the decoder's layout (channels or per-frame) is read off its parameter shapes."""
    z = jnp.asarray(z, jnp.float32)
    p = params["decoder"]["Dense_0"]["kernel"].shape[0]
    N, d = z.shape
    if p < d:                                                              # per-frame decoder
        out = Decoder(size, 1).apply({"params": params["decoder"]}, z.reshape(N * (d // p), p))
        return out.reshape(N, d // p, size, size)
    return Decoder(size, params["decoder"]["Conv_0"]["kernel"].shape[-1]).apply({"params": params["decoder"]}, z)


def _decode_frames(params, z, size: int = 28):
    return jax.nn.sigmoid(_logits(params, z, size))


def _decode(params, z, size: int = 28):
    return _decode_frames(params, z, size)[:, -1]


#: windows (N, K, H, W) → (mean, var), each (N, d), float32 (jitted; one trace per batch shape).
encode = jax.jit(_encode, static_argnames=("latent_dim",))
#: latents (N, d) → pixel probabilities of the newest frame (N, H, W) (jitted).
decode = jax.jit(_decode, static_argnames=("size",))
#: latents (N, d) → pixel probabilities of the whole window (N, K, H, W) (jitted).
decode_frames = jax.jit(_decode_frames, static_argnames=("size",))


def bernoulli_nll(logits, x):
    """Σ_pixels −[x log σ(l) + (1−x) log(1−σ(l))] per image."""
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=(-2, -1))


def kl_diag_full(mu, var, m, P):
    """KL(N(μ, diag var) ‖ N(m, P)) for batched μ, var (N,d), m (N,d), P (N,d,d).

    P⁻¹ and log|P| from ``spd_inverse_logdet`` (unrolled Cholesky, no LAPACK call: jaxlib's batched
    LAPACK kernels can deadlock XLA's CPU thread pool, docs/lgssm.md)."""
    Pinv, logdet_P = spd_inverse_logdet(P)
    d = mu.shape[-1]
    diff = m - mu
    maha = jnp.einsum("...i,...ij,...j->...", diff, Pinv, diff)
    Pinv_diag = jnp.diagonal(Pinv, axis1=-2, axis2=-1)
    return 0.5 * (jnp.sum(Pinv_diag * var, -1) + maha - d + logdet_P - jnp.sum(jnp.log(var), -1))


class RingPrior(NamedTuple):
    """Prior of a cyclic latent: every 2-d frame latent p = r(cos φ, sin φ) has φ ~ U(0, 2π) and
    r ~ N(radius, sd²), i.e. p(p) = N(|p|; radius, sd²) / (2π|p|)."""

    radius: float = 1.0
    sd: float = 0.2


def ring_log_prior(z, ring: RingPrior):
    """log p(z) = Σ_frames [log N(|p_k|; radius, sd²) − log(2π|p_k|)] for z (N, 2K) stacked 2-d frame latents."""
    if z.shape[-1] % 2:
        raise ValueError(f"latent_dim: a ring prior needs 2-d frame latents (an even size), got {z.shape[-1]}")
    r = jnp.sqrt(jnp.sum(z.reshape(*z.shape[:-1], -1, 2) ** 2, -1) + 1e-12)
    logn = -0.5 * ((r - ring.radius) / ring.sd) ** 2 - jnp.log(ring.sd) - 0.5 * jnp.log(2 * jnp.pi)
    return jnp.sum(logn - jnp.log(2 * jnp.pi * r), -1)


def vae_loss(params, key, windows, prior_mean, prior_cov, latent_dim: int, beta: float = 1.0,
             ring: RingPrior | None = None):
    """Mean over windows of reconstruction + β·KL(encoder ‖ prior); returns (loss, (recon, kl)).

    The prior is N(prior_mean, prior_cov) per window (closed-form KL), or with ``ring`` given (and the
    Gaussian prior None) the ring prior, whose KL is the one-sample estimate log q(z) − log p(z)."""
    mu, var = _encode(params, windows, latent_dim)
    eps = jax.random.normal(key, mu.shape, jnp.float32)
    z = mu + jnp.sqrt(var) * eps
    logits = _logits(params, z, windows.shape[-1])                    # (N, K, H, W)
    recon = jnp.sum(bernoulli_nll(logits, jnp.asarray(windows, jnp.float32)), -1)
    if ring is None:
        kl = kl_diag_full(mu.astype(jnp.float64), var.astype(jnp.float64), prior_mean, prior_cov)
    else:
        log_q = jnp.sum(-0.5 * eps ** 2 - 0.5 * jnp.log(2 * jnp.pi * var), -1)
        kl = log_q - ring_log_prior(z, ring)
    return jnp.mean(recon + beta * kl), (jnp.mean(recon), jnp.mean(kl))


def make_optimizer(lr: float = 2e-3):
    return optax.adam(lr)


def _train_step(params, opt_state, key, windows, prior_mean, prior_cov, latent_dim, beta, optimizer, ring=None):
    (loss, aux), grads = jax.value_and_grad(vae_loss, has_aux=True)(
        params, key, windows, prior_mean, prior_cov, latent_dim, beta, ring)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, aux


train_step = jax.jit(_train_step, static_argnames=("latent_dim", "optimizer", "ring"))


def train_epoch(params, opt_state, key, windows, prior_mean, prior_cov, *, latent_dim, beta, optimizer,
                batch_size: int = 128, ring: RingPrior | None = None):
    """One shuffled pass over the windows (Gaussian prior per window, or ``ring`` with the Gaussian prior
    None); returns params, opt_state, mean loss."""
    given = (prior_mean is not None, prior_cov is not None)
    if given != ((True, True) if ring is None else (False, False)):
        raise ValueError("prior_mean, prior_cov, ring: expected either a Gaussian prior (prior_mean and prior_cov) "
                         "or a RingPrior (ring, with prior_mean = prior_cov = None)")
    if ring is not None and (not isinstance(ring, RingPrior) or not ring.sd > 0 or not ring.radius > 0):
        raise ValueError(f"ring: expected a RingPrior with positive radius and sd, got {ring!r}")
    n = windows.shape[0]
    kp, key = jax.random.split(key)
    perm = np.asarray(jax.random.permutation(kp, n))
    nb = max(1, n // batch_size)
    losses = []
    for i in range(nb):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        key, k = jax.random.split(key)
        pm, pc = (None, None) if ring is not None else (prior_mean[idx], prior_cov[idx])
        params, opt_state, loss, _ = train_step(params, opt_state, k, windows[idx], pm, pc, latent_dim, beta, optimizer,
                                                ring)
        losses.append(loss)
    return params, opt_state, float(np.mean(np.asarray(losses)))
