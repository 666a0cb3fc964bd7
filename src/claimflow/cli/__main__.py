"""``python -m claimflow.cli``: the same app as the ``claimflow`` command."""

from claimflow.cli.main import app

app()
