"""The Julia engine: RxInfer.jl models and PyRxAIF's custom nodes, driven through juliacall.

:class:`JuliaEngine` implements the engine protocol (``pyrxaif.engines.protocol.Engine``). The
work is split by job:

- ``julia_runtime``: can Julia start here (``julia_status``), starting it (``julia_module``),
  calling PyRxAIF (``call``), :class:`JuliaUnavailableError` / :class:`JuliaPackageLoadError`;
- ``julia_layout``: array layout between numpy (time-major, row-major) and Julia (column-major);
- ``julia_errors``: Julia exceptions as Python exceptions (only the caller's faults as ValueError);
- ``julia_models``: the wrappers of PyRxAIF's models (LDS, planning, T-maze, grid-world roll-out);
- ``pyrxaif.rxinfer``: running a user's RxInfer ``@model``.

Julia starts lazily, on the first call that needs it; importing this module never starts it.
``plan_local``, ``plan_rollout`` and ``tmaze_evaluate_policies`` are importable from here too, for
callers that predate the engine protocol (they are the ``julia_models`` functions themselves).
"""

from __future__ import annotations

from pyrxaif.engines import julia_models
from pyrxaif.engines.julia_models import plan_local, plan_rollout, tmaze_evaluate_policies
from pyrxaif.engines.julia_runtime import JuliaPackageLoadError, JuliaUnavailableError, julia_module, julia_status

__all__ = ["JuliaEngine", "name", "available", "JuliaUnavailableError", "JuliaPackageLoadError", "plan_local",
           "plan_rollout", "tmaze_evaluate_policies"]

name = "julia"


def available() -> tuple[bool | None, str]:
    return tuple(julia_status())


class JuliaEngine:
    """The engine protocol on RxInfer (Julia started on the first call that needs it)."""

    name = name

    def available(self) -> tuple[bool | None, str]:
        return available()

    def start(self) -> None:
        julia_module()

    def plan_rollout(self, model, log_b0, cfg, horizon: int):
        return julia_models.plan_rollout(model, log_b0, cfg, horizon)

    def plan_local(self, model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters: int = 5):
        return julia_models.plan_local(model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters)

    def evaluate_policies(self, a_concentration, c_logits, d_probs, trans, x, observed, *, objective: str = "gfe",
                          iterations: int = 50, burn_in: int = 10, newton_iterations: int = 20, key=None):
        del key  # no sampling in the Julia model
        return julia_models.tmaze_evaluate_policies(a_concentration, c_logits, d_probs, trans, x, observed,
                                                    objective=objective, iterations=iterations, burn_in=burn_in,
                                                    newton_iterations=newton_iterations)

    def smooth_lds(self, y_mean, y_cov, u, ab, w, m1, v1):
        return julia_models.smooth_lds(y_mean, y_cov, u, ab, w, m1, v1)

    def learn_lds(self, y_mean, y_cov, u, m1, v1, ab_prior_mean, ab_prior_cov, w_df, w_inv_scale,
                  iterations: int = 20) -> dict:
        return julia_models.learn_lds(y_mean, y_cov, u, m1, v1, ab_prior_mean, ab_prior_cov, w_df, w_inv_scale,
                                      iterations)

    def infer(self, model: str, data=None, **options) -> dict:
        from pyrxaif import rxinfer  # noqa: PLC0415

        return rxinfer.infer(model, data, **options)
