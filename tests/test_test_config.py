"""The suite's own configuration (pyproject.toml's pytest addopts): a test whose xdist worker dies of a
native fault runs once more on a fresh worker, and a test that fails is reported failed, never rerun."""

import os
import re
import subprocess
import sys

_PROBE = '''
import os, pathlib, signal

def test_worker_dies_once():
    marker = pathlib.Path(os.environ["PYRXAIF_CRASH_MARKER"])
    if not marker.exists():
        marker.write_text("crashed once")
        os.kill(os.getpid(), signal.SIGSEGV)

def test_fails_every_time():
    pathlib.Path(os.environ["PYRXAIF_FAIL_LOG"]).open("a").write("ran\\n")
    assert 1 == 2
'''


def test_a_crashed_worker_reruns_its_test_once_and_a_failure_is_not_rerun(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    probe = tmp_path / "test_probe.py"
    probe.write_text(_PROBE)
    env = dict(os.environ, PYRXAIF_CRASH_MARKER=str(tmp_path / "crashed"), PYRXAIF_FAIL_LOG=str(tmp_path / "fails"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-c", os.path.join(root, "pyproject.toml"),
                           "--rootdir", str(tmp_path), "-p", "no:randomly", str(probe), "-rA"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert (tmp_path / "crashed").exists()                                        # it did crash once
    assert re.search(r"PASSED .*test_worker_dies_once", out), out[-3000:]          # then passed on a rerun
    assert re.search(r"FAILED .*test_fails_every_time", out), out[-3000:]
    assert (tmp_path / "fails").read_text() == "ran\n"                             # a failure runs once
    assert re.search(r"1 failed, 1 passed, 1 rerun", out), out[-3000:]
