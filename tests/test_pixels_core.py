"""Pixels to control: environments, data, VAE pieces, smoother/planner vs dense Gaussian algebra, EM."""

import numpy as np
import pytest

import pyrxaif  # noqa: F401  (float64)
import jax
import jax.numpy as jnp

from pyrxaif import data
from pyrxaif.envs.digits import RotatingDigits, rotate_image
from pyrxaif.envs.pendulum import PixelPendulum, bob_pixel, render_pendulum, wrap_angle
from pyrxaif.inference import em, planning
from pyrxaif.nn import vae


# ----------------------------------------------------------------------------- pendulum

def test_pendulum_small_oscillation_period_and_energy():
    env = PixelPendulum()
    env.reset(options={"theta": 0.05, "omega": 0.0})
    th, en = [], []
    for _ in range(400):
        _, _, _, _, info = env.step([0.0])
        th.append(info["theta"])
        en.append(0.5 * info["omega"] ** 2 - 9.81 * np.cos(info["theta"]))
    th = np.array(th)
    up = np.where((th[:-1] < 0) & (th[1:] >= 0))[0]           # upward zero crossings
    period = np.mean(np.diff(up)) * 0.05
    assert period == pytest.approx(2 * np.pi / np.sqrt(9.81), rel=0.03)
    en = np.array(en)
    assert np.ptp(en) < 0.01 * abs(en.mean())                # symplectic Euler: bounded energy error
    assert np.max(np.abs(th)) == pytest.approx(0.05, rel=0.1)


def test_pendulum_clipping_and_wrapping():
    env = PixelPendulum(max_torque=50.0)
    env.reset(options={"theta": 0.0, "omega": 0.0})
    _, _, _, _, info = env.step([1e6])                        # torque clipped to 50 → ω = 2.5
    assert info["torque"] == 50.0 and info["omega"] == pytest.approx(2.5)
    for _ in range(20):
        _, _, _, _, info = env.step([50.0])
        assert abs(info["omega"]) <= 8.0 + 1e-12
        assert -np.pi <= info["theta"] < np.pi
    assert info["omega"] == pytest.approx(8.0)
    assert wrap_angle(np.pi) == pytest.approx(-np.pi)


def test_pendulum_render_bob_location():
    for theta in np.linspace(-np.pi, np.pi, 9):
        f = render_pendulum(theta)
        assert f.shape == (28, 28) and f.min() >= 0 and f.max() <= 1
        by, bx = bob_pixel(theta)
        yy, xx = np.mgrid[0:28, 0:28]
        w = np.where(f > 0.99, f, 0)                          # only the fully covered bob disc
        cy, cx = (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()
        assert np.hypot(cy - by, cx - bx) < 0.7
    assert bob_pixel(0.0)[0] > 14 and bob_pixel(np.pi)[0] < 13  # hanging below, upright above


def test_pendulum_bad_input():
    with pytest.raises(ValueError, match="max_torque"):
        PixelPendulum(max_torque=-1)
    env = PixelPendulum()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step([np.nan])
    with pytest.raises(ValueError, match="action"):
        env.step([1.0, 2.0])


# ----------------------------------------------------------------------------- digits

def test_offline_digits_are_real_mnist():
    x, y = data.load_digits("mnist_5k")
    assert x.shape == (5000, 28, 28) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [500] * 10
    assert 0.08 < x.mean() < 0.2 and x.max() == 1.0           # MNIST: mostly black, ink near 1
    xs, ys = data.load_sklearn_digits()
    assert xs.shape == (1797, 28, 28) and 0 <= xs.min() and xs.max() <= 1
    with pytest.raises(ValueError, match="source"):
        data.load_digits("nope")


def test_load_mnist_npz_roundtrip(tmp_path):
    x = (np.random.default_rng(0).random((3, 28, 28)) * 255).astype(np.uint8)
    p = tmp_path / "m.npz"
    np.savez(p, x=x, y=np.array([1, 2, 3]))
    xi, yi = data.load_mnist(str(p))
    np.testing.assert_allclose(xi, x / 255.0, atol=1e-6)
    assert yi.tolist() == [1, 2, 3]
    with pytest.raises(FileNotFoundError, match="path"):
        data.load_mnist(str(tmp_path / "missing.npz"))


def test_rotate_image_quarter_turn_and_env_dynamics():
    img = np.zeros((28, 28), np.float32)
    img[5:10, 12:16] = 1.0
    r = rotate_image(img, np.pi / 2)                          # exact quarter turn = np.rot90 (counter-clockwise)
    np.testing.assert_allclose(r, np.rot90(img), atol=1e-6)
    np.testing.assert_allclose(rotate_image(rotate_image(img, 0.3), -0.3).sum(), img.sum(), rtol=0.1)
    env = RotatingDigits(images=np.stack([img, img]), max_speed=0.2, max_angle=1.0)
    env.reset(options={"index": 1, "angle": 0.0})
    _, _, _, _, info = env.step([5.0])
    assert info["angle"] == pytest.approx(0.2)
    for _ in range(10):
        _, _, _, _, info = env.step([0.2])
    assert info["angle"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="images"):
        RotatingDigits(images=np.zeros((2, 28, 27)))


# ----------------------------------------------------------------------------- VAE pieces

def test_kl_diag_full_matches_closed_form_and_zero():
    rng = np.random.default_rng(0)
    mu, var = rng.normal(size=(1, 3)), rng.uniform(0.2, 2, (1, 3))
    M = rng.normal(size=(3, 3))
    P = M @ M.T + np.eye(3)
    m = rng.normal(size=(1, 3))
    S0 = np.diag(var[0])
    Pi = np.linalg.inv(P)
    want = 0.5 * (np.trace(Pi @ S0) + (m - mu)[0] @ Pi @ (m - mu)[0] - 3
                  + np.linalg.slogdet(P)[1] - np.linalg.slogdet(S0)[1])
    got = vae.kl_diag_full(jnp.asarray(mu), jnp.asarray(var), jnp.asarray(m), jnp.asarray(P[None]))
    assert float(got[0]) == pytest.approx(want, rel=1e-10)
    same = vae.kl_diag_full(jnp.asarray(mu), jnp.asarray(var), jnp.asarray(mu), jnp.asarray(np.diag(var[0])[None]))
    assert abs(float(same[0])) < 1e-10


def test_bernoulli_nll_closed_form():
    logits = jnp.array([[[0.0, 2.0]]])
    x = jnp.array([[[1.0, 0.0]]])
    want = np.log(2.0) + np.log1p(np.exp(2.0))
    assert float(vae.bernoulli_nll(logits, x)[0]) == pytest.approx(want, rel=1e-6)


def test_vae_learns_to_reconstruct_pendulum_frames():
    frames = np.stack([render_pendulum(t) for t in np.linspace(-np.pi, np.pi, 32, endpoint=False)])
    wins = np.repeat(frames[:, None], 2, axis=1)
    params = vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(2, 2))
    opt = vae.make_optimizer(3e-3)
    st = opt.init(params)
    pm, pP = np.zeros((32, 2)), np.broadcast_to(np.eye(2), (32, 2, 2)).copy()
    mse0 = float(np.mean((np.asarray(vae.decode(params, vae.encode(params, wins, 2)[0])) - frames) ** 2))
    key = jax.random.PRNGKey(1)
    for _ in range(30):
        key, k = jax.random.split(key)
        params, st, _ = vae.train_epoch(params, st, k, wins, pm, pP, latent_dim=2, beta=1.0, optimizer=opt,
                                        batch_size=32)
    mse = float(np.mean((np.asarray(vae.decode(params, vae.encode(params, wins, 2)[0])) - frames) ** 2))
    assert np.asarray(jax.tree_util.tree_leaves(params)[0]).dtype == np.float32
    assert mse < 0.5 * mse0


