"""Pixels to control: learn a latent linear model from frames (VAE + LDS by variational EM), validate it
on held-out sequences, then act by planning as inference (actions as latent variables, receding horizon).

What the environment is lives in a :class:`~pyrxaif.agents.pixel_tasks.PixelTask` (pendulum swing-up,
rotating digits, ...); this module has no per-task branches. Actions are normalised to [−1, 1] inside the
model (environment action = normalised action × ``task.action_scale``). The settings are split by concern
in :class:`PixelControlConfig`: :class:`DataConfig`, :class:`ModelConfig`, :class:`LearningConfig`,
:class:`PlannerConfig` and :class:`ValidationBar`. The method follows JOPA (the reference project);
``pyrxaif.agents.jopa`` is a deprecated alias of this module.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from pyrxaif import checks as V
from pyrxaif import checkpoint as ckpt
from pyrxaif.agents.pixel_tasks import TASKS, DigitsTask, PendulumTask, PixelTask, task_from_dict
from pyrxaif.envs.pendulum import wrap_angle
from pyrxaif.engines import engine as select_engine
from pyrxaif.inference import em
from pyrxaif.inference.planning import goal_mask, nominal_starts, plan_local
from pyrxaif.nn import vae

__all__ = ["DataConfig", "ModelConfig", "LearningConfig", "PlannerConfig", "ValidationBar", "PixelControlConfig",
           "PixelControlModel", "ValidationRefused", "validation_failures", "default_config", "collect",
           "assess", "train_validated", "restart_seed",
           "windows_of", "train", "closed_loop_data", "open_loop_nmse", "validate", "check", "save", "load", "goal_window", "planner",
           "run_episode", "stalled", "escape_offset", "closed_loop_gate", "latent_judged_states", "pretraining_prior",
           "encode_sequences", "TASKS", "PixelTask", "PendulumTask", "DigitsTask"]

CHECKPOINT_KIND = "pixel-control"
FRAME_SIZE = 28     # frames are FRAME_SIZE × FRAME_SIZE grey levels in [0, 1]


def check_frames(name: str, frames, lead: str) -> np.ndarray:
    """Frames as float32 of shape (*lead axes*, 28, 28) with values in [0, 1]; ``lead`` names the
    leading axes, e.g. "N, K" (each at least 1)."""
    arr = V.as_float_array(name, frames, dtype=np.float32)
    n_lead = len(lead.split(","))
    if arr.ndim != n_lead + 2 or arr.shape[-2:] != (FRAME_SIZE, FRAME_SIZE) or min(arr.shape[:n_lead], default=1) < 1:
        raise ValueError(f"{name}: expected shape ({lead}, {FRAME_SIZE}, {FRAME_SIZE}) with non-empty leading axes, "
                         f"got {arr.shape}")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"{name}: expected grey levels in [0, 1], got values in [{arr.min():.3g}, {arr.max():.3g}] "
                         f"(uint8 frames: divide by 255)")
    return arr


def _check_goal(goal) -> float:
    return float(V.as_float_array("goal", goal, ndim=0))


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _check_positive_numbers(obj, names):
    for name in names:
        v = getattr(obj, name)
        if not (_is_number(v) and np.isfinite(v) and v > 0):
            raise ValueError(f"{name}: expected a positive number, got {v!r}")


def _check_non_negative_numbers(obj, names):
    for name in names:
        v = getattr(obj, name)
        if not (_is_number(v) and np.isfinite(v) and v >= 0):
            raise ValueError(f"{name}: expected a number >= 0, got {v!r}")


def _check_flags(obj, names):
    for name in names:
        v = getattr(obj, name)
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {v!r}")


@dataclass
class DataConfig:
    """Exploration data: ``n_traj`` random-action trajectories of ``traj_len`` frames; actions
    ~ U(−s_i, s_i) (normalised units), s_i log-uniform in [s·10^−spread, s] per trajectory (slow and fast
    data), s = ``action_scale``, spread = ``scale_spread``."""
    n_traj: int = 40
    traj_len: int = 80
    action_scale: float = 0.3
    scale_spread: float = 1.0

    def __post_init__(self):
        for name in ("n_traj", "traj_len"):
            V.check_count(name, getattr(self, name))
        _check_positive_numbers(self, ("action_scale",))
        _check_non_negative_numbers(self, ("scale_spread",))


@dataclass
class ModelConfig:
    """What the arrays' shapes depend on: the VAE's latent of ``frames`` stacked frames (``per_frame``: a
    stack of per-frame latents, which carries the velocity) and the planning transition model's
    ``n_local`` affine experts, their gate width (``bandwidth_scale`` × the median distance between
    neighbouring centres) and ``gate_action_weight`` λ (> 0: experts local in the state-action space)."""
    latent_dim: int = 4
    frames: int = 2
    per_frame: bool = True
    n_local: int = 16
    bandwidth_scale: float = 0.5
    gate_action_weight: float = 0.0

    def __post_init__(self):
        for name in ("latent_dim", "frames", "n_local"):
            V.check_count(name, getattr(self, name))
        _check_positive_numbers(self, ("bandwidth_scale",))
        _check_non_negative_numbers(self, ("gate_action_weight",))
        _check_flags(self, ("per_frame",))

    @property
    def frame_latent_dim(self) -> int | None:
        """Dimensions per frame of a per-frame window latent (None for a single or stacked encoder)."""
        if self.per_frame and self.frames > 1:
            return self.latent_dim // self.frames if self.latent_dim % self.frames == 0 else None
        return self.latent_dim


@dataclass
class LearningConfig:
    """VAE pre-training (``pretrain_prior`` "gaussian" N(0, I) or "ring": cyclic 2-d frame latents), the
    variational EM (``em_iters`` × (``lds_iters_per_em`` LDS updates + ``vae_epochs_per_em`` VAE epochs),
    ``a_prior_precision``: the EM prior precision of A around I, None for the weak default) and the
    closed-loop refit of the planning experts on ``refit_episodes`` episodes of the model's own controller;
    ``restarts``: further trainings with fresh training seeds while a model misses the validation bar
    on held-out data, the closed-loop gate included (:func:`train_validated`); ``redraw_data``: each
    restart also explores anew (its own exploration data from its training seed), else it reuses the
    first attempt's data. ``rollout_horizons`` (empty: off): after the (re)fit, the experts' means are
    refined on the training latents by their open-loop error over these horizons in turn
    (:func:`~pyrxaif.inference.em.refine_local_rollout`, ``rollout_iters`` Adam steps each at ``rollout_lr``)."""
    pretrain_epochs: int = 30
    pretrain_prior: str = "gaussian"
    em_iters: int = 6
    vae_epochs_per_em: int = 5
    lds_iters_per_em: int = 5
    a_prior_precision: float | None = None
    batch_size: int = 128
    lr: float = 2e-3
    refit_episodes: int = 0
    restarts: int = 0
    redraw_data: bool = True
    rollout_horizons: tuple = ()
    rollout_iters: int = 300
    rollout_lr: float = 1e-3

    def __post_init__(self):
        V.check_choice("pretrain_prior", self.pretrain_prior, ("gaussian", "ring"))
        for name in ("em_iters", "vae_epochs_per_em", "lds_iters_per_em", "batch_size"):
            V.check_count(name, getattr(self, name))
        _check_positive_numbers(self, ("lr",))
        for name in ("pretrain_epochs", "refit_episodes", "restarts"):
            V.check_count(name, getattr(self, name), minimum=0)
        if self.a_prior_precision is not None:
            _check_positive_numbers(self, ("a_prior_precision",))
        _check_flags(self, ("redraw_data",))
        if not isinstance(self.rollout_horizons, (tuple, list)):
            raise ValueError(f"rollout_horizons: expected a sequence of positive integers (empty: off), "
                             f"got {self.rollout_horizons!r}")
        self.rollout_horizons = tuple(V.check_count("rollout_horizons", h) for h in self.rollout_horizons)
        V.check_count("rollout_iters", self.rollout_iters)
        _check_positive_numbers(self, ("rollout_lr",))


@dataclass
class PlannerConfig:
    """Receding-horizon planning as inference: horizon, goal message N(z_goal, ``goal_var`` I) on every
    future latent ("all") or the last ("final"), action prior N(0, ``prior_scale``²), ``iters``
    re-linearisations per plan, ``multistart`` (also start from the constant nominals 0, ±u_max),
    ``noise_scale`` (the experts' noise covariances are multiplied by it inside the planner) and
    ``near_goal_horizon`` (None: off): the horizon used while the agent's own reading of the newest frame
    (:func:`latent_judged_states`) is within the task's error band of the goal (a long horizon spans the
    pumps of a swing-up; near an unstable goal a short one holds it).

    ``escape_step`` (radians; None: off): a way out of a local optimum of the goal message short of the
    goal. While the agent's own reading of the newest frame is outside the task's error band and has not
    come ``stall_progress`` radians closer to the goal in the last ``stall_steps`` steps than its closest
    reading before them (:func:`stalled`), the goal message of the plan is the still window
    ``escape_step`` radians closer to the goal than that reading, along the circle of still goal-frame
    windows the agent's judge reads from (:func:`escape_offset`); the real goal returns as soon as the
    reading progresses or enters the band."""
    horizon: int = 15
    goal_var: float = 0.01
    prior_scale: float = 0.5
    goal_steps: str = "all"
    iters: int = 5
    multistart: bool = True
    noise_scale: float = 1.0
    near_goal_horizon: int | None = None
    escape_step: float | None = None
    stall_steps: int = 10
    stall_progress: float = 0.175

    def __post_init__(self):
        for name in ("horizon", "iters", "stall_steps"):
            V.check_count(name, getattr(self, name))
        for name in ("horizon", "near_goal_horizon"):
            v = getattr(self, name)
            if v is not None and V.check_count(name, v) < 2:
                raise ValueError(f"{name}: expected >= 2, got {v}")
        V.check_choice("goal_steps", self.goal_steps, ("final", "all"))
        _check_positive_numbers(self, ("goal_var", "prior_scale", "noise_scale", "stall_progress"))
        _check_flags(self, ("multistart",))
        if self.escape_step is not None:
            _check_positive_numbers(self, ("escape_step",))
            if not self.escape_step < np.pi:
                raise ValueError(f"escape_step: expected a step in (0, π) radians, got {self.escape_step!r}")


@dataclass
class ValidationBar:
    """The bar a model must meet before it plans: on held-out sequences, normalised one-step latent
    prediction error, per-pixel reconstruction MSE and the normalised open-loop prediction error over the
    planning horizon (:func:`open_loop_nmse`; ``inf``: report, do not refuse); and ``gate_trials``
    closed-loop trials judged by the agent's own encoder (:func:`closed_loop_gate`; 0: no trials) that must
    show the task's success bars at ``gate_confidence`` (:func:`~pyrxaif.agents.pixel_tasks.required_successes`:
    at 0.9 and 20 trials, 19/20 for a bar of 80 %, 16/20 for 60 %; None: the point bars, 16/20 and 12/20)."""
    max_pred_nmse: float = 0.5
    max_recon_mse: float = 0.02
    max_horizon_nmse: float = np.inf
    gate_trials: int = 20
    gate_confidence: float | None = 0.9

    def __post_init__(self):
        for name in ("max_pred_nmse", "max_recon_mse", "max_horizon_nmse"):
            v = getattr(self, name)
            if not (_is_number(v) and not np.isnan(v) and v > 0):
                raise ValueError(f"{name}: expected a positive number (inf: no bar), got {v!r}")
        V.check_count("gate_trials", self.gate_trials, minimum=0)      # 0: no closed-loop gate
        c = self.gate_confidence
        if c is not None and not (_is_number(c) and 0 < c < 1):
            raise ValueError(f"gate_confidence: expected a level in (0, 1) or None (the point bars), got {c!r}")


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "learning": LearningConfig, "planner": PlannerConfig,
             "bar": ValidationBar}


@dataclass
class PixelControlConfig:
    """All settings of one pixels-to-control agent, by concern."""
    task: PixelTask = field(default_factory=PendulumTask)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    bar: ValidationBar = field(default_factory=ValidationBar)

    def __post_init__(self):
        if not isinstance(self.task, PixelTask):
            raise TypeError(f"task: expected a PixelTask (one of {sorted(TASKS)}), got {type(self.task).__name__}")
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"{name}: expected a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        m = self.model
        if self.learning.pretrain_prior == "ring" and m.frame_latent_dim != 2:
            raise ValueError(f"pretrain_prior: 'ring' needs 2-d frame latents, got latent_dim = {m.latent_dim} "
                             f"for frames = {m.frames} (per_frame = {m.per_frame})")
        if self.data.traj_len <= m.frames + 1:
            raise ValueError(f"traj_len: expected > frames + 1 = {m.frames + 1}, got {self.data.traj_len}")
        windows = self.data.traj_len - m.frames + 1
        if self.learning.rollout_horizons and max(self.learning.rollout_horizons) >= windows:
            raise ValueError(f"rollout_horizons: expected horizons < {windows} (the windows per training sequence "
                             f"of traj_len {self.data.traj_len}), got {self.learning.rollout_horizons}")
        if self.bar.gate_trials and self.bar.gate_confidence is not None:
            try:
                self.task.bar_counts(self.bar.gate_trials, self.bar.gate_confidence)
            except ValueError as exc:
                raise ValueError(f"gate_trials: {self.bar.gate_trials} closed-loop trials cannot show the "
                                 f"{self.task.name} bars at gate_confidence {self.bar.gate_confidence}: "
                                 f"{exc}") from None

    def to_dict(self) -> dict:
        return {"task": self.task.to_dict(), **{name: asdict(getattr(self, name)) for name in _SECTIONS}}

    @classmethod
    def from_dict(cls, d: dict) -> "PixelControlConfig":
        if not isinstance(d, dict) or set(d) != {"task", *_SECTIONS}:
            raise ValueError(f"config: expected the sections {sorted({'task', *_SECTIONS})}, "
                             f"got {sorted(d) if isinstance(d, dict) else type(d).__name__}")
        sections = {}
        for name, sec in _SECTIONS.items():
            known = {f.name for f in fields(sec)}
            if not isinstance(d[name], dict) or set(d[name]) - known:
                raise ValueError(f"config: unknown or malformed settings in section {name!r}: {d[name]!r}")
            kw = dict(d[name])
            if name == "bar" and "gate_trials" in kw:
                kw.setdefault("gate_confidence", None)  # saved before the setting existed: gated on the point bars
            sections[name] = sec(**kw)
        return cls(task=task_from_dict(d["task"]), **sections)


def default_config(task: PixelTask | str = "pendulum", quick: bool = False) -> PixelControlConfig:
    """The settings of ``pyrxaif pendulum`` / ``pyrxaif digits`` for ``task`` (a task object, or its
    name for the task's default settings): the library's defaults with the task's
    :attr:`~PixelTask.default_settings`; ``quick``: about 800 frames, 3 + 2 epochs, no validation bar."""
    if isinstance(task, str):
        V.check_choice("task", task, tuple(TASKS))
        task = TASKS[task]()
    if not isinstance(task, PixelTask):
        raise TypeError(f"task: expected a PixelTask or one of {sorted(TASKS)}, got {type(task).__name__}")
    settings = task.default_settings
    if set(settings) - set(_SECTIONS):
        raise ValueError(f"default_settings: {type(task).__name__} names unknown config sections "
                         f"{sorted(set(settings) - set(_SECTIONS))}; expected some of {sorted(_SECTIONS)}")
    cfg = PixelControlConfig(task=task, **{name: _SECTIONS[name](**kw) for name, kw in settings.items()})
    if quick:
        cfg = replace(cfg, data=replace(cfg.data, n_traj=800 // cfg.data.traj_len),
                      learning=replace(cfg.learning, pretrain_epochs=3, em_iters=2, vae_epochs_per_em=1,
                                       refit_episodes=min(cfg.learning.refit_episodes, 2), restarts=0),
                      bar=ValidationBar(np.inf, np.inf, gate_trials=0))     # smoke run: report, do not refuse
    return cfg


# ----------------------------------------------------------------------------- data

def collect(config: PixelControlConfig, seed: int, n_traj: int | None = None, images=None):
    """Random-action trajectories: frames (S, T, 28, 28), actions (S, T−1, 1) normalised, states (S, T).
    Where each trajectory starts is the task's :meth:`~PixelTask.exploration_start`."""
    task, data = config.task, config.data
    n_traj = V.check_count("n_traj", data.n_traj if n_traj is None else n_traj)
    V.check_count("seed", seed, minimum=0)
    env = task.make_env(images)
    rng = np.random.default_rng(seed)
    T = data.traj_len
    frames = np.zeros((n_traj, T, 28, 28), np.float32)
    scales = data.action_scale * 10.0 ** (-data.scale_spread * rng.uniform(0.0, 1.0, (n_traj, 1, 1)))
    actions = scales * rng.uniform(-1.0, 1.0, (n_traj, T - 1, 1))
    states = np.zeros((n_traj, T))
    for s in range(n_traj):
        opts = task.exploration_start(rng, s, n_traj)
        obs, info = env.reset(seed=int(rng.integers(2**31)), options=opts)
        frames[s, 0], states[s, 0] = obs, info[task.state_key]
        for t in range(T - 1):
            obs, _, _, _, info = env.step(actions[s, t] * task.action_scale)
            frames[s, t + 1], states[s, t + 1] = obs, info[task.state_key]
    return frames, actions, states


def windows_of(frames, K: int):
    """(S, T, H, W) → (S, T−K+1, K, H, W): window t holds frames t..t+K−1 (newest last)."""
    T = frames.shape[1]
    return np.stack([frames[:, k:T - K + 1 + k] for k in range(K)], axis=2)


# ----------------------------------------------------------------------------- model

@dataclass
class PixelControlModel:
    config: PixelControlConfig
    params: dict
    lds: em.LDS            # global LDS of the variational EM (the VAE's latent prior)
    local: em.LocalLDS     # locally linear transition model used for planning

    def planning_model(self) -> em.LocalLDS:
        """The transition model the planner uses: the local experts with their noise covariances
        scaled by ``config.planner.noise_scale``."""
        return self.local._replace(W_cov=self.local.W_cov * self.config.planner.noise_scale)

    def nominals(self, u_warm):
        """The nominals a re-plan starts from: the warm start, and with ``config.planner.multistart`` also
        the constant nominals (:func:`pyrxaif.inference.planning.nominal_starts`)."""
        return nominal_starts(u_warm) if self.config.planner.multistart else u_warm

    def encode(self, windows):
        """Encoder messages (means, variances), each (N, d) float64, of windows (N, K, 28, 28) in [0, 1]."""
        K = self.config.model.frames
        windows = check_frames("windows", windows, "N, K")
        if windows.shape[1] != K:
            raise ValueError(f"windows: expected K = frames = {K} frames per window, got shape {windows.shape}")
        mu, var = vae.encode(self.params, windows, self.config.model.latent_dim)
        return np.asarray(mu, np.float64), np.asarray(var, np.float64)


def encode_sequences(params, config: PixelControlConfig, wins):
    """Encoder messages of windows (S, Tw, K, 28, 28): means and variances (S, Tw, d), float64."""
    S, Tw = wins.shape[:2]
    d = config.model.latent_dim
    mu, var = vae.encode(params, wins.reshape(S * Tw, *wins.shape[2:]), d)
    return (np.asarray(mu, np.float64).reshape(S, Tw, d), np.asarray(var, np.float64).reshape(S, Tw, d))


def pretraining_prior(config: PixelControlConfig, n: int):
    """The VAE pre-training prior of ``n`` windows as :func:`vae.train_epoch` takes it: (prior_mean,
    prior_cov, ring) = (0, I, None) per window, or (None, None, RingPrior()) with ``pretrain_prior="ring"``."""
    if config.learning.pretrain_prior == "ring":
        return None, None, vae.RingPrior()
    d = config.model.latent_dim
    return np.zeros((n, d)), np.broadcast_to(np.eye(d), (n, d, d)).copy(), None


def train(config: PixelControlConfig, frames, actions, seed: int = 0, progress: bool = True, images=None):
    """VAE pre-training (prior N(0, I) or the ring prior), variational EM, the planning experts, with
    ``config.learning.refit_episodes`` their closed-loop refit (:func:`closed_loop_data`; tasks with images
    need the training ``images`` for it) and with ``config.learning.rollout_horizons`` their multi-step
    refinement on all of those latents; returns (model, history)."""
    mc, lc = config.model, config.learning
    K, d = mc.frames, mc.latent_dim
    wins = windows_of(frames, K)                         # (S, Tw, K, 28, 28)
    acts = np.asarray(actions[:, K - 1:], np.float64)    # action between window t and t+1
    S, Tw = wins.shape[:2]
    flat = wins.reshape(S * Tw, *wins.shape[2:])
    key = jax.random.PRNGKey(seed)
    key, k0 = jax.random.split(key)
    params = vae.init_vae(k0, vae.VAEConfig(d, K, per_frame=mc.per_frame and K > 1))
    opt = vae.make_optimizer(lc.lr)
    opt_state = opt.init(params)
    prior_m, prior_P, ring = pretraining_prior(config, S * Tw)
    history = {"pretrain_loss": [], "em": []}
    for _ in tqdm(range(lc.pretrain_epochs), desc="VAE pre-training", disable=not progress):
        key, k = jax.random.split(key)
        params, opt_state, loss = vae.train_epoch(params, opt_state, k, flat, prior_m, prior_P, latent_dim=d,
                                                  beta=1.0, optimizer=opt, batch_size=lc.batch_size, ring=ring)
        history["pretrain_loss"].append(loss)
    lds = em.init_lds(d, acts.shape[-1], lc.a_prior_precision)
    for _ in tqdm(range(lc.em_iters), desc="variational EM", disable=not progress):
        mu, var = encode_sequences(params, config, wins)
        lds, fe_lds = em.fit_lds(lds, mu, var, acts, iters=lc.lds_iters_per_em)
        cm, cP = em.cavity_moments(em.e_step(lds, mu, var, acts))
        cm = np.asarray(cm).reshape(S * Tw, d)
        cP = np.asarray(cP).reshape(S * Tw, d, d)
        losses = []
        for _ in range(lc.vae_epochs_per_em):
            key, k = jax.random.split(key)
            params, opt_state, loss = vae.train_epoch(params, opt_state, k, flat, cm, cP, latent_dim=d, beta=1.0,
                                                      optimizer=opt, batch_size=lc.batch_size)
            losses.append(loss)
        # per frame: the LDS's −ELBO (VB, over the encoder messages) and the VAE loss under the cavity prior
        fe = {"lds_free_energy": fe_lds[-1] / (S * Tw), "vae_loss": losses[-1]}
        fe["free_energy"] = fe["lds_free_energy"] + fe["vae_loss"]
        history["em"].append(fe)
    mu, var = encode_sequences(params, config, wins)
    lds, _ = em.fit_lds(lds, mu, var, acts, iters=lc.lds_iters_per_em)

    def fit(m, v, a, k):
        return em.fit_local(m, v, a, n_local=mc.n_local, key=k, bandwidth_scale=mc.bandwidth_scale,
                            action_weight=mc.gate_action_weight)

    key, k = jax.random.split(key)
    model = PixelControlModel(config, params, lds, fit(mu, var, acts, k))
    if lc.refit_episodes:
        # the experts are refitted on the training data plus the states the controller itself visits
        # (the top of a swing, held; sparse under random exploration)
        cl_frames, cl_actions, _ = closed_loop_data(model, lc.refit_episodes, seed, images=images,
                                                    progress=progress)
        cl_mu, cl_var = encode_sequences(params, config, windows_of(cl_frames, K))
        mu, var = np.concatenate([mu, cl_mu]), np.concatenate([var, cl_var])
        acts = np.concatenate([acts, np.asarray(cl_actions[:, K - 1:], np.float64)])
        key, k = jax.random.split(key)
        model.local = fit(mu, var, acts, k)
        history["refit"] = {"episodes": int(lc.refit_episodes),
                            "frames": int(cl_frames.shape[0] * cl_frames.shape[1])}
    if lc.rollout_horizons:
        model.local = em.refine_local_rollout(model.local, mu, acts, horizons=lc.rollout_horizons,
                                              iters=lc.rollout_iters, lr=lc.rollout_lr, progress=progress)
    return model, history


def closed_loop_data(model: PixelControlModel, episodes: int, seed: int, images=None, progress: bool = True):
    """Frames (E, T, 28, 28), normalised actions (E, T−1, 1) and true states (E, T) of ``episodes``
    receding-horizon episodes of ``model``'s own controller (T = traj_len, the training sequences' length).
    Goals and near-goal starts are the task's :meth:`~PixelTask.closed_loop_episode`; even episodes start
    near the goal, odd ones from the environment's random reset."""
    V.check_count("episodes", episodes)
    cfg = model.config
    task = cfg.task
    env = task.make_env(images)
    rng = np.random.default_rng([seed, 2])
    frames, actions, states = [], [], []
    for i in tqdm(range(episodes), desc="closed-loop data", disable=not progress):
        goal, near = task.closed_loop_episode(rng)
        opts = near if i % 2 == 0 else {}
        env.reset(seed=int(rng.integers(2**31)))
        tr = run_episode(model, env, start=opts, goal=goal, steps=cfg.data.traj_len - 1)
        frames.append(tr["frames"])
        actions.append(np.asarray(tr["actions"])[:, None] / task.action_scale)
        states.append(tr["states"])
    return np.stack(frames).astype(np.float32), np.stack(actions), np.stack(states)


# ----------------------------------------------------------------------------- validation, checkpoints

#: f(z_i, u_i) of the experts for rows of z (N, d) and u (N, m); one compiled program per shape
_local_means = jax.jit(jax.vmap(em.local_mean, in_axes=(None, 0, 0)))


def open_loop_nmse(local: em.LocalLDS, mu, actions, steps: int) -> float:
    """Median normalised error of ``steps``-step open-loop predictions: from every encoded latent
    mu[s, t] (t + steps within the sequence) roll z ← f(z, u) through the actions actions[s, t:t+steps]
    and compare with the encoding mu[s, t+steps]; squared error over the latents' spread (mean squared
    distance from their mean). What a plan over that many steps relies on, judged in the agent's own
    latent space: a model can predict one step well (:func:`validate`'s ``pred_nmse``) and still drift
    over a horizon. A roll-out that overflows counts as infinite error.

    mu (S, T, d) latents, actions (S, T−1, m), ``steps`` ≥ 1 and < T."""
    if not isinstance(local, em.LocalLDS):
        raise TypeError(f"local: expected a pyrxaif.inference.em.LocalLDS, got {type(local).__name__}")
    d, m = np.shape(local.B)[-2:]
    mu = V.as_float_array("mu", mu, shape=(None, None, d))
    S, T, _ = mu.shape
    actions = V.as_float_array("actions", actions, shape=(S, T - 1, m))
    if V.check_count("steps", steps) >= T:
        raise ValueError(f"steps: expected an integer in [1, {T - 1}], got {steps!r}")
    if not np.any(mu != mu[:1, :1]):
        raise ValueError("mu: expected latents that vary (the error is normalised by their spread, here 0)")
    n0 = T - steps
    z = jnp.asarray(mu[:, :n0].reshape(-1, d))
    for j in range(steps):
        z = _local_means(local, z, jnp.asarray(actions[:, j:j + n0].reshape(-1, actions.shape[-1])))
    err = np.sum((np.asarray(z) - mu[:, steps:].reshape(-1, d)) ** 2, -1)
    spread = np.mean(np.sum((mu - mu.mean((0, 1))) ** 2, -1))
    return float(np.median(np.where(np.isfinite(err), err, np.inf)) / spread)


def validate(model: PixelControlModel, frames, actions) -> dict:
    """Held-out figures on encoder means: normalised one-step latent prediction error (1 − R²) of the
    planning model z_{t+1} ≈ f(z_t, u_t) (``pred_nmse``) and of the global LDS A z_t + B u_t
    (``pred_nmse_global``), the planning model's open-loop error over the planner's horizon
    (``horizon_nmse``: :func:`open_loop_nmse` over H − 1 steps) and per-pixel reconstruction MSE of
    the newest frame."""
    cfg = model.config
    K = cfg.model.frames
    frames = check_frames("frames", frames, "S, T")
    S, T = frames.shape[:2]
    if T < K + 1:
        raise ValueError(f"frames: expected T >= frames + 1 = {K + 1} frames per sequence, got shape {frames.shape}")
    actions = V.as_float_array("actions", actions, shape=(S, T - 1, model.lds.B.shape[1]))
    wins = windows_of(frames, K)
    acts = actions[:, K - 1:]
    mu, _ = encode_sequences(model.params, cfg, wins)
    A, B = np.asarray(model.lds.A), np.asarray(model.lds.B)
    pred_global = mu[:, :-1] @ A.T + acts @ B.T
    d = cfg.model.latent_dim
    pred = np.asarray(_local_means(model.local, jnp.asarray(mu[:, :-1].reshape(-1, d)),
                                   jnp.asarray(acts.reshape(-1, acts.shape[-1]), jnp.float64))).reshape(mu[:, :-1].shape)
    spread = np.mean(np.sum((mu[:, 1:] - mu[:, 1:].mean((0, 1))) ** 2, -1))
    if not spread > 0:
        raise ValueError("frames: the held-out frames encode to a single latent (spread 0), so the normalised "
                         "prediction errors are undefined; validate on sequences that move")
    nmse = lambda p: float(np.mean(np.sum((mu[:, 1:] - p) ** 2, -1)) / spread)  # noqa: E731
    flat = wins.reshape(-1, *wins.shape[2:])
    rec = np.asarray(vae.decode(model.params, mu.reshape(-1, cfg.model.latent_dim)))
    steps = min(cfg.planner.horizon - 1, mu.shape[1] - 1)
    return {"pred_nmse": nmse(pred), "pred_nmse_global": nmse(pred_global),
            "horizon_nmse": open_loop_nmse(model.planning_model(), mu, acts, steps),
            "recon_mse": float(np.mean((rec - flat[:, -1]) ** 2))}


class ValidationRefused(ValueError):
    """The model does not meet the validation bar on held-out sequences."""


def validation_failures(bar: ValidationBar, metrics: dict) -> list[str]:
    """The figures of ``metrics`` that miss ``bar`` (empty: the model meets it)."""
    bad = []
    if not metrics["pred_nmse"] <= bar.max_pred_nmse:
        bad.append(f"latent one-step prediction error {metrics['pred_nmse']:.3f} > {bar.max_pred_nmse}")
    if not metrics["recon_mse"] <= bar.max_recon_mse:
        bad.append(f"reconstruction MSE {metrics['recon_mse']:.4f} > {bar.max_recon_mse}")
    if not metrics.get("horizon_nmse", 0.0) <= bar.max_horizon_nmse:
        bad.append(f"open-loop prediction error over the planning horizon {metrics['horizon_nmse']:.3f} > "
                   f"{bar.max_horizon_nmse} (the model's roll-outs drift: a plan would follow a wrong prediction)")
    gate = metrics.get("gate")
    if gate is not None and not gate["passed"]:
        bad.append(f"closed-loop trials judged by the agent's own encoder miss the task's bars: {gate['line']}")
    return bad


def assess(model: PixelControlModel, held_frames, held_actions, seed: int, images=None, engine: str | None = None,
           progress: bool = False) -> tuple[dict, list[str]]:
    """Held-out figures (:func:`validate` on ``held_frames``/``held_actions``) and, with
    ``config.bar.gate_trials``, the closed-loop gate (trials from ``seed``'s own stream, on the held-out
    ``images`` for tasks with images); returns (metrics, the failures against ``config.bar``)."""
    metrics = validate(model, held_frames, held_actions)
    if model.config.bar.gate_trials:
        metrics["gate"] = closed_loop_gate(model, seed, images=images, engine=engine, progress=progress)
    return metrics, validation_failures(model.config.bar, metrics)


def restart_seed(seed: int, attempt: int) -> int:
    """The training seed of restart ``attempt``: ``seed`` itself for attempt 0, then a seed drawn from
    (seed, attempt) (so restarts of one run never reuse another run's seed or its held-out seed + 1000)."""
    V.check_count("seed", seed, minimum=0)
    V.check_count("attempt", attempt, minimum=0)
    if attempt == 0:
        return int(seed)
    return int(np.random.SeedSequence([seed, attempt, 22]).generate_state(1)[0] & 0x7FFFFFFF)


def train_validated(config: PixelControlConfig, frames, actions, held_frames, held_actions, seed: int = 0, *,
                    images=None, held_images=None, engine: str | None = None, progress: bool = True):
    """:func:`train` on ``frames``/``actions`` (the exploration data of ``seed``), then :func:`assess` on
    held-out data; while the model misses ``config.bar`` and restarts are left (``config.learning.restarts``),
    train again from :func:`restart_seed` (seed, attempt), on that seed's own exploration data
    (:func:`collect`, on ``images``) with ``config.learning.redraw_data``, else on the same data. Nothing
    is chosen on evaluation episodes: the verdict uses held-out sequences and the gate's own trials,
    judged by the agent's encoder.

    Returns (model, history, metrics, failures) of the first model that meets the bar, else of the
    attempt closest to it (:func:`attempt_rank`; its failures non-empty); ``history["attempts"]`` lists
    every attempt's training seed, its data seed, collection, training and assessment wall times,
    held-out figures, gate verdict and failures, ``history["chosen"]`` the attempt returned."""
    attempts, best = [], None                          # restart_seed checks ``seed`` before any training
    for attempt in range(1 + config.learning.restarts):
        train_seed = restart_seed(seed, attempt)
        data_seed = train_seed if attempt and config.learning.redraw_data else seed
        t0 = time.perf_counter()
        if data_seed != seed:
            frames, actions, _ = collect(config, data_seed, images=images)
        t1 = time.perf_counter()
        model, history = train(config, frames, actions, seed=train_seed, progress=progress, images=images)
        t2 = time.perf_counter()
        metrics, failures = assess(model, held_frames, held_actions, seed, images=held_images, engine=engine,
                                   progress=progress)
        gate = metrics.get("gate")
        record = {"attempt": attempt, "train_seed": train_seed, "data_seed": data_seed, "collect_s": t1 - t0,
                  "train_s": t2 - t1, "assess_s": time.perf_counter() - t2, "pred_nmse": metrics["pred_nmse"],
                  "horizon_nmse": metrics["horizon_nmse"], "recon_mse": metrics["recon_mse"],
                  "gate": None if gate is None else {k: gate[k] for k in ("passed", "shortfall", "line")},
                  "failures": failures}
        attempts.append(record)
        if best is None or attempt_rank(record) < attempt_rank(best[0]):
            best = (record, model, history, metrics, failures)
        if not failures:
            break
    record, model, history, metrics, failures = best
    history["attempts"], history["chosen"] = attempts, record["attempt"]
    return model, history, metrics, failures


def attempt_rank(record: dict) -> tuple:
    """Order of training attempts (smaller is better): missed bars first by the gate's shortfall (the
    episodes its latent-judged trials lack), then by the number of held-out figures that miss the bar,
    then by the open-loop error over the planning horizon. A record of :func:`train_validated`."""
    gate = record["gate"]
    return (0 if gate is None else gate["shortfall"], len(record["failures"]), record["horizon_nmse"])


def check(model: PixelControlModel, metrics: dict) -> None:
    """Raise :class:`ValidationRefused` saying which figure misses ``model.config.bar``."""
    bad = validation_failures(model.config.bar, metrics)
    if bad:
        raise ValidationRefused("checkpoint rejected on held-out sequences: " + "; ".join(bad)
                                + " (train longer or with more data)")


def _leaves(tree):
    return {str(i): np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(tree))}


