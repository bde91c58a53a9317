"""`pyrxaif gridworld`: EFE planning by message passing with channels on epistemic grid-worlds.

Runs N episodes (seeds 0..N−1) per method on Frozen Lake, RockSample or Wumpus World and writes
``results.json``, ``results.csv`` (success rate, average reward, RockSample retrieval, Wilson 95%
intervals) and ``results.png`` (bar plot) to the output folder; ``--render`` adds ``episode.gif``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time

ENVS = ("frozenlake", "rocksample", "wumpus")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes out of n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def configure(parser: argparse.ArgumentParser) -> None:
    from pyrxaif.envs.frozenlake import DEFAULT_SLIP
    from pyrxaif.inference.rollout import METHODS
    parser.add_argument("--env", choices=ENVS, default="frozenlake")
    parser.add_argument("--method", choices=METHODS + ("all",), default="all")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per method (seeds 0..N-1)")
    parser.add_argument("--horizon", type=int, default=None, help="planning horizon (default per env)")
    parser.add_argument("--iters", type=int, default=None, help="message-passing iterations per plan")
    parser.add_argument("--damping", type=float, default=None, help="channel damping λ in (0, 1]")
    parser.add_argument("--obs-weight", type=float, default=None,
                        help="strength of the observation-side corrections (default per env)")
    parser.add_argument("--slip", type=float, default=None,
                        help=f"Frozen Lake only: slip probability per move (default {DEFAULT_SLIP})")
    parser.add_argument("--batch", type=int, default=50, help="episodes simulated together (vmap)")
    parser.add_argument("--out", default=os.path.join("pyrxaif-output", "gridworld"),
                        help="output folder (an existing non-empty one is kept: the run goes to <out>-2, ... "
                             "unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder at the end")
    parser.add_argument("--render", action="store_true", help="save a GIF of the first episode")
    parser.add_argument("--engine", default=None,
                        help="'jax' (default, or $PYRXAIF_ENGINE) or 'julia' (RxInfer plans every step)")


def _bar_plot(rows: list[dict], metric: str, path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [r["method"] for r in rows]
    vals = [r[metric] for r in rows]
    lo = [r[metric] - r[metric + "_ci_low"] for r in rows]
    hi = [r[metric + "_ci_high"] - r[metric] for r in rows]
    ax.bar(names, vals, yerr=[lo, hi], capsize=4, color="tab:blue")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(metric.replace("_", " ") + " (Wilson 95%)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_gif(env, states, layout: int, path: str) -> None:
    from PIL import Image
    frames = [Image.fromarray(env.render_rgb(int(x), int(layout))) for x in states]
    frames = [f.resize((f.width * 2, f.height * 2), Image.NEAREST) for f in frames]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=400, loop=0)


def run(args: argparse.Namespace) -> int:
    from pyrxaif.agents.gridworld import ENV_DEFAULTS, make_env
    from pyrxaif.exit_codes import UsageError, engine_name, positive_int
    from pyrxaif.inference.rollout import METHODS
    from pyrxaif.run_folder import RunFolder

    positive_int("--episodes", args.episodes)
    positive_int("--batch", args.batch)
    env_kwargs = {}
    if args.slip is not None:
        if args.env != "frozenlake":
            raise UsageError(f"--slip applies to --env frozenlake only, not {args.env}")
        if not 0.0 <= args.slip < 1.0:
            raise UsageError(f"--slip must be a probability in [0, 1), got {args.slip}")
        env_kwargs["slip"] = args.slip
    d = ENV_DEFAULTS[args.env]
    # given values are used as given (zero is not "unset"): counts must be positive
    horizon = d["horizon"] if args.horizon is None else positive_int("--horizon", args.horizon)
    n_iter = d["n_iter"] if args.iters is None else positive_int("--iters", args.iters)
    obs_weight = d["obs_weight"] if args.obs_weight is None else args.obs_weight
    if not (math.isfinite(obs_weight) and obs_weight > 0):
        raise UsageError(f"--obs-weight: expected a positive number, got {obs_weight}")
    if args.damping is not None and not (0.0 < args.damping <= 1.0):
        raise UsageError(f"--damping: expected a number in (0, 1], got {args.damping}")
    from pyrxaif.engines import require_engine
    engine = require_engine(engine_name(args.engine))  # start Julia (or say why not) before any work
    env = make_env(args.env, **env_kwargs)
    methods = METHODS if args.method == "all" else (args.method,)
    folder = RunFolder(args.out, overwrite=args.overwrite)
    with folder:
        _run_methods(args, env, methods, env_kwargs, horizon, n_iter, obs_weight, engine, folder)
        written = folder.commit()
    print(f"wrote {', '.join(written)} to {folder.target}")
    return 0


def _run_methods(args, env, methods, env_kwargs, horizon, n_iter, obs_weight, engine, folder):
    import numpy as np
    from tqdm.auto import tqdm

    from pyrxaif.agents.gridworld import run_episodes

    print(f"pyrxaif gridworld: env={args.env} methods={','.join(methods)} episodes={args.episodes} "
          f"horizon={horizon} iters={n_iter}; output folder: {folder.target}")
    rows = []
    for m in tqdm(methods, desc="methods", unit="method"):
        t0 = time.perf_counter()
        res = run_episodes(env, m, seeds=np.arange(args.episodes), horizon=horizon, n_iter=n_iter,
                           damping=args.damping, obs_weight=obs_weight, batch_size=args.batch, progress=True,
                           engine=engine)
        dt = time.perf_counter() - t0
        n = len(res.success)
        k = int(res.success.sum())
        row = {"method": m, "episodes": n, "success": k / n}
        row["success_ci_low"], row["success_ci_high"] = wilson(k, n)
        row["avg_reward"] = float(res.reward.mean())
        row["avg_reward_sem"] = float(res.reward.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        row["avg_steps"] = float(res.steps.mean())
        if args.env == "rocksample":
            # retrieval: episodes that sampled a good rock, among layouts with at least one good rock
            has_good = res.layout > 0
            kr, nr = int((res.success & has_good).sum()), int(has_good.sum())
            row["retrieval"] = kr / max(nr, 1)
            row["retrieval_ci_low"], row["retrieval_ci_high"] = wilson(kr, nr)
        row["seconds"] = dt
        rows.append(row)
        tqdm.write(f"  {m:11s} success {row['success']:.3f} [{row['success_ci_low']:.3f}, "
                   f"{row['success_ci_high']:.3f}]  reward {row['avg_reward']:.3f}"
                   + (f"  retrieval {row['retrieval']:.3f}" if "retrieval" in row else "")
                   + f"  ({dt:.1f} s)")
        if args.render and m == methods[-1]:
            save_gif(env, res.states[0][: int(res.steps[0]) + 1], int(res.layout[0]),
                     folder.path("episode.gif"))
    with open(folder.path("results.json"), "w") as f:
        json.dump({"env": args.env, "env_kwargs": env_kwargs, "horizon": horizon, "iters": n_iter, "obs_weight": obs_weight,
                   "results": rows}, f, indent=2)
    with open(folder.path("results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}, key=lambda s: (s != "method", s)))
        w.writeheader()
        w.writerows(rows)
    metric = "retrieval" if args.env == "rocksample" else "success"
    _bar_plot(rows, metric, folder.path("results.png"), f"{args.env}: {metric}")