def test_ring_prior_is_a_normalised_density_peaked_on_the_circle():
    ring = vae.RingPrior(1.0, 0.2)
    g = np.linspace(-2.0, 2.0, 801)
    Z = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    p = np.exp(np.asarray(vae.ring_log_prior(jnp.asarray(Z), ring)))
    assert p.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=2e-3)
    # two stacked frames: the log densities add; the density depends on the radius only
    z2 = jnp.asarray([[0.6, 0.8, -1.1, 0.0]])
    want = sum(np.log(np.exp(-0.5 * ((r - 1.0) / 0.2) ** 2) / (0.2 * np.sqrt(2 * np.pi)) / (2 * np.pi * r))
               for r in (1.0, 1.1))
    assert float(vae.ring_log_prior(z2, ring)[0]) == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="latent_dim"):
        vae.ring_log_prior(jnp.zeros((1, 3)), ring)


def test_ring_kl_is_an_unbiased_one_sample_estimate():
    """vae_loss with a ring prior: the mean of its KL term over samples equals E_q[log q − log p] by
    quadrature for each window's encoder message (2-d latent), and the Gaussian arguments are refused."""
    th = np.array([0.0, 1.0, 2.5])
    wins = np.stack([render_pendulum(t) for t in th]).astype(np.float32)[:, None]
    params = vae.init_vae(jax.random.PRNGKey(3), vae.VAEConfig(2, 1))
    ring = vae.RingPrior(1.0, 0.3)
    keys = jax.random.split(jax.random.PRNGKey(0), 1000)
    kl_mc = jax.vmap(lambda k: vae.vae_loss(params, k, wins, None, None, 2, 1.0, ring)[1][1])(keys)
    mu, var = (np.asarray(a, np.float64) for a in vae.encode(params, wins, 2))
    g = np.linspace(-6.0, 6.0, 1201)
    Z = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    log_p = np.asarray(vae.ring_log_prior(jnp.asarray(Z), ring))
    kls = []
    for m, v in zip(mu, var):
        log_q = np.sum(-0.5 * (Z - m) ** 2 / v - 0.5 * np.log(2 * np.pi * v), -1)
        kls.append(np.sum(np.exp(log_q) * (log_q - log_p)) * (g[1] - g[0]) ** 2)
    se = float(np.std(kl_mc)) / np.sqrt(len(keys))
    assert float(np.mean(kl_mc)) == pytest.approx(np.mean(kls), abs=4 * se + 1e-3)
    opt = vae.make_optimizer()
    with pytest.raises(ValueError, match="either a Gaussian prior"):
        vae.train_epoch(params, opt.init(params), keys[0], wins, np.zeros((3, 2)), None, latent_dim=2, beta=1.0,
                        optimizer=opt, ring=ring)


