"""JOPA-style agent: learn a latent linear model from pixels (VAE + LDS by variational EM), validate
it, then act by planning as inference (actions as latent variables, receding horizon).

Tasks: "pendulum" (PixelPendulum, swing up to θ = π and stay) and "digits" (RotatingDigits, rotate
to a goal angle). Actions are normalised to [−1, 1] inside the model (torque / max_torque,
speed / max_speed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from tqdm.auto import tqdm

from pyrxaif import _validation as V
from pyrxaif.envs.digits import RotatingDigits, rotate_image
from pyrxaif.envs.pendulum import PixelPendulum, render_pendulum, wrap_angle
from pyrxaif.inference import em
from pyrxaif.engines import require_engine
from pyrxaif.inference.planning import nominal_starts, plan_local
from pyrxaif.nn import vae

TASKS = ("pendulum", "digits")


@dataclass
class JopaConfig:
    task: str = "pendulum"
    latent_dim: int = 4
    frames: int = 2
    per_frame: bool = True           # multi-frame encoder as a stack of per-frame latents (carries velocity)
    n_traj: int = 40
    traj_len: int = 80
    data_action_scale: float = 0.3   # random actions ~ U(−s_i, s_i) (normalised units) while collecting,
    data_goal_fraction: float = 0.25 # pendulum: share of exploration trajectories starting near upright
    data_scale_spread: float = 1.0   # s_i log-uniform in [s·10^−spread, s] per trajectory (slow and fast data)
    pretrain_epochs: int = 30
    pretrain_prior: str = "gaussian" # VAE pre-training prior: "gaussian" N(0, I) or "ring" (cyclic 2-d frame latents)
    em_iters: int = 6
    vae_epochs_per_em: int = 5
    lds_iters_per_em: int = 5
    a_prior_precision: float | None = None  # EM prior precision of A around I (None: the weak default)
    batch_size: int = 128
    lr: float = 2e-3
    horizon: int = 15
    goal_var: float = 0.01
    prior_scale: float = 0.5
    goal_steps: str = "all"          # goal message on every future z_t ("all") or only on z_H ("final")
    n_local: int = 16                # local affine experts of the planning transition model
    bandwidth_scale: float = 0.5     # gate width h = scale × median distance between neighbouring centres
    gate_action_weight: float = 0.0  # λ > 0: experts local in the state-action space, gates on [z; λ u]
    plan_iters: int = 5              # re-linearisations per plan
    plan_multistart: bool = True     # also start each plan from the constant nominals 0, +u_max, −u_max
    plan_noise_scale: float = 1.0    # the planner uses the experts' noise covariances W_k⁻¹ times this
    max_torque: float = 50.0
    max_speed: float = float(np.pi / 8)
    # validation bar: normalised one-step latent prediction error and pixel MSE on held-out sequences
    max_pred_nmse: float = 0.5
    max_recon_mse: float = 0.02
    # closed-loop refit: episodes of the trained model's own controller whose frames join the training
    # data for a refit of the planning experts (0: none)
    refit_episodes: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        V.check_choice("task", self.task, TASKS)
        V.check_choice("pretrain_prior", self.pretrain_prior, ("gaussian", "ring"))
        if self.pretrain_prior == "ring":
            p = self.latent_dim // self.frames if self.per_frame and self.frames > 1 else self.latent_dim
            if p != 2 or (self.per_frame and self.frames > 1 and self.latent_dim % self.frames):
                raise ValueError(f"pretrain_prior: 'ring' needs 2-d frame latents, got latent_dim = {self.latent_dim} "
                                 f"for frames = {self.frames} (per_frame = {self.per_frame})")
        if not isinstance(self.refit_episodes, (int, np.integer)) or self.refit_episodes < 0:
            raise ValueError(f"refit_episodes: expected an integer >= 0, got {self.refit_episodes!r}")
        V.check_choice("goal_steps", self.goal_steps, ("final", "all"))
        for name in ("plan_noise_scale", "bandwidth_scale"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        if self.a_prior_precision is not None and not (np.isfinite(self.a_prior_precision)
                                                       and self.a_prior_precision > 0):
            raise ValueError(f"a_prior_precision: expected a positive number or None, got {self.a_prior_precision!r}")
        if not np.isfinite(self.gate_action_weight) or self.gate_action_weight < 0:
            raise ValueError(f"gate_action_weight: expected a number >= 0, got {self.gate_action_weight!r}")
        for name in ("latent_dim", "frames", "n_traj", "traj_len", "horizon", "n_local", "plan_iters"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if self.traj_len <= self.frames + 1:
            raise ValueError(f"traj_len: expected > frames + 1 = {self.frames + 1}, got {self.traj_len}")
        if self.horizon < 2:
            raise ValueError(f"horizon: expected >= 2, got {self.horizon}")


# ----------------------------------------------------------------------------- data

def make_env(config: JopaConfig, images=None):
    if config.task == "pendulum":
        return PixelPendulum(max_torque=config.max_torque)
    return RotatingDigits(images=images, max_speed=config.max_speed)


def _scale(config):
    return config.max_torque if config.task == "pendulum" else config.max_speed


def collect(config: JopaConfig, seed: int, n_traj: int | None = None, images=None):
    """Random-action trajectories: frames (S, T, 28, 28), actions (S, T−1, 1) normalised, states (S, T)."""
    n_traj = config.n_traj if n_traj is None else n_traj
    env = make_env(config, images)
    rng = np.random.default_rng(seed)
    T = config.traj_len
    frames = np.zeros((n_traj, T, 28, 28), np.float32)
    scales = config.data_action_scale * 10.0 ** (-config.data_scale_spread * rng.uniform(0.0, 1.0, (n_traj, 1, 1)))
    actions = scales * rng.uniform(-1.0, 1.0, (n_traj, T - 1, 1))
    states = np.zeros((n_traj, T))
    key = "theta" if config.task == "pendulum" else "angle"
    n_goal = int(round(config.data_goal_fraction * n_traj)) if config.task == "pendulum" else 0
    for s in range(n_traj):
        # pendulum: a fraction of the exploration starts near upright (an unstable equilibrium that random
        # torques from random starts visit only at speed); the rest starts at θ ~ U(−π, π), ω ~ U(−1, 1)
        opts = {"theta": float(np.pi + rng.uniform(-0.5, 0.5))} if s < n_goal else None
        obs, info = env.reset(seed=int(rng.integers(2**31)), options=opts)
        frames[s, 0], states[s, 0] = obs, info[key]
        for t in range(T - 1):
            obs, _, _, _, info = env.step(actions[s, t] * _scale(config))
            frames[s, t + 1], states[s, t + 1] = obs, info[key]
    return frames, actions, states


def windows_of(frames, K: int):
    """(S, T, H, W) → (S, T−K+1, K, H, W): window t holds frames t..t+K−1 (newest last)."""
    T = frames.shape[1]
    return np.stack([frames[:, k:T - K + 1 + k] for k in range(K)], axis=2)


# ----------------------------------------------------------------------------- model

@dataclass
class JopaModel:
    config: JopaConfig
    params: dict
    lds: em.LDS            # global LDS of the variational EM (the VAE's latent prior)
    local: em.LocalLDS     # locally linear transition model used for planning

    def planning_model(self) -> em.LocalLDS:
        """The transition model the planner uses: the local experts with their noise covariances
        scaled by ``config.plan_noise_scale``."""
        return self.local._replace(W_cov=self.local.W_cov * self.config.plan_noise_scale)

    def nominals(self, u_warm):
        """The nominals a re-plan starts from: the warm start, and with ``config.plan_multistart`` also
        the constant nominals (:func:`pyrxaif.inference.planning.nominal_starts`)."""
        return nominal_starts(u_warm) if self.config.plan_multistart else u_warm

    def encode(self, windows):
        mu, var = vae.encode(self.params, np.asarray(windows, np.float32), self.config.latent_dim)
        return np.asarray(mu, np.float64), np.asarray(var, np.float64)


def _encode_seqs(params, config, wins):
    S, Tw = wins.shape[:2]
    mu, var = vae.encode(params, wins.reshape(S * Tw, *wins.shape[2:]), config.latent_dim)
    d = config.latent_dim
    return (np.asarray(mu, np.float64).reshape(S, Tw, d), np.asarray(var, np.float64).reshape(S, Tw, d))


def pretraining_prior(config: JopaConfig, n: int):
    """The VAE pre-training prior of ``n`` windows as :func:`vae.train_epoch` takes it: (prior_mean,
    prior_cov, ring) = (0, I, None) per window, or (None, None, RingPrior()) with ``pretrain_prior="ring"``."""
    if config.pretrain_prior == "ring":
        return None, None, vae.RingPrior()
    d = config.latent_dim
    return np.zeros((n, d)), np.broadcast_to(np.eye(d), (n, d, d)).copy(), None


def train(config: JopaConfig, frames, actions, seed: int = 0, progress: bool = True, images=None):
    """VAE pre-training (prior N(0, I) or the ring prior), variational EM, the planning experts, and with
    ``config.refit_episodes`` their closed-loop refit (:func:`closed_loop_data`; digits need the training
    ``images`` for it); returns (model, history)."""
    K, d = config.frames, config.latent_dim
    wins = windows_of(frames, K)                         # (S, Tw, K, 28, 28)
    acts = np.asarray(actions[:, K - 1:], np.float64)    # action between window t and t+1
    S, Tw = wins.shape[:2]
    flat = wins.reshape(S * Tw, *wins.shape[2:])
    key = jax.random.PRNGKey(seed)
    key, k0 = jax.random.split(key)
    params = vae.init_vae(k0, vae.VAEConfig(d, K, per_frame=config.per_frame and K > 1))
    opt = vae.make_optimizer(config.lr)
    opt_state = opt.init(params)
    prior_m, prior_P, ring = pretraining_prior(config, S * Tw)
    history = {"pretrain_loss": [], "em": []}
    for _ in tqdm(range(config.pretrain_epochs), desc="VAE pre-training", disable=not progress):
        key, k = jax.random.split(key)
        params, opt_state, loss = vae.train_epoch(params, opt_state, k, flat, prior_m, prior_P, latent_dim=d,
                                                  beta=1.0, optimizer=opt, batch_size=config.batch_size, ring=ring)
        history["pretrain_loss"].append(loss)
    lds = em.init_lds(d, acts.shape[-1], config.a_prior_precision)
    for _ in tqdm(range(config.em_iters), desc="variational EM", disable=not progress):
        mu, var = _encode_seqs(params, config, wins)
        lds, fe_lds = em.fit_lds(lds, mu, var, acts, iters=config.lds_iters_per_em)
        cm, cP = em.cavity_moments(em.e_step(lds, mu, var, acts))
        cm = np.asarray(cm).reshape(S * Tw, d)
        cP = np.asarray(cP).reshape(S * Tw, d, d)
        losses = []
        for _ in range(config.vae_epochs_per_em):
            key, k = jax.random.split(key)
            params, opt_state, loss = vae.train_epoch(params, opt_state, k, flat, cm, cP, latent_dim=d, beta=1.0,
                                                      optimizer=opt, batch_size=config.batch_size)
            losses.append(loss)
        # per frame: the LDS's −ELBO (VB, over the encoder messages) and the VAE loss under the cavity prior
        fe = {"lds_free_energy": fe_lds[-1] / (S * Tw), "vae_loss": losses[-1]}
        fe["free_energy"] = fe["lds_free_energy"] + fe["vae_loss"]
        history["em"].append(fe)
    mu, var = _encode_seqs(params, config, wins)
    lds, _ = em.fit_lds(lds, mu, var, acts, iters=config.lds_iters_per_em)

    def fit(m, v, a, k):
        return em.fit_local(m, v, a, n_local=config.n_local, key=k, bandwidth_scale=config.bandwidth_scale,
                            action_weight=config.gate_action_weight)

    key, k = jax.random.split(key)
    model = JopaModel(config, params, lds, fit(mu, var, acts, k))
    if config.refit_episodes:
        # the experts are refitted on the training data plus the states the controller itself visits
        # (the top of a swing, held; sparse under random exploration)
        cl_frames, cl_actions, _ = closed_loop_data(model, config.refit_episodes, seed, images=images,
                                                    progress=progress)
        cl_mu, cl_var = _encode_seqs(params, config, windows_of(cl_frames, K))
        key, k = jax.random.split(key)
        model.local = fit(np.concatenate([mu, cl_mu]), np.concatenate([var, cl_var]),
                          np.concatenate([acts, np.asarray(cl_actions[:, K - 1:], np.float64)]), k)
        history["refit"] = {"episodes": int(config.refit_episodes),
                            "frames": int(cl_frames.shape[0] * cl_frames.shape[1])}
    return model, history


def closed_loop_data(model: JopaModel, episodes: int, seed: int, images=None, progress: bool = True):
    """Frames (E, T, 28, 28), normalised actions (E, T−1, 1) and true states (E, T) of ``episodes``
    receding-horizon episodes of ``model``'s own controller (T = traj_len, the training sequences' length).
    Half start near the goal (pendulum: upright ± 0.5 rad, ω ~ U(−1, 1); digits: the goal angle ± 0.3 rad),
    the rest from the environment's random reset; goals: upright, or a random angle in ±1.2 rad for the digits."""
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes: expected a positive integer, got {episodes!r}")
    cfg = model.config
    env = make_env(cfg, images)
    rng = np.random.default_rng([seed, 2])
    frames, actions, states = [], [], []
    for i in tqdm(range(episodes), desc="closed-loop data", disable=not progress):
        goal = float(np.pi) if cfg.task == "pendulum" else float(rng.uniform(-1.2, 1.2))
        near = {"theta": goal + float(rng.uniform(-0.5, 0.5)), "omega": float(rng.uniform(-1.0, 1.0))} \
            if cfg.task == "pendulum" else {"angle": goal + float(rng.uniform(-0.3, 0.3))}
        opts = near if i % 2 == 0 else {}
        env.reset(seed=int(rng.integers(2**31)))
        tr = run_episode(model, env, start=opts, goal=goal, steps=cfg.traj_len - 1)
        frames.append(tr["frames"])
        actions.append(np.asarray(tr["actions"])[:, None] / _scale(cfg))
        states.append(tr["states"])
    return np.stack(frames).astype(np.float32), np.stack(actions), np.stack(states)


