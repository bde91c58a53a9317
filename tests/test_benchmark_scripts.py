"""The benchmark scripts that make claims about the library's own episodes run those episodes."""

import importlib.util
import os

import numpy as np

import pyrxaif  # noqa: F401
from pyrxaif.agents.gridworld import ENV_DEFAULTS, make_env, run_episodes

HERE = os.path.dirname(__file__)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "..", "benchmarks", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_wumpus_information_agents_share_run_episodes_streams():
    wi = _load("wumpus_information")
    env, seeds = make_env("wumpus"), np.arange(1000, 1004)
    d = ENV_DEFAULTS["wumpus"]
    ref = run_episodes(env, "vbp", seeds=seeds, batch_size=1, **d)
    success, steps, senses = wi.run(env, seeds, "vbp", sense_new_cells=False)
    np.testing.assert_array_equal(success, np.asarray(ref.success))     # the planner alone = run_episodes
    np.testing.assert_array_equal(steps, np.asarray(ref.steps))
    assert np.all(senses == 0)
    success, steps, senses = wi.run(env, seeds, "vbp", sense_new_cells=True)
    assert np.all(senses >= 1)                    # at least the start cell is sensed
    assert np.all(senses <= steps)


def test_lgssm_benchmark_reference_agrees_and_runs_batched(capsys):
    """benchmarks/lgssm.py checks its NumPy loop against pyrxaif before timing (asserts inside ``run``)."""
    lb = _load("lgssm")
    rows = lb.run([30], 3, 1, 1, numpy_max_t=100, parallel_max_t=0)
    assert rows[0]["T"] == 30 and rows[0]["numpy"] > 0 and rows[0]["smooth"] > 0
    lb.run_batched(30, 3, 1, [2], 1)
    assert "batch    2:" in capsys.readouterr().out
