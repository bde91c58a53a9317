"""`pyrxaif sweep pendulum|digits --seeds 0-9`: train one model per seed (independently), evaluate each,
and summarise over models: how many meet the task's bars, mean ± standard error of the benchmark score
(the pendulum: PC3's swing-up score) and the best model. Local processes by default (``--workers``), a
Ray cluster with ``--ray ADDRESS``. Resumable: finished models are kept in ``<out>/models/`` and a rerun
of the same sweep does only the rest. The library is :mod:`pyrxaif.sweep`."""

from __future__ import annotations

import argparse
import json
import os
import shutil

SWEEP_TASKS = ("pendulum", "digits")


def configure(parser: argparse.ArgumentParser) -> None:
    from pyrxaif.agents.pixel_tasks import PENDULUM_PRESETS  # noqa: PLC0415
    parser.add_argument("task", choices=SWEEP_TASKS)
    parser.add_argument("--seeds", default="0-9", help="training seeds, e.g. '0-9' or '0,2,5-7' (default 0-9)")
    parser.add_argument("--preset", choices=PENDULUM_PRESETS, default=None, help="pendulum physics (pendulum only)")
    parser.add_argument("--quick", action="store_true", help="the commands' --quick training (smoke sweeps)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation starts per model (default 10)")
    parser.add_argument("--restarts", type=int, default=None,
                        help="passed to each model's command (trainings while a model misses the validation bar)")
    parser.add_argument("--workers", type=int, default=1, help="models trained at once on this machine")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run the models as Ray tasks on this cluster ('auto', 'ray://host:10001', 'local')")
    parser.add_argument("--out", default=None, help="sweep folder (default ./pyrxaif-output/sweep-<task>[-<preset>])")
    parser.add_argument("--overwrite", action="store_true", help="discard an earlier sweep of other settings in --out")


def sweep_spec(args) -> dict:
    # every model is evaluated, also one its validation refuses: the sweep measures whether the
    # validation gate predicts failure (summary: validation_false_passes)
    extra = (["--quick"] if args.quick else []) + (["--preset", args.preset] if args.preset else []) \
        + (["--restarts", str(args.restarts)] if args.restarts is not None else []) + ["--no-validate"]
    return {"task": args.task, "preset": args.preset, "quick": bool(args.quick), "episodes": args.episodes,
            "args": extra}


def prepare_folder(out: str, spec: dict, overwrite: bool) -> None:
    """Create the sweep folder, or check that it holds a sweep of the same settings (then it resumes)."""
    from pyrxaif.exit_codes import UsageError  # noqa: PLC0415
    from pyrxaif.checkpoint import atomic_write_bytes  # noqa: PLC0415

    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out: {out} is a file, expected a folder")
    spec_file = os.path.join(out, "sweep-settings.json")
    if os.path.isdir(out) and os.listdir(out):
        old = json.load(open(spec_file)) if os.path.exists(spec_file) else None
        if old != {k: v for k, v in spec.items() if k != "runs"}:
            if not overwrite:
                what = f"a sweep with other settings ({old})" if old else "other files"
                raise UsageError(f"--out: {out} holds {what}; choose another --out or pass --overwrite")
            for sub in ("models", "runs"):
                shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {out} ({exc.strerror or exc})") from None
    atomic_write_bytes(spec_file, json.dumps({k: v for k, v in spec.items() if k != "runs"}, indent=1).encode())


