"""The driver shared by ``pyrxaif pendulum`` and ``pyrxaif digits``: check the arguments, collect →
train → validate → save → plan → score → plots, into an atomic run folder (:mod:`pyrxaif.run_folder`).
Everything task-specific comes from the :class:`~pyrxaif.agents.pixel_tasks.PixelTask`."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np

from pyrxaif.exit_codes import Refused, UsageError, engine_name, non_negative_int, positive_int


def add_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    parser.add_argument("--out", default=os.path.join(".", "pyrxaif-output", task),
                        help="output folder (an existing non-empty one is kept: the run goes to <out>-2, ... "
                             "unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder at the end")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny data and training (smoke test, < 2 min)")
    parser.add_argument("--episodes", type=int, default=10, help="number of start states to evaluate")
    parser.add_argument("--steps", type=int, default=None, help="control steps per episode")
    parser.add_argument("--checkpoint", default=None, help="load this checkpoint instead of training")
    parser.add_argument("--no-validate", action="store_true", help="plan even if the model fails validation")
    parser.add_argument("--restarts", type=int, default=None,
                        help="trainings with fresh seeds while a model misses the validation bar (held-out data "
                             "and closed-loop gate); default: the task's (2; 0 with --quick)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--engine", default=None,
                        help="planning engine: 'jax' (default, or $PYRXAIF_ENGINE) or 'julia' (RxInfer solves "
                             "each linearised plan; learning stays in JAX)")
    from pyrxaif.agents.pixel_tasks import TASKS  # noqa: PLC0415
    TASKS[task].add_arguments(parser)


def check_arguments(args: argparse.Namespace) -> None:
    """Usage errors (exit 2) before any work: counts must be positive, never replaced by defaults."""
    positive_int("--episodes", args.episodes)
    if args.steps is not None:
        positive_int("--steps", args.steps)
    non_negative_int("--seed", args.seed)
    if args.restarts is not None:
        non_negative_int("--restarts", args.restarts)
        if args.checkpoint is not None:
            raise UsageError("--restarts: only when training (not with --checkpoint)")
    if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
        raise UsageError(f"--checkpoint: no such file: {args.checkpoint}")
    if getattr(args, "mnist", None) is not None and not os.path.exists(args.mnist):
        raise UsageError(f"--mnist: no such file: {args.mnist}")


def load_model(args: argparse.Namespace, task):
    """The checkpoint's model, refused (exit 4) if it is for another task or another preset."""
    from pyrxaif.agents import pixel_control as pc  # noqa: PLC0415
    from pyrxaif.checkpoint import CheckpointError  # noqa: PLC0415
    try:
        model, record = pc.load(args.checkpoint, task=task.name)
    except CheckpointError as exc:
        raise Refused(str(exc)) from None
    if task.explicit_arguments(args) and model.config.task != task:
        raise Refused(f"checkpoint {args.checkpoint!r}: trained for {model.config.task}, not for the task the flags "
                      f"ask for, {task}")
    return model, record


def run_protocols(model, env, task, args, engine) -> dict:
    """The task's benchmark protocols (PC3's for the pendulum): ``--episodes`` starts each, mean ± SE."""
    from pyrxaif.agents import pixel_control as pc  # noqa: PLC0415
    rng = np.random.default_rng([args.seed, 3])
    out = {}
    for protocol in task.protocols():
        scores = []
        for _ in range(args.episodes):
            start, goal = protocol.start(rng)
            tr = pc.run_episode(model, env, start=start, goal=goal, steps=protocol.steps, engine=engine)
            scores.append({"start": start, **task.score(tr["states"], goal)})
        summary = {"episodes": len(scores), "steps": protocol.steps}
        for key in scores[0]:
            if key == "start":
                continue
            v = np.array([s[key] for s in scores])
            summary[key] = {"mean": float(v.mean()),
                            "se": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0,
                            "best": float(v.max())}
        out[protocol.name] = {"summary": summary, "episodes": scores}
        figures = "; ".join(f"{task.score_labels.get(k, k)} {s['mean']:.1f} ± {s['se']:.1f} % of steps "
                            f"(best {s['best']:.0f})"
                            for k, s in summary.items() if isinstance(s, dict))
        print(f"protocol {protocol.name} ({protocol.steps} steps, {len(scores)} starts): {figures}")
    return out