def test_ring_pretraining_puts_the_frame_latents_near_the_circle():
    """Pre-training against a ring of radius 3 puts the encoded frames near that radius."""
    th = np.linspace(-np.pi, np.pi, 48, endpoint=False)
    wins = np.stack([render_pendulum(t) for t in th]).astype(np.float32)[:, None]
    params = vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(2, 1))
    opt = vae.make_optimizer(3e-3)
    st = opt.init(params)
    key = jax.random.PRNGKey(1)
    for _ in range(40):
        key, k = jax.random.split(key)
        params, st, _ = vae.train_epoch(params, st, k, wins, None, None, latent_dim=2, beta=1.0, optimizer=opt,
                                        batch_size=8, ring=vae.RingPrior(3.0, 0.2))
    r = np.linalg.norm(np.asarray(vae.encode(params, wins, 2)[0]), axis=1)   # N(0, I) would give ≈ 1.2
    assert 2.6 < np.median(r) < 3.4 and np.mean(np.abs(r - 3.0) < 0.6) > 0.8, r


# ----------------------------------------------------------------------------- smoother and planner

def _dense_lds_posterior(A, B, Q, m1, P1, u, mus, precs):
    """Brute force: joint Gaussian of z_{1:T} given inputs, conditioned on z_t + v_t = μ_t."""
    T, d = mus.shape
    # z = M e + c with e = (z1 - m1, w_1..w_{T-1})
    M = np.zeros((T * d, T * d))
    c = np.zeros(T * d)
    c[:d] = m1
    M[:d, :d] = np.eye(d)
    for t in range(1, T):
        M[t * d:(t + 1) * d] = A @ M[(t - 1) * d:t * d]
        M[t * d:(t + 1) * d, t * d:(t + 1) * d] += np.eye(d)
        c[t * d:(t + 1) * d] = A @ c[(t - 1) * d:t * d] + B @ u[t - 1]
    Ce = np.kron(np.eye(T), Q)
    Ce[:d, :d] = P1
    Cz = M @ Ce @ M.T
    R = np.diag(1.0 / precs.reshape(-1))
    S = Cz + R
    K = Cz @ np.linalg.inv(S)
    mean = c + K @ (mus.reshape(-1) - c)
    cov = Cz - K @ Cz
    r = mus.reshape(-1) - c
    loglik = -0.5 * (r @ np.linalg.solve(S, r) + np.linalg.slogdet(S)[1] + T * d * np.log(2 * np.pi))
    return mean.reshape(T, d), cov, loglik


def test_smoother_matches_dense_conditioning():
    rng = np.random.default_rng(1)
    d, T = 2, 6
    A = np.array([[0.9, 0.2], [-0.1, 0.95]])
    B = np.array([[0.0], [0.3]])
    Q, P1, m1 = 0.1 * np.eye(d), 0.5 * np.eye(d), np.array([0.3, -0.2])
    u = rng.normal(size=(T - 1, 1))
    mus, precs = rng.normal(size=(T, d)), rng.uniform(1, 5, (T, d))
    sm = planning.smoother(m1, P1, A, Q, u @ B.T, mus, precs)
    mean, cov, ll = _dense_lds_posterior(A, B, Q, m1, P1, u, mus, precs)
    np.testing.assert_allclose(sm.mean, mean, atol=1e-9)
    for t in range(T):
        np.testing.assert_allclose(sm.cov[t], cov[t * d:(t + 1) * d, t * d:(t + 1) * d], atol=1e-9)
    for t in range(T - 1):
        np.testing.assert_allclose(sm.cross[t], cov[(t + 1) * d:(t + 2) * d, t * d:(t + 1) * d], atol=1e-9)
    assert float(sm.log_evidence) == pytest.approx(ll, rel=1e-9)


def _dense_plan(A, B, Wc, z0, zg, goal_var, su2, H):
    """E[u_{1:H-1} | z_H + v = z_goal] by dense Gaussian conditioning (u_H has no effect)."""
    d, m = B.shape
    # z_H = A^{H-1} z0 + Σ_t A^{H-1-t} (B u_t + w_t), t = 1..H-1
    G = np.hstack([np.linalg.matrix_power(A, H - 1 - t) @ B for t in range(1, H)])
    Nw = sum(np.linalg.matrix_power(A, H - 1 - t) @ Wc @ np.linalg.matrix_power(A, H - 1 - t).T for t in range(1, H))
    Cu = su2 * np.eye(G.shape[1])
    S = G @ Cu @ G.T + Nw + goal_var * np.eye(d)
    mean_zH = np.linalg.matrix_power(A, H - 1) @ z0
    return (Cu @ G.T @ np.linalg.solve(S, zg - mean_zH)).reshape(H - 1, m)


def test_planner_matches_dense_gaussian_conditioning_and_reaches_goal():
    A = np.array([[1.0, 0.1], [0.0, 1.0]])                    # double integrator
    B = np.array([[0.0], [0.1]])
    Wc = 1e-4 * np.eye(2)
    z0, zg, H = np.array([0.0, 0.0]), np.array([1.0, 0.0]), 12
    res = planning.plan(A, B, Wc, z0, zg, goal_var=1e-4, u_max=100.0, horizon=H, prior_scale=0.5)
    want = _dense_plan(A, B, Wc, z0, zg, 1e-4, 50.0 ** 2, H)
    np.testing.assert_allclose(np.asarray(res.actions[:-1]), want, rtol=1e-7, atol=1e-9)
    z = z0.copy()
    for t in range(H - 1):                                    # open loop on the noise-free system
        z = A @ z + B @ np.asarray(res.actions[t])
    np.testing.assert_allclose(z, zg, atol=0.01)


