"""benchmarks/peers.py runs at a tiny size: each library in its own process, outputs checked equal."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_peers_dynamax_tiny():
    pytest.importorskip("dynamax.linear_gaussian_ssm", reason="dynamax (dev extra) not installed")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--peer", "dynamax", "--sizes", "30",
                          "--dims", "2", "--repeats", "2", "--em-iters", "2"], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "outputs checked equal" in out.stdout
    row = re.search(r"^\s+30\s+2 \|(.*)$", out.stdout, re.M).group(1)
    ratios = [float(x) for x in re.findall(r"([0-9.]+)x", row)]
    assert len(ratios) == 3 and all(r > 0 for r in ratios)


def test_peers_check_refuses_outputs_that_differ():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import peers
    import numpy as np
    outputs = dict(filter_loglik=-10.0, filtered_means=np.zeros((5, 2)), loglik=-10.0, smoothed_means=np.ones((5, 2)))
    peers.check_lds(({}, outputs), ({}, dict(outputs)))                      # equal: no exit
    for key, bad in (("filter_loglik", -10.1), ("filtered_means", np.full((5, 2), 1e-3)),
                     ("loglik", -9.0), ("smoothed_means", np.ones((5, 2)) + 1e-4)):
        with pytest.raises(SystemExit, match=key):
            peers.check_lds(({}, outputs), ({}, dict(outputs, **{key: bad})))
