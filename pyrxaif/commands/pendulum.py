"""`pyrxaif pendulum`: learn a pendulum model from pixels (VAE + LDS by variational EM), validate it on
held-out sequences, then swing up from hanging by planning as inference and try to stay upright; then
score it in PC3's protocol (100-step swing-up and balance episodes, % of steps within π/6 and 8° of
upright). ``--preset underactuated``: gymnasium Pendulum-v1's physics (|torque| <= 2). The driver is
:mod:`pyrxaif.commands.pixel_driver`."""

from __future__ import annotations

import argparse

from pyrxaif.commands.pixel_driver import add_arguments, drive


def configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, "pendulum")


def run(args: argparse.Namespace) -> int:
    return drive(args, "pendulum")
