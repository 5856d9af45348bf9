"""Many runs of a scenario: studies, sweeps, comparisons, sensitivity, decisions."""
