"""`pyrxaif tmaze`: GFE vs Bethe agents on the T-maze (LAIF), and the goal-learning / bargaining extensions."""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=None,
                        help="independent runs (vmapped); default 100 (10 for --extension bargain)")
    parser.add_argument("--trials", type=int, default=30, help="trials per run, default 30")
    parser.add_argument("--alpha", type=float, default=0.9, help="reward probability, default 0.9")
    parser.add_argument("--c", type=float, default=2.0, help="reward utility, default 2")
    parser.add_argument("--iterations", type=int, default=50, help="message-passing iterations per policy")
    parser.add_argument("--burn-in", type=int, default=10, help="iterations dropped before averaging F")
    parser.add_argument("--samples", type=int, default=20, help="importance samples for q(A)")
    parser.add_argument("--selection", default="sample", help="'sample' from softmax(-gamma G) or 'argmin'")
    parser.add_argument("--gamma", type=float, default=10.0, help="policy precision on G in bits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extension", default=None, help="'goals' (learn goal statistics) or 'bargain'")
    parser.add_argument("--engine", default=None,
                        help="'jax' (default, or $PYRXAIF_ENGINE) or 'julia' (RxInfer scores the policies; "
                             "the main GFE/Bethe comparison only, not --extension)")
    parser.add_argument("--out", default=os.path.join(".", "pyrxaif-output", "tmaze"),
                        help="output folder (an existing non-empty one is kept: the run goes to <out>-2, ... "
                             "unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder at the end")
    parser.add_argument("--no-progress", action="store_true")


def _plots():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _binom_pmf(n, p):
    from math import comb
    return np.array([comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)])


def _run_main(args, out):
    import jax
    from pyrxaif.agents.tmaze import simulate
    from pyrxaif.envs.tmaze import OUTCOMES, POSITIONS
    plt = _plots()
    key = jax.random.PRNGKey(args.seed)
    kw = dict(alpha=args.alpha, c=args.c, selection=args.selection, gamma=args.gamma, iterations=args.iterations,
              burn_in=args.burn_in, num_samples=args.samples, engine=args.engine, progress=not args.no_progress)
    summary, results = {}, {}
    for objective in ("gfe", "bethe"):
        t0 = time.time()
        beliefs, rec = simulate(key, args.runs, args.trials, objective=objective, desc=f"{objective} agent", **kw)
        win = np.asarray(rec.win, float)
        cue = np.asarray(rec.cue_first, float)
        late = slice(min(10, args.trials - 1), None)
        summary[objective] = {
            "seconds": round(time.time() - t0, 1),
            "win_rate_per_trial": win.mean(0).round(4).tolist(),
            "cue_first_rate_per_trial": cue.mean(0).round(4).tolist(),
            "mean_win_rate_trials_11_on": float(win[:, late].mean()),
            "mean_cue_first_rate_trials_11_on": float(cue[:, late].mean()),
            "wins_per_run": win.sum(1).astype(int).tolist(),
        }
        results[objective] = (beliefs, rec, win, cue)
        print(f"{objective}: win rate (trials 11+) {summary[objective]['mean_win_rate_trials_11_on']:.3f}, "
              f"cue first {summary[objective]['mean_cue_first_rate_trials_11_on']:.3f} "
              f"({summary[objective]['seconds']} s)")
    N = args.trials
    trials = np.arange(1, N + 1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for obj, (_, _, win, cue) in results.items():
        ax.plot(trials, win.mean(0), marker="o", ms=3, label=f"{obj.upper()} win rate")
        ax.plot(trials, cue.mean(0), ls=":", label=f"{obj.upper()} cue first")
    ax.axhline(args.alpha, color="k", ls="--", lw=1, label=f"ideal (α = {args.alpha})")
    ax.axhline(0.5, color="gray", ls="-.", lw=1, label="chance (0.5)")
    ax.set_xlabel("trial"), ax.set_ylabel("rate over runs"), ax.set_ylim(0, 1.05), ax.legend(fontsize=7)
    fig.tight_layout(), fig.savefig(os.path.join(out, "win_rate.png"), dpi=120), plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.arange(N + 2) - 0.5
    for obj, (_, _, win, _) in results.items():
        ax.hist(win.sum(1), bins=bins, density=True, alpha=0.5, label=obj.upper())
    ax.plot(np.arange(N + 1), _binom_pmf(N, args.alpha), "k--", label=f"Binomial({N}, {args.alpha})")
    ax.set_xlabel("wins per run"), ax.set_ylabel("fraction of runs"), ax.legend(fontsize=8)
    fig.tight_layout(), fig.savefig(os.path.join(out, "wins_histogram.png"), dpi=120), plt.close(fig)

    for obj, (beliefs, _, _, _) in results.items():
        A = np.asarray(beliefs.A_conc).mean(0)
        fig, axes = plt.subplots(1, 4, figsize=(10, 3))
        for p, axp in enumerate(axes):
            blk = A[4 * p:4 * p + 4, 2 * p:2 * p + 2]
            axp.imshow(blk, cmap="Blues")
            for (i, j), v in np.ndenumerate(blk):
                axp.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7)
            axp.set_title(f"position {POSITIONS[p]}"), axp.set_xticks([0, 1], ["RL", "RR"])
            axp.set_yticks(range(4), OUTCOMES)
        fig.suptitle(f"{obj.upper()}: learned Dirichlet statistics of A (mean over runs)")
        fig.tight_layout(), fig.savefig(os.path.join(out, f"learned_A_{obj}.png"), dpi=120), plt.close(fig)
        summary[obj]["learned_A_mean"] = A.round(3).tolist()

    from pyrxaif.agents.tmaze import FIRST_POLICIES
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
    for axp, (obj, (_, rec, _, _)) in zip(axes, results.items()):
        G1 = np.asarray(rec.G1).mean(0)
        for k, (u1, u2) in enumerate(FIRST_POLICIES):
            axp.plot(trials, G1[:, k], label=f"{POSITIONS[u1]}→{POSITIONS[u2]}",
                     lw=2 if u1 == 3 and u2 in (1, 2) else 1)
        axp.set_title(f"{obj.upper()}: G per policy at t=1 (mean over runs)"), axp.set_xlabel("trial")
        summary[obj]["G1_mean_per_trial"] = G1.round(3).tolist()
    axes[0].set_ylabel("G [bits]"), axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout(), fig.savefig(os.path.join(out, "policy_G.png"), dpi=120), plt.close(fig)
    return summary