def test_planner_respects_action_bound_and_validates():
    A, B = np.eye(2), np.array([[1.0], [0.0]])
    res = planning.plan(A, B, 1e-3 * np.eye(2), np.zeros(2), np.array([100.0, 0.0]), goal_var=1e-3,
                        u_max=1.0, horizon=5)
    assert np.all(np.abs(np.asarray(res.actions)) <= 1.0 + 1e-12)
    with pytest.raises(ValueError, match="W_cov"):
        planning.plan(A, B, -np.eye(2), np.zeros(2), np.zeros(2), goal_var=1.0, u_max=1.0, horizon=5)
    with pytest.raises(ValueError, match="z_goal"):
        planning.plan(A, B, np.eye(2), np.zeros(2), np.zeros(3), goal_var=1.0, u_max=1.0, horizon=5)
    with pytest.raises(ValueError, match="horizon"):
        planning.plan(A, B, np.eye(2), np.zeros(2), np.zeros(2), goal_var=1.0, u_max=1.0, horizon=1)
    with pytest.raises(ValueError, match="goal_steps"):
        planning.plan(A, B, np.eye(2), np.zeros(2), np.zeros(2), goal_var=1.0, u_max=1.0, horizon=3,
                      goal_steps="sometimes")


def test_replanning_does_not_retrace():
    traces = []
    fn = planning.plan_actions.__wrapped__

    @jax.jit
    def counted(*args):
        traces.append(1)                                      # Python side effect runs only while tracing
        return fn(*args)

    A, B, Wc = np.eye(2), np.array([[1.0], [0.0]]), np.eye(2)
    rng = np.random.default_rng(0)
    for _ in range(4):
        counted(A, B, Wc, rng.normal(size=2), rng.normal(size=2), np.ones(2), np.ones(1), np.r_[0.0, 1, 1, 1])
    assert len(traces) == 1
    n0 = planning.plan_actions._cache_size()
    for _ in range(3):
        planning.plan_actions(A, B, Wc, rng.normal(size=2), rng.normal(size=2), np.ones(2), np.ones(1),
                              np.r_[0.0, 1, 1, 1])
    assert planning.plan_actions._cache_size() <= n0 + 1


# ----------------------------------------------------------------------------- EM

def test_lds_em_free_energy_decreases_and_recovers_dynamics():
    """VB-EM on the lgssm core with fixed encoder messages: −ELBO never increases (VB steps and the
    initial-state step alike) and the posterior means recover A, B and the noise."""
    rng = np.random.default_rng(3)
    A = np.array([[0.95, 0.1], [-0.1, 0.95]])
    B = np.array([[0.0], [0.5]])
    S, T = 20, 40
    u = rng.uniform(-1, 1, (S, T - 1, 1))
    z = np.zeros((S, T, 2))
    z[:, 0] = rng.normal(size=(S, 2))
    for t in range(T - 1):
        z[:, t + 1] = z[:, t] @ A.T + u[:, t] @ B.T + 0.05 * rng.normal(size=(S, 2))
    var = np.full((S, T, 2), 0.01)
    mu = z + 0.1 * rng.normal(size=z.shape)
    lds, fe = em.fit_lds(em.init_lds(2, 1), mu, var, u, iters=15)
    lds, fe2 = em.fit_lds(lds, mu, var, u, iters=10)          # after the initial-state (empirical Bayes) step
    fe = fe + fe2
    assert all(b <= a + 1e-9 * abs(a) for a, b in zip(fe, fe[1:]))
    assert fe[-1] < fe[0]
    np.testing.assert_allclose(np.asarray(lds.A), A, atol=0.05)
    np.testing.assert_allclose(np.asarray(lds.B), B, atol=0.05)
    np.testing.assert_allclose(np.asarray(lds.W_cov), 0.05 ** 2 * np.eye(2), atol=0.0015)
    np.testing.assert_allclose(np.asarray(lds.m1), z[:, 0].mean(0), atol=0.1)


def test_a_prior_precision_pins_an_integrator_and_b_is_least_squares():
    """``a_prior_precision`` large: q(A) stays at I whatever the data, and E[B] is the least-squares fit
    of the increments z_{t+1} − z_t on u (encoder messages nearly exact; B's prior precision 1e−2 is
    included in the closed form). The default prior recovers the true (non-identity) A instead."""
    rng = np.random.default_rng(5)
    A = np.array([[0.9, 0.2], [-0.2, 0.9]])
    B = np.array([[0.3], [-0.6]])
    S, T = 10, 30
    u = rng.uniform(-1, 1, (S, T - 1, 1))
    z = np.zeros((S, T, 2))
    z[:, 0] = rng.normal(size=(S, 2))
    for t in range(T - 1):
        z[:, t + 1] = z[:, t] @ A.T + u[:, t] @ B.T + 0.05 * rng.normal(size=(S, 2))
    var = np.full((S, T, 2), 1e-8)
    pinned, _ = em.fit_lds(em.init_lds(2, 1, a_precision=1e10), z, var, u, iters=5)
    np.testing.assert_allclose(np.asarray(pinned.A), np.eye(2), atol=1e-5)
    dz, uu = (z[:, 1:] - z[:, :-1]).reshape(-1, 2), u.reshape(-1, 1)
    b_ls = np.linalg.solve(uu.T @ uu + em.AB_PRIOR_PRECISION * np.eye(1), uu.T @ dz).T
    np.testing.assert_allclose(np.asarray(pinned.B), b_ls, rtol=1e-4, atol=1e-6)
    free, _ = em.fit_lds(em.init_lds(2, 1), z, var, u, iters=5)
    np.testing.assert_allclose(np.asarray(free.A), A, atol=0.03)
    with pytest.raises(ValueError, match="a_precision"):
        em.dynamics_prior(2, 1, a_precision=-1.0)


