"""pyrxaif: active-inference agents by variational message passing on factor graphs.

Importing pyrxaif enables JAX's float64 mode (``jax_enable_x64``): message passing on Gaussian and
Dirichlet beliefs needs double precision to match closed forms. Neural-network parts (the VAE) keep
their parameters in float32 explicitly. Importing pyrxaif never starts Julia; the Julia engine is
loaded only when asked for (``pyrxaif.engines.get_engine("julia")``).
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from pyrxaif import envs as _envs  # noqa: E402,F401  (registers the gymnasium ids "pyrxaif/...")

__version__ = "0.1.0"

__all__ = ["__version__"]
