"""Starting Julia, and knowing whether it can start, for the Julia engine.

``julia_status()`` says whether the Julia engine can start here and, if not, why, *without*
starting Julia: it inspects the Python packages, runs the Julia executable juliapkg would use with
``--version`` (an executable that does not answer as Julia is not Julia), and, for a first install,
probes the Julia servers. ``julia_module()`` starts Julia once (juliacall) and loads RxInfer and
PyRxAIF; ``call()`` runs one PyRxAIF function and turns Julia errors into Python ones.

Failures are told apart: :class:`JuliaUnavailableError` (Julia missing or not installable: the CLI
exits 3) and :class:`JuliaPackageLoadError` (Julia runs but ``using RxInfer, PyRxAIF`` failed: a bug
or a broken installation, with Julia's error text).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from typing import NamedTuple

from pyrxaif.engines.julia_errors import map_julia_exception

__all__ = ["JuliaStatus", "julia_status", "find_julia_executable", "probe_julia", "JuliaUnavailableError",
           "JuliaPackageLoadError", "julia_module", "call", "convert", "REQUIRED_JULIA"]

# Hosts a first Julia install contacts: juliapkg's version list / Julia binaries, and the package server.
INSTALL_HOSTS = (("julialang-s3.julialang.org", 443), ("pkg.julialang.org", 443))
#: the Julia versions pyrxaif/juliapkg.json and julia/Project.toml accept: ^1.10
REQUIRED_JULIA = (1, 10)
_VERSION_RE = re.compile(r"^julia version (\d+)\.(\d+)\.(\d+)", re.IGNORECASE)
_JULIAUP_RE = re.compile(r"^juliaup\b", re.IGNORECASE)
PROBE_TIMEOUT_S = 30.0


class JuliaUnavailableError(RuntimeError):
    """Julia cannot be started here (not installed, cannot be installed, juliacall missing); the
    message says why. The CLI exits 3."""


class JuliaPackageLoadError(RuntimeError):
    """Julia started but ``using RxInfer, PyRxAIF`` failed: a bug or a broken installation, not a
    missing Julia. The message carries Julia's error text."""


class JuliaStatus(NamedTuple):
    """``available``: True (can start), False (cannot, ``reason`` says why) or None (unknown: a first
    install needs the network, which was not checked)."""

    available: bool | None
    reason: str


# ------------------------------------------------------------------------------------------------
# detection (never starts Julia's runtime in this process)
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _probe_cached(path: str, mtime: float) -> tuple[str | None, str]:
    del mtime  # part of the cache key only: a replaced executable is probed again
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"`{path} --version` did not answer within {PROBE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return None, f"`{path} --version` could not run ({exc.__class__.__name__}: {exc})"
    text = (out.stdout or "").strip()
    if _JULIAUP_RE.match(text):
        return "juliaup", text.splitlines()[0]
    m = _VERSION_RE.match(text)
    if out.returncode != 0 or m is None:
        shown = text.splitlines()[0][:80] if text else "nothing"
        return None, f"{path} is not Julia (`--version` exited {out.returncode} and printed {shown!r})"
    version = tuple(int(g) for g in m.groups())
    if version[0] != REQUIRED_JULIA[0] or version[:2] < REQUIRED_JULIA:
        return None, (f"{path} is Julia {'.'.join(map(str, version))}; pyrxaif needs "
                      f"^{REQUIRED_JULIA[0]}.{REQUIRED_JULIA[1]}")
    return ".".join(map(str, version)), f"Julia {'.'.join(map(str, version))}"


def probe_julia(path: str) -> tuple[str | None, str]:
    """Run ``path --version``: (version, description) for a Julia that pyrxaif can use (``"juliaup"``
    for juliaup), (None, why not) otherwise (not Julia, too old, does not run)."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        return None, f"{path}: {exc.__class__.__name__}: {exc}"
    return _probe_cached(os.path.realpath(path), mtime)


def _is_executable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def _juliapkg_state() -> dict:
    """juliapkg's own idea of its project / install folders (importing juliapkg does not start Julia)."""
    try:
        from juliapkg.state import STATE  # noqa: PLC0415
    except Exception:  # noqa: BLE001  (juliapkg missing or broken: nothing to report from it)
        return {}
    return dict(STATE)


def _candidates(state: dict):
    """(path, where it came from) in juliapkg's order of preference."""
    exe = os.environ.get("PYTHON_JULIAPKG_EXE")
    if exe:
        yield shutil.which(exe) or exe, "PYTHON_JULIAPKG_EXE"
        return
    meta = state.get("meta")
    if meta and os.path.isfile(meta):
        try:
            with open(meta) as fp:
                recorded = json.load(fp).get("executable")
        except (OSError, ValueError):
            recorded = None
        if recorded:
            yield recorded, "juliapkg's previous install"
    install = state.get("install")
    if install:
        yield os.path.join(install, "bin", "julia"), "juliapkg's installed Julia"
    for name in ("juliaup", "julia"):
        found = shutil.which(name)
        if found:
            yield found, f"{name} on PATH"


def find_julia_executable() -> tuple[str | None, str]:
    """The Julia executable juliapkg would use, checked by running it with ``--version``.

    Returns ``(path or None, where it came from / why none)``. An executable that does not answer
    as Julia (or is older than 1.10) is not "found"; ``PYTHON_JULIAPKG_EXE`` pointing at one is
    reported as such (juliapkg would use it and fail)."""
    rejected = []
    for path, where in _candidates(_juliapkg_state()):
        if not _is_executable(path):
            if where == "PYTHON_JULIAPKG_EXE":
                return None, f"PYTHON_JULIAPKG_EXE={os.environ['PYTHON_JULIAPKG_EXE']} is not an executable file"
            continue
        version, why = probe_julia(path)
        if version is not None:
            return path, f"{where}, {why}"
        if where == "PYTHON_JULIAPKG_EXE":
            return None, f"PYTHON_JULIAPKG_EXE: {why}"
        rejected.append(f"{where}: {why}")
    detail = f" ({'; '.join(rejected)})" if rejected else ""
    return None, ("no usable Julia executable (PYTHON_JULIAPKG_EXE unset, no juliapkg install, no julia/juliaup "
                  f"on PATH){detail}")


