"""The JAX engine: the default; runs everywhere, nothing to start.

The JAX engine *is* the rest of the package (``pyrxaif.rules`` and ``pyrxaif.inference``); this
module only names it for the engine protocol (``name``, ``available()``)."""

from __future__ import annotations

name = "jax"


def available() -> tuple[bool, str]:
    """The JAX engine needs only jax/jaxlib, which pyrxaif depends on."""
    import jax  # noqa: PLC0415

    return True, f"jax {jax.__version__} on {jax.default_backend()}"
