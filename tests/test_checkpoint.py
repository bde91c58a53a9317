"""The checkpoint format (pyrxaif.checkpoint): round trip, and refusal of every kind of damage with an
error that names the file and what is wrong; atomic writes."""

import json
import os

import numpy as np
import pytest

import pyrxaif
from pyrxaif import checkpoint as C


def _write(tmp_path, name="m.ckpt", task="pendulum"):
    arrays = {"a": np.arange(4000, dtype=np.float64).reshape(40, 100), "b": {"c": np.full(7, 2.5, np.float32)}}
    path = str(tmp_path / name)
    C.save_checkpoint(path, kind="toy", task=task, config={"n": 3, "bar": float("inf")}, arrays=arrays,
                      validation={"passed": True, "metrics": {"x": 1.0}})
    return path, arrays


def test_round_trip_and_header(tmp_path):
    path, arrays = _write(tmp_path)
    header, back = C.load_checkpoint(path, kind="toy", task="pendulum")
    np.testing.assert_array_equal(back["a"], arrays["a"])
    np.testing.assert_array_equal(back["b"]["c"], arrays["b"]["c"])
    assert back["b"]["c"].dtype == np.float32
    assert header["format_version"] == C.FORMAT_VERSION and header["pyrxaif_version"] == pyrxaif.__version__
    assert header["task"] == "pendulum" and header["config"] == {"n": 3, "bar": float("inf")}
    assert header["validation"]["passed"] is True
    assert os.listdir(tmp_path) == ["m.ckpt"]                      # no temporary file left behind
    assert os.stat(path).st_mode & 0o777 == C.default_mode()        # as a plainly created file, not 0600


def _rewrite(path, fn):
    raw = bytearray(open(path, "rb").read())
    with open(path, "wb") as f:
        f.write(bytes(fn(raw)))


def test_corrupted_truncated_and_foreign_files_are_refused(tmp_path):
    path, _ = _write(tmp_path)
    n = os.path.getsize(path)

    def flip(raw):                        # 64 bytes in the middle
        mid = len(raw) // 2
        raw[mid:mid + 64] = bytes(b ^ 0xFF for b in raw[mid:mid + 64])
        return raw

    _rewrite(path, flip)
    with pytest.raises(C.CheckpointError, match=r"m\.ckpt.*content hash mismatch"):
        C.load_checkpoint(path, kind="toy")
    path, _ = _write(tmp_path)
    _rewrite(path, lambda raw: raw[: n // 2])
    with pytest.raises(C.CheckpointError, match=r"m\.ckpt.*truncated"):
        C.load_checkpoint(path, kind="toy")
    path, _ = _write(tmp_path)
    _rewrite(path, lambda raw: raw[:30])                          # inside the header
    with pytest.raises(C.CheckpointError, match="truncated"):
        C.load_checkpoint(path, kind="toy")
    path, _ = _write(tmp_path)
    _rewrite(path, lambda raw: raw + b"x")
    with pytest.raises(C.CheckpointError, match="wrong length"):
        C.load_checkpoint(path, kind="toy")
    # a flipped header byte (the config's value 3 -> 4): the hash covers the header too
    path, _ = _write(tmp_path)
    _rewrite(path, lambda raw: raw.replace(b'"n": 3', b'"n": 4'))
    with pytest.raises(C.CheckpointError, match="content hash mismatch"):
        C.load_checkpoint(path, kind="toy")
    (tmp_path / "other.bin").write_bytes(b"\x80")
    with pytest.raises(C.CheckpointError, match=r"other\.bin.*not a pyrxaif checkpoint"):
        C.load_checkpoint(str(tmp_path / "other.bin"), kind="toy")
    with pytest.raises(C.CheckpointError, match="no such file"):
        C.load_checkpoint(str(tmp_path / "missing"), kind="toy")


def test_other_format_version_kind_and_task_are_refused(tmp_path):
    path, _ = _write(tmp_path)

    def bump(raw):
        start = len(C.MAGIC) + 8
        (hn,) = C._LEN.unpack(bytes(raw[len(C.MAGIC):start]))
        header = json.loads(bytes(raw[start:start + hn]))
        header["format_version"] = C.FORMAT_VERSION + 1
        head = json.dumps(header).encode()
        return C.MAGIC + C._LEN.pack(len(head)) + head + bytes(raw[start + hn:])

    _rewrite(path, bump)
    with pytest.raises(C.CheckpointError, match=f"format version {C.FORMAT_VERSION + 1}"):
        C.load_checkpoint(path, kind="toy")
    path, _ = _write(tmp_path, task="digits")
    with pytest.raises(C.CheckpointMismatch, match="task 'digits', not 'pendulum'"):
        C.load_checkpoint(path, kind="toy", task="pendulum")
    with pytest.raises(C.CheckpointMismatch, match="'toy' checkpoint, expected 'pixel-control'"):
        C.load_checkpoint(path, kind="pixel-control")


def test_save_refuses_unrecorded_validation_and_keeps_the_old_file_on_failure(tmp_path):
    path, arrays = _write(tmp_path)
    before = open(path, "rb").read()
    with pytest.raises(ValueError, match="validation"):
        C.save_checkpoint(path, kind="toy", task="pendulum", config={}, arrays=arrays, validation={})
    with pytest.raises(ValueError, match="config"):
        C.save_checkpoint(path, kind="toy", task="pendulum", config={"f": object()}, arrays=arrays,
                          validation={"passed": False})
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["m.ckpt"]
