"""Grid-world benchmark: warm planning time per step, peak memory, and (optionally) acceptance runs.

    python benchmarks/gridworld.py                      # timing + memory only
    python benchmarks/gridworld.py --episodes 200       # plus success / retrieval per method

Timing: one plan from the initial belief (horizon and iterations as the CLI defaults), compiled
once, then the median of ``--repeats`` warm calls. Peak memory: the process's maximum resident set
size (includes the Python/JAX runtime and every environment run before; use ``--envs rocksample`` for
the RockSample figure alone). Acceptance targets (issue): Frozen Lake AIF-MP success ≥ 95% and
above BP; RockSample[4,3] AIF-MP retrieval ≥ 90% with BP ≤ 10%; Wumpus AIF-MP ≥ every other method and
≥ 50%; warm median per step ≤ 0.1 s (Frozen Lake, Wumpus), ≤ 2 s (RockSample); RockSample ≤ 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pyrxaif  # noqa: E402,F401
from pyrxaif.agents.gridworld import ENV_DEFAULTS, make_env, run_episodes  # noqa: E402
from pyrxaif.commands.gridworld import wilson  # noqa: E402
from pyrxaif.inference.rollout import METHODS, method_config, plan_unchecked  # noqa: E402

_plan_jit = jax.jit(plan_unchecked, static_argnames=("cfg", "horizon"))   # the planner without input checks


TIME_TARGET_S = {"frozenlake": 0.1, "rocksample": 2.0, "wumpus": 0.1}


def time_plan(env_name: str, method: str, repeats: int) -> float:
    env = make_env(env_name)
    d = ENV_DEFAULTS[env_name]
    model = env.model()
    with np.errstate(divide="ignore"):
        b0 = np.log(env.initial_belief())
    cfg = method_config(method, n_iter=d["n_iter"], obs_weight=d["obs_weight"])
    _plan_jit(model, b0, cfg, d["horizon"]).log_q_u0.block_until_ready()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _plan_jit(model, b0, cfg, d["horizon"]).log_q_u0.block_until_ready()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", default="frozenlake,rocksample,wumpus")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--episodes", type=int, default=0, help="acceptance episodes per method (0 = skip)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", default=os.path.join("pyrxaif-output", "benchmarks"))
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    report = {"cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0], "envs": {}}
    for env_name in a.envs.split(","):
        entry = {"plan_seconds_warm_median": {}, "episodes": {}}
        for m in a.methods.split(","):
            entry["plan_seconds_warm_median"][m] = time_plan(env_name, m, a.repeats)
            print(f"{env_name:10s} {m:11s} warm median per planning step "
                  f"{entry['plan_seconds_warm_median'][m]:.4f} s", flush=True)
        if a.episodes > 0:
            env = make_env(env_name)
            d = ENV_DEFAULTS[env_name]
            for m in a.methods.split(","):
                t0 = time.perf_counter()
                r = run_episodes(env, m, seeds=np.arange(a.episodes), horizon=d["horizon"], n_iter=d["n_iter"],
                                 obs_weight=d["obs_weight"], progress=True)
                n, k = len(r.success), int(r.success.sum())
                row = {"success": k / n, "success_ci": wilson(k, n), "avg_reward": float(r.reward.mean()),
                       "avg_steps": float(r.steps.mean()), "seconds": time.perf_counter() - t0}
                if env_name == "rocksample":
                    g = r.layout > 0
                    kr, nr = int((r.success & g).sum()), int(g.sum())
                    row["retrieval"], row["retrieval_ci"] = kr / max(nr, 1), wilson(kr, nr)
                entry["episodes"][m] = row
                print(f"{env_name:10s} {m:11s} " + "  ".join(f"{key}={val}" for key, val in row.items()), flush=True)
        limit = TIME_TARGET_S[env_name]
        worst = max(entry["plan_seconds_warm_median"].values())
        entry["time_target_s"], entry["time_target_met"] = limit, worst <= limit
        print(f"{env_name:10s} slowest method {worst:.4f} s per step, target <= {limit} s: "
              f"{'met' if worst <= limit else 'NOT met'}", flush=True)
        entry["peak_rss_mb_so_far"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"{env_name:10s} peak RSS so far {entry['peak_rss_mb_so_far']:.0f} MB", flush=True)
        report["envs"][env_name] = entry
    path = os.path.join(a.out, "gridworld.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {os.path.abspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
