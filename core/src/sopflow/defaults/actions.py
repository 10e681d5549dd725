"""The built-in SOP step actions, registered through ``register_actions`` like
any plugin's: send a message, remind staff, set a field, add or remove a tag,
move a stage, call a webhook.

Each is a ``CoreActionSpec``: it checks its own keys when an SOP is saved and
is prepared inside the delivery transaction (``sopflow.engine.sops.step_actions``).
A plugin that registers an action of the same name replaces the built-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow_sdk import MAX_ATTACHMENTS, TOUCHPOINTS, ChannelSpec, hookimpl

from sopflow.conditions.parse import MAX_ID, whole_number
from sopflow.engine.customers.fields import apply_stored, to_storage
from sopflow.engine.customers.records import TagChange, change_tags
from sopflow.engine.delivery.sends import prepare_send, prepare_webhook
from sopflow.engine.journeys.pipelines import get_stage, move_customer
from sopflow.engine.sops.definition import MAX_TAG, MAX_TEXT, SEND_TOUCHPOINTS, attachments, template
from sopflow.engine.sops.step_actions import CoreActionSpec, DefinitionChecks, Problems, StepPreparation

_TEXT = {"type": "string", "maxLength": MAX_TEXT}
_ATTACHMENTS = {
    "type": "array",
    "maxItems": MAX_ATTACHMENTS,
    "items": {"type": "object", "required": ["kind"]},
}


def check_message(
    raw: Mapping[str, Any], p: str, problems: Problems, checks: DefinitionChecks
) -> dict[str, Any]:
    """``send`` and ``remind_staff``: an enabled channel, a touchpoint it declares,
    a template, attachments within its limit, and only the parameters it declares."""
    kind = raw["type"]
    out: dict[str, Any] = {}
    channel = raw.get("channel", "log")
    spec = None
    if not isinstance(channel, str) or not checks.channel_exists(channel):
        problems.append((f"{p}.channel", f"no enabled channel {channel!r}; see GET /api/v1/plugins"))
    else:
        spec = checks.channel_spec(channel)
    out["channel"] = channel
    touchpoint = "staff_notice"
    if kind == "send":
        touchpoint = raw.get("touchpoint", "private_chat")
        if touchpoint not in SEND_TOUCHPOINTS:
            problems.append((f"{p}.touchpoint", f"use one of {', '.join(SEND_TOUCHPOINTS)}"))
        out["touchpoint"] = touchpoint
    out["text"] = template(raw.get("text"), f"{p}.text", problems)
    out["attachments"] = attachments(raw.get("attachments"), f"{p}.attachments", problems)
    if kind == "remind_staff":
        forward = raw.get("forward", False)
        if not isinstance(forward, bool):
            problems.append(
                (f"{p}.forward", "true when the staff member forwards it to the customer (counts as a push)")
            )
        out["forward"] = forward
    if spec is not None:
        check_capabilities(spec, touchpoint, out["attachments"], p, problems)
    out.update(check_channel_params(raw, set(out) | {"type"}, spec, p, problems))
    return out


def check_capabilities(
    spec: ChannelSpec, touchpoint: Any, items: list[Any], p: str, problems: Problems
) -> None:
    """The step's touchpoint and attachment count against what the channel declares."""
    caps = spec.capabilities
    declared = ", ".join(t for t in TOUCHPOINTS if t in caps.touchpoints)
    if touchpoint in TOUCHPOINTS and touchpoint not in caps.touchpoints:
        where = f"{p}.touchpoint" if touchpoint != "staff_notice" else f"{p}.channel"
        problems.append(
            (
                where,
                f"channel {spec.name!r} does not declare the {touchpoint} touchpoint; "
                f"it declares: {declared}; choose one of those or another channel",
            )
        )
    if len(items) > caps.max_attachments:
        problems.append(
            (f"{p}.attachments", f"channel {spec.name!r} takes at most {caps.max_attachments} attachments")
        )


def check_channel_params(
    raw: Mapping[str, Any], own: set[str], spec: ChannelSpec | None, p: str, problems: Problems
) -> dict[str, Any]:
    """The step's other keys: parameters the channel declares (defaults filled in);
    any other key is refused, naming the channel's accepted parameters."""
    extra = {k: v for k, v in raw.items() if k not in own and k not in ("touchpoint", "forward")}
    for key in sorted(k for k in ("touchpoint", "forward") if k in raw and k not in own):
        problems.append((f"{p}.{key}", f"not a key of a {raw['type']} action"))
    if spec is None:  # the channel's own problem is reported; its parameters cannot be known
        return {}
    params, found = spec.step_params.check(extra, config_path=p, noun=f"parameter of channel {spec.name!r}")
    problems.extend(found)
    return params


def check_set_field(
    raw: Mapping[str, Any], p: str, problems: Problems, checks: DefinitionChecks
) -> dict[str, Any]:
    key = raw.get("field")
    if (
        not isinstance(key, str)
        or key not in checks.fields
        or getattr(checks.fields.get(key), "read_only", False)
    ):
        problems.append((f"{p}.field", f"{key!r} is not a writable field of this tenant"))
    return {"field": key, "value": raw.get("value")}


