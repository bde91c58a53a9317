"""Julia exceptions as Python exceptions (no Julia needed to import or test this module).

Only the caller's faults become ``ValueError``: PyRxAIF's entry points throw ``ArgumentError`` /
``DimensionMismatch`` for bad arguments. Everything else raised inside Julia after the Python
checks passed (``BoundsError``, ``InexactError``, ``MethodError``, ``PosDefException``, ...) is an
internal error and stays a :class:`JuliaError` (a ``RuntimeError``), so a bug is never reported
as bad input.
"""

from __future__ import annotations

__all__ = ["CALLER_FAULTS", "JuliaError", "JuliaValueError", "map_julia_exception"]

CALLER_FAULTS = ("ArgumentError", "DimensionMismatch")


class JuliaError(RuntimeError):
    """An error raised inside Julia; ``julia_type`` is the Julia exception type's name."""

    def __init__(self, julia_type: str, message: str):
        super().__init__(f"Julia {julia_type}: {message}")
        self.julia_type = julia_type
        self.julia_message = message


class JuliaValueError(JuliaError, ValueError):
    """A Julia ArgumentError/DimensionMismatch: bad argument values or shapes."""


def map_julia_exception(julia_type: str, message: str) -> JuliaError:
    """The Python exception for a Julia exception of type ``julia_type`` with text ``message``."""
    base = julia_type.split("{", 1)[0].rsplit(".", 1)[-1]
    if base in CALLER_FAULTS:
        return JuliaValueError(base, message)
    return JuliaError(base, message)
