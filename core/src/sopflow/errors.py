"""The engine's domain errors: what went wrong, in words a caller can act on,
with no HTTP in them.  ``sopflow.api.problems`` maps each class to its problem
details (status, title) in one place; the CLI prints the same words.

They extend the SDK's tree (``sopflow_sdk.SopflowError``), so a plugin, a
worker and the API handle one family of errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sopflow_sdk import SopflowError


class DomainError(SopflowError):
    """A request the engine will not carry out as asked.  ``errors`` lists
    ``{"field", "message"}`` pairs: the JSON path of the field and how to fix it."""

    def __init__(self, detail: str, errors: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.detail = self.user_message
        self.errors = [{"field": f, "message": m} for f, m in errors]


class InvalidInput(DomainError):
    """Input that fails validation; nothing was changed."""

    def __init__(self, errors: Iterable[tuple[str, str]], detail: str | None = None) -> None:
        errors = list(errors)
        summary = detail or "; ".join(f"{f}: {m}" for f, m in errors)
        super().__init__(summary, errors)


class NotFound(DomainError):
    """The resource does not exist in the caller's tenant."""

    def __init__(self, resource: str, key: Any) -> None:
        super().__init__(f"{resource} {key!s} does not exist in this tenant")


class Conflict(DomainError):
    """The resource's current state does not allow the change."""


class LimitReached(Conflict):
    """A configured limit (``SOPFLOW_MAX_*``) would be exceeded."""


class Unauthorized(DomainError):
    """No valid credentials."""


class Forbidden(DomainError):
    """Valid credentials without the scope the operation needs."""
