"""examples/lds_system_identification.py runs at a small size and identifies the system."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lds_system_identification_example_recovers_the_eigenvalues():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "lds_system_identification.py"),
                          "--timesteps", "300", "--iters", "20"], capture_output=True, text=True, timeout=400,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True).stdout
    gap = float(re.search(r"max eigenvalue error: ([0-9.]+)", out).group(1))
    start, learned, true = map(float, re.search(r"start / learned / true: (\S+) / (\S+) / (\S+)", out).groups())
    assert gap < 0.05
    assert learned > start + 100 and learned > true - 10
