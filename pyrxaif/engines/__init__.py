"""Engine selection: the pure-JAX engine (default) and the RxInfer.jl engine (``julia``).

``engine(name)`` is the one place that picks an engine: it resolves an explicit choice, or the
``PYRXAIF_ENGINE`` environment variable, to an engine object implementing the engine protocol
(``pyrxaif.engines.protocol.Engine``: plan a roll-out, plan a locally linear LDS, evaluate
policies, smooth and learn an LDS, run a user model); ``engine(name, start=True)`` also starts it
(Julia) before any work. ``julia_status()`` says whether the Julia engine can start here and, if
not, why, *without* starting Julia (``pyrxaif.engines.julia_runtime``).
"""

from __future__ import annotations

import importlib
import os

from pyrxaif.engines.julia_runtime import (JuliaPackageLoadError, JuliaStatus, JuliaUnavailableError,
                                           find_julia_executable, julia_status)

ENGINES = ("jax", "julia")
DEFAULT_ENGINE = "jax"
ENV_VAR = "PYRXAIF_ENGINE"
_ENGINE_CLASSES = {"jax": ("pyrxaif.engines.jax", "JaxEngine"), "julia": ("pyrxaif.engines.julia", "JuliaEngine")}

__all__ = ["ENGINES", "DEFAULT_ENGINE", "engine", "resolve_engine", "require_engine", "julia_status",
           "JuliaStatus", "find_julia_executable", "JuliaUnavailableError", "JuliaPackageLoadError"]


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


def engine(name: str | None = None, *, start: bool = False):
    """The engine object for ``name`` (``None`` reads ``PYRXAIF_ENGINE``; default ``"jax"``).

    ``start=True`` starts it now (for ``"julia"``: Julia and the RxInfer/PyRxAIF packages), raising
    ``JuliaUnavailableError`` with the reason when it cannot start; there is no silent fallback to
    JAX. Importing an engine never starts Julia.

    Examples
    --------
    >>> from pyrxaif.engines import engine
    >>> eng = engine("jax")
    >>> eng.name, eng.available()[0]
    ('jax', True)
    >>> engine("torch")
    Traceback (most recent call last):
    ...
    ValueError: engine: unknown engine 'torch'; valid engines are 'jax', 'julia'
    """
    module, cls = _ENGINE_CLASSES[resolve_engine(name)]
    obj = getattr(importlib.import_module(module), cls)()
    if start:
        obj.start()
    return obj


def require_engine(engine_name: str | None = None) -> str:
    """The resolved engine name, with the engine started (``engine(name, start=True).name``)."""
    return engine(engine_name, start=True).name

