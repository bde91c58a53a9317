"""`pyrxaif pendulum` (not yet available)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("pyrxaif pendulum: not yet available in this version", file=sys.stderr)
    return 1
