"""The send calendar forecast (docs/forecast.md)."""