def _reachable(hosts=INSTALL_HOSTS, timeout: float = 2.0) -> tuple[bool, str]:
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
    """(available, reason) for the Julia engine; never starts Julia's runtime in this process.

    Checks, in order: juliacall importable; a Julia executable (``PYTHON_JULIAPKG_EXE``, juliapkg's
    installed Julia, ``juliaup``/``julia`` on PATH) that answers ``--version`` as Julia ≥ 1.10; and,
    when Julia or the RxInfer/PyRxAIF packages still have to be installed, that the Julia servers are
    reachable (unless ``PYTHON_JULIAPKG_OFFLINE``). With ``check_network=False`` a first install is
    neither promised nor refused: ``available`` is None ("unknown: not checked").
    """
    if importlib.util.find_spec("juliacall") is None:
        return JuliaStatus(False, "juliacall is not installed (pip install juliacall)")
    exe, where = find_julia_executable()
    if exe is None and os.environ.get("PYTHON_JULIAPKG_EXE"):
        return JuliaStatus(False, where)                   # juliapkg would use it, and fail
    state = _juliapkg_state()
    if exe is not None and _packages_installed(state):
        return JuliaStatus(True, f"Julia found ({where}: {exe}); RxInfer and PyRxAIF installed")
    missing = "Julia" if exe is None else "the Julia packages RxInfer and PyRxAIF"
    prefix = where if exe is None else f"Julia found ({where}: {exe})"
    if os.environ.get("PYTHON_JULIAPKG_OFFLINE", "").lower() in ("yes", "true", "1"):
        return JuliaStatus(False, f"{prefix}; {missing} must be installed but PYTHON_JULIAPKG_OFFLINE is set")
    if not check_network:
        return JuliaStatus(None, f"{prefix}; the first use must download and install {missing}, and the network "
                                 f"was not checked (--no-network-check)")
    ok, why = _reachable()
    if not ok:
        return JuliaStatus(False, f"{prefix}; the first use must install {missing} but there is no network: {why}")
    return JuliaStatus(True, f"{prefix}; the first use downloads and precompiles {missing} (several minutes)")


# ------------------------------------------------------------------------------------------------
# starting Julia and calling PyRxAIF
# ------------------------------------------------------------------------------------------------
_LOCK = threading.Lock()
_STATE: dict = {}


def _default_env() -> None:
    """Signal handling and threads as PySR sets them, only where the user has not chosen."""
    os.environ.setdefault("PYTHON_JULIACALL_HANDLE_SIGNALS", "yes")
    os.environ.setdefault("PYTHON_JULIACALL_THREADS", "auto")


def _julia_error_text(exc: BaseException, jl=None) -> str:
    """Julia's own ``showerror`` text of a juliacall exception (its str() where that fails)."""
    inner = getattr(exc, "exception", None)
    if inner is not None and jl is not None:
        try:
            return str(jl.seval("e -> sprint(showerror, e)")(inner))
        except Exception:  # noqa: BLE001  (fall back to juliacall's text)
            pass
    return f"{exc.__class__.__name__}: {exc}"


def julia_module():
    """Start Julia once (juliacall), load RxInfer and PyRxAIF, and return the ``pyrxaif`` Julia module."""
    with _LOCK:
        if "jl" in _STATE:
            return _STATE["jl"]
        ok, reason = julia_status()
        if not ok:
            raise JuliaUnavailableError(f"Julia engine unavailable: {reason}")
        _default_env()
        try:
            import juliacall  # noqa: PLC0415  (resolves/installs Julia packages on first use)
        except Exception as exc:  # noqa: BLE001
            raise JuliaUnavailableError(f"Julia engine unavailable: juliacall failed to start Julia: "
                                        f"{exc.__class__.__name__}: {exc}") from exc
        jl = juliacall.newmodule("pyrxaif")
        try:
            jl.seval("using RxInfer, PyRxAIF")
        except Exception as exc:  # noqa: BLE001
            raise JuliaPackageLoadError(
                f"Julia started, but loading the Julia packages failed (`using RxInfer, PyRxAIF`); this is a "
                f"bug in pyrxaif's Julia code or a broken Julia installation, not a missing Julia. Julia's "
                f"error:\n{_julia_error_text(exc, jl)}") from exc
        _STATE["jl"], _STATE["juliacall"] = jl, juliacall
        return jl


def _translate(exc: BaseException) -> BaseException:
    juliacall = _STATE.get("juliacall")
    if juliacall is not None and isinstance(exc, juliacall.JuliaError):
        jl = _STATE["jl"]
        jtype = str(jl.seval("e -> string(nameof(typeof(e)))")(exc.exception))
        return map_julia_exception(jtype, _julia_error_text(exc, jl))
    return exc


def call(function: str, *args, **kwargs):
    """Call ``PyRxAIF.<function>(args...; kwargs...)``; Julia errors become Python exceptions."""
    jl = julia_module()
    fn = jl.seval(f"PyRxAIF.{function}")
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from None


def convert(julia_type: str, value):
    """``juliacall.convert(<julia_type>, value)`` (Julia started on first use)."""
    jl = julia_module()
    return _STATE["juliacall"].convert(jl.seval(julia_type), value)
