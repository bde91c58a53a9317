"""An RxInfer model from Python: a Beta–Bernoulli coin written in RxInfer's own `@model` language,
run by the Julia engine, with the posterior and the Bethe free energy back as numpy values.

    python examples/rxinfer_coin.py

Where Julia cannot run (no Julia, no juliacall, no network for the first install) it prints why and
exits 0: the Julia engine is optional, the JAX engine runs everywhere. With Julia it prints the
posterior Beta(2 + heads, 3 + tails) of the coin's bias next to its closed form.
"""

from __future__ import annotations

import numpy as np

from pyrxaif.engines import JuliaPackageLoadError, JuliaUnavailableError, julia_status

COIN = """
@model function coin(y, a, b)
    θ ~ Beta(a, b)
    y .~ Bernoulli(θ)
end
"""


def main() -> int:
    available, reason = julia_status()
    if available is False:
        print(f"Julia engine unavailable here, nothing to run: {reason}")
        return 0
    from pyrxaif.rxinfer import infer  # noqa: PLC0415  (starts Julia on first use)

    y = np.array([1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    try:
        res = infer(COIN, data={"y": y}, model_kwargs={"a": 2.0, "b": 3.0}, free_energy=True)
    except JuliaUnavailableError as exc:
        print(f"Julia engine unavailable here, nothing to run: {exc}")
        return 0
    except JuliaPackageLoadError as exc:       # Julia runs, but RxInfer/PyRxAIF failed to load: a real error
        print(f"Julia started but the packages failed to load: {exc}")
        return 1
    q = res["posteriors"]["θ"]
    heads = int(y.sum())
    print(f"q(θ) = {q['type']} with mean {q['mean']:.4f} (closed form Beta({2 + heads}, {3 + len(y) - heads}): "
          f"mean {(2 + heads) / (5 + len(y)):.4f})")
    print(f"Bethe free energy per iteration: {np.round(np.asarray(res['free_energy']), 4)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
