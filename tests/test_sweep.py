"""Sweeps over training seeds (pyrxaif.sweep, `pyrxaif sweep`): seed lists, the summary over models
(brute force), resuming after an interruption, local processes and a real local Ray instance."""

import json
import os
import sys

import numpy as np
import pytest

import pyrxaif
from pyrxaif import sweep
from pyrxaif.cli import main


def fake_model(seed, spec):
    """A cheap stand-in for one trained model: figures that depend on the seed."""
    if spec.get("crash") == seed:
        return {"seed": seed, "failed": "exit code 1: boom"}
    if spec.get("interrupt") == seed:
        raise KeyboardInterrupt
    success = 6 + seed % 5
    return {"seed": seed, "summary": {"success": success, "episodes": 10}, "meets_bars": success >= 8,
            "score": float(10 * seed + 1), "pid": os.getpid()}


def test_parse_seeds():
    assert sweep.parse_seeds("0-9") == list(range(10))
    assert sweep.parse_seeds("1, 3,5-6") == [1, 3, 5, 6]
    assert sweep.parse_seeds("4") == [4]
    for bad in ("", "a", "3-1", "-1", "1,1", "0-2,2", "1.5"):
        with pytest.raises(ValueError, match="seeds"):
            sweep.parse_seeds(bad)


def test_summary_over_models_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 12))
        models = {s: {"seed": s, "meets_bars": bool(rng.random() < 0.5), "score": float(rng.uniform(0, 100))}
                  for s in range(n)}
        got = sweep.summarise_models(models)
        scores = [models[s]["score"] for s in range(n)]
        mean = sum(scores) / n
        se = (sum((x - mean) ** 2 for x in scores) / (n - 1)) ** 0.5 / n ** 0.5 if n > 1 else 0.0
        assert got["n_models"] == n and got["models_meeting_bars"] == sum(m["meets_bars"] for m in models.values())
        assert got["mean_score"] == pytest.approx(mean) and got["se_score"] == pytest.approx(se)
        assert got["best_score"] == max(scores) and models[got["best_seed"]]["score"] == max(scores)
    assert sweep.summarise_models({0: {"seed": 0, "meets_bars": True, "score": None}}) == \
        {"n_models": 1, "models_meeting_bars": 1}