# ----------------------------------------------------------------------------- validation, checkpoints

def validate(model: JopaModel, frames, actions) -> dict:
    """Held-out figures on encoder means: normalised one-step latent prediction error (1 − R²) of the
    planning model z_{t+1} ≈ f(z_t, u_t) (``pred_nmse``) and of the global LDS A z_t + B u_t
    (``pred_nmse_global``), and per-pixel reconstruction MSE of the newest frame."""
    cfg = model.config
    frames = V.as_float_array("frames", frames, ndim=4, dtype=np.float32)
    actions = V.as_float_array("actions", actions, ndim=3)
    wins = windows_of(frames, cfg.frames)
    acts = actions[:, cfg.frames - 1:]
    mu, _ = _encode_seqs(model.params, cfg, wins)
    A, B = np.asarray(model.lds.A), np.asarray(model.lds.B)
    pred_global = mu[:, :-1] @ A.T + acts @ B.T
    f = jax.vmap(jax.vmap(lambda z, u: em.local_mean(model.local, z, u)))
    pred = np.asarray(f(jnp.asarray(mu[:, :-1]), jnp.asarray(acts, jnp.float64)))
    spread = np.mean(np.sum((mu[:, 1:] - mu[:, 1:].mean((0, 1))) ** 2, -1))
    nmse = lambda p: float(np.mean(np.sum((mu[:, 1:] - p) ** 2, -1)) / spread)  # noqa: E731
    flat = wins.reshape(-1, *wins.shape[2:])
    rec = np.asarray(vae.decode(model.params, mu.reshape(-1, cfg.latent_dim)))
    return {"pred_nmse": nmse(pred), "pred_nmse_global": nmse(pred_global),
            "recon_mse": float(np.mean((rec - flat[:, -1]) ** 2))}


