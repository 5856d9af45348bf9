"""``python -m migsim.cli``: the same entry point as the ``migsim`` command."""

from migsim.cli import entry

entry()
