"""Full acceptance runs (LAIF setting, 100 runs × 30 trials): `pytest -m slow tests/test_tmaze_acceptance.py`."""

import jax
import numpy as np
import pytest

import pyrxaif  # noqa: F401
from pyrxaif.agents import bargaining as bg
from pyrxaif.agents import tmaze as ag

pytestmark = pytest.mark.slow


def test_gfe_agent_acceptance():
    _, rec = ag.simulate(jax.random.PRNGKey(0), 100, 30, progress=False)
    win = np.asarray(rec.win, float)
    cue = np.asarray(rec.cue_first, float)
    assert win[:, 10:].mean() >= 0.80
    assert cue[:, 5:].mean() >= 0.5


def test_bethe_agent_acceptance():
    _, rec = ag.simulate(jax.random.PRNGKey(0), 100, 30, objective="bethe", progress=False)
    win = np.asarray(rec.win, float)
    cue = np.asarray(rec.cue_first, float)
    assert cue[:, 5:].mean() <= 0.05
    assert win.mean() <= 0.5 + 2 * np.sqrt(0.25 / win.size)


def test_goal_learning_acceptance():
    _, rec = ag.simulate(jax.random.PRNGKey(0), 20, 30, learn="goals", progress=False)
    G1 = np.asarray(rec.G1)[:, -1]
    epi = [k for k, (u1, u2) in enumerate(ag.FIRST_POLICIES) if u1 == 3 and u2 in (1, 2)]
    other = [k for k in range(len(ag.FIRST_POLICIES)) if k not in epi]
    assert np.all(G1[:, epi].max(1) < G1[:, other].min(1))


def test_bargaining_acceptance():
    _, rec = bg.simulate_bargaining(jax.random.PRNGKey(0), 10, 30, progress=False)
    acc = np.asarray(rec.accepted)
    assert acc[:, 20:].mean() >= 0.7
