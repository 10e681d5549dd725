"""The one error a rule can raise: every problem at once, each with its path and fix."""

from __future__ import annotations

from collections.abc import Iterable

from sopflow_sdk import ConfigError


class RuleError(ConfigError):
    """A rule failed validation.

    ``problems`` is a list of ``(path, message)``; the path points into the JSON
    tree (``all[1].any[0].field``) and the message says how to fix it.
    """

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        super().__init__(problems, subject="rule")
