"""Dramatiq set-up and the thin actors that call ``sopflow.engine``."""
