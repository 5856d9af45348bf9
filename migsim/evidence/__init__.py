"""Learning from actuals: calibration, state from actuals, forecasts, backtests."""
