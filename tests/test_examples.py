"""The pixel and RxInfer examples run from a fresh process and print the figures their docstrings promise
(the discrete and LDS examples have their own test modules)."""

import os
import re
import subprocess
import sys

import pytest

from pyrxaif.engines import julia_status

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args, timeout=600):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), *args], capture_output=True,
                         text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_pixel_pendulum_example_quick_budget():
    """Trains at the smoke-test budget, validates on held-out frames and runs the receding-horizon
    controller: one line per episode whose PC3 share agrees with the final-angle line's format, and a
    mean that is the mean of the episode shares."""
    out = _run("pixel_pendulum.py", "--budget", "quick", "--episodes", "2", "--steps", "20")
    nmse = float(re.search(r"held-out latent one-step NMSE ([\d.]+)", out).group(1))
    assert 0.0 < nmse < 1.0, out          # better than predicting the mean (NMSE 1), on unseen frames
    shares = [float(v) for v in re.findall(r"^episode \d+: .* within π/6 of upright ([\d.]+) % of steps$", out, re.M)]
    assert len(shares) == 2 and all(0.0 <= s <= 100.0 for s in shares), out
    mean = float(re.search(r"mean within π/6 of upright: ([\d.]+) % of steps over 2 episodes", out).group(1))
    assert mean == pytest.approx(sum(shares) / 2, abs=0.051)


def test_rxinfer_example_runs_or_says_why():
    """Without Julia it says why and exits 0; with Julia the posterior mean is the closed form's."""
    out = _run("rxinfer_coin.py", timeout=1800)
    if julia_status().available is False:
        assert out.startswith("Julia engine unavailable here, nothing to run: "), out
        return
    mean, closed = map(float, re.search(r"mean ([\d.]+) \(closed form Beta\(7, 5\): mean ([\d.]+)\)", out).groups())
    assert mean == pytest.approx(closed, abs=1e-4)