def _unleaves(template, state, dtype, what):
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if not isinstance(state, dict) or set(state) != {str(i) for i in range(len(leaves))}:
        got = len(state) if isinstance(state, dict) else repr(state)
        raise ValueError(f"expected {len(leaves)} arrays for {what}, got {got}")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(state[str(i)], dtype) for i in range(len(leaves))])


def save(model: PixelControlModel, path: str, validation: dict) -> None:
    """Write ``model`` to ``path`` in the checkpoint format of :mod:`pyrxaif.checkpoint` (atomically):
    float32 VAE params, float64 LDS posterior/prior and local experts; the header holds the task, the
    config and ``validation`` (the held-out figures, the bar and whether it was met)."""
    arrays = {"params": jax.tree_util.tree_map(np.asarray, model.params),
              "lds": _leaves(model.lds), "local": _leaves(model.local)}
    ckpt.save_checkpoint(path, kind=CHECKPOINT_KIND, task=model.config.task.name, config=model.config.to_dict(),
                         arrays=arrays, validation=validation)


def _check_shapes(cfg: PixelControlConfig, params, lds: em.LDS, local: em.LocalLDS) -> None:
    """The arrays have the shapes ``cfg.model`` gives them (latent_dim d, frames K, n_local experts)."""
    mc = cfg.model
    d = mc.latent_dim
    per_frame = mc.per_frame and mc.frames > 1
    want = {"decoder input": (params["decoder"]["Dense_0"]["kernel"].shape[0], d // mc.frames if per_frame else d),
            "global LDS states": (lds.dynamics.dims[0], d), "experts": (local.A.shape, (mc.n_local, d, d)),
            "expert centres": (local.centres.shape[0], mc.n_local)}
    bad = [f"{what} {got}, config {exp}" for what, (got, exp) in want.items() if got != exp]
    if bad:
        raise ValueError("arrays do not have the shapes of the header's config: " + "; ".join(bad))


def load(path: str, task: str | None = None) -> tuple[PixelControlModel, dict]:
    """(model, validation record) from a checkpoint written by :func:`save`; ``task``: refuse a checkpoint
    of another task (:class:`pyrxaif.checkpoint.CheckpointError`, naming the file)."""
    header, arrays = ckpt.load_checkpoint(path, kind=CHECKPOINT_KIND, task=task)
    try:
        cfg = PixelControlConfig.from_dict(header["config"])
        if not isinstance(arrays, dict) or set(arrays) != {"params", "lds", "local"}:
            got = sorted(arrays) if isinstance(arrays, dict) else repr(arrays)
            raise ValueError(f"expected the arrays params, lds, local, got {got}")
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), arrays["params"])
        # the pytree structures do not depend on the dimensions: any instance serves as the template
        lds = _unleaves(em.init_lds(1, 1), arrays["lds"], jnp.float64, "the global LDS")
        local = _unleaves(em.LocalLDS(*([0.0] * len(em.LocalLDS._fields))), arrays["local"], jnp.float64,
                          "the planning experts")
        _check_shapes(cfg, params, lds, local)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ckpt.CheckpointError(path, f"contents do not match the pixel-control model ({exc})") from None
    return PixelControlModel(cfg, params, lds, local), header.get("validation", {})


