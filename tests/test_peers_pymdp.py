"""benchmarks/peers_pymdp.py: its workers' state posteriors agree (the check that gates the timing)."""

import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip("pymdp.agent", reason="inferactively-pymdp (dev extra) is not installed")

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "peers_pymdp.py")


def _module():
    spec = importlib.util.spec_from_file_location("peers_pymdp", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_peer_workers_agree_on_the_tmaze_posteriors():
    mod = _module()
    data = mod.make_data(3, 6, seed=1)
    assert data["obs"].shape == (3, 6, 2) and data["start"].tolist() == [True, False, False] * 2
    ref, t_ref = mod.worker_pymdp(data, repeats=1)
    ours, t_ours = mod.worker_pyrxaif(data, repeats=1, method="bp")
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    cued = data["obs"][:, :, 0] == 3                  # at the cue the side is known exactly
    assert np.all(np.isclose(ours[cued].max(axis=-1), 1.0))
    assert t_ref > 0 and t_ours > 0
