"""pyrxaif: active-inference agents by variational message passing on factor graphs.

The public face::

    import pyrxaif as rx

    model = rx.DiscretePOMDP(A, B, C, D)                      # pymdp's letters
    agent = rx.Agent(model, method="aif-mp", horizon=4)       # bp, vbp, rm-mp, aif-mp, nuijten-mp, efe, gfe, bethe
    qs = agent.infer_states(obs); agent.infer_policies(); u = agent.sample_action()

    lds = rx.LinearGaussianSSM(state_dim=2, emission_dim=3, input_dim=1)   # dynamax's names
    params = lds.initialize(dynamics_weights=..., emission_weights=...)
    post = lds.smoother(params, emissions, inputs)

    env = rx.TMaze()                                          # gymnasium envs, also gymnasium.make("pyrxaif/...")
    res = rx.infer(source, data={...})                        # an RxInfer @model, run by the Julia engine

Importing pyrxaif enables JAX's float64 mode (``jax_enable_x64``): message passing on Gaussian and
Dirichlet beliefs needs double precision to match closed forms. Neural-network parts (the VAE) keep
their parameters in float32 explicitly. Importing pyrxaif never starts Julia; the Julia engine starts
on its first use (``rx.infer``, ``engine="julia"``, ``pyrxaif.engines.engine("julia", start=True)``).
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from pyrxaif import envs as _envs  # noqa: E402,F401  (registers the gymnasium ids "pyrxaif/...")

__version__ = "0.1.0"

#: public name -> (module, attribute); imported on first access, so ``import pyrxaif`` stays light
_PUBLIC = {
    "DiscretePOMDP": ("pyrxaif.models.discrete_pomdp", "DiscretePOMDP"),
    "Agent": ("pyrxaif.agents.pomdp_agent", "Agent"),
    "LinearGaussianSSM": ("pyrxaif.models.linear_gaussian_ssm", "LinearGaussianSSM"),
    "infer": ("pyrxaif.rxinfer", "infer"),
    "engine": ("pyrxaif.engines", "engine"),
    "TMaze": ("pyrxaif.envs.tmaze", "TMaze"),
    "EpistemicFrozenLake": ("pyrxaif.envs.frozenlake", "EpistemicFrozenLake"),
    "RockSample": ("pyrxaif.envs.rocksample", "RockSample"),
    "WumpusWorld": ("pyrxaif.envs.wumpus", "WumpusWorld"),
    "PixelPendulum": ("pyrxaif.envs.pendulum", "PixelPendulum"),
    "RotatingDigits": ("pyrxaif.envs.digits", "RotatingDigits"),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'pyrxaif' has no attribute {name!r}") from None
    import importlib  # noqa: PLC0415

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