# ----------------------------------------------------------------------------- control

def goal_window(config: PixelControlConfig, goal: float, image=None):
    """K identical goal frames (zero velocity): the task's :meth:`~PixelTask.goal_frame`."""
    frame = config.task.goal_frame(_check_goal(goal), image)
    return np.repeat(frame[None], config.model.frames, axis=0)


def planner(engine: str | None = None):
    """The locally linear planner of ``engine``: ``planning.plan_local`` (JAX, one jitted call per
    re-plan) or the Julia engine's ``plan_local`` (each linearised plan solved by RxInfer). The
    engine is started here (or ``JuliaUnavailableError`` says why not)."""
    eng = select_engine(engine, start=True)
    return plan_local if eng.name == "jax" else eng.plan_local


def run_episode(model: PixelControlModel, env, *, start: dict, goal: float, steps: int, goal_steps: str | None = None,
                engine: str | None = None, calibrations: dict | None = None):
    """Receding-horizon control from ``start`` (reset options); returns a dict of traces.

    ``engine``: ``"jax"`` or ``"julia"`` (see :func:`planner`); ``None`` reads ``PYRXAIF_ENGINE``.
    ``calibrations``: a cache of the judge's encodings by goal and image (see :func:`latent_judged_states`),
    filled here and reused across episodes; used with ``config.planner.near_goal_horizon``."""
    if not isinstance(model, PixelControlModel):
        raise TypeError(f"model: expected a PixelControlModel, got {type(model).__name__}")
    if not (callable(getattr(env, "reset", None)) and callable(getattr(env, "step", None))):
        raise TypeError(f"env: expected a gymnasium environment (reset, step), got {type(env).__name__}")
    V.check_count("steps", steps)
    goal = _check_goal(goal)
    if calibrations is not None and not isinstance(calibrations, dict):
        raise TypeError(f"calibrations: expected a dict (a cache filled here) or None, got {type(calibrations).__name__}")
    plan_fn = planner(engine)
    cfg = model.config
    task, pc = cfg.task, cfg.planner
    local = model.planning_model()
    K, d, H = cfg.model.frames, cfg.model.latent_dim, pc.horizon
    obs, info = env.reset(options=start)
    zg, _ = model.encode(goal_window(cfg, goal, task.episode_image(env))[None])
    hist = [obs] * K
    goal_steps = pc.goal_steps if goal_steps is None else goal_steps
    u_prec = np.full(model.lds.B.shape[1], 1.0 / pc.prior_scale ** 2)
    goal_prec = np.full(d, 1.0 / pc.goal_var)
    scale = task.action_scale
    states, acts, latents, frames, escaping = [info[task.state_key]], [], [], [obs], []
    u_nom = jnp.zeros((H, model.local.B.shape[-1]))
    reads = pc.near_goal_horizon is not None or pc.escape_step is not None
    calibration = None if not reads else \
        _cached_calibration({} if calibrations is None else calibrations, model, goal, task.episode_image(env))
    distances, direction = [], 0.0         # the agent's readings of |offset from the goal| (radians)
    for _ in range(steps):
        z, _ = model.encode(np.stack(hist[-K:])[None])
        h, target, escape = H, zg[0], False
        if calibration is not None:
            seen = latent_judged_states(model, hist[-1][None], goal, calibration=calibration)
            near = task.error(seen, goal)[0] <= task.error_band
            if pc.near_goal_horizon is not None and near:
                h = pc.near_goal_horizon
            offset = float(wrap_angle(seen[0] - goal))
            distances.append(abs(offset))
            if pc.escape_step is not None and not near and stalled(distances, pc.stall_steps, pc.stall_progress):
                sub, direction = escape_offset(offset, direction, pc.escape_step)
                target, escape = calibration[np.argmin(np.abs(wrap_angle(JUDGE_OFFSETS - sub)))], True
        if u_nom.shape[0] != h:        # the warm start cut or extended (last action held) to this horizon
            u_nom = jnp.concatenate([u_nom, jnp.repeat(u_nom[-1:], max(h - u_nom.shape[0], 0), 0)])[:h]
        res = plan_fn(local, jnp.asarray(z[0]), jnp.asarray(target), goal_prec, u_prec, goal_mask(h, goal_steps),
                      model.nominals(u_nom), iters=pc.iters)
        u_nom = jnp.concatenate([res.actions[1:], res.actions[-1:]])   # warm start: the plan shifted by one
        u = float(np.clip(res.actions[0, 0], -1.0, 1.0))     # projection onto the action bound
        obs, _, _, _, info = env.step(np.array([u * scale]))
        hist.append(obs)
        states.append(info[task.state_key])
        acts.append(u * scale)
        latents.append(z[0])
        frames.append(obs)
        escaping.append(escape)
    return {"states": np.array(states), "actions": np.array(acts), "latents": np.array(latents),
            "goal_latent": zg[0], "frames": np.array(frames), "escaping": np.array(escaping, bool)}


