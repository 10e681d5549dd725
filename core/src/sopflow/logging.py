"""structlog set-up: JSON lines with bound context (tenant, request, customer),
secrets redacted by key name and by value before anything is written."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from sopflow_sdk.secrets import redact

_SECRET_KEYS = re.compile(r"(secret|token|password|api_key|authorization|aes_key)", re.I)


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and value not in (None, ""):
            event_dict[key] = "***"
        elif isinstance(value, str):
            event_dict[key] = redact(value)
        elif value is not None and not isinstance(value, (int, float, bool)):
            event_dict[key] = redact(str(value))
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (so test
    capture and redirection see log lines)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level, logging.INFO)
        ),
        # one write per line (WriteLogger): a line is never split by another thread's output
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "sopflow") -> Any:
    return structlog.get_logger(name)
