"""The discrete examples run at a small size and print the figures their docstrings promise."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args, timeout=300):
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
