"""Run any RxInfer ``@model`` from Python: ``pyrxaif.rxinfer.infer(model, data=...)`` (the Julia
engine's user-model entry point; formerly ``pyrxaif.julia``, renamed so that it is not a second
module called ``julia`` beside the engine ``pyrxaif.engines.julia``).

``model`` is RxInfer source text that defines one ``@model function name(...)`` (evaluated in a
fresh Julia module that has ``using RxInfer``), or the name of a model defined in PyRxAIF. Data
conversion (``julia_data``): Python floats/ints → Float64/Int, 1-d arrays → ``Vector{Float64}``,
2-d arrays are **time-major sequences** (T, d) → ``Vector{Vector{Float64}}`` (one vector per time
step, as RxInfer's multivariate data), ``Matrix(x)`` passes a matrix as a Julia ``Matrix``.
Missing data (``missing``) is not supported by this bridge. Posteriors come back as numpy dictionaries
(``summaries``): ``{"type", "mean", "cov" | "var" | "probs" | "alpha", ...}``, stacked time-major
for vectors of posteriors. Julia starts on the first call only.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from pyrxaif.engines.julia_layout import to_julia_matrix
from pyrxaif.engines.julia_runtime import call, convert

__all__ = ["infer", "Matrix", "model_name", "julia_data", "as_distribution"]

_MODEL_RE = re.compile(r"@model\s+function\s+([A-Za-z_][A-Za-z0-9_!]*)\s*\(")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_!]*(\.[A-Za-z_][A-Za-z0-9_!]*)*$")


class Matrix:
    """Marks a 2-d array to be passed as a Julia ``Matrix{Float64}`` (same indices), not a sequence."""

    def __init__(self, value):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"Matrix: expected a 2-d array, got shape {arr.shape}")
        self.value = arr


def model_name(model: str, name: str | None = None) -> tuple[str, str | None]:
    """(model function name, source text or None) for ``model`` given as source or as a name."""
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"model: expected RxInfer source text or a model name, got {type(model).__name__}")
    if "@model" in model:
        found = _MODEL_RE.findall(model)
        if not found:
            raise ValueError("model: source text has '@model' but no '@model function name(...)' definition")
        if name is None:
            if len(set(found)) > 1:
                raise ValueError(f"model: the source defines several models {sorted(set(found))}; pass name=")
            name = found[0]
        elif name not in found:
            raise ValueError(f"name: {name!r} is not defined in the source (found {sorted(set(found))})")
        return name, model
    if not _NAME_RE.match(model.strip()):
        raise ValueError(f"model: {model!r} is neither RxInfer source with '@model function' nor a model name")
    return model.strip(), None


def julia_data(value: Any) -> tuple[str, Any]:
    """How one data entry is passed to Julia: ``(kind, payload)`` with kind in "int", "float",
    "vector" (1-d → Vector{Float64}), "sequence" (time-major (T, d) → Vector{Vector{Float64}}, one
    vector per time step), "matrix" (``Matrix(x)`` → Matrix{Float64}, same indices). Pure numpy."""
    if isinstance(value, Matrix):
        return "matrix", to_julia_matrix(value.value)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("data: booleans are not supported; pass 0.0/1.0")
    if isinstance(value, (int, np.integer)):
        return "int", int(value)
    if value is None:
        raise TypeError("data: None is not supported (missing data is not handled by pyrxaif.rxinfer.infer)")
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("data: expected finite values, found NaN/inf")
    if arr.ndim == 0:
        return "float", float(arr)
    if arr.ndim == 1:
        return "vector", np.ascontiguousarray(arr)
    if arr.ndim == 2:
        return "sequence", [np.ascontiguousarray(row) for row in arr]
    raise ValueError(f"data: expected at most 2-d arrays, got shape {arr.shape}; wrap matrices in Matrix()")


_JULIA_TYPES = {"vector": "Vector{Float64}", "matrix": "Matrix{Float64}", "sequence": "Vector{Vector{Float64}}"}


def _to_julia(spec):
    kind, payload = spec
    return payload if kind in ("int", "float") else convert(_JULIA_TYPES[kind], payload)


def infer(model: str, data: Mapping[str, Any] | None = None, *, name: str | None = None,
          model_kwargs: Mapping[str, Any] | None = None, constraints: str | None = None,
          initialization: str | None = None, meta: str | None = None, returnvars: str | None = None,
          iterations: int | None = None, free_energy: bool = False) -> dict:
    """Run RxInfer's ``infer`` and return ``{"posteriors": {var: summary}, "free_energy": array | None}``.

    ``constraints``, ``initialization``, ``meta`` and ``returnvars`` are Julia expressions as text
    (e.g. ``"@constraints begin q(x, y) = q(x) * q(y) end"``, ``"(x = KeepLast(),)"``), evaluated in
    the model's module. ``returnvars`` defaults to ``KeepLast()`` for every variable, also with
    ``iterations`` (RxInfer's own default there is ``KeepEach()``: one posterior per iteration; pass
    ``returnvars="KeepEach()"`` to get it, the iterations then come stacked along the first axis).
    ``model_kwargs`` are the model's non-data arguments.

    Examples
    --------
    A Beta–Bernoulli coin in RxInfer's own language (needs Julia: the example is not run where the
    Julia engine is unavailable; ``examples/rxinfer_coin.py`` says why and exits 0 there):

    >>> import numpy as np
    >>> from pyrxaif.rxinfer import infer
    >>> coin = '''
    ... @model function coin(y, a, b)
    ...     θ ~ Beta(a, b)
    ...     y .~ Bernoulli(θ)
    ... end
    ... '''
    >>> res = infer(coin, data={"y": np.array([1.0, 0.0, 1.0, 1.0])}, model_kwargs={"a": 2.0, "b": 3.0},
    ...             free_energy=True)  # doctest: +SKIP
    >>> res["posteriors"]["θ"]["mean"]   # Beta(2 + 3, 3 + 1)  # doctest: +SKIP
    0.5555...
    """
    fname, source = model_name(model, name)
    data = {} if data is None else dict(data)
    for key in list(data) + list(model_kwargs or {}):
        if not isinstance(key, str) or not _NAME_RE.match(key) or "." in key:
            raise ValueError(f"data/model_kwargs: invalid Julia argument name {key!r}")
    if iterations is not None and (not isinstance(iterations, (int, np.integer)) or iterations < 1):
        raise ValueError(f"iterations: expected a positive integer or None, got {iterations!r}")
    for label, text in (("constraints", constraints), ("initialization", initialization), ("meta", meta),
                        ("returnvars", returnvars)):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"{label}: expected Julia source text, got {type(text).__name__}")
    specs = [julia_data(v) for v in data.values()] + [julia_data(v) for v in (model_kwargs or {}).values()]
    values = [_to_julia(spec) for spec in specs]
    res = call("py_infer", source or "", fname, ",".join(data), ",".join(model_kwargs or {}),
                       constraints or "", initialization or "", meta or "", returnvars or "",
                       -1 if iterations is None else int(iterations), bool(free_energy), *values)
    posteriors = {str(k): _summary_to_numpy(v) for k, v in res["posteriors"].items()}
    fe = res["free_energy"]
    return {"posteriors": posteriors, "free_energy": None if fe is None else np.asarray(fe, np.float64).copy()}


def _summary_to_numpy(summary) -> dict:
    """Julia summary → numpy dict. A stacked summary (a vector of posteriors, stacked along Julia's
    trailing axes, ``stacked`` = the number of levels) is made time-major: the stacking axes move to
    the front, outermost first (KeepEach of a sequence: (iteration, time, ...))."""
    items = {str(k): v for k, v in summary.items()}
    depth = int(items.pop("stacked", 0))
    out = {}
    for k, v in items.items():
        if k == "type":
            out[k] = str(v)
            continue
        arr = np.array(v, dtype=np.float64)
        if depth and arr.ndim >= depth:
            arr = np.ascontiguousarray(np.moveaxis(arr, list(range(-1, -depth - 1, -1)), list(range(depth))))
        out[k] = arr
    return out


def as_distribution(summary: dict):
    """A posterior summary (from ``infer``) as a pyrxaif distribution, batch axes first.

    Gaussians (mean/cov) → MvNormal; Categorical → Categorical; Dirichlet → Dirichlet;
    DirichletCollection → MatrixDirichlet; Wishart → Wishart. Univariate summaries (mean/var) and
    point masses have no pyrxaif counterpart and raise ``TypeError``."""
    from pyrxaif.distributions import Categorical, Dirichlet, MatrixDirichlet, MvNormal, Wishart  # noqa: PLC0415

    kind = summary.get("type", "")
    if "cov" in summary:
        return MvNormal.from_mean_cov(summary["mean"], summary["cov"])
    if kind == "Categorical":
        with np.errstate(divide="ignore"):
            return Categorical.from_logits(np.log(summary["probs"]))
    if kind == "Dirichlet":
        return Dirichlet.create(summary["alpha"])
    if kind == "DirichletCollection":
        return MatrixDirichlet.create(summary["alpha"])
    if kind == "Wishart":
        return Wishart.create(summary["df"], summary["inv_scale"])
    raise TypeError(f"summary: no pyrxaif distribution for a {kind or 'untyped'} posterior "
                    f"(keys {sorted(summary)})")
