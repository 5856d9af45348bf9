"""Calibration defaults that the command line shows before anything heavy loads.

Kept apart from `migsim.evidence.calibrate` (which needs pandas and SciPy) so
``migsim --help`` can print the default without importing them.
"""

from __future__ import annotations

__all__ = ["DEFAULT_PRIOR_STRENGTH"]

#: How many attempts a scenario's rates are worth, per cohort: the strength N of
#: the prior Dirichlet(N x p) (and Beta) centred on the scenario's rates.
DEFAULT_PRIOR_STRENGTH = 100.0
