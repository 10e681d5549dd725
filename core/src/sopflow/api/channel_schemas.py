"""Each installed channel's declared settings and step parameters in the OpenAPI document.

A channel's ``ChannelSpec.settings`` becomes the components
``ChannelConfig.<channel>`` (what ``config`` of ``POST /api/v1/channel-accounts``
takes) and ``ChannelSecrets.<channel>`` (what ``secrets`` takes: write-only,
examples hidden); its ``step_params`` become ``ChannelStepParams.<channel>``.
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import OpenAPIType, Schema
from sopflow_sdk import SettingsSchema

from sopflow.plugins import PluginSystem

_RENAMED = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "writeOnly": "write_only",
    "additionalProperties": "additional_properties",
}
_COPIED = ("description", "minimum", "maximum", "pattern", "default", "enum", "examples", "required")


def to_openapi(json_schema: dict[str, Any]) -> Schema:
    """A ``SettingsSchema.json_schema()`` dict as Litestar's OpenAPI ``Schema``."""
    values: dict[str, Any] = {"type": OpenAPIType(json_schema["type"])}
    for key in _COPIED:
        if key in json_schema:
            values[key] = json_schema[key]
    for key, name in _RENAMED.items():
        if key in json_schema:
            values[name] = json_schema[key]
    if "properties" in json_schema:
        values["properties"] = {k: to_openapi(v) for k, v in json_schema["properties"].items()}
    if json_schema.get("x-secret"):
        values["description"] = (
            values.get("description", "") + " (a secret: encrypted, never shown)"
        ).strip()
    return Schema(**values)


def channel_components(plugins: PluginSystem) -> dict[str, Schema]:
    """The OpenAPI components of every registered channel's declarations."""
    out: dict[str, Schema] = {}
    for reg in plugins.registry.all("register_channels"):
        spec = reg.spec
        settings: SettingsSchema | None = spec.settings
        if settings is not None:
            out[f"ChannelConfig.{spec.name}"] = to_openapi(settings.json_schema())
            out[f"ChannelSecrets.{spec.name}"] = to_openapi(settings.json_schema(secrets=True))
        if spec.step_params.settings:
            out[f"ChannelStepParams.{spec.name}"] = to_openapi(spec.step_params.json_schema())
    return out
