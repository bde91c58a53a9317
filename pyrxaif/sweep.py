"""Sweeps over training seeds: train and evaluate independent models, locally (processes) or on a Ray
cluster, keep each finished model's figures, resume after an interruption, summarise over models.

:func:`run_sweep` calls ``run_model(seed, spec) -> dict`` once per seed that has no record yet in
``<folder>/models/seed-<N>.json``; records are written atomically as models finish, so an interrupted
sweep keeps its finished models and a rerun does only the rest. ``run_model`` runs in a thread that waits
for a child process (:func:`train_and_evaluate`: one ``pyrxaif <task>`` run) or, with ``ray_address``,
as a Ray task (the driver writes the records, so workers need no shared file system).
:func:`summarise_models`: models meeting the task's bars and mean ± standard error of the benchmark score
over models, and the best model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from pyrxaif.checkpoint import atomic_write_bytes


def parse_seeds(text: str) -> list[int]:
    """"0-9" → [0, ..., 9]; "1,3,5-6" → [1, 3, 5, 6]; seeds are integers >= 0, each at most once."""
    if not isinstance(text, str) or not re.fullmatch(r"\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*", text):
        raise ValueError(f"seeds: expected a list like '0-9' or '1,3,5-7' of integers >= 0, got {text!r}")
    seeds = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        lo, hi = int(a), int(b) if b.strip() else int(a)
        if hi < lo:
            raise ValueError(f"seeds: range {part.strip()!r} runs backwards")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: {text!r} names a seed twice")
    return seeds


def summarise_models(models: dict) -> dict:
    """Over the finished models' records (``meets_bars``, optional ``score``): ``n_models``,
    ``models_meeting_bars``; where the records say whether the model passed its validation
    (``validation_passed``), ``models_passing_validation`` and ``validation_false_passes`` (passed but
    missed the bars: what the gate must keep at 0); and where models have a score, ``mean_score``,
    ``se_score`` (standard error over models, ddof 1; 0 for one model), ``best_score`` and ``best_seed``."""
    records = list(models.values())
    out = {"n_models": len(records), "models_meeting_bars": int(sum(bool(r.get("meets_bars")) for r in records))}
    judged = [r for r in records if r.get("validation_passed") is not None]
    if judged:
        out["models_passing_validation"] = int(sum(bool(r["validation_passed"]) for r in judged))
        out["validation_false_passes"] = int(sum(bool(r["validation_passed"]) and not r.get("meets_bars")
                                                 for r in judged))
    scored = [(r["score"], r["seed"]) for r in records if r.get("score") is not None]
    if scored:
        v = np.array([s for s, _ in scored], float)
        out["mean_score"] = float(v.mean())
        out["se_score"] = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
        best = int(np.argmax(v))
        out["best_score"], out["best_seed"] = float(v[best]), int(scored[best][1])
    return out


def record_path(folder: str, seed: int) -> str:
    return os.path.join(folder, "models", f"seed-{seed}.json")


def finished_models(folder: str, seeds) -> dict:
    """The records already in ``folder`` for ``seeds`` (a resumed sweep does not redo them)."""
    done = {}
    for s in seeds:
        p = record_path(folder, s)
        if os.path.exists(p):
            with open(p) as f:
                done[s] = json.load(f)
    return done


def run_sweep(seeds, run_model, spec: dict, folder: str, *, workers: int = 1, ray_address: str | None = None,
              log=print) -> tuple[dict, list[dict]]:
    """(records of all finished models by seed, failures of this call); see the module docstring. A
    record with ``"failed"`` (the run crashed) is reported, not kept, so a rerun retries it."""
    os.makedirs(os.path.join(folder, "models"), exist_ok=True)
    models = finished_models(folder, seeds)
    todo = [s for s in seeds if s not in models]
    if models:
        log(f"resuming: {len(models)} of {len(seeds)} models already finished ({sorted(models)})")
    failures = []

    def keep(rec):
        if rec.get("failed"):
            failures.append(rec)
            log(f"seed {rec['seed']}: failed ({rec['failed']})")
            return
        atomic_write_bytes(record_path(folder, rec["seed"]), json.dumps(rec, indent=1).encode())
        models[rec["seed"]] = rec
        log(f"seed {rec['seed']}: " + describe(rec))

    if todo and ray_address is not None:
        _run_on_ray(todo, run_model, spec, ray_address, keep)
    elif todo:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_model, s, spec) for s in todo]
            try:
                for fut in as_completed(futures):
                    keep(fut.result())
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    return dict(sorted(models.items())), failures


def _run_on_ray(todo, run_model, spec, address, keep):
    import ray  # noqa: PLC0415

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_model)
        pending = [remote.remote(s, spec) for s in todo]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                keep(ray.get(done[0]))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()


def describe(rec: dict) -> str:
    """One line for a model's record."""
    if rec.get("refused"):
        return f"refused by validation ({rec['refused']})"
    parts = [", ".join(f"{k} {v}" for k, v in rec["summary"].items() if k != "episodes")
             + f" of {rec['summary']['episodes']}", f"bars {'met' if rec['meets_bars'] else 'missed'}"]
    if rec.get("validation_passed") is not None:
        parts.append("validation " + ("passed" if rec["validation_passed"] else "refused"))
    if rec.get("score") is not None:
        parts.append(f"score {rec['score']:.1f}")
    if rec.get("training_attempts", 1) > 1:
        parts.append(f"{rec['training_attempts']} trainings")
    return "; ".join(parts) + f" ({rec.get('wall_s', 0):.0f} s)"