class CheckpointRejected(ValueError):
    """The checkpoint does not meet the validation bar."""


def check(model: JopaModel, metrics: dict) -> None:
    cfg = model.config
    bad = []
    if not metrics["pred_nmse"] <= cfg.max_pred_nmse:
        bad.append(f"latent one-step prediction error {metrics['pred_nmse']:.3f} > {cfg.max_pred_nmse}")
    if not metrics["recon_mse"] <= cfg.max_recon_mse:
        bad.append(f"reconstruction MSE {metrics['recon_mse']:.4f} > {cfg.max_recon_mse}")
    if bad:
        raise CheckpointRejected("checkpoint rejected on held-out sequences: " + "; ".join(bad)
                                 + " (train longer or with more data)")


def _leaves(tree):
    return {str(i): np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(tree))}


def _unleaves(template, state, dtype):
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if set(state) != {str(i) for i in range(len(leaves))}:
        raise ValueError(f"checkpoint: expected {len(leaves)} arrays for {type(template).__name__}, got {len(state)}")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(state[str(i)], dtype) for i in range(len(leaves))])


def save(model: JopaModel, path: str) -> None:
    """msgpack via flax.serialization: float32 VAE params, float64 LDS posterior/prior and local
    experts, config as JSON."""
    state = {"params": jax.tree_util.tree_map(np.asarray, model.params),
             "lds": _leaves(model.lds), "local": _leaves(model.local),
             "config": json.dumps(asdict(model.config))}
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize(state))


