"""Wumpus World: what information is worth, measured in the same simulator and random streams.

    python benchmarks/wumpus_information.py --seeds 1000:1100 --method vbp

Three agents, each with episode i on ``PRNGKey(seed_i)`` as in ``run_episodes`` (same layout draws,
same random stream per time step), all planning with ``--method`` at the Wumpus defaults:
- ``planner``: the planner alone, in the default world (noisy percepts unless sensing);
- ``exact percepts``: the planner in a world whose percepts and position are near-exact without
  sensing (``noise=(0.99, 0.01)``, ``pos_acc=0.99``): information for free, an upper reference;
- ``sense new cells``: a scripted rule in the default world, SENSE once on every newly entered cell
  (the agent's cell is known exactly: moves are deterministic from a known start), otherwise act as the
  planner. It pays a step per SENSE.
If the scripted rule beats the planner, sensing is worth its steps in this world and a planner that
valued information correctly would sense. Prints success with Wilson 95% intervals, steps and SENSEs per
episode (docs/gridworld.md, "What information is worth here").
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pyrxaif  # noqa: E402,F401
from pyrxaif.agents.gridworld import (ENV_DEFAULTS, _advance, _episode_end, _episode_start,  # noqa: E402
                                      make_env, tables_from_spec)
from pyrxaif.commands.gridworld import wilson  # noqa: E402
from pyrxaif.envs.wumpus import SENSE  # noqa: E402
from pyrxaif.inference.rollout import _plan, method_config  # noqa: E402


def run(env, seeds, method: str, sense_new_cells: bool):
    """(success (N,), steps (N,), senses (N,)) of one agent; see the module docstring."""
    d = ENV_DEFAULTS["wumpus"]
    cfg = method_config(method, n_iter=d["n_iter"], obs_weight=d["obs_weight"])
    horizon, max_steps = d["horizon"], env.max_steps
    n_cells = env.size ** 2
    model, tab = env.model(), tables_from_spec(env.spec_)

    def episode(key):
        layout, k_run, init = _episode_start(model, tab, max_steps, key)

        def body(c):
            carry, sensed = c
            u_plan = jnp.argmax(_plan(model, carry[2], cfg, horizon).log_q_u0).astype(jnp.int32)
            x = jnp.argmax(logsumexp(carry[2], axis=1))          # the known state (cell, sense flag)
            cell = x % n_cells
            new = sense_new_cells & (x < n_cells) & ~sensed[cell]
            u = jnp.where(new, SENSE, u_plan).astype(jnp.int32)
            return _advance(model, tab, layout, k_run, carry, u), sensed.at[cell].set(sensed[cell] | new)

        fin, _ = jax.lax.while_loop(lambda c: (c[0][0] < max_steps) & ~c[0][3], body,
                                    (init, jnp.zeros(n_cells, bool)))
        return _episode_end(tab, max_steps, layout, fin)

    ep = jax.jit(episode)
    outs = [ep(jax.random.PRNGKey(int(s))) for s in seeds]     # one by one: see docs/gridworld.md, BATCH
    success = np.array([bool(o[0]) for o in outs])
    steps = np.array([int(o[2]) for o in outs])
    senses = np.array([int(np.sum(np.asarray(o[5]) == SENSE)) for o in outs])
    return success, steps, senses


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1000:1100", help="LO:HI (held-out seeds start at 1000)")
    p.add_argument("--method", default="vbp", help="planner: bp, vbp, rm-mp, aif-mp or nuijten-mp")
    a = p.parse_args(argv)
    lo, hi = (int(v) for v in a.seeds.split(":"))
    seeds = np.arange(lo, hi)
    agents = (("planner", {}, False),
              ("exact percepts", {"noise": (0.99, 0.01), "pos_acc": 0.99}, False),
              ("sense new cells", {}, True))
    print(f"Wumpus World, seeds {lo}-{hi - 1}, planner {a.method} (defaults {ENV_DEFAULTS['wumpus']})")
    for name, kw, scripted in agents:
        t0 = time.perf_counter()
        success, steps, senses = run(make_env("wumpus", **kw), seeds, a.method, scripted)
        k, n = int(success.sum()), success.size
        lo_ci, hi_ci = wilson(k, n)
        print(f"  {name:16s} success {k / n:.3f} ({k}/{n}) [{lo_ci:.3f}, {hi_ci:.3f}]  steps {steps.mean():.1f}"
              f"  SENSEs/episode {senses.mean():.2f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
