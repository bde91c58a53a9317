"""The ``pyrxaif`` command.

Each sub-command lives in ``pyrxaif.commands.<name>`` as two functions, ``configure(parser)`` and
``run(args) -> int``; modules are imported only when their sub-command runs, so ``pyrxaif info``
starts fast and never touches Julia unless asked.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = {
    "pendulum": "Learn a pendulum model from pixels and swing it up by planning as inference",
    "digits": "Learn rotating handwritten digits from pixels and rotate to a goal angle",
    "tmaze": "Discrete active inference with generalised free energy on the T-maze",
    "gridworld": "EFE planning by message passing with channels on epistemic grid-worlds",
    "sweep": "Train and evaluate one pixel-control model per seed (locally or on Ray) and summarise over models",
    "info": "Show the engines available (JAX, Julia) and why one is not",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyrxaif", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=f"pyrxaif.commands.{name}")
        # Sub-command modules add their own arguments lazily only when they are selected.
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit code follows :mod:`pyrxaif.exit_codes` (0 success, 1 internal error,
    2 usage error, 3 engine unavailable, 4 refused, 130 interrupted)."""
    from pyrxaif import exit_codes as X  # noqa: PLC0415

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # First pass: find the sub-command, then let its module add its arguments and parse again.
    if not (argv and argv[0] in COMMANDS):
        try:
            parser.parse_args(argv)  # prints usage / errors for unknown commands
        except SystemExit as exc:
            return X.SUCCESS if exc.code == 0 else X.USAGE_ERROR
        return X.USAGE_ERROR
    name = argv[0]
    module = importlib.import_module(f"pyrxaif.commands.{name}")
    full = argparse.ArgumentParser(prog=f"pyrxaif {name}", description=COMMANDS[name])
    module.configure(full)
    try:
        args = full.parse_args(argv[1:])      # argparse prints the usage and a one-line error
    except SystemExit as exc:
        return X.SUCCESS if exc.code == 0 else X.USAGE_ERROR
    from pyrxaif.checkpoint import CheckpointError  # noqa: PLC0415
    from pyrxaif.engines.julia import JuliaUnavailableError  # noqa: PLC0415  (does not start Julia)

    try:
        return int(module.run(args) or 0)
    except X.UsageError as exc:
        print(f"pyrxaif {name}: {exc}", file=sys.stderr)
        return X.USAGE_ERROR
    except (JuliaUnavailableError, X.Unavailable) as exc:
        print(f"pyrxaif {name}: {exc}", file=sys.stderr)
        return X.ENGINE_UNAVAILABLE
    except (X.Refused, CheckpointError) as exc:
        print(f"pyrxaif {name}: refused: {exc}", file=sys.stderr)
        return X.REFUSED
    except KeyboardInterrupt:
        print(f"pyrxaif {name}: interrupted; nothing was committed to the output folder", file=sys.stderr)
        return X.INTERRUPTED


def console_main() -> None:
    """The ``pyrxaif`` executable: ``main()``'s code as the exit status. After Ctrl-C the interrupted
    JAX computation may still be running on XLA's worker threads, and interpreter finalisation under
    them crashed the process (SIGSEGV instead of 130, seen in the SIGINT test); the run folder is
    already marked interrupted and nothing else needs cleaning up, so such a process ends at once."""
    code = main()
    if code == 130:     # exit_codes.INTERRUPTED
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console_main()