def save_plot(path: str, models: dict, summary: dict, task: str) -> None:
    """Per-model figure by seed (score, or success fraction where the task has no score), mean ± SE band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    seeds = sorted(models)
    scored = "mean_score" in summary
    if scored:
        vals = [models[s]["score"] if models[s].get("score") is not None else np.nan for s in seeds]
        label, mean, se = "swing-up score (% of steps within π/6)", summary["mean_score"], summary["se_score"]
    else:
        vals = [np.nan if models[s].get("refused") else models[s]["summary"]["success"] / models[s]["summary"]["episodes"]
                for s in seeds]
        v = np.array([x for x in vals if np.isfinite(x)])
        label = "success fraction"
        mean = float(v.mean()) if v.size else np.nan
        se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
    fig, ax = plt.subplots(figsize=(6, 3.5))
    colours = ["tab:green" if models[s].get("meets_bars") else "tab:red" for s in seeds]
    ax.scatter(seeds, vals, c=colours, zorder=3, label="model (green: meets the bars)")
    ax.axhline(mean, color="k", lw=1, label=f"mean ± SE {mean:.2f} ± {se:.2f}")
    ax.axhspan(mean - se, mean + se, color="k", alpha=0.15)
    ax.set_xlabel("training seed"), ax.set_ylabel(label), ax.legend(fontsize=7)
    ax.set_title(f"pyrxaif sweep {task}: {summary['models_meeting_bars']}/{summary['n_models']} models meet the bars")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from pyrxaif import sweep
    from pyrxaif.checkpoint import atomic_write_bytes
    from pyrxaif.exit_codes import Unavailable, UsageError, non_negative_int, positive_int

    try:
        seeds = sweep.parse_seeds(args.seeds)
    except ValueError as exc:
        raise UsageError(f"--seeds: {exc}") from None
    positive_int("--episodes", args.episodes)
    positive_int("--workers", args.workers)
    if args.restarts is not None:
        non_negative_int("--restarts", args.restarts)
    if args.preset and args.task != "pendulum":
        raise UsageError(f"--preset: applies to the pendulum only, not {args.task}")
    if args.ray is not None:
        try:
            import ray  # noqa: F401,PLC0415
        except ImportError:
            raise Unavailable("Ray is not installed (pip install ray): --ray cannot run") from None
    out = os.path.abspath(args.out or os.path.join("pyrxaif-output", "-".join(
        ["sweep", args.task] + ([args.preset] if args.preset else []))))
    spec = sweep_spec(args)
    prepare_folder(out, spec, args.overwrite)
    spec["runs"] = os.path.join(out, "runs")
    where = f"Ray cluster {args.ray}" if args.ray else f"{args.workers} local process(es)"
    print(f"pyrxaif sweep {args.task}: seeds {seeds} on {where}; writing to {out}")
    models, failures = sweep.run_sweep(seeds, sweep.train_and_evaluate, spec, out, workers=args.workers,
                                       ray_address=args.ray)
    summary = sweep.summarise_models(models)
    report = {"settings": {k: v for k, v in spec.items() if k != "runs"}, "seeds": seeds,
              "models": {str(s): r for s, r in models.items()}, "summary": summary,
              "failed": [f["seed"] for f in failures]}
    atomic_write_bytes(os.path.join(out, "sweep.json"), json.dumps(report, indent=1).encode())
    if models:
        save_plot(os.path.join(out, "sweep.png"), models, summary, args.task)
    line = f"{summary['models_meeting_bars']}/{summary['n_models']} models meet the task's bars"
    if "mean_score" in summary:
        line += (f"; swing-up score (PC3 protocol, % of steps within π/6) {summary['mean_score']:.1f} ± "
                 f"{summary['se_score']:.1f} (SE over models), best {summary['best_score']:.1f} (seed "
                 f"{summary['best_seed']})")
    if "models_passing_validation" in summary:
        line += (f"; {summary['models_passing_validation']} pass their validation, of which "
                 f"{summary['validation_false_passes']} miss the bars")
    print(line)
    print(f"saved sweep.json{', sweep.png' if models else ''} and models/ in {out}")
    print("RESULTS " + json.dumps({"models": report["models"], "summary": summary}))
    if failures:
        print(f"pyrxaif sweep: {len(failures)} model(s) failed: seeds {report['failed']} (rerun to retry)")
        return 1
    return 0
