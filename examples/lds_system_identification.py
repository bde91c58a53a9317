"""System identification of a linear dynamical system from data (pyrxaif.models.LinearGaussianSSM).

    python examples/lds_system_identification.py [--timesteps 500] [--iters 40] [--seed 0]

1. simulate a 2-state LDS with one input and 3 noisy sensors (10 % of the readings missing);
2. learn the dynamics [A B b] and Q by variational Bayes and the sensor model H, d, R by maximum
   likelihood (``fit_vb``), starting from a default model;
3. print the learned vs true system (eigenvalues of A, which do not depend on the latent basis), the
   marginal log-likelihood of the data under the start / learned / true model and the ELBO trace.
"""
from __future__ import annotations

import argparse

import jax
import numpy as np

import pyrxaif  # noqa: F401  (enables float64)
from pyrxaif.models import LinearGaussianSSM


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=500)
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.timesteps < 10 or args.iters < 1:
        p.error("--timesteps must be >= 10 and --iters >= 1")

    model = LinearGaussianSSM(state_dim=2, emission_dim=3, input_dim=1)
    theta = 0.3
    true = model.initialize(
        dynamics_weights=0.95 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]),
        dynamics_input_weights=np.array([[1.0], [0.0]]), dynamics_bias=np.array([0.1, -0.1]),
        dynamics_covariance=0.05 * np.eye(2),
        emission_weights=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), emission_bias=np.array([0.5, 0.0, -0.5]),
        emission_covariance=0.1 * np.eye(3))
    rng = np.random.default_rng(args.seed)
    inputs = rng.normal(size=(args.timesteps, 1))
    _, y = model.sample(true, jax.random.PRNGKey(args.seed), args.timesteps, inputs=inputs)
    y = np.array(y)
    y[rng.random(args.timesteps) < 0.1] = np.nan                            # missing readings

    start = model.initialize(jax.random.PRNGKey(args.seed + 1))
    fit = model.fit_vb(start, y, inputs, num_iters=args.iters)

    eig = lambda a: np.sort_complex(np.linalg.eigvals(np.asarray(a)))       # noqa: E731
    print("true A eigenvalues:   ", np.round(eig(true.dynamics_weights), 3))
    print("learned A eigenvalues:", np.round(eig(fit.params.dynamics_weights), 3))
    lls = {name: float(model.marginal_log_prob(prm, y, inputs)) for name, prm in
           (("start", start), ("learned", fit.params), ("true", true))}
    print("log p(y) start / learned / true: " + " / ".join(f"{v:.1f}" for v in lls.values()))
    print(f"ELBO first -> last: {fit.elbo[0]:.1f} -> {fit.elbo[-1]:.1f}")
    gap = np.max(np.abs(eig(fit.params.dynamics_weights) - eig(true.dynamics_weights)))
    print(f"max eigenvalue error: {gap:.3f}")
    return gap, lls


if __name__ == "__main__":
    main()