def drive(args: argparse.Namespace, task_name: str) -> int:
    check_arguments(args)
    from pyrxaif.agents.pixel_tasks import TASKS  # noqa: PLC0415
    from pyrxaif.engines import require_engine  # noqa: PLC0415
    from pyrxaif.run_folder import RunFolder  # noqa: PLC0415

    task = TASKS[task_name].from_arguments(args)
    engine = require_engine(engine_name(args.engine))  # start Julia (or say why not) before any work
    model = None
    if args.checkpoint:
        model, _ = load_model(args, task)     # refused (exit 4) before any output
        task = model.config.task
    with RunFolder(args.out, overwrite=args.overwrite) as folder:
        if folder.target != folder.requested:
            print(f"pyrxaif {task_name}: {folder.requested} holds an earlier run; this run goes to {folder.target} "
                  "(--overwrite replaces it)")
        print(f"pyrxaif {task_name}: writing to {folder.target}")
        code, report = _run(args, task, model, folder, engine)
        written = folder.commit()
    print(f"saved {', '.join(written)} in {folder.target}")
    print("RESULTS " + json.dumps(report["results_line"]))
    return code


def _run(args, task, model, folder, engine):
    """Train (unless ``model`` is given), validate, save, evaluate, score; returns (exit code, report)."""
    from pyrxaif.agents import pixel_control as pc  # noqa: PLC0415

    progress = not args.no_progress
    train_images, test_images = task.split_images(args.seed, getattr(args, "mnist", None))
    timings, attempts = {}, None
    cfg = pc.default_config(task, args.quick) if model is None else model.config
    if args.restarts is not None:
        cfg = replace(cfg, learning=replace(cfg.learning, restarts=args.restarts))
    held = pc.collect(cfg, args.seed + 1000, n_traj=max(3, cfg.data.n_traj // 5), images=test_images)
    if model is None:
        t0 = time.perf_counter()
        frames, actions, _ = pc.collect(cfg, args.seed, images=train_images)
        timings["collect_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model, history, metrics, failures = pc.train_validated(
            cfg, frames, actions, held[0], held[1], seed=args.seed, images=train_images, held_images=test_images,
            engine=engine, progress=progress)
        timings["train_s"] = sum(a["train_s"] for a in history["attempts"])     # training alone, all attempts
        timings["train_and_assess_s"] = time.perf_counter() - t0               # with validation and gates
        attempts = history["attempts"]
        for a in attempts[:-1]:
            print(f"training attempt {a['attempt']} (seed {a['train_seed']}, data seed {a['data_seed']}) "
                  "missed the bar: " + "; ".join(a["failures"]) + " -> restart")
        if failures and len(attempts) > 1:
            print(f"no training attempt met the bar; keeping attempt {history['chosen']}, the closest to it "
                  "(the gate's shortfall, then the held-out figures)")
        print("free energy per EM iteration:", ", ".join(f"{h['free_energy']:.2f}" for h in history["em"]))
    else:
        metrics, failures = pc.assess(model, held[0], held[1], args.seed, images=test_images, engine=engine,
                                      progress=progress)
    print(f"held-out validation: latent one-step NMSE {metrics['pred_nmse']:.3f}, open-loop over the planning "
          f"horizon {metrics['horizon_nmse']:.3f}, reconstruction MSE {metrics['recon_mse']:.4f}")
    if "gate" in metrics:
        print(f"closed-loop gate ({cfg.bar.gate_trials} trials judged by the agent's own encoder): "
              f"{metrics['gate']['line']} -> {'passed' if metrics['gate']['passed'] else 'missed the bars'}")
    bar = {k: None if v is None else float(v) for k, v in vars(cfg.bar).items()}      # gate_confidence may be None
    validation = {"passed": not failures, "metrics": metrics, "bar": bar,
                  "failures": failures, "enforced": not args.no_validate,
                  **({"attempts": attempts} if attempts is not None else {})}
    if not args.checkpoint:      # written after validation, with its outcome in the header
        pc.save(model, folder.path("model.msgpack"), validation)
    report = {"task": task.name, "task_settings": task.to_dict(), "quick": bool(args.quick), "seed": args.seed,
              "checkpoint": args.checkpoint, "validation": metrics, "validation_passed": not failures,
              "timings": timings, **({"training_attempts": attempts, "chosen_attempt": history["chosen"]}
                                       if attempts is not None else {})}
    if failures and not args.no_validate:
        reason = "checkpoint rejected on held-out sequences: " + "; ".join(failures) + \
                 " (train longer or with more data)"
        print(f"pyrxaif {task.name}: {reason}")
        report["refused"] = reason
        _write_json(folder, "results.json", report)
        report["results_line"] = {"refused": reason, "validation": metrics}
        return 4, report
    env = task.make_env(test_images)
    rng = np.random.default_rng(args.seed + 1)
    episodes, goals, results = [], [], []
    t0 = time.perf_counter()
    n_plans = 0
    steps = args.steps or task.default_steps(args.quick)
    for _ in range(args.episodes):
        start, goal = task.evaluation_episode(rng, None if test_images is None else len(test_images))
        tr = pc.run_episode(model, env, start=start, goal=goal, steps=steps, engine=engine)
        n_plans += steps
        episodes.append(tr)
        goals.append(goal)
        results.append({**task.episode_result(start, goal, tr["states"]), "escape_steps": int(tr["escaping"].sum())})
    timings["per_replan_s"] = (time.perf_counter() - t0) / n_plans
    summary, line = task.summarise(results)
    print(line)
    protocols = run_protocols(model, env, task, args, engine)
    report.update(summary=summary, episodes=results, protocols=protocols)
    _write_json(folder, "results.json", report)
    save_summary(folder.path(f"{task.name}.png"), task, episodes, goals)
    save_gif(folder.path(f"{task.name}.gif"), episodes[0]["frames"])
    report["results_line"] = {"summary": summary, "validation": metrics,
                              **({"protocols": {k: v["summary"] for k, v in protocols.items()}} if protocols else {})}
    return 0, report


def _write_json(folder, name, obj):
    folder.write_bytes(name, json.dumps(obj, indent=1).encode())


def save_summary(path, task, episodes, goals):
    """PNG: distance to the goal and action over time for every episode, and the latent trajectories."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for tr, goal in zip(episodes, goals):
        ax[0].plot(task.error(tr["states"], goal), lw=1)
        ax[1].plot(tr["actions"], lw=1)
        z = np.asarray(tr["latents"])
        ax[2].plot(z[:, 0], z[:, 1], lw=1)
        ax[2].plot(*tr["goal_latent"][:2], "k*", ms=10)
    ax[0].axhline(task.error_band, color="k", ls="--")
    ax[0].set_ylabel(task.error_label)
    ax[1].set_ylabel(task.action_label)
    for a in ax[:2]:
        a.set_xlabel("control step")
    ax[2].set_xlabel("z₁")
    ax[2].set_ylabel("z₂")
    ax[2].set_title("latent trajectories (★ goal)")
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)


def save_gif(path, frames, scale: int = 4):
    """Animated GIF of the frames (pillow), upscaled ``scale``×."""
    from PIL import Image

    imgs = [Image.fromarray((np.clip(f, 0, 1) * 255).astype(np.uint8)).resize((28 * scale, 28 * scale),
                                                                             Image.NEAREST) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=50, loop=0, format="GIF")