def code_version() -> str:
    """The pyrxaif version, with the git commit of the imported source where it is a git checkout
    (``+dirty`` with uncommitted changes): which code trained a sweep's model."""
    import pyrxaif  # noqa: PLC0415
    where = os.path.dirname(os.path.dirname(os.path.abspath(pyrxaif.__file__)))
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no", "pyrxaif"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return pyrxaif.__version__
    if head.returncode != 0:
        return pyrxaif.__version__
    return f"{pyrxaif.__version__}+g{head.stdout.strip()}" + ("+dirty" if dirty.stdout.strip() else "")


def train_and_evaluate(seed: int, spec: dict) -> dict:
    """One model: ``pyrxaif <task> --seed <seed>`` in a child process into ``<runs>/seed-<seed>``, and its
    record (summary, validation, protocol summaries, whether it meets the task's bars, its score)."""
    from pyrxaif.agents.pixel_tasks import task_from_dict  # noqa: PLC0415

    out = os.path.join(spec["runs"], f"seed-{seed}")
    cmd = [sys.executable, "-m", "pyrxaif.cli", spec["task"], "--seed", str(seed), "--out", out, "--overwrite",
           "--no-progress", "--episodes", str(spec["episodes"])] + list(spec.get("args", []))
    code = code_version()              # before the child starts: the code it imports
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rec = {"seed": seed, "exit_code": proc.returncode, "wall_s": wall, "run_folder": out, "code": code}
    if proc.returncode not in (0, 4):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return rec | {"failed": f"exit code {proc.returncode}: {tail[0]}"}
    with open(os.path.join(out, "results.json")) as f:
        rep = json.load(f)
    if rep.get("training_attempts") is not None:       # trainings it took (restarts chosen on held-out data)
        rec["training_attempts"] = len(rep["training_attempts"])
        rec["chosen_attempt"] = rep.get("chosen_attempt")
    if proc.returncode == 4:
        return rec | {"refused": rep.get("refused", "refused"), "validation": rep["validation"],
                      "meets_bars": False, "score": None}
    task = task_from_dict(rep["task_settings"])
    protocols = {k: v["summary"] for k, v in rep.get("protocols", {}).items()}
    return rec | {"summary": rep["summary"], "validation": rep["validation"], "protocols": protocols,
                  "validation_passed": bool(rep.get("validation_passed")),
                  "meets_bars": bool(task.meets_bars(rep["summary"])),
                  "score": task.benchmark_score(protocols) if protocols else None}
