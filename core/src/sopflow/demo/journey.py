"""The lifecycle journey and keyword rules (seed 003) — filled in once the journeys API lands."""

from __future__ import annotations

from typing import Any


def install_journey(setup: Any) -> None:
    return None


def board_counts(setup: Any) -> dict[str, int]:
    return {}
