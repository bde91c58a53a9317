"""Every script in examples/ runs from a fresh process at a small size and prints the figures its
docstring promises."""

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


def test_pomdp_aif_vs_bp_example():
    """AIF-MP tests before treating in every episode and collects more preference than BP, which acts blind."""
    out = _run("pomdp_aif_vs_bp.py", "--episodes", "6")
    rows = {m: (float(a), float(b)) for m, a, b in
            re.findall(r"^(\S+)\s+tests first: ([\d.]+)\s+mean preference collected: ([+-][\d.]+)", out, re.M)}
    assert set(rows) == {"aif-mp", "bp"}, out
    assert rows["aif-mp"][0] == 1.0 and rows["bp"][0] == 0.0
    assert rows["aif-mp"][1] > 2.0 > rows["bp"][1]


def test_tmaze_gfe_agent_example():
    """The learning GFE agent visits the cue first and is rewarded more often than chance (0.5)."""
    out = _run("tmaze_gfe_agent.py", "--runs", "8", "--trials", "4")
    lines = out.splitlines()
    cue = [float(v) for v in re.findall(r"trials [\d-]+: ([\d.]+)", lines[0])]
    win = [float(v) for v in re.findall(r"trials [\d-]+: ([\d.]+)", lines[1])]
    assert lines[0].startswith("cue visited first") and len(cue) == 2 and len(win) == 2, out
    assert min(cue) >= 0.75
    assert win[1] > 0.5


def test_lds_system_identification_example_recovers_the_eigenvalues():
    out = _run("lds_system_identification.py", "--timesteps", "300", "--iters", "20", timeout=400)
    gap = float(re.search(r"max eigenvalue error: ([0-9.]+)", out).group(1))
    start, learned, true = map(float, re.search(r"start / learned / true: (\S+) / (\S+) / (\S+)", out).groups())
    assert gap < 0.05
    assert learned > start + 100 and learned > true - 10


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
