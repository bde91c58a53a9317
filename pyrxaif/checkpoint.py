"""One checkpoint format for every model pyrxaif saves.

File layout::

    b"PYRXAIF-CHECKPOINT\\n"                 magic line
    8 bytes, little-endian unsigned          length n of the header
    n bytes                                  header: UTF-8 JSON
    rest                                     payload: msgpack (flax.serialization) of a tree of arrays

The header holds ``format_version`` (:data:`FORMAT_VERSION`), ``pyrxaif_version``, ``kind`` (which
model: e.g. "pixel-control"), ``task``, ``config`` (the settings that shape the arrays), ``validation``
(the held-out figures and whether the model met its bar when it was written), ``payload_bytes`` and
``content_sha256``: SHA-256 over the header's canonical JSON without that field, a NUL byte, and the
payload. :func:`load_checkpoint` checks all of it and raises :class:`CheckpointError` naming the file and
what is wrong (not a checkpoint, another format version, truncated, hash mismatch, another kind or
task) before any array is used. :func:`save_checkpoint` writes atomically: a temporary file in the
same folder, flushed and fsync'ed, then renamed over the target.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile

from flax import serialization

MAGIC = b"PYRXAIF-CHECKPOINT\n"
FORMAT_VERSION = 1
_LEN = struct.Struct("<Q")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; ``path`` names the file and ``reason`` what is wrong."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"checkpoint {str(path)!r}: {reason}")


class CheckpointMismatch(CheckpointError):
    """A sound checkpoint of another kind or task than asked for."""


def _content_hash(header: dict, payload: bytes) -> str:
    body = {k: v for k, v in header.items() if k != "content_sha256"}
    h = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()


def default_mode(directory: bool = False) -> int:
    """The permission bits a plainly created file (or folder) gets under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old contents or all of ``data``:
    temporary file in the same folder, fsync, rename, fsync of the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())          # the mode of a plainly created file (mkstemp: 0600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(path: str, *, kind: str, task: str, config: dict, arrays, validation: dict) -> None:
    """Write a checkpoint (see the module docstring). ``arrays``: a tree (dicts) of numpy arrays;
    ``validation``: must say whether the model met its bar (``{"passed": bool, ...}``)."""
    import pyrxaif  # noqa: PLC0415

    if not isinstance(validation, dict) or not isinstance(validation.get("passed"), bool):
        raise ValueError(f"validation: expected a dict with a boolean 'passed', got {validation!r}")
    for name, value in (("kind", kind), ("task", task)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
    payload = serialization.msgpack_serialize(arrays)
    header = {"format": "pyrxaif-checkpoint", "format_version": FORMAT_VERSION,
              "pyrxaif_version": pyrxaif.__version__, "kind": kind, "task": task, "config": config,
              "validation": validation, "payload_bytes": len(payload)}
    try:
        json.dumps(header, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config/validation: expected JSON-serialisable values ({exc})") from None
    header["content_sha256"] = _content_hash(header, payload)
    head = json.dumps(header, sort_keys=True).encode()
    atomic_write_bytes(path, MAGIC + _LEN.pack(len(head)) + head + payload)


def read_header(path: str) -> tuple[dict, bytes]:
    """(header, payload) of the checkpoint at ``path`` after the integrity checks (format, length, hash)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not raw.startswith(MAGIC):
        raise CheckpointError(path, "not a pyrxaif checkpoint (no pyrxaif checkpoint header; files written before "
                                    f"format version {FORMAT_VERSION} cannot be loaded: retrain)")
    start = len(MAGIC) + _LEN.size
    if len(raw) < start:
        raise CheckpointError(path, f"truncated: {len(raw)} bytes, shorter than the header")
    (n,) = _LEN.unpack(raw[len(MAGIC):start])
    if len(raw) < start + n:
        raise CheckpointError(path, f"truncated: {len(raw)} bytes, the header alone needs {start + n}")
    try:
        header = json.loads(raw[start:start + n].decode())
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(path, f"corrupted header ({exc})") from None
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"format version {version!r}, this pyrxaif reads version {FORMAT_VERSION}")
    payload = raw[start + n:]
    want = header.get("payload_bytes")
    if len(payload) != want:
        what = "truncated" if isinstance(want, int) and len(payload) < want else "wrong length"
        raise CheckpointError(path, f"{what}: payload of {len(payload)} bytes, the header says {want}")
    if _content_hash(header, payload) != header.get("content_sha256"):
        raise CheckpointError(path, "content hash mismatch: the file is corrupted")
    return header, payload


def load_checkpoint(path: str, *, kind: str, task: str | None = None) -> tuple[dict, object]:
    """(header, arrays) of a checkpoint of ``kind`` (and ``task``, unless None); every check of the
    module docstring, else :class:`CheckpointError` / :class:`CheckpointMismatch`."""
    header, payload = read_header(path)
    if header.get("kind") != kind:
        raise CheckpointMismatch(path, f"a {header.get('kind')!r} checkpoint, expected {kind!r}")
    if task is not None and header.get("task") != task:
        raise CheckpointMismatch(path, f"a checkpoint of the task {header.get('task')!r}, not {task!r}")
    try:
        arrays = serialization.msgpack_restore(payload)
    except Exception as exc:  # noqa: BLE001  (msgpack raises several types; the hash matched, so a bug)
        raise CheckpointError(path, f"payload cannot be decoded ({type(exc).__name__}: {exc})") from None
    return header, arrays
