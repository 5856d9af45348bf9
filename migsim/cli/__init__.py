"""The ``migsim`` command line."""