def stalled(distances, steps: int, progress: float) -> bool:
    """Whether the last ``steps`` of ``distances`` (the agent's readings of its distance to the goal, one
    per step) never came ``progress`` closer than the closest reading before them; False while there
    are at most ``steps`` readings."""
    if len(distances) <= steps:
        return False
    return min(distances[-steps:]) > min(distances[:-steps]) - progress


def escape_offset(offset: float, direction: float, step: float) -> tuple[float, float]:
    """(sub-goal offset, direction): the offset from the goal ``step`` closer to it than ``offset``
    (radians in [−π, π); 0 once within ``step``), on the side ``direction`` (±1). ``direction`` is the
    side of ``offset``, except within ``step`` of the far point ±π, where the side kept from an
    earlier call (``direction`` ≠ 0) holds, so readings that flicker across the far point do not
    reverse the swing."""
    if direction == 0.0 or abs(offset) < np.pi - step:
        direction = 1.0 if offset >= 0 else -1.0
    return direction * max(abs(offset) - step, 0.0), direction



# ----------------------------------------------------------------------------- the closed-loop gate

#: offsets from the goal (radians) of the still frames the latent judge compares encodings with (2.5°)
JUDGE_OFFSETS = np.linspace(-np.pi, np.pi, 145)[:-1]


