"""Input validation at public boundaries.

Every public function checks its arguments here before any jitted code runs, so that bad input
raises ``ValueError``/``TypeError`` naming the argument, what was expected and what was given,
instead of a deep JAX trace or a silent wrong answer. Jitted internals assume valid input.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def as_float_array(name: str, x, *, ndim: int | None = None, shape: Sequence[int | None] | None = None,
                   finite: bool = True, dtype=np.float64) -> np.ndarray:
    """Return ``x`` as a float array after checking rank, shape (None = any size) and finiteness."""
    if x is None:
        raise TypeError(f"{name}: expected an array, got None")
    try:
        kind = np.asarray(x).dtype.kind
        if kind in "cUS":                   # complex would lose its imaginary part, text would be parsed
            raise TypeError(f"{'complex' if kind == 'c' else 'text'} values")
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a real numeric array, got {type(x).__name__} ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: expected finite values, found {bad} NaN/inf entr{'y' if bad == 1 else 'ies'}")
    return arr


def check_square(name: str, m: np.ndarray) -> None:
    if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"{name}: expected square matrices in the last two axes, got shape {m.shape}")


def check_symmetric(name: str, m: np.ndarray, rtol: float = 1e-8, atol: float = 1e-10) -> None:
    check_square(name, m)
    mt = np.swapaxes(m, -1, -2)
    if not np.allclose(m, mt, rtol=rtol, atol=atol):
        err = float(np.max(np.abs(m - mt)))
        raise ValueError(f"{name}: expected a symmetric matrix, max |M - M^T| = {err:.3g}")


def check_positive_definite(name: str, m: np.ndarray) -> None:
    """Symmetric and positive definite (Cholesky must succeed)."""
    check_symmetric(name, m)
    try:
        np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        ev = np.linalg.eigvalsh(0.5 * (m + np.swapaxes(m, -1, -2)))
        raise ValueError(
            f"{name}: expected a positive-definite matrix, smallest eigenvalue {float(np.min(ev)):.3g}"
        ) from None


def check_eigenvalue_range(name: str, m: np.ndarray, bounds: tuple[float, float]) -> None:
    """Symmetric ``m`` whose eigenvalues lie in [low, high] (what float64 can invert and multiply)."""
    ev = np.linalg.eigvalsh(np.asarray(m, np.float64))
    low, high = bounds
    if ev.size and not (low <= ev.min() and ev.max() <= high):
        raise ValueError(f"{name}: expected eigenvalues in [{low:.0e}, {high:.0e}], got [{ev.min():.3g}, {ev.max():.3g}]")


def check_positive(name: str, x, *, strict: bool = True) -> np.ndarray:
    arr = as_float_array(name, x)
    ok = arr > 0 if strict else arr >= 0
    if not np.all(ok):
        raise ValueError(f"{name}: expected {'positive' if strict else 'non-negative'} values, "
                         f"got minimum {float(np.min(arr)):.3g}")
    return arr


def check_options(options, known: Sequence[str]) -> dict:
    """An environment's ``reset`` options: None (no options) or a dict whose keys are among ``known``."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options: expected a dict (or None), got {type(options).__name__}")
    unknown = sorted(map(repr, set(options) - set(known)))
    if unknown:
        raise ValueError(f"options: unknown keys {', '.join(unknown)}; expected some of {', '.join(map(repr, known)) or 'none'}")
    return options


def check_choice(name: str, value, choices: Sequence) -> None:
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {', '.join(map(repr, choices))}")


def check_probability_vectors(name: str, p, axis: int = -1, atol: float = 1e-6) -> np.ndarray:
    """Non-negative entries that sum to one along ``axis``."""
    arr = as_float_array(name, p)
    if np.any(arr < 0):
        raise ValueError(f"{name}: expected non-negative probabilities, got minimum {float(arr.min()):.3g}")
    s = arr.sum(axis=axis)
    if not np.allclose(s, 1.0, atol=atol):
        raise ValueError(f"{name}: expected probabilities summing to 1 along axis {axis}, "
                         f"got sums in [{float(s.min()):.6g}, {float(s.max()):.6g}]")
    return arr


def check_count(name: str, value, minimum: int = 1) -> int:
    """An integer (not a bool, not a float) >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return int(value)


def check_key(name: str, key):
    """A JAX PRNG key: a typed key array of shape () or a raw uint32 key of shape (2,) (``jax.random.PRNGKey``)."""
    import jax  # noqa: PLC0415  (checks stays importable without initialising JAX)

    if isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape == ():
            return key
    elif isinstance(key, (jax.Array, np.ndarray)) and key.dtype == np.uint32 and key.shape == (2,):
        return key
    raise TypeError(f"{name}: expected a JAX PRNG key (jax.random.PRNGKey(seed) or jax.random.key(seed)), "
                    f"got {type(key).__name__} {getattr(key, 'shape', '')}".rstrip())
