"""Amounts as exact integers of fen (分): shops send yuan strings ("88.00"), and
a float would turn 0.1 + 0.2 into 0.30000000000000004 somewhere in a sum."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def to_fen(value: Any, what: str) -> int:
    """``"88.00"``/``"88"``/``88`` yuan → ``8800`` fen; refuses more than two decimals,
    negatives, floats (already inexact) and anything else, naming ``what``."""
    if isinstance(value, bool | float):
        raise ValueError(f'{what}: give the amount in yuan as a string such as "88.00", not a float')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f'{what}: {value!r} is not an amount in yuan such as "88.00"') from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{what}: {value!r} is not a non-negative amount in yuan")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{what}: {value!r} has more than two decimals (fen are the smallest unit)")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """``8800`` → ``"88.00"`` (for event payloads people read)."""
    return f"{fen // 100}.{fen % 100:02d}"
