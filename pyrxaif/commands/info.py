"""`pyrxaif info`: the engines available here (JAX, Julia) and, for Julia, why not.

Never starts Julia: the Julia line comes from ``pyrxaif.engines.julia_status`` (juliacall installed?
a Julia executable that answers ``--version`` as Julia ≥ 1.10? network for the first install? With
``--no-network-check`` a first install is "unknown", never "available")."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-network-check", action="store_true",
                        help="do not probe the Julia servers (the first Julia install needs them)")


def run(args: argparse.Namespace) -> int:
    import pyrxaif  # noqa: PLC0415
    from pyrxaif.engines import ENV_VAR, julia_status, resolve_engine  # noqa: PLC0415
    from pyrxaif.engines import jax as jax_engine  # noqa: PLC0415

    print(f"pyrxaif {pyrxaif.__version__}")
    try:
        selected = resolve_engine(None)
    except ValueError as exc:
        selected = f"invalid ({exc})"
    print(f"selected engine ({ENV_VAR} or default): {selected}")
    ok, why = jax_engine.available()
    print(f"  jax   : {'available' if ok else 'unavailable'} - {why}")
    ok, why = julia_status(check_network=not args.no_network_check)
    state = {True: "available", False: "unavailable", None: "unknown (network not checked)"}[ok]
    print(f"  julia : {state} - {why}")
    return 0
