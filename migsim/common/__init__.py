"""The foundation every layer may use: errors, statistics, files."""
