"""``python -m migsim.cli``: the same entry point as the ``migsim`` command."""

from migsim.cli.main import main

main()
