"""The one error tree plugins and core share.

Every error tells the runtime what to do with it: retry later (``RetriableError``,
optionally after ``retry_after`` seconds), give up (``FatalError``), or skip the
item and go on (``SkippableError``).  Each carries a *user message* (safe to show
in the API) and an *internal message* (for logs); both pass through the secret
filter, so a token that slips into an error string never leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterable

from sopflow_sdk.secrets import redact


class SopflowError(Exception):
    """Base of every sopflow error.

    ``user_message`` is what an API caller sees; ``internal_message`` is for logs
    and may hold more detail.  Both are redacted of known secrets.
    """

    def __init__(self, user_message: str, *, internal_message: str | None = None) -> None:
        self.user_message = redact(user_message)
        self.internal_message = redact(internal_message or user_message)
        super().__init__(self.user_message)


class RetriableError(SopflowError):
    """The operation may succeed later. ``retry_after`` is in seconds, if known."""

    def __init__(
        self,
        user_message: str,
        *,
        retry_after: float | None = None,
        internal_message: str | None = None,
    ) -> None:
        super().__init__(user_message, internal_message=internal_message)
        self.retry_after = retry_after


class DeferredError(RetriableError):
    """Not now, and nothing was attempted: the channel's own pacing says "not before
    ``retry_after`` seconds from now" (a paced or paused account, quiet hours, a
    daily cap).  The engine puts the touch back as due then without counting an
    attempt, and records ``reason`` (at most 50 characters) as why it was deferred."""

    def __init__(self, user_message: str, *, retry_after: float, reason: str = "channel_pacing") -> None:
        super().__init__(user_message, retry_after=retry_after)
        self.reason = reason[:50]


class FatalError(SopflowError):
    """Retrying will not help: the item fails and a human has to look."""


class SkippableError(SopflowError):
    """This item cannot be processed and should be skipped, recorded, not retried."""


class AmbiguousSendError(SopflowError):
    """A send may or may not have reached the recipient (timeout after the request
    left).  The engine never retries a non-idempotent channel after this error; it
    marks the touch for review instead."""


class UnsupportedCapabilityError(FatalError):
    """A channel was asked for something it did not declare in its capabilities."""

    def __init__(self, channel: str, capability: str) -> None:
        super().__init__(
            f"channel '{channel}' does not support '{capability}'; "
            f"choose a channel whose capabilities include it or change the step's touchpoint"
        )
        self.channel = channel
        self.capability = capability


class ConfigError(SopflowError):
    """Configuration is invalid.  Holds every problem at once, not only the first.

    Each problem is ``(field, message)``; the message says how to fix it.
    """

    def __init__(self, problems: Iterable[tuple[str, str]], *, subject: str = "config") -> None:
        self.problems = [(f, redact(m)) for f, m in problems]
        lines = "; ".join(f"{f}: {m}" for f, m in self.problems)
        super().__init__(f"invalid {subject}: {lines}")


class SignatureError(SopflowError):
    """An inbound request failed its signature or decryption check; nothing is ingested."""


class ScopeError(SopflowError):
    """A valid API key that may not do this: it lacks the scope, or the plugin is
    off for its tenant.  ``Host.authenticate`` raises it; core answers 403."""


class PluginError(SopflowError):
    """A plugin failed to load or registered something invalid."""
