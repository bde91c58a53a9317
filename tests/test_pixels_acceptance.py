"""Acceptance runs of the two pixel commands with their defaults (issue item 7):
`pytest -m slow tests/test_pixels_acceptance.py` (about 3 + 8 minutes on 2 cores)."""

import json
import os

import pytest

from pyrxaif.cli import main

pytestmark = pytest.mark.slow


def _run(task, tmp_path, capsys):
    out = str(tmp_path / task)
    rc = main([task, "--out", out, "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    return json.load(open(os.path.join(out, "results.json")))["summary"]


def test_digits_acceptance(tmp_path, capsys):
    s = _run("digits", tmp_path, capsys)
    assert s["episodes"] == 10 and s["success"] >= 8, s


def test_pendulum_acceptance(tmp_path, capsys):
    s = _run("pendulum", tmp_path, capsys)
    assert s["episodes"] == 10 and s["swing_up"] >= 8 and s["stabilised"] >= 6, s
