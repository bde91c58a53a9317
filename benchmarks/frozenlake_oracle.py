"""Frozen Lake ceiling: the known-layout optimal policy in the same simulator and random streams.

    python benchmarks/frozenlake_oracle.py --seeds 1000:1200 --scans 0,1,2

The oracle knows the layout θ and follows the value-iteration policy that maximises P(reach the goal)
(slippery moves, holes absorbing). It runs in ``run_episodes``' simulator with the same per-episode keys
(``PRNGKey(seed)``: same layout draws and the same random stream per time step), after ``--scans``
leading SCAN steps, so that its noise realisations line up with an agent that scans that often first
(AIF-MP scans ≈ 2 times). ``V*`` is the exact expected success of the oracle for the drawn layouts.
No agent that must first learn θ can do better in expectation than ``V*``.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pyrxaif  # noqa: E402,F401
from pyrxaif.agents.gridworld import (_advance, _episode_end, _episode_start, make_env,  # noqa: E402
                                      tables_from_spec)
from pyrxaif.envs.frozenlake import SCAN  # noqa: E402


def optimal_policy(env, n_sweeps: int = 300):
    """(policy (K,S) argmax_u Q, V0 (K,) P(goal) from the start) for each known layout."""
    K, S = env.num_layouts, env.spec_.T.shape[0]
    T, succ = env.spec_.T, env.spec_.succ
    pol, v0 = np.zeros((K, S), np.int32), np.zeros(K)
    for k in range(K):
        V = np.zeros(S)
        for _ in range(n_sweeps):
            Q = np.einsum("xuj,xuj->xu", T[:, :SCAN, :, k], V[succ[:, :SCAN]])   # the moves
            V = Q.max(axis=1)
            V[env.spec_.success[:, k]] = 1.0
            V[env.spec_.terminal[:, k] & ~env.spec_.success[:, k]] = 0.0
        pol[k] = Q.argmax(axis=1)
        v0[k] = V[env.spec_.start]
    return pol, v0


def run(env, seeds, scans: int):
    pol, v0 = optimal_policy(env)
    max_steps = env.max_steps
    model, tab = env.model(), tables_from_spec(env.spec_)
    pol_j = jnp.asarray(pol)

    def episode(key):
        layout, k_run, init = _episode_start(model, tab, max_steps, key)

        def body(c):
            u = jnp.where(c[0] < scans, SCAN, pol_j[layout, c[1]]).astype(jnp.int32)
            return _advance(model, tab, layout, k_run, c, u)

        fin = jax.lax.while_loop(lambda c: (c[0] < max_steps) & ~c[3], body, init)
        return _episode_end(tab, max_steps, layout, fin)

    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    out = jax.jit(jax.vmap(episode))(keys)
    success, layout = np.asarray(out[0]), np.asarray(out[3])
    return success, layout, v0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1000:1200", help="LO:HI (held-out seeds start at 1000)")
    p.add_argument("--scans", default="0,1,2")
    a = p.parse_args(argv)
    lo, hi = (int(v) for v in a.seeds.split(":"))
    env = make_env("frozenlake")
    for s in (int(v) for v in a.scans.split(",")):
        success, layout, v0 = run(env, np.arange(lo, hi), s)
        print(f"seeds {lo}-{hi - 1}, {s} leading scans: oracle success {success.mean():.3f} "
              f"({int(success.sum())}/{success.size}); V* for the drawn layouts {v0[layout].mean():.4f}")
    print("V* per layout:", np.round(v0, 4).tolist())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
