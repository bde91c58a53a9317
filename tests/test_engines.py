"""Engine selection and the Julia availability check (no Julia needed; Julia is never started)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrxaif import engines
from pyrxaif.engines import julia_status, resolve_engine

ROOT = Path(__file__).resolve().parent.parent


def test_resolve_engine_default_env_and_explicit(monkeypatch):
    monkeypatch.delenv("PYRXAIF_ENGINE", raising=False)
    assert resolve_engine(None) == "jax"
    monkeypatch.setenv("PYRXAIF_ENGINE", "Julia")
    assert resolve_engine(None) == "julia"
    assert resolve_engine("jax") == "jax"          # an explicit choice wins over the variable
    monkeypatch.setenv("PYRXAIF_ENGINE", "")
    assert resolve_engine(None) == "jax"


def test_resolve_engine_rejects_unknown_names(monkeypatch):
    with pytest.raises(ValueError, match=r"engine: unknown engine 'torch'.*'jax', 'julia'"):
        resolve_engine("torch")
    monkeypatch.setenv("PYRXAIF_ENGINE", "numpy")
    with pytest.raises(ValueError, match=r"PYRXAIF_ENGINE: unknown engine 'numpy'"):
        resolve_engine(None)
    with pytest.raises(TypeError, match="engine: expected a string"):
        resolve_engine(3)


def test_get_engine_returns_the_engine_module(monkeypatch):
    monkeypatch.delenv("PYRXAIF_ENGINE", raising=False)
    jax_engine = engines.get_engine()
    assert jax_engine.name == "jax" and jax_engine.available()[0] is True
    julia_engine = engines.get_engine("julia")
    assert julia_engine.name == "julia" and callable(julia_engine.smooth_lds)
    assert julia_engine.available() == tuple(julia_status())
    with pytest.raises(ValueError, match="unknown engine"):
        engines.get_engine("tensorflow")


def test_julia_status_without_juliacall(monkeypatch):
    real = engines.importlib.util.find_spec
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda n: None if n == "juliacall" else real(n))
    ok, reason = julia_status()
    assert not ok and "juliacall is not installed" in reason


def test_julia_status_bad_exe_and_no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(tmp_path / "nope"))
    monkeypatch.delenv("PYTHON_JULIAPKG_OFFLINE", raising=False)
    monkeypatch.setattr(engines, "_reachable", lambda *a, **k: (False, "pkg.julialang.org:443 unreachable"))
    ok, reason = julia_status()
    assert not ok
    assert "PYTHON_JULIAPKG_EXE" in reason and "no network" in reason and "unreachable" in reason
    # with the network check off, a first install is deemed possible
    ok, reason = julia_status(check_network=False)
    assert ok and "will be downloaded" in reason


def test_julia_status_exe_found_but_packages_missing_offline(monkeypatch, tmp_path):
    exe = tmp_path / "julia"
    exe.write_text("#!/bin/sh\nexit 1\n")   # only looked up, never run
    exe.chmod(0o755)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(exe))
    monkeypatch.setenv("PYTHON_JULIAPKG_OFFLINE", "yes")
    monkeypatch.setattr(engines, "_juliapkg_state", lambda: {"project": str(tmp_path / "env")})
    assert engines.find_julia_executable() == (str(exe), "PYTHON_JULIAPKG_EXE")
    ok, reason = julia_status()
    assert not ok and "RxInfer and PyRxAIF must be installed" in reason and "OFFLINE" in reason
    # an environment that already has both packages is ready
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "Manifest.toml").write_text("[[deps.RxInfer]]\n[[deps.PyRxAIF]]\n")
    ok, reason = julia_status()
    assert ok and "installed" in reason


def test_import_pyrxaif_never_starts_julia():
    code = ("import sys, pyrxaif, pyrxaif.engines, pyrxaif.engines.julia, pyrxaif.julia, pyrxaif.commands.info;"
            "from pyrxaif.engines import julia_status; julia_status(check_network=False);"
            "print('juliacall' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]   # juliacall (which starts Julia on import) was never imported


def test_info_command_reports_engines(monkeypatch, capsys):
    from pyrxaif import cli

    monkeypatch.setattr(engines, "_reachable", lambda *a, **k: (False, "no route"))
    monkeypatch.delenv("PYRXAIF_ENGINE", raising=False)
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "selected engine" in out and ": jax" in out
    assert "jax   : available" in out
    ok, why = julia_status()
    assert f"julia : {'available' if ok else 'unavailable'} - {why}" in out