def test_cavity_times_encoder_message_gives_posterior():
    rng = np.random.default_rng(4)
    A, B, Wc = np.eye(2) * 0.9, np.ones((2, 1)) * 0.1, 0.2 * np.eye(2)
    lds = em.point_lds(A, B, Wc, np.zeros(2), np.eye(2))
    mu, var, u = rng.normal(size=(1, 5, 2)), rng.uniform(0.1, 1, (1, 5, 2)), rng.normal(size=(1, 4, 1))
    sm = em.e_step(lds, mu, var, u)
    cm, cP = em.cavity_moments(sm)
    # product of the cavity with the encoder message must give back q(z_t)
    for t in range(5):
        lam = np.linalg.inv(np.asarray(cP[0, t])) + np.diag(1 / var[0, t])
        m = np.linalg.solve(lam, np.linalg.solve(np.asarray(cP[0, t]), np.asarray(cm[0, t])) + mu[0, t] / var[0, t])
        np.testing.assert_allclose(np.linalg.inv(lam), sm.cov[0, t], atol=1e-5)
        np.testing.assert_allclose(m, sm.mean[0, t], atol=1e-5)
    # with concentrated q([A B]) q(W) the expected LDS is the point LDS: dense conditioning
    mean, cov, _ = _dense_lds_posterior(A, B, Wc, np.zeros(2), np.eye(2), u[0], mu[0], 1 / var[0])
    np.testing.assert_allclose(sm.mean[0], mean, atol=1e-8)
    np.testing.assert_allclose(sm.cov[0], [cov[2 * t:2 * t + 2, 2 * t:2 * t + 2] for t in range(5)], atol=1e-8)


# ----------------------------------------------------------------------------- locally linear model

def _one_expert(A, B, Wc, c=None):
    d, m = B.shape
    return em.LocalLDS(jnp.zeros((1, d)), jnp.asarray(1.0), jnp.asarray(A)[None], jnp.asarray(B)[None],
                       jnp.zeros((1, d)) if c is None else jnp.asarray(c)[None], jnp.asarray(Wc)[None])


def test_local_planner_on_linear_system_equals_closed_form():
    """With one expert the model is linear: the linearised planner must give the closed-form Gaussian plan
    (dense conditioning), whatever the nominal it starts from (the plan lies inside the action bound, so
    the line search takes the full step)."""
    A = np.array([[1.0, 0.1], [0.0, 1.0]])                    # double integrator
    B = np.array([[0.0], [1.0]])
    Wc = 1e-4 * np.eye(2)
    z0, zg, H = np.array([0.0, 0.0]), np.array([1.0, 0.0]), 12
    su2 = 50.0 ** 2
    mask = np.zeros(H)
    mask[-1] = 1.0
    u_init = np.random.default_rng(0).uniform(-1, 1, (H, 1))
    res = planning.plan_local(_one_expert(A, B, Wc), z0, zg, np.full(2, 1e4), np.full(1, 1 / su2), mask,
                              u_init, iters=1)
    want = _dense_plan(A, B, Wc, z0, zg, 1e-4, su2, H)
    assert 0.2 < np.abs(want).max() < 1.0
    np.testing.assert_allclose(np.asarray(res.actions[:-1]), want, rtol=1e-7, atol=1e-9)
    ref = planning.plan_actions(A, B, Wc, z0, zg, np.full(2, 1e4), np.full(1, 1 / su2), mask)
    np.testing.assert_allclose(np.asarray(res.latents), np.asarray(ref.latents), atol=1e-9)


def test_local_planner_swings_up_a_feature_pendulum():
    """Behaviour: with experts fitted to the pendulum's (cos, sin) features of two successive frames, the
    planner swings the true pendulum up from hanging and holds it (a global linear model cannot)."""
    from pyrxaif.envs.pendulum import pendulum_step

    rng = np.random.default_rng(0)
    S, T = 12, 80
    th = np.zeros((S, T + 1))
    us = rng.uniform(-0.3, 0.3, (S, T, 1))
    for s in range(S):
        x, w = rng.uniform(-np.pi, np.pi), rng.uniform(-1, 1)
        th[s, 0] = x
        for t in range(T):
            x, w = pendulum_step(x, w, 50 * us[s, t, 0])
            th[s, t + 1] = x

    def feat(a, b):
        return np.stack([np.cos(a), np.sin(a), np.cos(b), np.sin(b)], -1)

    Z = feat(th[:, :-1], th[:, 1:])
    model = em.fit_local(Z, np.full(Z.shape, 1e-6), us[:, 1:], n_local=16, key=jax.random.PRNGKey(0))
    H = 15
    mask = np.r_[0.0, np.ones(H - 1)]
    x, w, prev = 0.1, 0.2, 0.1
    u_nom = np.zeros((H, 1))
    err = []
    for _ in range(70):
        res = planning.plan_local(model, feat(prev, x), np.array([-1.0, 0, -1, 0]), np.full(4, 100.0),
                                  np.full(1, 4.0), mask, planning.nominal_starts(u_nom), iters=5)
        a = np.asarray(res.actions)
        u_nom = np.concatenate([a[1:], a[-1:]])
        prev = x
        x, w = pendulum_step(x, w, 50 * float(np.clip(a[0, 0], -1, 1)))
        err.append(abs(wrap_angle(x - np.pi)))
    err = np.array(err)
    assert err[20:].max() < 0.3                              # up within 1 s and held for the remaining 50 steps