def load(path: str) -> JopaModel:
    with open(path, "rb") as f:
        state = serialization.msgpack_restore(f.read())
    if not isinstance(state, dict) or not {"params", "lds", "local", "config"} <= set(state):
        raise ValueError(f"path: {path!r} is not a JOPA checkpoint (keys {sorted(state) if isinstance(state, dict) else []})")
    cfg = JopaConfig(**json.loads(state["config"]))
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), state["params"])
    # the pytree structures do not depend on the dimensions: any instance serves as the template
    lds = _unleaves(em.init_lds(1, 1), state["lds"], jnp.float64)
    loc = dict(state["local"])
    if len(loc) == len(em.LocalLDS._fields) - 1:      # checkpoints written before the state-action gates
        loc[str(len(loc))] = np.asarray(0.0)
    local = _unleaves(em.LocalLDS(*([0.0] * len(em.LocalLDS._fields))), loc, jnp.float64)
    return JopaModel(cfg, params, lds, local)


# ----------------------------------------------------------------------------- control

def goal_window(config: JopaConfig, goal: float, image=None):
    """K identical goal frames (zero velocity): upright pendulum or the digit at the goal angle."""
    frame = render_pendulum(goal) if config.task == "pendulum" else rotate_image(image, goal)
    return np.repeat(frame[None], config.frames, axis=0)


