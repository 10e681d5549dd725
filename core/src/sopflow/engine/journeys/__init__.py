"""Journeys: pipelines and stages, stage entry rules, automatic placement,
set-based sync, stage reminders and the board.  Builds on ``sops``."""