def test_fit_local_recovers_linear_and_switching_dynamics():
    rng = np.random.default_rng(7)
    S, T, d = 6, 60, 2
    A1 = np.array([[0.9, 0.2], [-0.2, 0.9]])
    B1 = np.array([[0.0], [0.5]])
    u = rng.uniform(-1, 1, (S, T - 1, 1))
    z = np.zeros((S, T, d))
    z[:, 0] = rng.normal(size=(S, d))
    for t in range(T - 1):
        z[:, t + 1] = z[:, t] @ A1.T + u[:, t] @ B1.T + 0.3
    model = em.fit_local(z, np.full(z.shape, 1e-10), u, n_local=4, key=jax.random.PRNGKey(0), ab_precision=1e-9)
    for k in range(4):                                       # exact affine data: every expert is exact
        np.testing.assert_allclose(np.asarray(model.A[k]), A1, atol=1e-5)
        np.testing.assert_allclose(np.asarray(model.B[k]), B1, atol=1e-5)
        np.testing.assert_allclose(np.asarray(model.c[k]), [0.3, 0.3], atol=1e-5)
    # two regions, far apart, with different dynamics: experts there recover their own region's
    za = rng.normal(size=(400, 1)) * 0.5 - 5.0
    zb = rng.normal(size=(400, 1)) * 0.5 + 5.0
    ua, ub = rng.uniform(-1, 1, (400, 1)), rng.uniform(-1, 1, (400, 1))
    Z = np.stack([np.r_[za, zb], np.r_[0.5 * za + ua - 2.5, -0.5 * zb + 2 * ub + 7.5]], 1)   # (800, 2, 1)
    U = np.r_[ua, ub][:, None, :]
    model = em.fit_local(Z, np.full(Z.shape, 1e-10), U, n_local=2, key=jax.random.PRNGKey(1), bandwidth_scale=0.2)
    order = np.argsort(np.asarray(model.centres[:, 0]))
    np.testing.assert_allclose(np.asarray(model.centres[order, 0]), [-5.0, 5.0], atol=0.1)
    np.testing.assert_allclose(np.asarray(model.A[order, 0, 0]), [0.5, -0.5], atol=1e-2)
    np.testing.assert_allclose(np.asarray(model.B[order, 0, 0]), [1.0, 2.0], atol=1e-2)
    g = np.asarray(em.gates(model, jnp.array([[-5.0], [5.0]])))
    assert g[0, order[0]] > 0.999 and g[1, order[1]] > 0.999
    assert float(em.local_mean(model, jnp.array([-5.0]), jnp.array([1.0]))[0]) == pytest.approx(-4.0, abs=0.05)
    assert float(em.local_mean(model, jnp.array([5.0]), jnp.array([1.0]))[0]) == pytest.approx(7.0, abs=0.05)


def test_state_action_experts_capture_an_effect_nonlinear_in_the_action():
    """z' = z + 0.5 tanh(3u): experts gated on z alone are affine in u everywhere; gated on [z; λu]
    they follow the saturation. Also: such experts need the action to compute their gates."""
    rng = np.random.default_rng(3)
    S, T = 600, 2                                                # single transitions from z ~ U(−1, 1)
    u = rng.uniform(-1, 1, (S, T - 1, 1))
    z = np.zeros((S, T, 1))
    z[:, 0, 0] = rng.uniform(-1, 1, S)
    z[:, 1] = z[:, 0] + 0.5 * np.tanh(3 * u[:, 0])
    var = np.full(z.shape, 1e-8)
    key = jax.random.PRNGKey(0)
    zs = em.fit_local(z, var, u, n_local=12, key=key)
    za = em.fit_local(z, var, u, n_local=12, key=key, action_weight=2.0)
    assert za.centres.shape == (12, 2) and zs.centres.shape == (12, 1)
    zq, uq = rng.uniform(-1, 1, (300, 1)), rng.uniform(-1, 1, (300, 1))
    truth = zq + 0.5 * np.tanh(3 * uq)
    err = {n: np.sqrt(np.mean((np.asarray(jax.vmap(lambda a, b: em.local_mean(mod, a, b))(zq, uq)) - truth) ** 2))
           for n, mod in (("state", zs), ("state-action", za))}
    assert err["state-action"] < 0.3 * err["state"] and err["state"] > 0.05, err
    with pytest.raises(ValueError, match="u:"):
        em.gates(za, jnp.zeros(1))
    with pytest.raises(ValueError, match="action_weight"):
        em.fit_local(z, var, u, n_local=4, key=key, action_weight=-1.0)


def _two_experts(seed=0, d=3, m=1):
    rng = np.random.default_rng(seed)
    return em.LocalLDS(jnp.asarray(rng.normal(size=(2, d))), jnp.asarray(0.8),
                       jnp.asarray(np.eye(d) + 0.2 * rng.normal(size=(2, d, d))),
                       jnp.asarray(rng.normal(size=(2, d, m))), jnp.asarray(0.1 * rng.normal(size=(2, d))),
                       jnp.asarray(np.stack([0.01 * np.eye(d), 0.02 * np.eye(d)])))


