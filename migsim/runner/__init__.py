"""Running replications: the runner, its executors and precision targets."""

from migsim.runner.runner import run

__all__ = ["run"]
