"""Typed settings a plugin declares: a channel account's settings, a send step's parameters.

A ``Setting`` is one field, the way Meltano's SDK declares a connector's
config (``secret=True`` included)::

    SettingsSchema(
        Setting("host", required=True, description="the SMTP server"),
        Setting("port", "integer", default=587, minimum=1, maximum=65535),
        Setting("password", secret=True, required=True),
    )

Core checks what a user sends against it before anything is written, and
reports every problem at once as ``(path, message)`` pairs.  A message says what
is expected and never repeats the value it refused (a secret must not come back
in an error).  ``json_schema()`` is the same declaration as JSON Schema, for the
OpenAPI document; a secret is ``writeOnly`` there and its example is hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import attrs

SettingType = Literal["string", "integer", "number", "boolean"]
SETTING_TYPES: tuple[str, ...] = get_args(SettingType)
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_WORDS = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false"}
#: Shown instead of a secret's example.
REDACTED = "***"


def _check_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"Setting name {value!r}: use lower_snake_case ('api_key', 'port')")


@attrs.frozen
class Setting:
    """One typed setting: its type, whether it is required, its default, its
    constraints, and whether it is a secret (stored encrypted, never shown)."""

    name: str = attrs.field(validator=_check_name)
    type: SettingType = attrs.field(default="string", validator=attrs.validators.in_(SETTING_TYPES))
    description: str = ""
    required: bool = False
    default: Any = None
    secret: bool = False
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[Any, ...] = attrs.field(default=(), converter=tuple)
    pattern: str | None = None
    example: Any = None

    def __attrs_post_init__(self) -> None:
        if self.default is not None and self.problem(self.default) is not None:
            raise ValueError(f"Setting {self.name!r}: default={self.default!r} {self.problem(self.default)}")
        if self.secret and self.type != "string":
            raise ValueError(f"Setting {self.name!r}: a secret is a string; use type='string'")

    def expected(self) -> str:
        """What a valid value looks like, in words (used in every message about it)."""
        parts = [_WORDS[self.type]]
        if self.choices:
            parts = ["one of " + ", ".join(repr(c) for c in self.choices)]
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"from {self.minimum:g} to {self.maximum:g}")
        elif self.minimum is not None:
            parts.append(f"of at least {self.minimum:g}")
        elif self.maximum is not None:
            parts.append(f"of at most {self.maximum:g}")
        low, high = self.min_length, self.max_length
        if low is not None and high is not None:
            parts.append(f"of {low} to {high} characters")
        elif high is not None:
            parts.append(f"of at most {high} characters")
        elif low is not None:
            parts.append(f"of at least {low} characters")
        if self.pattern:
            parts.append(f"matching {self.pattern}")
        return " ".join(parts)

    def problem(self, value: Any) -> str | None:
        """``None`` when ``value`` is valid, else the message (without the value)."""
        return None if self._valid(value) else f"expected {self.expected()}"

    def _valid(self, value: Any) -> bool:
        if not isinstance(value, _PYTHON_TYPES[self.type]):
            return False
        if self.type != "boolean" and isinstance(value, bool):
            return False
        if self.choices and value not in self.choices:
            return False
        if self.type in ("integer", "number"):
            return (self.minimum is None or value >= self.minimum) and (
                self.maximum is None or value <= self.maximum
            )
        if self.type == "string":
            return (
                (self.min_length is None or len(value) >= self.min_length)
                and (self.max_length is None or len(value) <= self.max_length)
                and (not self.pattern or re.fullmatch(self.pattern, value) is not None)
            )
        return True

    def json_schema(self) -> dict[str, Any]:
        """This setting as a JSON Schema property."""
        out: dict[str, Any] = {"type": self.type}
        for key, value in (
            ("description", self.description),
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("minLength", self.min_length),
            ("maxLength", self.max_length),
            ("pattern", self.pattern),
            ("default", None if self.secret else self.default),
        ):
            if value not in (None, ""):
                out[key] = value
        if self.choices:
            out["enum"] = list(self.choices)
        if self.secret:
            out["writeOnly"] = True
            out["x-secret"] = True
            out["examples"] = [REDACTED]
        elif self.example is not None:
            out["examples"] = [self.example]
        return out


def _as_settings(values: Iterable[Setting]) -> tuple[Setting, ...]:
    out = tuple(values)
    names = [s.name for s in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"SettingsSchema: {', '.join(twice)} declared more than once; declare each once")
    if any(not isinstance(s, Setting) for s in out):
        raise TypeError("SettingsSchema takes Setting records: SettingsSchema(Setting('host'), ...)")
    return out


@attrs.frozen(init=False)
class SettingsSchema:
    """The settings a plugin declares, in order.  ``SettingsSchema(Setting(...), ...)``."""

    settings: tuple[Setting, ...]

    def __init__(self, *settings: Setting) -> None:
        self.__attrs_init__(_as_settings(settings))  # type: ignore[attr-defined]

    def __iter__(self) -> Any:
        return iter(self.settings)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings if s.secret)

    def check(
        self,
        config: Mapping[str, Any],
        secrets: Mapping[str, Any] | None = None,
        *,
        config_path: str = "config",
        secrets_path: str = "secrets",
        noun: str = "setting",
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The config with defaults filled in, and every problem with ``config``
        (plain settings) and ``secrets`` (secret settings).  ``secrets=None``
        checks only the plain settings (a step's parameters have no secrets);
        ``noun`` names them in messages ("unknown parameter")."""
        problems: list[tuple[str, str]] = []
        known = {s.name: s for s in self.settings}
        plain = {n for n, s in known.items() if not s.secret}
        accepted = ", ".join(sorted(plain)) or "none"
        for key in sorted(map(str, config)):
            if key in known and known[key].secret:
                message = f"a secret: send it in `{secrets_path}` (stored encrypted)"
                problems.append((f"{config_path}.{key}", message))
            elif key not in known:
                problems.append((f"{config_path}.{key}", f"unknown {noun}; accepted: {accepted}"))
        out: dict[str, Any] = {}
        for name in sorted(plain):
            setting = known[name]
            if name in config and config[name] is not None:
                message = setting.problem(config[name])
                if message:
                    problems.append((f"{config_path}.{name}", message))
                out[name] = config[name]
            elif setting.default is not None:
                out[name] = setting.default
            elif setting.required:
                problems.append((f"{config_path}.{name}", f"required: {setting.expected()}"))
        if secrets is not None:
            problems += self._secret_problems(secrets, secrets_path)
        return out, problems

    def _secret_problems(self, secrets: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
        known = {s.name: s for s in self.settings if s.secret}
        problems = [
            (f"{path}.{key}", f"unknown secret; accepted: {', '.join(sorted(known)) or 'none'}")
            for key in sorted(map(str, secrets))
            if key not in known
        ]
        for name, setting in sorted(known.items()):
            value = secrets.get(name)
            if hasattr(value, "reveal"):  # a sopflow_sdk.Secret
                value = value.reveal()
            if value is None or value == "":
                if setting.required:
                    problems.append((f"{path}.{name}", f"required: {setting.expected()} (a secret)"))
                continue
            message = setting.problem(value)
            if message:
                problems.append((f"{path}.{name}", message))
        return problems

    def json_schema(self, *, secrets: bool = False) -> dict[str, Any]:
        """The plain settings (or, with ``secrets=True``, the secret ones) as a
        JSON Schema object that refuses unknown keys."""
        chosen = [s for s in self.settings if s.secret == secrets]
        return {
            "type": "object",
            "properties": {s.name: s.json_schema() for s in chosen},
            "required": [s.name for s in chosen if s.required and s.default is None],
            "additionalProperties": False,
        }