def planner(engine: str | None = None):
    """The locally linear planner of ``engine``: ``planning.plan_local`` (JAX, one jitted call per
    re-plan) or ``pyrxaif.engines.julia.plan_local`` (each linearised plan solved by RxInfer). The
    Julia engine is started here (or ``JuliaUnavailableError`` says why not)."""
    if require_engine(engine) == "julia":
        from pyrxaif.engines import julia as ej  # noqa: PLC0415

        return ej.plan_local
    return plan_local


def run_episode(model: JopaModel, env, *, start: dict, goal: float, steps: int, goal_steps: str | None = None,
                engine: str | None = None):
    """Receding-horizon control from ``start`` (reset options); returns a dict of traces.

    ``engine``: ``"jax"`` or ``"julia"`` (see :func:`planner`); ``None`` reads ``PYRXAIF_ENGINE``."""
    plan_fn = planner(engine)
    cfg = model.config
    local = model.planning_model()
    K, d, H = cfg.frames, cfg.latent_dim, cfg.horizon
    obs, info = env.reset(options=start)
    img = env.images[env.index] if cfg.task == "digits" else None
    zg, _ = model.encode(goal_window(cfg, goal, img)[None])
    hist = [obs] * K
    goal_steps = cfg.goal_steps if goal_steps is None else goal_steps
    V.check_choice("goal_steps", goal_steps, ("final", "all"))
    mask = np.zeros(H)
    if goal_steps == "final":
        mask[-1] = 1.0
    else:
        mask[1:] = 1.0
    u_prec = np.full(model.lds.B.shape[1], 1.0 / cfg.prior_scale ** 2)
    goal_prec = np.full(d, 1.0 / cfg.goal_var)
    key = "theta" if cfg.task == "pendulum" else "angle"
    states, acts, latents, frames = [info[key]], [], [], [obs]
    u_nom = jnp.zeros((H, model.local.B.shape[-1]))
    for _ in range(steps):
        z, _ = model.encode(np.stack(hist[-K:])[None])
        res = plan_fn(local, jnp.asarray(z[0]), jnp.asarray(zg[0]), goal_prec, u_prec, mask, model.nominals(u_nom),
                      iters=cfg.plan_iters)
        u_nom = jnp.concatenate([res.actions[1:], res.actions[-1:]])   # warm start: the plan shifted by one
        u = float(np.clip(res.actions[0, 0], -1.0, 1.0))     # projection onto the action bound
        obs, _, _, _, info = env.step(np.array([u * _scale(cfg)]))
        hist.append(obs)
        states.append(info[key])
        acts.append(u * _scale(cfg))
        latents.append(z[0])
        frames.append(obs)
    return {"states": np.array(states), "actions": np.array(acts), "latents": np.array(latents),
            "goal_latent": zg[0], "frames": np.array(frames)}


def pendulum_success(theta, tol: float = 0.3, hold: int = 50) -> tuple[bool, bool, int]:
    """(swung up: some |θ − π| < tol; stabilised: ≥ hold consecutive steps within tol; longest run)."""
    ok = np.abs(wrap_angle(np.asarray(theta) - np.pi)) < tol
    best = run = 0
    for v in ok:
        run = run + 1 if v else 0
        best = max(best, run)
    return bool(ok.any()), best >= hold, int(best)