def check_tag(raw: Mapping[str, Any], p: str, problems: Problems, checks: DefinitionChecks) -> dict[str, Any]:
    tag = raw.get("tag")
    if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG or "\x00" in tag:
        problems.append((f"{p}.tag", f"a non-empty tag of at most {MAX_TAG} characters (no NUL characters)"))
    return {"tag": tag}


def check_move_stage(
    raw: Mapping[str, Any], p: str, problems: Problems, checks: DefinitionChecks
) -> dict[str, Any]:
    stage_id = raw.get("stage_id")
    known = whole_number(stage_id)
    if known is None or not 1 <= known <= MAX_ID or not checks.stage_exists(known):
        problems.append((f"{p}.stage_id", "the id of a stage of this tenant"))
    return {"stage_id": stage_id}


def check_webhook(
    raw: Mapping[str, Any], p: str, problems: Problems, checks: DefinitionChecks
) -> dict[str, Any]:
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        problems.append((f"{p}.url", "an http(s) URL"))
    idempotent = raw.get("idempotent", False)
    if not isinstance(idempotent, bool):
        problems.append(
            (f"{p}.idempotent", "true if the receiver de-duplicates by the Idempotency-Key header")
        )
    return {"url": url, "idempotent": idempotent}


def set_field(step: StepPreparation, index: int, action: Mapping[str, Any]) -> None:
    customer = step.customer
    stored = {action["field"]: to_storage(step.fields[action["field"]], action["value"])}
    before = dict(customer.fields or {})
    customer.fields = apply_stored(customer.fields, stored)
    step.add_change(TagChange(), {k: v for k, v in stored.items() if before.get(k) != v})


def add_tag(step: StepPreparation, index: int, action: Mapping[str, Any]) -> None:
    step.add_change(change_tags(step.s, step.customer, add=[action["tag"]]), {})


def remove_tag(step: StepPreparation, index: int, action: Mapping[str, Any]) -> None:
    step.add_change(change_tags(step.s, step.customer, remove=[action["tag"]]), {})


def move_stage(step: StepPreparation, index: int, action: Mapping[str, Any]) -> None:
    customer = step.customer
    move_customer(
        step.s,
        customer.tenant_id,
        customer.id,
        get_stage(step.s, customer.tenant_id, action["stage_id"]),
        "rule",
        step.now,
        depth=step.enrollment.depth + 1,
    )


def _schema(
    properties: Mapping[str, Any], required: tuple[str, ...] = (), *, additional: bool = False
) -> dict[str, Any]:
    out = {"type": "object", "properties": dict(properties), "required": list(required)}
    if additional:
        out["additionalProperties"] = {"description": "a parameter the step's channel declares"}
    return out


BUILT_IN_ACTIONS = (
    CoreActionSpec(
        name="send",
        description="send a message to the customer on a channel",
        params_schema=_schema(
            {
                "channel": {"type": "string", "default": "log"},
                "touchpoint": {"enum": list(SEND_TOUCHPOINTS), "default": "private_chat"},
                "text": _TEXT,
                "attachments": _ATTACHMENTS,
            },
            ("text",),
            # a channel's own step parameters (ChannelSpec.step_params) are allowed besides
            additional=True,
        ),
        check=check_message,
        prepare=prepare_send,
    ),
    CoreActionSpec(
        name="remind_staff",
        description="remind the customer's staff member (a staff notice)",
        params_schema=_schema(
            {
                "channel": {"type": "string", "default": "log"},
                "text": _TEXT,
                "attachments": _ATTACHMENTS,
                "forward": {"type": "boolean", "default": False},
            },
            ("text",),
            additional=True,
        ),
        check=check_message,
        prepare=prepare_send,
    ),
    CoreActionSpec(
        name="set_field",
        description="set a writable customer field",
        params_schema=_schema({"field": {"type": "string"}, "value": {}}, ("field",)),
        check=check_set_field,
        prepare=set_field,
        changes_data=True,
    ),
    CoreActionSpec(
        name="add_tag",
        description="add a tag to the customer",
        params_schema=_schema({"tag": {"type": "string", "minLength": 1, "maxLength": MAX_TAG}}, ("tag",)),
        check=check_tag,
        prepare=add_tag,
        changes_data=True,
    ),
    CoreActionSpec(
        name="remove_tag",
        description="remove a tag from the customer",
        params_schema=_schema({"tag": {"type": "string", "minLength": 1, "maxLength": MAX_TAG}}, ("tag",)),
        check=check_tag,
        prepare=remove_tag,
        changes_data=True,
    ),
    CoreActionSpec(
        name="move_stage",
        description="move the customer to a stage",
        params_schema=_schema({"stage_id": {"type": "integer"}}, ("stage_id",)),
        check=check_move_stage,
        prepare=move_stage,
        changes_data=True,
    ),
    CoreActionSpec(
        name="webhook",
        description="POST the touch to a URL (Idempotency-Key: touch:<id>)",
        params_schema=_schema(
            {"url": {"type": "string", "format": "uri"}, "idempotent": {"type": "boolean", "default": False}},
            ("url",),
        ),
        check=check_webhook,
        prepare=prepare_webhook,
    ),
)


@hookimpl(trylast=True)
def register_actions(register):  # type: ignore[no-untyped-def]
    for spec in BUILT_IN_ACTIONS:
        register(spec)
