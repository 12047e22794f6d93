"""``python -m esafety``: the same CLI as the ``esafety`` console script."""

from .workers.cli.main import run

run()
