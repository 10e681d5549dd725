"""Secret values that never leak: a wrapper whose ``repr`` hides the value, and a
process-wide redaction filter applied to logs, errors and API output.

Every ``Secret`` created registers its value with the filter, so even a value
that ends up inside an f-string is masked when it passes through ``redact``.
"""

from __future__ import annotations

import threading

_MASK = "***"
_known: set[str] = set()
_lock = threading.Lock()
# Short values would mask ordinary words; real secrets are longer than this.
_MIN_REDACTED_LENGTH = 6


def remember(value: str) -> None:
    """Register ``value`` so that ``redact`` masks it wherever it appears."""
    if value and len(value) >= _MIN_REDACTED_LENGTH:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    if not text or not _known:
        return text
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, _MASK)
    return text


class Secret:
    """A secret string.  ``str()``, ``repr()`` and f-strings show ``***``;
    ``reveal()`` returns the value for the one place that needs it (an HTTP call)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value
        remember(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
