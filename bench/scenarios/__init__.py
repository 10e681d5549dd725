"""One module per benchmark scenario (see bench/run.py)."""
