"""Engine selection and the Julia availability check (no Julia needed; Julia is never started)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrxaif import engines
from pyrxaif.engines import julia_runtime as jr
from pyrxaif.engines import julia_status, resolve_engine
from pyrxaif.engines.protocol import Engine

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


def test_engine_resolver_returns_protocol_objects(monkeypatch):
    monkeypatch.delenv("PYRXAIF_ENGINE", raising=False)
    jax_engine = engines.engine()
    assert jax_engine.name == "jax" and jax_engine.available()[0] is True and isinstance(jax_engine, Engine)
    julia_engine = engines.engine("julia")                     # resolving never starts Julia
    assert julia_engine.name == "julia" and isinstance(julia_engine, Engine)
    assert julia_engine.available() == tuple(julia_status())
    monkeypatch.setenv("PYRXAIF_ENGINE", "julia")
    assert engines.engine().name == "julia"
    assert engines.require_engine("jax") == "jax"
    with pytest.raises(ValueError, match="unknown engine"):
        engines.engine("tensorflow")
    # every protocol method exists on both engines with the same parameters
    import inspect

    for method in ("plan_rollout", "plan_local", "evaluate_policies", "smooth_lds", "learn_lds", "infer"):
        want = list(inspect.signature(getattr(Engine, method)).parameters)
        for eng in (jax_engine, julia_engine):
            assert list(inspect.signature(getattr(type(eng), method)).parameters) == want, (eng.name, method)
    with pytest.raises(NotImplementedError, match="Julia engine"):
        jax_engine.infer("@model function m(y) end")


def test_julia_status_without_juliacall(monkeypatch):
    real = engines.importlib.util.find_spec
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda n: None if n == "juliacall" else real(n))
    ok, reason = julia_status()
    assert not ok and "juliacall is not installed" in reason


def _fake_exe(path, version_line, rc=0):
    path.write_text(f"#!/bin/sh\necho '{version_line}'\nexit {rc}\n")
    path.chmod(0o755)
    return path


def test_julia_status_bad_exe(monkeypatch, tmp_path):
    """PYTHON_JULIAPKG_EXE that is missing, or not Julia (/bin/true, another program), or too old:
    juliapkg would use it and fail, so the engine is unavailable, with the reason."""
    monkeypatch.delenv("PYTHON_JULIAPKG_OFFLINE", raising=False)
    monkeypatch.setattr(jr, "_reachable", lambda *a, **k: (True, "reachable"))
    cases = [(str(tmp_path / "nope"), "is not an executable file"),
             ("/bin/true", "is not Julia"),
             (str(_fake_exe(tmp_path / "python3", "Python 3.11.7")), "is not Julia"),
             (str(_fake_exe(tmp_path / "julia16", "julia version 1.6.7")),
              "is Julia 1.6.7; pyrxaif needs ^1.10"),
             (str(_fake_exe(tmp_path / "broken", "julia version 1.10.4", rc=1)), "is not Julia")]
    for exe, why in cases:
        monkeypatch.setenv("PYTHON_JULIAPKG_EXE", exe)
        assert engines.find_julia_executable()[0] is None
        ok, reason = julia_status()
        assert ok is False and "PYTHON_JULIAPKG_EXE" in reason and why in reason, reason


def test_julia_on_path_that_is_not_julia_is_not_found(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTHON_JULIAPKG_EXE", raising=False)
    monkeypatch.setattr(jr, "_juliapkg_state", lambda: {})
    _fake_exe(tmp_path / "julia", "not julia at all")
    monkeypatch.setenv("PATH", str(tmp_path))
    exe, why = engines.find_julia_executable()
    assert exe is None and "julia on PATH" in why and "is not Julia" in why
    _fake_exe(tmp_path / "julia", "julia version 1.11.2")
    jr._probe_cached.cache_clear()
    exe, why = engines.find_julia_executable()
    assert exe == str(tmp_path / "julia") and "Julia 1.11.2" in why


def test_first_install_without_network_or_unchecked(monkeypatch, tmp_path):
    """No Julia yet: available only when the servers answer; "unknown" (None), never "available",
    when the network was not checked."""
    monkeypatch.delenv("PYTHON_JULIAPKG_EXE", raising=False)
    monkeypatch.delenv("PYTHON_JULIAPKG_OFFLINE", raising=False)
    monkeypatch.setattr(jr, "_juliapkg_state", lambda: {})
    monkeypatch.setenv("PATH", str(tmp_path))                 # no julia, no juliaup
    monkeypatch.setattr(jr, "_reachable", lambda *a, **k: (False, "pkg.julialang.org:443 unreachable"))
    ok, reason = julia_status()
    assert ok is False and "no network" in reason and "unreachable" in reason
    ok, reason = julia_status(check_network=False)
    assert ok is None and "network was not checked" in reason
    monkeypatch.setattr(jr, "_reachable", lambda *a, **k: (True, "reachable"))
    ok, reason = julia_status()
    assert ok is True and "downloads and precompiles Julia" in reason


def test_julia_status_exe_found_but_packages_missing_offline(monkeypatch, tmp_path):
    exe = _fake_exe(tmp_path / "julia", "julia version 1.10.4")
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(exe))
    monkeypatch.setenv("PYTHON_JULIAPKG_OFFLINE", "yes")
    monkeypatch.setattr(jr, "_juliapkg_state", lambda: {"project": str(tmp_path / "env")})
    assert engines.find_julia_executable() == (str(exe), "PYTHON_JULIAPKG_EXE, Julia 1.10.4")
    ok, reason = julia_status()
    assert not ok and "RxInfer and PyRxAIF must be installed" in reason and "OFFLINE" in reason
    # an environment that already has both packages is ready
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "Manifest.toml").write_text("[[deps.RxInfer]]\n[[deps.PyRxAIF]]\n")
    ok, reason = julia_status()
    assert ok and "installed" in reason


def test_import_pyrxaif_never_starts_julia():
    code = ("import sys, pyrxaif, pyrxaif.engines, pyrxaif.engines.julia, pyrxaif.rxinfer, pyrxaif.commands.info;"
            "from pyrxaif.engines import julia_status; julia_status(check_network=False);"
            "print('juliacall' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]   # juliacall (which starts Julia on import) was never imported


def test_info_command_reports_engines(monkeypatch, capsys):
    from pyrxaif import cli

    monkeypatch.setattr(jr, "_reachable", lambda *a, **k: (False, "no route"))
    monkeypatch.delenv("PYRXAIF_ENGINE", raising=False)
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "selected engine" in out and ": jax" in out
    assert "jax   : available" in out
    ok, why = julia_status()
    assert f"julia : {'available' if ok else 'unavailable'} - {why}" in out
    # without the network check, a Julia that still has to be installed is "unknown", not "available"
    monkeypatch.setattr(jr, "julia_status", lambda check_network=True: jr.JuliaStatus(None, "not checked"))
    monkeypatch.setattr(engines, "julia_status", jr.julia_status)
    assert cli.main(["info", "--no-network-check"]) == 0
    assert "julia : unknown (network not checked) - not checked" in capsys.readouterr().out