def test_code_version_names_the_commit_that_trains(tmp_path, monkeypatch):
    """In a git checkout: the version, the HEAD commit of the imported source and +dirty with changes to
    tracked files under pyrxaif/; outside one: the version alone."""
    import re
    import subprocess
    where = os.path.dirname(os.path.dirname(os.path.abspath(pyrxaif.__file__)))
    head = subprocess.run(["git", "-C", where, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    got = sweep.code_version()
    if head.returncode == 0:
        assert re.fullmatch(re.escape(pyrxaif.__version__) + r"\+g" + head.stdout.strip() + r"(\+dirty)?", got)
    else:
        assert got == pyrxaif.__version__
    monkeypatch.setattr(pyrxaif, "__file__", str(tmp_path / "pyrxaif" / "__init__.py"))   # not a checkout
    assert sweep.code_version() == pyrxaif.__version__


def test_local_sweep_keeps_finished_models_and_resumes(tmp_path):
    folder = str(tmp_path / "sw")
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep([0, 1, 2, 3], fake_model, {"interrupt": 2}, folder, workers=1, log=lambda *_: None)
    kept = sorted(os.listdir(os.path.join(folder, "models")))
    assert kept == ["seed-0.json", "seed-1.json"]              # finished before the interruption
    calls = []

    def counting(seed, spec):
        calls.append(seed)
        return fake_model(seed, spec)

    models, failures = sweep.run_sweep([0, 1, 2, 3], counting, {"crash": 3}, folder, workers=2,
                                       log=lambda *_: None)
    assert sorted(calls) == [2, 3] and sorted(models) == [0, 1, 2] and [f["seed"] for f in failures] == [3]
    models, failures = sweep.run_sweep([0, 1, 2, 3], counting, {}, folder, log=lambda *_: None)
    assert sorted(calls) == [2, 3, 3] and sorted(models) == [0, 1, 2, 3] and not failures
    assert models[3] == json.load(open(sweep.record_path(folder, 3)))


_RAY_CHILD = """
import json, os, sys
import ray
from pyrxaif import sweep

def model(seed, spec):                     # defined in __main__: Ray pickles it by value
    return {"seed": seed, "summary": {"success": 6 + seed, "episodes": 10}, "meets_bars": seed >= 2,
            "score": float(10 * seed + 1), "pid": os.getpid()}

models, failures = sweep.run_sweep([0, 1, 2], model, {}, sys.argv[1], ray_address="local", log=lambda *_: None)
print("CHILD " + json.dumps({"models": models, "failures": failures, "pid": os.getpid(),
                             "initialized": ray.is_initialized()}))
"""


def test_ray_sweep_on_a_real_local_instance(tmp_path):
    """Three models as tasks of a real local Ray instance. The sweep runs in a fresh child process: Ray
    forks its daemons, and a fork from a test worker that already runs XLA's thread pools is unsafe (a
    later test in the same worker once crashed in libgcc_s)."""
    import importlib.util
    import subprocess
    if importlib.util.find_spec("ray") is None:      # not importorskip: Ray's native modules stay out of this worker
        pytest.skip("Ray is not installed (pip install ray)")
    proc = subprocess.run([sys.executable, "-c", _RAY_CHILD, str(tmp_path / "ray")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD ")][-1][len("CHILD "):])
    models = {int(k): v for k, v in got["models"].items()}
    assert not got["initialized"]                                # the sweep shut its instance down
    assert sorted(models) == [0, 1, 2] and not got["failures"]
    assert all(m["pid"] != got["pid"] for m in models.values())  # ran in Ray worker processes
    assert [models[s]["score"] for s in range(3)] == [1.0, 11.0, 21.0]
    assert sweep.summarise_models(models)["models_meeting_bars"] == 1
    assert sorted(os.listdir(tmp_path / "ray" / "models")) == ["seed-0.json", "seed-1.json", "seed-2.json"]


def test_cli_sweep_results_line_resume_and_usage_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "train_and_evaluate", fake_model)
    out = str(tmp_path / "sweep")
    assert main(["sweep", "digits", "--seeds", "0-3", "--out", out]) == 0
    text = capsys.readouterr().out
    res = json.loads(text.strip().splitlines()[-1][len("RESULTS "):])
    assert res["summary"] == sweep.summarise_models({s: fake_model(s, {}) for s in range(4)})
    assert res["summary"]["models_meeting_bars"] == 2 and sorted(res["models"]) == ["0", "1", "2", "3"]
    assert os.path.getsize(os.path.join(out, "sweep.png")) > 1000
    assert main(["sweep", "digits", "--seeds", "0-4", "--out", out]) == 0      # resumes: only seed 4 runs
    assert "resuming: 4 of 5 models already finished" in capsys.readouterr().out
    assert main(["sweep", "digits", "--seeds", "0-4", "--episodes", "3", "--out", out]) == 2  # other settings
    assert "--overwrite" in capsys.readouterr().err
    for argv in (["--seeds", "x"], ["--episodes", "0"], ["--workers", "0"], ["--preset", "underactuated"],
                 ["--restarts", "-1"]):
        assert main(["sweep", "digits", "--out", str(tmp_path / "o")] + argv) == 2
        assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_sweep_digits_quick_two_real_models(tmp_path, capsys):
    """Two real `pyrxaif digits --quick` models in child processes (about 3 minutes on 2 cores)."""
    out = str(tmp_path / "sweep")
    assert main(["sweep", "digits", "--seeds", "0-1", "--quick", "--episodes", "2", "--workers", "2",
                 "--out", out]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1][len("RESULTS "):])
    assert sorted(res["models"]) == ["0", "1"] and res["summary"]["n_models"] == 2
    for s, rec in res["models"].items():
        rep = json.load(open(os.path.join(out, "runs", f"seed-{s}", "results.json")))
        assert rec["summary"] == rep["summary"] and rec["exit_code"] == 0
        assert rec["training_attempts"] == len(rep["training_attempts"]) == 1     # --quick: no restarts
        assert rec["chosen_attempt"] == rep["chosen_attempt"] == 0
        assert rec["code"] == sweep.code_version() and rec["code"].startswith(pyrxaif.__version__)
        assert rec["meets_bars"] == (rep["summary"]["success"] >= 0.8 * 2)
