"""Full acceptance runs (issue targets, 200 episodes per method, seeds 0..199): `pytest -m slow`.

Every method runs on every environment with the per-environment defaults (``ENV_DEFAULTS``); the
measured figures (success, RockSample retrieval, Wilson 95% intervals) are written to
``pyrxaif-output/acceptance/<env>.json`` so that the docs can quote exactly what was measured.
"""

import json
import os
import time

import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.agents.gridworld import ENV_DEFAULTS, make_env, run_episodes
from pyrxaif.commands.gridworld import wilson
from pyrxaif.inference.rollout import METHODS

N = 200
OUT = os.path.join("pyrxaif-output", "acceptance")
# Episodes simulated together (vmap). A vmapped batch runs until its slowest episode ends and on CPU
# vmap gains little, so small batches are faster; results do not depend on the batch size (episode i
# uses PRNGKey(seed_i); checked: identical episodes with batches 1, 4, 8, 40). Measured, Wumpus AIF-MP,
# 40 held-out episodes, load ≈ 3: batch 40 → 101 s, 8 → 56 s, 1 → 44 s. RockSample keeps the batch
# of its passing runs (not re-timed).
BATCH = {"frozenlake": 1, "wumpus": 1, "rocksample": 50}


def _retrieval(res):
    good = res.layout > 0                 # layouts with at least one good rock
    return int((res.success & good).sum()), int(good.sum())


def _run(env_name):
    env = make_env(env_name)
    d = ENV_DEFAULTS[env_name]
    out, rows = {}, {}
    for m in METHODS:
        t0 = time.perf_counter()
        r = run_episodes(env, m, seeds=np.arange(N), horizon=d["horizon"], n_iter=d["n_iter"],
                         obs_weight=d["obs_weight"], batch_size=BATCH[env_name])
        k = int(r.success.sum())
        row = {"episodes": N, "success": k / N, "success_ci": wilson(k, N), "avg_reward": float(r.reward.mean()),
               "avg_steps": float(r.steps.mean()), "seconds": time.perf_counter() - t0}
        if env_name == "rocksample":
            kr, nr = _retrieval(r)
            row["retrieval"], row["retrieval_ci"] = kr / nr, wilson(kr, nr)
        out[m], rows[m] = r, row
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, f"{env_name}.json"), "w") as f:
        json.dump({"env": env_name, "settings": d, "batch_size": BATCH[env_name], "load_avg_1min": os.getloadavg()[0],
                   "methods": rows}, f, indent=2)
    return out


@pytest.mark.slow
def test_frozenlake_acceptance():
    r = _run("frozenlake")
    assert r["aif-mp"].success.mean() >= 0.95
    assert r["aif-mp"].success.mean() > r["bp"].success.mean()


@pytest.mark.slow
def test_rocksample_acceptance():
    r = _run("rocksample")
    ka, na = _retrieval(r["aif-mp"])
    kb, nb = _retrieval(r["bp"])
    assert ka / na >= 0.90 and kb / nb <= 0.10


@pytest.mark.slow
def test_wumpus_acceptance():
    r = _run("wumpus")
    s = {m: v.success.mean() for m, v in r.items()}
    assert s["aif-mp"] >= 0.5 and all(s["aif-mp"] >= v for v in s.values())