def test_plan_objective_is_minimised_by_the_posterior_mean_on_a_linear_model():
    """On a linear model the objective is the exact −log p(goals, u) with the latents marginalised:
    its gradient vanishes at the Gaussian posterior mean of the actions (dense conditioning)."""
    A = np.array([[1.0, 0.1], [0.0, 1.0]])
    B = np.array([[0.0], [1.0]])
    Wc = 1e-2 * np.eye(2)
    z0, zg, H = np.array([0.0, 0.0]), np.array([1.0, 0.0]), 10
    su2 = 4.0
    mask = np.r_[np.zeros(H - 1), 1.0]
    want = _dense_plan(A, B, Wc, z0, zg, 1e-2, su2, H)
    us = jnp.asarray(np.r_[want, [[0.0]]])
    f = lambda v: planning.plan_objective(_one_expert(A, B, Wc), jnp.asarray(z0), jnp.asarray(zg),  # noqa: E731
                                          jnp.full(2, 1e2), jnp.full(1, 1 / su2), jnp.asarray(mask), v)
    g = np.asarray(jax.grad(f)(us))
    assert np.abs(g).max() < 1e-8 * max(1.0, abs(float(f(us))))
    assert float(f(us + 0.05)) > float(f(us)) and float(f(us - 0.05)) > float(f(us))


def test_damped_multistart_planner_never_worsens_and_keeps_the_best_start():
    model = _two_experts()
    rng = np.random.default_rng(1)
    d, m, H = 3, 1, 8
    args = (model, rng.normal(size=d), rng.normal(size=d), np.full(d, 50.0), np.full(m, 2.0),
            np.r_[0.0, np.ones(H - 1)])
    inits = np.concatenate([rng.uniform(-1, 1, (2, H, m)), np.ones((1, H, m)), -np.ones((1, H, m))])
    obj = lambda us: float(planning.plan_objective(*args, jnp.asarray(us)))  # noqa: E731
    singles = [planning.plan_local(*args, inits[k], iters=4) for k in range(len(inits))]
    for k, r in enumerate(singles):                  # the line search never increases the objective
        assert obj(r.actions) <= obj(np.clip(inits[k], -1, 1)) + 1e-9
        assert np.abs(np.asarray(r.actions)).max() <= 1.0
    costs = [obj(r.actions) for r in singles]
    assert max(costs) - min(costs) > 1e-3           # the starts end in different places
    multi = planning.plan_local(*args, inits, iters=4)
    np.testing.assert_allclose(np.asarray(multi.actions), np.asarray(singles[int(np.argmin(costs))].actions),
                               atol=1e-12)


def test_planner_survives_a_roll_out_that_overflows():
    """A long roll-out of an explosive expert overflows (non-finite objective and posterior): the damped
    planner keeps a finite nominal inside the bound instead of returning NaN actions."""
    d, m, H = 2, 1, 40
    model = em.LocalLDS(jnp.zeros((1, d)), jnp.asarray(1.0), jnp.asarray(1e8 * np.eye(d))[None], jnp.ones((1, d, m)),
                        jnp.zeros((1, d)), jnp.asarray(0.01 * np.eye(d))[None])
    args = (jnp.ones(d), jnp.zeros(d), jnp.full(d, 100.0), jnp.full(m, 4.0), jnp.asarray(np.r_[np.zeros(H - 1), 1.0]))
    assert not np.isfinite(float(planning.plan_objective(model, *args, jnp.zeros((H, m)))))
    for init in (jnp.zeros((H, m)), planning.nominal_starts(jnp.zeros((H, m)))):
        a = np.asarray(planning.plan_local(model, *args, init, iters=3).actions)
        assert np.isfinite(a).all() and np.abs(a).max() <= 1.0


def test_local_replanning_does_not_retrace():
    A, B, Wc = np.eye(2), np.array([[1.0], [0.0]]), np.eye(2)
    model = _one_expert(A, B, Wc)
    rng = np.random.default_rng(0)
    args = lambda: (model, rng.normal(size=2), rng.normal(size=2), np.ones(2), np.ones(1),  # noqa: E731
                    np.r_[0.0, 1, 1, 1], rng.normal(size=(4, 1)))
    planning.plan_local(*args(), iters=3)
    multi = lambda: args()[:-1] + (planning.nominal_starts(rng.normal(size=(4, 1))),)  # noqa: E731
    planning.plan_local(*multi(), iters=3)                   # the agent's call: four nominals
    n0 = planning.plan_local._cache_size()
    for _ in range(3):
        planning.plan_local(*args(), iters=3)
        planning.plan_local(*multi(), iters=3)
    assert planning.plan_local._cache_size() == n0


def test_per_frame_vae_stacks_frame_latents_and_renders_each_frame():
    """Multi-frame variant with one shared frame encoder: window latent = [p(frame 1); p(frame 2)], so a
    still window has equal halves (zero velocity) and swapping the frames swaps the halves; the decoder
    renders every frame of the window from its own part."""
    params = vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(4, 2, per_frame=True))
    f1, f2 = render_pendulum(0.3), render_pendulum(0.6)
    w = np.stack([np.stack([f1, f2]), np.stack([f2, f1]), np.stack([f1, f1])]).astype(np.float32)
    mu, var = (np.asarray(a) for a in vae.encode(params, w, 4))
    assert mu.shape == var.shape == (3, 4) and np.all(var > 0)
    np.testing.assert_allclose(mu[0, :2], mu[1, 2:], atol=1e-6)
    np.testing.assert_allclose(mu[0, 2:], mu[1, :2], atol=1e-6)
    np.testing.assert_allclose(mu[2, :2], mu[2, 2:], atol=1e-6)
    z = np.asarray(mu[:1])
    frames = np.asarray(vae.decode_frames(params, z))
    assert frames.shape == (1, 2, 28, 28)
    np.testing.assert_allclose(np.asarray(vae.decode(params, z)), frames[:, -1], atol=1e-6)
    np.testing.assert_allclose(frames[0, 0], np.asarray(vae.decode(params, z[:, :2]))[0], atol=1e-6)
    with pytest.raises(ValueError, match="latent_dim"):
        vae.init_vae(jax.random.PRNGKey(0), vae.VAEConfig(5, 2, per_frame=True))


