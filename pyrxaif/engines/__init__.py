"""Engine selection: the pure-JAX engine (default) and the RxInfer.jl engine (``julia``).

``resolve_engine(engine)`` turns an explicit choice, or the ``PYRXAIF_ENGINE`` environment variable,
into a valid engine name. ``julia_status()`` says whether the Julia engine can start here and, if
not, why, *without* starting Julia: it only inspects the Python packages, the Julia executables
juliapkg would use and (for a first install) whether the Julia package servers are reachable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
from typing import NamedTuple

ENGINES = ("jax", "julia")
DEFAULT_ENGINE = "jax"
ENV_VAR = "PYRXAIF_ENGINE"
# Hosts a first Julia install contacts: juliapkg's version list / Julia binaries, and the package server.
_INSTALL_HOSTS = (("julialang-s3.julialang.org", 443), ("pkg.julialang.org", 443))

__all__ = ["ENGINES", "DEFAULT_ENGINE", "resolve_engine", "require_engine", "get_engine", "julia_status", "JuliaStatus",
           "find_julia_executable"]


def resolve_engine(engine: str | None = None) -> str:
    """Return the engine to use: ``engine`` if given, else ``$PYRXAIF_ENGINE``, else ``"jax"``."""
    source = "engine"
    if engine is None:
        engine = os.environ.get(ENV_VAR, "").strip() or DEFAULT_ENGINE
        source = ENV_VAR
    if not isinstance(engine, str):
        raise TypeError(f"{source}: expected a string naming an engine, got {type(engine).__name__}")
    name = engine.strip().lower()
    if name not in ENGINES:
        raise ValueError(f"{source}: unknown engine {engine!r}; valid engines are {', '.join(map(repr, ENGINES))}")
    return name


def require_engine(engine: str | None = None) -> str:
    """``resolve_engine(engine)``, and for ``"julia"`` start Julia now (before any work is done).

    Raises ``pyrxaif.engines.julia.JuliaUnavailableError`` with the reason when Julia cannot start;
    there is no silent fallback to JAX."""
    name = resolve_engine(engine)
    if name == "julia":
        from pyrxaif.engines import julia as ej  # noqa: PLC0415

        ej.julia_module()
    return name


def get_engine(engine: str | None = None):
    """The engine module (``pyrxaif.engines.jax`` or ``pyrxaif.engines.julia``) for ``engine``.

    Engine protocol: a module with ``name`` and ``available() -> (bool, reason)``; the Julia module
    adds the model functions (``smooth_lds``, ``learn_lds``, ``plan_lds``,
    ``tmaze_policy_free_energies``). Importing the Julia engine module does not start Julia."""
    name = resolve_engine(engine)
    return importlib.import_module(f"pyrxaif.engines.{name}")


class JuliaStatus(NamedTuple):
    available: bool
    reason: str


def _is_executable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def _juliapkg_state() -> dict:
    """juliapkg's own idea of its project / install folders (importing juliapkg does not start Julia)."""
    try:
        from juliapkg.state import STATE  # noqa: PLC0415
    except Exception:  # noqa: BLE001  (juliapkg missing or broken: nothing to report from it)
        return {}
    return dict(STATE)


def find_julia_executable() -> tuple[str | None, str]:
    """Locate the Julia executable juliapkg would use, in its order, without running Julia.

    Returns ``(path or None, where it came from)``."""
    exe = os.environ.get("PYTHON_JULIAPKG_EXE")
    if exe:
        found = shutil.which(exe) or exe
        return (found, "PYTHON_JULIAPKG_EXE") if _is_executable(found) else (None, f"PYTHON_JULIAPKG_EXE={exe} is not an executable file")
    state = _juliapkg_state()
    meta = state.get("meta")
    if meta and os.path.isfile(meta):
        try:
            with open(meta) as fp:
                recorded = json.load(fp).get("executable")
        except (OSError, ValueError):
            recorded = None
        if _is_executable(recorded):
            return recorded, "juliapkg's previous install"
    install = state.get("install")
    if install:
        candidate = os.path.join(install, "bin", "julia")
        if _is_executable(candidate):
            return candidate, "juliapkg's installed Julia"
    for name in ("juliaup", "julia"):
        found = shutil.which(name)
        if found:
            return found, f"{name} on PATH"
    return None, "no Julia executable (PYTHON_JULIAPKG_EXE unset, no juliapkg install, no julia/juliaup on PATH)"


def _reachable(hosts=_INSTALL_HOSTS, timeout: float = 2.0) -> tuple[bool, str]:
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as exc:
            return False, f"{host}:{port} unreachable ({exc.__class__.__name__}: {exc})"
    return True, "reachable"


def _packages_installed(state: dict) -> bool:
    """True when juliapkg has resolved an environment that contains RxInfer and PyRxAIF."""
    project = state.get("project")
    manifest = os.path.join(project, "Manifest.toml") if project else None
    if not manifest or not os.path.isfile(manifest):
        return False
    with open(manifest, encoding="utf-8", errors="replace") as fp:
        text = fp.read()
    return "[[deps.RxInfer]]" in text and "[[deps.PyRxAIF]]" in text


def julia_status(check_network: bool = True) -> JuliaStatus:
    """(available, reason) for the Julia engine; never starts Julia.

    Checks, in order: juliacall importable; a Julia executable (``PYTHON_JULIAPKG_EXE``, juliapkg's
    installed Julia, ``juliaup``/``julia`` on PATH); and, when Julia or the RxInfer/PyRxAIF packages
    still have to be installed, that the Julia servers are reachable (unless ``PYTHON_JULIAPKG_OFFLINE``).
    """
    if importlib.util.find_spec("juliacall") is None:
        return JuliaStatus(False, "juliacall is not installed (pip install juliacall)")
    exe, where = find_julia_executable()
    state = _juliapkg_state()
    offline = os.environ.get("PYTHON_JULIAPKG_OFFLINE", "").lower() in ("yes", "true", "1")
    installed = _packages_installed(state)
    if exe is None or not installed:
        missing = "Julia" if exe is None else "the Julia packages RxInfer and PyRxAIF"
        if offline:
            return JuliaStatus(False, f"{where if exe is None else 'found ' + exe}; {missing} must be installed "
                                      "but PYTHON_JULIAPKG_OFFLINE is set")
        if check_network:
            ok, why = _reachable()
            if not ok:
                prefix = where if exe is None else f"Julia found ({where}: {exe})"
                return JuliaStatus(False, f"{prefix}; the first use must install {missing} but there is no "
                                          f"network: {why}")
        return JuliaStatus(True, f"{'Julia found (' + where + ': ' + exe + ')' if exe else 'Julia will be downloaded'}; "
                                 f"the first use installs and precompiles {missing} (several minutes)")
    return JuliaStatus(True, f"Julia found ({where}: {exe}); RxInfer and PyRxAIF installed")
