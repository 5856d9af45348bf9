"""The ``migsim`` command line."""

import sys


def entry() -> None:
    """The ``migsim`` program: `migsim.cli.main.main`, with a Ctrl-C while its
    modules load said as at any later moment ("Aborted!", exit status 1), not
    as a traceback (the command's own handling starts only once they have)."""
    try:
        from migsim.cli.main import main
    except KeyboardInterrupt:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    main()
