"""`pyrxaif digits`: learn rotating handwritten digits (real MNIST digits shipped offline) from pixels,
then rotate a held-out digit to a goal angle by planning as inference. The driver is
:mod:`pyrxaif.commands.pixel_driver`."""

from __future__ import annotations

import argparse

from pyrxaif.commands.pixel_driver import add_arguments, drive


def configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, "digits")


def run(args: argparse.Namespace) -> int:
    return drive(args, "digits")
