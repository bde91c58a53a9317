"""Output folders that appear complete or not at all.

A :class:`RunFolder` assembles a run's files in a staging folder next to the target,
``.<name>.incomplete-<random>``, holding a marker file ``INCOMPLETE`` until :meth:`RunFolder.commit`
removes the marker and renames the staging folder to the target in one step. A run that stops early
(an error, Ctrl-C) leaves the target untouched and the staging folder marked incomplete, saying why.

The target is never mixed with an earlier run's files: if it exists and is not empty, the run goes to
the first free ``<target>-2``, ``<target>-3``, ... unless ``overwrite`` is set, in which case the old
folder is replaced at commit (and only then). ``--out`` naming a file, or a folder that cannot be
created, is a :class:`~pyrxaif.exit_codes.UsageError`.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from pyrxaif.checkpoint import atomic_write_bytes, default_mode
from pyrxaif.exit_codes import UsageError

MARKER = "INCOMPLETE"


def _has_entries(path: str) -> bool:
    with os.scandir(path) as it:
        return any(True for _ in it)


def resolve_target(out: str, overwrite: bool) -> str:
    """The folder a run writing to ``out`` ends up in (see the module docstring)."""
    if not isinstance(out, str) or not out:
        raise UsageError(f"--out: expected a folder path, got {out!r}")
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out: {out} is a file, expected a folder")
    if overwrite or not os.path.isdir(out) or not _has_entries(out):
        return out
    n = 2
    while os.path.exists(f"{out}-{n}"):
        n += 1
    return f"{out}-{n}"


class RunFolder:
    """Staging folder of one run; see the module docstring. Use as a context manager: leaving the
    block by an exception marks the staging folder incomplete with the reason (the target is untouched)."""

    def __init__(self, out: str, *, overwrite: bool = False):
        self.requested = os.path.abspath(out) if isinstance(out, str) and out else out
        self.target = resolve_target(out, overwrite)
        self.overwrite = bool(overwrite)
        parent = os.path.dirname(self.target)
        try:
            os.makedirs(parent, exist_ok=True)
            self.staging = tempfile.mkdtemp(prefix=f".{os.path.basename(self.target)}.incomplete-", dir=parent)
        except OSError as exc:
            raise UsageError(f"--out: cannot create a folder in {parent} ({exc.strerror or exc})") from None
        self.written: list[str] = []
        self.committed = False
        self._mark("the run has not finished")

    def _mark(self, reason: str) -> None:
        with open(os.path.join(self.staging, MARKER), "w") as f:
            f.write(f"incomplete run for {self.target}: {reason}\n")

    def path(self, name: str) -> str:
        """Where the run writes its file ``name`` (inside the staging folder); recorded as written
        once the file exists at commit."""
        if os.path.basename(name) != name or name in ("", ".", "..", MARKER):
            raise ValueError(f"name: expected a plain file name, got {name!r}")
        return os.path.join(self.staging, name)

    def write_bytes(self, name: str, data: bytes) -> None:
        atomic_write_bytes(self.path(name), data)

    def commit(self) -> list[str]:
        """Remove the marker and move the staging folder to the target; returns the files written."""
        self.written = sorted(n for n in os.listdir(self.staging) if n != MARKER and not n.startswith("."))
        os.unlink(os.path.join(self.staging, MARKER))
        os.chmod(self.staging, default_mode(directory=True))     # mkdtemp made it 0700
        old = None
        if os.path.isdir(self.target) and _has_entries(self.target):
            if not self.overwrite:        # appeared since the run started: keep both
                self.target = resolve_target(self.target, False)
            else:
                old = tempfile.mkdtemp(prefix=f".{os.path.basename(self.target)}.replaced-",
                                       dir=os.path.dirname(self.target))
                os.rename(self.target, os.path.join(old, "run"))
        elif os.path.isdir(self.target):
            os.rmdir(self.target)
        os.rename(self.staging, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        return self.written

    def abandon(self, reason: str) -> None:
        """Leave the staging folder, marked incomplete with ``reason``."""
        if not self.committed and os.path.isdir(self.staging):
            self._mark(reason)

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self.committed:
            reason = "interrupted (Ctrl-C)" if exc_type is KeyboardInterrupt else f"stopped by {exc_type.__name__}: {exc}"
            self.abandon(reason)
        return False
