"""What a run produced: the results container and saved run directories."""

from migsim.results.results import Results

__all__ = ["Results"]