def _judge_calibration(model: PixelControlModel, goal: float, image=None) -> np.ndarray:
    """Encodings (len(JUDGE_OFFSETS), d) of the still goal-frame windows at goal + δ."""
    c, _ = model.encode(np.stack([goal_window(model.config, goal + d, image) for d in JUDGE_OFFSETS]))
    return c


def _cached_calibration(cache: dict, model: PixelControlModel, goal: float, image=None) -> np.ndarray:
    """:func:`_judge_calibration`, computed once per (goal, image) in ``cache``."""
    tag = (float(goal), None if image is None else np.asarray(image).tobytes())
    if tag not in cache:
        cache[tag] = _judge_calibration(model, goal, image)
    return cache[tag]


def latent_judged_states(model: PixelControlModel, frames, goal: float, image=None, *,
                         calibration=None) -> np.ndarray:
    """The agent's own reading of an episode: for each frame, the state goal + δ of the still goal-frame
    window whose encoding is nearest to the encoding of the frame held still (K copies; position, not
    velocity, is judged), δ on :data:`JUDGE_OFFSETS`. Uses frames and the model only, never the
    simulator's state. frames (T, 28, 28) → states (T,). ``calibration``: those encodings for this
    goal and image when already computed (internal reuse across trials)."""
    K = model.config.model.frames
    frames = V.as_float_array("frames", frames, ndim=3, dtype=np.float32)
    goal = _check_goal(goal)
    z, _ = model.encode(np.repeat(frames[:, None], K, axis=1))                   # (T, K, 28, 28) still windows
    c = _judge_calibration(model, goal, image) if calibration is None else calibration
    nearest = np.argmin(np.sum((z[:, None, :] - c[None, :, :]) ** 2, -1), axis=1)
    return goal + JUDGE_OFFSETS[nearest]


