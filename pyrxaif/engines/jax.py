"""The JAX engine: the default; runs everywhere, nothing to start.

The JAX engine *is* the rest of the package (``pyrxaif.rules`` and ``pyrxaif.inference``);
:class:`JaxEngine` exposes it through the engine protocol (``pyrxaif.engines.protocol.Engine``)."""

from __future__ import annotations

import numpy as np

__all__ = ["JaxEngine", "name", "available"]

name = "jax"


def available() -> tuple[bool, str]:
    """The JAX engine needs only jax/jaxlib, which pyrxaif depends on."""
    import jax  # noqa: PLC0415

    return True, f"jax {jax.__version__} on {jax.default_backend()}"


def _controls_for_lgssm(u, m: int):
    """(T−1, m) controls between steps → (T, m) for lgssm (the last one is used by no transition)."""
    return np.concatenate([u, np.zeros((1, m))])


class JaxEngine:
    """The engine protocol on pyrxaif's own JAX inference."""

    name = name

    def available(self) -> tuple[bool, str]:
        return available()

    def start(self) -> None:
        """Nothing to start."""

    def plan_rollout(self, model, log_b0, cfg, horizon: int):
        from pyrxaif.inference import rollout  # noqa: PLC0415

        return rollout.plan(model, log_b0, cfg, horizon=horizon)

    def plan_local(self, model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters: int = 5):
        from pyrxaif.inference import planning  # noqa: PLC0415

        return planning.plan_local(model, z_start, z_goal, goal_prec, u_prec, goal_mask, u_init, iters=iters)

    def evaluate_policies(self, a_concentration, c_logits, d_probs, trans, x, observed, *, objective: str = "gfe",
                          iterations: int = 50, burn_in: int = 10, newton_iterations: int = 20, key=None):
        import jax  # noqa: PLC0415

        from pyrxaif import checks as V  # noqa: PLC0415
        from pyrxaif.inference import policy  # noqa: PLC0415

        tr = V.as_float_array("trans", trans, ndim=4)
        P = tr.shape[0]
        d = V.check_probability_vectors("d_probs", d_probs)
        c = V.as_float_array("c_logits", c_logits, ndim=2)
        with np.errstate(divide="ignore"):
            log_d = np.log(d)
        r = policy.evaluate_policies(jax.random.PRNGKey(0) if key is None else key, np.repeat(log_d[None], P, 0),
                                     tr, np.repeat(c[None], P, 0), a_concentration, x=x,
                                     observed=np.asarray(observed, dtype=bool), objective=objective,
                                     iterations=iterations, burn_in=burn_in, newton_iterations=newton_iterations)
        return np.asarray(r.G, np.float64), np.asarray(r.A_posterior, np.float64)

    def smooth_lds(self, y_mean, y_cov, u, ab, w, m1, v1):
        import scipy.linalg as sla  # noqa: PLC0415

        from pyrxaif.distributions import MvNormal  # noqa: PLC0415
        from pyrxaif.engines.lds_arguments import check_lds_arguments  # noqa: PLC0415
        from pyrxaif.inference import lgssm  # noqa: PLC0415

        y_mean, y_cov, u, ab, w, m1, v1 = check_lds_arguments(y_mean, y_cov, u, ab, w, m1, v1)
        if ab is None or w is None:
            raise TypeError("ab, w: smooth_lds needs known [A B] and W (use learn_lds to learn them)")
        T, d = y_mean.shape
        # each y_t ~ N(z_t, R_t) as a potential exp(c + ξᵀz − ½zᵀΛz): Λ = R⁻¹, ξ = R⁻¹y,
        # c = −½ yᵀR⁻¹y − ½ log det 2πR (R⁻¹ through its Cholesky factor)
        prec, xi, const = np.empty((T, d, d)), np.empty((T, d)), np.empty(T)
        for t in range(T):
            factor = sla.cho_factor(y_cov[t], lower=True)
            prec[t] = sla.cho_solve(factor, np.eye(d))
            xi[t] = sla.cho_solve(factor, y_mean[t])
            const[t] = -0.5 * (y_mean[t] @ xi[t] + d * np.log(2.0 * np.pi)) - np.sum(np.log(np.diag(factor[0])))
        prec = 0.5 * (prec + np.swapaxes(prec, -1, -2))
        w_factor = sla.cho_factor(w, lower=True)
        q_cov = sla.cho_solve(w_factor, np.eye(d))
        dynamics = lgssm.KnownDynamics(ab, 0.5 * (q_cov + q_cov.T))
        res = lgssm.smooth_information(const, xi, prec, _controls_for_lgssm(u, u.shape[1]), dynamics,
                                       MvNormal.from_mean_cov(m1, v1))
        q = MvNormal.from_mean_cov(np.asarray(res.mean), np.asarray(res.cov))
        return q, -float(res.log_normalizer)

    def learn_lds(self, y_mean, y_cov, u, m1, v1, ab_prior_mean, ab_prior_cov, w_df, w_inv_scale,
                  iterations: int = 20) -> dict:
        from pyrxaif.distributions import MvNormal, Wishart  # noqa: PLC0415
        from pyrxaif.engines.lds_arguments import check_lds_arguments, check_lds_prior  # noqa: PLC0415
        from pyrxaif.inference import lgssm  # noqa: PLC0415

        y_mean, y_cov, u, ab0, _, m1, v1 = check_lds_arguments(y_mean, y_cov, u, ab_prior_mean, None, m1, v1)
        d, n = ab0.shape
        ab_cov, w_df, w_inv, iterations = check_lds_prior(d, n, ab_prior_cov, w_df, w_inv_scale, iterations)
        prior = lgssm.DynamicsPosterior(MvNormal.from_mean_cov(ab0.reshape(-1), ab_cov), Wishart.create(w_df, w_inv))
        lam, uu, init = np.linalg.inv(y_cov), _controls_for_lgssm(u, u.shape[1]), MvNormal.from_mean_cov(m1, v1)
        post, elbo = lgssm.vb_em(y_mean, lam, uu, prior, init, num_iters=iterations)
        res = lgssm.smooth(y_mean, lam, uu, post.q_ab, post.q_w, init)
        return {"z": MvNormal.from_mean_cov(np.asarray(res.mean), np.asarray(res.cov)), "ab": post.q_ab,
                "w": post.q_w, "free_energy": -np.asarray(elbo, np.float64)}

    def infer(self, model: str, data=None, **options) -> dict:
        raise NotImplementedError("engine 'jax': user models are RxInfer @model source, run by the Julia engine "
                                  "(pyrxaif.engines.engine('julia').infer or pyrxaif.rxinfer.infer)")
