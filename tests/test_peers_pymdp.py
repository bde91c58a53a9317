"""benchmarks/peers_pymdp.py: its workers' outputs agree (the check that gates the timing): the state
posteriors for every method and loop, and for ``efe`` (pymdp's algorithm) the policy posteriors too."""

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
    (ref, ref_pi), t_ref = mod.worker_pymdp(data, repeats=1)
    ours = {}
    for method, api in (("bp", "step"), ("bp", "calls"), ("efe", "step"), ("efe", "calls")):
        (post, q_pi), t_ours = mod.worker_pyrxaif(data, repeats=1, method=method, api=api)
        ours[method, api] = post, q_pi
        err, err_pi = mod.max_differences({"post": post, "q_pi": q_pi}, {"post": ref, "q_pi": ref_pi}, method)
        assert err < 1e-6 and min(t_ours) > 0, (method, api)
        assert err_pi < 1e-6 if method == "efe" else np.isnan(err_pi)
    # the fused step and the three calls give the same numbers
    np.testing.assert_array_equal(ours["efe", "step"][1], ours["efe", "calls"][1])
    cued = data["obs"][:, :, 0] == 3                  # at the cue the side is known exactly
    assert np.all(np.isclose(ours["bp", "step"][0][cued].max(axis=-1), 1.0))
    assert np.all(np.isclose(ref_pi.sum(axis=-1), 1.0)) and np.ptp(ref_pi) > 0.01 and min(t_ref) > 0
