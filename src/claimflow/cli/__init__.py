"""The ``claimflow`` command line (typer), one module a command group.

``main`` holds the root app (``verify``, ``batch``, ``graph``, ``config``) and mounts every other
group's ``app`` in one list; ``debug`` (``runs``, ``trace``, ``replay``, ``report``, mounted at the
top level), ``models``, ``prompts``, ``eval`` and ``finetune`` are the groups. Commands raise
``ClaimflowError`` and never catch it: the root app reports it (``_errors``).
"""