# ----------------------------------------------------------------------------- multi-step refinement

def test_rollout_loss_matches_a_step_by_step_rollout():
    model = _two_experts(4)
    rng = np.random.default_rng(4)
    S, T, d = 3, 9, 3
    mu, acts = rng.normal(size=(S, T, d)), rng.uniform(-1, 1, (S, T - 1, 1))
    H = 4
    z0, us, ys = em._rollout_windows(mu, acts, H)
    spread = np.mean(np.sum((mu - mu.mean((0, 1))) ** 2, -1))
    errs = []                                                # brute force: every start, every step
    for s in range(S):
        for t in range(T - H):
            z = mu[s, t]
            for h in range(H):
                z = np.asarray(em.local_mean(model, jnp.asarray(z), jnp.asarray(acts[s, t + h])))
                errs.append((h, np.sum((z - mu[s, t + h + 1]) ** 2)))
    want = np.mean([e for _, e in errs]) / spread
    assert float(em.rollout_loss(model, jnp.asarray(z0), jnp.asarray(us), jnp.asarray(ys), spread)) == \
        pytest.approx(want, rel=1e-10)


def _linear_rollouts(A, B, S=8, T=40, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (S, T - 1, 1))
    z = np.zeros((S, T, A.shape[0]))
    z[:, 0] = rng.normal(size=(S, A.shape[0]))
    for t in range(T - 1):
        z[:, t + 1] = z[:, t] @ A.T + u[:, t] @ B.T
    return z, u


def test_refine_local_rollout_recovers_a_rotation_that_the_one_step_fit_damps():
    """Data of a lightly damped rotation; the starting model is the truth with A shrunk by 3 % (the damping
    a one-step fit gets from noisy regressors): over 20 steps it loses a quarter of the amplitude. Refined
    on 5- then 10-step roll-outs (no ridge) it recovers A and B, and its 20-step error falls ≥ 100-fold."""
    a = 0.25
    A = 0.995 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    B = np.array([[0.0], [0.2]])
    z, u = _linear_rollouts(A, B)
    start = em.LocalLDS(jnp.zeros((1, 2)), jnp.asarray(1.0), jnp.asarray(0.97 * A)[None], jnp.asarray(B)[None],
                        jnp.zeros((1, 2)), 0.01 * jnp.eye(2)[None])
    refined = em.refine_local_rollout(start, z, u, horizons=(5, 10), iters=400, lr=3e-3, ridge=0.0)
    np.testing.assert_allclose(np.asarray(refined.A[0]), A, atol=2e-3)
    np.testing.assert_allclose(np.asarray(refined.B[0]), B, atol=5e-3)
    np.testing.assert_allclose(np.asarray(refined.c[0]), 0.0, atol=2e-3)
    for name in ("centres", "bandwidth", "W_cov"):                # gates and noise are the one-step fit's
        np.testing.assert_array_equal(np.asarray(getattr(refined, name)), np.asarray(getattr(start, name)))
    zh, uh = _linear_rollouts(A, B, seed=1)                        # held out
    args = [jnp.asarray(x) for x in em._rollout_windows(zh, uh, 20)]
    spread = np.mean(np.sum((zh - zh.mean((0, 1))) ** 2, -1))
    before = float(em.rollout_loss(start, *args, spread))
    after = float(em.rollout_loss(refined, *args, spread))
    assert before > 0.01 and after < before / 100, (before, after)


def test_refine_local_rollout_keeps_an_exact_model_and_checks_its_input():
    A, B = np.array([[0.9, 0.1], [-0.1, 0.9]]), np.array([[0.0], [1.0]])
    z, u = _linear_rollouts(A, B, S=3, T=12)
    exact = em.LocalLDS(jnp.zeros((1, 2)), jnp.asarray(1.0), jnp.asarray(A)[None], jnp.asarray(B)[None],
                        jnp.zeros((1, 2)), 0.01 * jnp.eye(2)[None])
    kept = em.refine_local_rollout(exact, z, u, horizons=(3,), iters=20)     # loss 0 at the start: a fixed point
    np.testing.assert_allclose(np.asarray(kept.A), np.asarray(exact.A), atol=1e-12)
    np.testing.assert_allclose(np.asarray(kept.B), np.asarray(exact.B), atol=1e-12)
    bad = [({"horizons": (12,)}, "horizons"), ({"horizons": ()}, "horizons"), ({"horizons": (2.5,)}, "horizons"),
           ({"iters": 0}, "iters"), ({"lr": -1.0}, "lr"), ({"lr": "fast"}, "lr"), ({"ridge": np.nan}, "ridge")]
    for kw, name in bad:
        with pytest.raises(ValueError, match=f"^{name}:"):
            em.refine_local_rollout(exact, z, u, **kw)
    with pytest.raises(ValueError, match="^actions:"):
        em.refine_local_rollout(exact, z, u[:, 1:])
    with pytest.raises(ValueError, match="^enc_mean:"):
        em.refine_local_rollout(exact, z[..., :1], u)
    with pytest.raises(ValueError, match="^enc_mean: expected finite"):
        em.refine_local_rollout(exact, np.where(z > 1, np.nan, z), u)
    with pytest.raises(ValueError, match="^actions: expected finite"):
        em.refine_local_rollout(exact, z, np.where(u > 0.5, np.inf, u))
    with pytest.raises(TypeError, match="^model:"):
        em.refine_local_rollout(A, z, u)
