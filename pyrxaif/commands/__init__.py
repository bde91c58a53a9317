"""Sub-commands of the ``pyrxaif`` CLI: each module has ``configure(parser)`` and ``run(args)``."""
