"""What a Wechaty message is: ``MessagePayload.type`` (puppet.proto's ``MessageType``) and
the call that gives each kind's own payload.

``MessageUrl`` and ``MessageMiniProgram`` answer Wechaty's ``UrlLinkPayload`` /
``MiniProgramPayload`` as JSON (revision 0.20), ``MessageContact`` the card's
contact id, ``MessageLocation`` a ``LocationPayload``.  ``MessageLocation`` came
after 0.20, so the published 0.20 stubs lack it: its two messages and the call
are declared here with puppet.proto's own field numbers (``message.proto``,
``location.proto``), and a service that does not know the call (``UNIMPLEMENTED``)
leaves a location with the message's text as its label.  Media (image, voice,
video, file, emoticon) is never downloaded: ``media_id`` is the message id that
``MessageImage`` / ``MessageFile`` fetch it with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import betterproto
from sopflow_sdk import SopflowError
from wechaty_grpc.wechaty import PuppetStub
from wechaty_grpc.wechaty import puppet as pb

from sopflow_personal_wechat.port import MessageKind

T = pb.MessageType
KINDS: dict[Any, MessageKind] = {
    T.MESSAGE_TYPE_TEXT: "text",
    T.MESSAGE_TYPE_IMAGE: "image",
    T.MESSAGE_TYPE_ATTACHMENT: "file",
    T.MESSAGE_TYPE_AUDIO: "voice",
    T.MESSAGE_TYPE_VIDEO: "video",
    T.MESSAGE_TYPE_URL: "link",
    T.MESSAGE_TYPE_MINI_PROGRAM: "mini_program",
    T.MESSAGE_TYPE_LOCATION: "location",
    T.MESSAGE_TYPE_EMOTICON: "emoji",
    T.MESSAGE_TYPE_CONTACT: "contact_card",
}
MEDIA: frozenset[MessageKind] = frozenset({"image", "file", "voice", "video", "emoji"})


@dataclass(eq=False, repr=False)
class LocationPayload(betterproto.Message):
    """``wechaty.puppet.LocationPayload`` (location.proto)."""

    accuracy: float = betterproto.float_field(1)
    address: str = betterproto.string_field(2)
    latitude: float = betterproto.double_field(3)
    longitude: float = betterproto.double_field(4)
    name: str = betterproto.string_field(5)


@dataclass(eq=False, repr=False)
class MessageLocationRequest(betterproto.Message):
    id: str = betterproto.string_field(1)


@dataclass(eq=False, repr=False)
class MessageLocationResponse(betterproto.Message):
    location: LocationPayload = betterproto.message_field(1)  # noqa: RUF009 - betterproto's form


class Puppet(PuppetStub):
    """The published stub plus ``MessageLocation``."""

    async def message_location(self, *, id: str = "") -> MessageLocationResponse:
        """``rpc MessageLocation (MessageLocationRequest) returns (MessageLocationResponse)``."""
        return await self._unary_unary(
            "/wechaty.Puppet/MessageLocation", MessageLocationRequest(id=id), MessageLocationResponse
        )


def _json(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def decode(call: Callable[..., Any], m: pb.MessagePayloadResponse) -> tuple[MessageKind, str, dict[str, Any]]:
    """(kind, text, fields) of a message; ``call(method, id=...)`` asks the puppet service."""
    kind = KINDS.get(m.type, "other")
    if kind == "text":
        return "text", m.text, {}
    if kind in MEDIA:
        fields: dict[str, Any] = {"media_id": m.id}
        if m.filename:
            fields["name"] = m.filename
        return kind, m.filename if kind == "file" else "", fields
    if kind == "link":
        card = _json(call("message_url", id=m.id).url_link)
        title = str(card.get("title", ""))
        return (
            "link",
            title,
            {
                "title": title,
                "url": str(card.get("url", "")),
                "description": str(card.get("description", "")),
                "thumb_url": str(card.get("thumbnailUrl", "")),
            },
        )
    if kind == "mini_program":
        card = _json(call("message_mini_program", id=m.id).mini_program)
        title = str(card.get("title", ""))
        return (
            "mini_program",
            title,
            {
                "title": title,
                "app_id": str(card.get("appid", "")),
                "page_path": str(card.get("pagePath", "")),
                "username": str(card.get("username", "")),
                "description": str(card.get("description", "")),
            },
        )
    if kind == "contact_card":
        return "contact_card", "", {"contact_id": call("message_contact", id=m.id).id}
    if kind == "location":
        return _location(call, m)
    return "other", m.text, {"wechaty_type": T(m.type).name if m.type in T._value2member_map_ else m.type}


def _location(
    call: Callable[..., Any], m: pb.MessagePayloadResponse
) -> tuple[MessageKind, str, dict[str, Any]]:
    try:
        loc = call("message_location", id=m.id).location
    except SopflowError:  # a service without the call (0.20): the text is all there is
        return "location", m.text, {"label": m.text, "name": "", "lat": None, "lon": None}
    label = loc.address or loc.name or m.text
    return (
        "location",
        label,
        {
            "label": label,
            "name": loc.name,
            "lat": loc.latitude,
            "lon": loc.longitude,
            "accuracy": loc.accuracy,
        },
    )