def _run_goals(args, out):
    import jax
    from pyrxaif.agents.tmaze import FIRST_POLICIES, simulate
    from pyrxaif.envs.tmaze import OUTCOMES, POSITIONS
    plt = _plots()
    beliefs, rec = simulate(jax.random.PRNGKey(args.seed), args.runs, args.trials, objective="gfe", learn="goals",
                            alpha=args.alpha, c=args.c, selection=args.selection, gamma=args.gamma,
                            iterations=args.iterations, burn_in=args.burn_in, num_samples=args.samples,
                            engine=args.engine, progress=not args.no_progress, desc="goal learning")
    G1 = np.asarray(rec.G1).mean(0)
    C = np.asarray(beliefs.goal_conc).mean(0)
    names = [f"{POSITIONS[i // 4]}:{OUTCOMES[i % 4]}" for i in range(16)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for t in range(2):
        axes[0].bar(np.arange(16) + 0.4 * t, C[t], width=0.4, label=f"t = {t + 1}")
    axes[0].set_xticks(range(16), names, rotation=90, fontsize=6), axes[0].legend()
    axes[0].set_title("learned goal statistics (mean over runs)")
    trials = np.arange(1, args.trials + 1)
    for k, (u1, u2) in enumerate(FIRST_POLICIES):
        axes[1].plot(trials, G1[:, k], lw=2 if u1 == 3 and u2 in (1, 2) else 1,
                     label=f"{POSITIONS[u1]}→{POSITIONS[u2]}")
    axes[1].set_xlabel("trial"), axes[1].set_ylabel("G [bits]"), axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout(), fig.savefig(os.path.join(out, "goals.png"), dpi=120), plt.close(fig)
    epi = [k for k, (u1, u2) in enumerate(FIRST_POLICIES) if u1 == 3 and u2 in (1, 2)]
    other = [k for k in range(len(FIRST_POLICIES)) if k not in epi]
    last = G1[-1]
    print(f"goals: final G cue→arm {last[epi].round(2).tolist()}, others min {last[other].min():.2f}")
    return {"goal_statistics_mean": C.round(3).tolist(), "G1_mean_per_trial": G1.round(3).tolist(),
            "cue_first_rate_per_trial": np.asarray(rec.cue_first, float).mean(0).round(4).tolist(),
            "final_G_cue_then_arm": last[epi].tolist(), "final_G_others_min": float(last[other].min())}


def _run_bargain(args, out):
    import jax
    from pyrxaif.agents.bargaining import OFFERS, simulate_bargaining
    plt = _plots()
    runs = args.runs
    conc, rec = simulate_bargaining(jax.random.PRNGKey(args.seed), runs, args.trials, c=args.c,
                                    selection=args.selection, gamma=args.gamma, iterations=args.iterations,
                                    burn_in=args.burn_in, num_samples=args.samples, engine=args.engine,
                                    progress=not args.no_progress)
    offer = np.asarray(rec.offer)
    acc = np.asarray(rec.accepted)
    G = np.asarray(rec.G)
    trials = np.arange(1, args.trials + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for j, a in enumerate(OFFERS):
        axes[0].plot(trials, G[0, :, j], label=f"α = {a}")
    axes[0].set_xlabel("trial"), axes[0].set_ylabel("seller's G [bits]"), axes[0].legend(fontsize=7)
    axes[0].set_title("run 1: G per offer")
    axes[1].scatter(trials[acc[0]], OFFERS[offer[0]][acc[0]], marker="o", label="accepted")
    axes[1].scatter(trials[~acc[0]], OFFERS[offer[0]][~acc[0]], marker="x", c="r", label="rejected")
    axes[1].set_xlabel("trial"), axes[1].set_ylabel("offer α"), axes[1].legend(fontsize=8)
    axes[1].set_title("run 1: offers")
    fig.tight_layout(), fig.savefig(os.path.join(out, "bargain.png"), dpi=120), plt.close(fig)
    late = slice(args.trials // 2, None)
    print(f"bargain: late offers mean {OFFERS[offer[:, late]].mean():.3f}, accepted {acc[:, late].mean():.2f}")
    return {"runs": runs, "offers": OFFERS[offer].tolist(), "accepted": acc.tolist(),
            "late_mean_offer": float(OFFERS[offer[:, late]].mean()),
            "late_acceptance_rate": float(acc[:, late].mean()), "seller_statistics": np.asarray(conc).tolist()}


def check_arguments(args: argparse.Namespace) -> None:
    """Usage errors (exit 2) before any work; fills the default ``--runs``."""
    import math

    from pyrxaif.exit_codes import UsageError, engine_name, non_negative_int, positive_int
    args.engine = engine_name(args.engine)
    if args.extension not in (None, "goals", "bargain"):
        raise UsageError(f"--extension: expected 'goals' or 'bargain', got {args.extension!r}")
    if args.engine == "julia" and args.extension:
        raise UsageError(f"--engine julia: --extension {args.extension} runs on the JAX engine only (the Julia "
                         "T-maze model learns A with fixed goals)")
    if args.selection not in ("sample", "argmin"):
        raise UsageError(f"--selection: expected 'sample' or 'argmin', got {args.selection!r}")
    if args.runs is None:
        args.runs = 10 if args.extension == "bargain" else 100
    for name in ("runs", "trials", "iterations", "samples"):
        positive_int(f"--{name}", getattr(args, name))
    non_negative_int("--burn-in", args.burn_in)
    if args.burn_in >= args.iterations:
        raise UsageError(f"--burn-in: expected fewer than --iterations = {args.iterations}, got {args.burn_in}")
    non_negative_int("--seed", args.seed)
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha: expected a probability in [0, 1], got {args.alpha}")
    if not math.isfinite(args.c):
        raise UsageError(f"--c: expected a finite number, got {args.c}")
    if not (math.isfinite(args.gamma) and args.gamma > 0):
        raise UsageError(f"--gamma: expected a positive number, got {args.gamma}")


def run(args: argparse.Namespace) -> int:
    from pyrxaif.engines import require_engine
    from pyrxaif.run_folder import RunFolder
    check_arguments(args)
    require_engine(args.engine)  # start Julia (or say why not) before any work
    out = os.path.join(args.out, args.extension) if args.extension else args.out
    with RunFolder(out, overwrite=args.overwrite) as folder:
        print(f"pyrxaif tmaze: writing to {folder.target}")
        if args.extension == "goals":
            summary = _run_goals(args, folder.staging)
        elif args.extension == "bargain":
            summary = _run_bargain(args, folder.staging)
        else:
            summary = _run_main(args, folder.staging)
        summary["settings"] = {k: v for k, v in vars(args).items() if not k.startswith("_")}
        with open(folder.path("results.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
        folder.commit()
    print(f"pyrxaif tmaze: figures and results.json in {folder.target}")
    return 0