def closed_loop_gate(model: PixelControlModel, seed: int, images=None, trials: int | None = None,
                     steps: int | None = None, engine: str | None = None, progress: bool = False) -> dict:
    """Closed-loop trials judged by the agent itself: ``trials`` (default ``config.bar.gate_trials``)
    episodes of ``steps`` (default: the command's) steps of the receding-horizon controller from the task's
    evaluation start distribution, drawn
    from their own random stream (``seed``; never the evaluation's starts), each judged on the states
    :func:`latent_judged_states` reads off the agent's encodings, with the task's own success rule
    (:meth:`~PixelTask.episode_result`, :meth:`~PixelTask.summarise`) and bars shown at the confidence
    ``config.bar.gate_confidence`` (:meth:`~PixelTask.bar_shortfall`; None: the point bars).

    Returns ``passed``, ``shortfall`` (:meth:`~PixelTask.bar_shortfall` of the verdict), ``trials``, ``confidence``,
    ``summary`` (the latent-judged summary), ``line``, ``judged`` (the
    per-trial results) and, for the record only (not part of the verdict), ``true`` and ``true_summary``
    from the simulator's states and ``agreement``: the share of trials whose latent verdicts (the
    results' yes/no figures) equal the true ones."""
    cfg = model.config
    task = cfg.task
    trials = cfg.bar.gate_trials if trials is None else trials
    V.check_count("trials", trials)
    V.check_count("seed", seed, minimum=0)
    if task.uses_images and images is None:
        raise ValueError(f"images: task {task.name!r} needs the held-out images for its trials")
    env = task.make_env(images)
    rng = np.random.default_rng([seed, 7])
    steps = V.check_count("steps", task.default_steps(False) if steps is None else steps)
    confidence = cfg.bar.gate_confidence
    try:                                                # enough trials to show the bars at that confidence?
        needs = ", ".join(f"{key} >= {k}/{trials}" for key, k in task.bar_counts(trials, confidence).items())
    except ValueError as exc:
        raise ValueError(f"trials: {exc}") from None
    judged, true, calibrations = [], [], {}
    for _ in tqdm(range(trials), desc="closed-loop gate", disable=not progress):
        start, goal = task.evaluation_episode(rng, None if images is None else len(images))
        tr = run_episode(model, env, start=start, goal=goal, steps=steps, engine=engine, calibrations=calibrations)
        image = task.episode_image(env)                 # the same goal (and image) is encoded once
        seen = latent_judged_states(model, tr["frames"], goal, image,
                                    calibration=_cached_calibration(calibrations, model, goal, image))
        judged.append(task.episode_result(start, goal, seen))
        true.append(task.episode_result(start, goal, tr["states"]))
    summary, line = task.summarise(judged)
    true_summary, _ = task.summarise(true)
    verdict = lambda r: {k: v for k, v in r.items() if isinstance(v, (bool, np.bool_))}  # noqa: E731
    agreement = float(np.mean([verdict(a) == verdict(b) for a, b in zip(judged, true)]))
    shortfall = int(task.bar_shortfall(summary, confidence))
    line = f"{line} (to pass: {needs}" + (f", the bars at {confidence:.0%} confidence)" if confidence else ")")
    return {"passed": shortfall == 0, "shortfall": shortfall, "trials": int(trials), "confidence": confidence,
            "summary": summary, "line": line, "judged": judged, "true": true, "true_summary": true_summary,
            "agreement": agreement}
