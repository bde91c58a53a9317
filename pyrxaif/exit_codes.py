"""The exit-code contract of every ``pyrxaif`` command (see the README):

=====  ===========================================================================================
code   meaning
=====  ===========================================================================================
0      success
1      internal error (a bug: the traceback is printed)
2      usage error: a bad flag or value, named in a one-line message (no traceback)
3      engine unavailable (e.g. ``--engine julia`` where Julia cannot start, ``--ray`` without Ray), said why
4      refused: a checkpoint of another task or format, corrupted or truncated, or a model below
       its validation bar
130    interrupted (Ctrl-C / SIGINT); the run folder stays marked incomplete
=====  ===========================================================================================

Commands raise :class:`UsageError`, :class:`Unavailable` or :class:`Refused`; :func:`pyrxaif.cli.main` maps them (and
``JuliaUnavailableError``, ``CheckpointError``, ``KeyboardInterrupt``) to these codes.
"""

from __future__ import annotations

SUCCESS = 0
INTERNAL_ERROR = 1
USAGE_ERROR = 2
ENGINE_UNAVAILABLE = 3
REFUSED = 4
INTERRUPTED = 130


class UsageError(ValueError):
    """A bad command-line flag or value: exit code 2 with a one-line message."""


class Unavailable(RuntimeError):
    """A backend the command was asked to use cannot run here (e.g. Ray not installed): exit code 3."""


class Refused(RuntimeError):
    """A checkpoint or model refused (wrong task, corrupted, below the validation bar): exit code 4."""


def positive_int(flag: str, value) -> int:
    """``value`` if it is an integer >= 1, else :class:`UsageError` naming ``flag``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{flag}: expected a positive integer, got {value!r}")
    return value


def non_negative_int(flag: str, value) -> int:
    """``value`` if it is an integer >= 0, else :class:`UsageError` naming ``flag``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{flag}: expected an integer >= 0, got {value!r}")
    return value


def engine_name(value) -> str:
    """The engine ``--engine`` (or ``$PYRXAIF_ENGINE``) names, checked without starting it; an unknown
    name is a :class:`UsageError`."""
    from pyrxaif.engines import resolve_engine  # noqa: PLC0415

    try:
        return resolve_engine(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--engine: {exc}") from None
