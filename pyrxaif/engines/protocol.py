"""The engine protocol: what every engine (``pyrxaif.engines.jax.JaxEngine``,
``pyrxaif.engines.julia.JuliaEngine``) implements, with the same arguments and results on both.

Pick an engine with ``pyrxaif.engines.engine(name)`` (``None`` reads ``PYRXAIF_ENGINE``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Engine"]


@runtime_checkable
class Engine(Protocol):
    """An inference engine. ``name`` is "jax" or "julia"."""

    name: str

    def available(self) -> tuple[bool | None, str]:
        """(True / False / None = unknown, why), without starting anything."""

    def start(self) -> None:
        """Start what the engine needs now (the Julia runtime), before any work; raise with the
        reason if it cannot start (``JuliaUnavailableError``)."""

    def plan_rollout(self, model, log_b0, cfg, horizon: int):
        """Grid-world EFE planning (``pyrxaif.inference.rollout``): a ``rollout.PlanResult``."""

    def plan_local(self, model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters: int = 5):
        """Planning on a locally linear LDS (``planning.plan_local``): a ``planning.PlanResult``."""

    def evaluate_policies(self, a_concentration, c_logits, d_probs, trans, x, observed, *, objective: str = "gfe",
                          iterations: int = 50, burn_in: int = 10, newton_iterations: int = 20, key=None):
        """T-maze policies scored by free energy, learned A: (G (P,) bits, q(A) concentrations (P, m, n))."""

    def smooth_lds(self, y_mean, y_cov, u, ab, w, m1, v1):
        """Smoothed q(z_t) of a known LDS given encoder messages: (MvNormal batch (T,), −log evidence)."""

    def learn_lds(self, y_mean, y_cov, u, m1, v1, ab_prior_mean, ab_prior_cov, w_df, w_inv_scale,
                  iterations: int = 20) -> dict:
        """VB learning of q(z) q(vec [A B]) q(W): dict of z, ab, w, free_energy."""

    def infer(self, model: str, data=None, **options) -> dict:
        """Run a user's model (RxInfer ``@model`` source): posteriors and free energy."""
