"""What a WeChatFerry ``WxMsg`` is: its ``type`` number and the XML PC WeChat puts in ``content``.

PC WeChat 3.9 (what WeChatFerry 39.x serves) numbers messages (``FUNC_GET_MSG_TYPES``):
1 text, 3 image, 34 voice, 42 contact card, 43 video, 47 emoji (sticker), 48
location, 49 app message, 10000 system notice.  An app message's
``<appmsg><type>`` tells a link (5), a file (6), a mini program (33, 36) and a
quote (57: a reply the customer typed, so it is text) apart.  Media is never
downloaded here: an image, voice or video gives its message id and the paths
``FUNC_DOWNLOAD_ATTACH`` / ``FUNC_GET_AUDIO_MSG`` fetch it with.

System notices in a chat are WeChat's own sentences, matched here as the client
words them in Chinese: a member removed (``你将"X"移出了群聊``, ``"X"将"Y"移出了群聊``),
a member who quit (``"X"退出了群聊``), and a contact who deleted the account
(``X开启了朋友验证，你还不是他（她）朋友…``, shown in that contact's chat after a send).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from sopflow_personal_wechat.port import NOT_FRIEND, MessageKind

TEXT, IMAGE, VOICE, CARD, VIDEO, EMOJI, LOCATION, APP = 1, 3, 34, 42, 43, 47, 48, 49
#: ``<appmsg><type>``: link, file, mini program (two forms), quote
APP_KINDS: dict[str, MessageKind] = {"5": "link", "6": "file", "33": "mini_program", "36": "mini_program"}
APP_QUOTE = "57"
QUOTED = re.compile(r'"([^"]+)"')
#: a join: "A"邀请"B"、"C"加入了群聊 / "B"通过扫描"A"分享的二维码加入群聊
JOINED = re.compile(r"加入了?群聊")
#: ``你将"A"、"B"移出了群聊`` / ``"R"将"A"移出了群聊``
REMOVED = re.compile(r'^(?:你|"(?P<remover>[^"]+)")将(?P<names>.+)移出了群聊')
#: ``"A"退出了群聊``
QUIT = re.compile(r'^(?P<names>(?:"[^"]+"、?)+)退出了群聊')


def _xml(content: str) -> ET.Element | None:
    try:
        return ET.fromstring(content)
    except ET.ParseError:
        return None


def _text(node: ET.Element | None, path: str) -> str:
    found = node.find(path) if node is not None else None
    return (found.text or "").strip() if found is not None else ""


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def decode(msg: Any) -> tuple[MessageKind, str, dict[str, Any]]:
    """(kind, text, fields) of a received ``WxMsg``; ``text`` is what keyword rules read."""
    media = {"media_id": str(msg.id), "path": msg.extra, "thumb": msg.thumb}
    if msg.type == TEXT:
        return "text", msg.content, {}
    node = _xml(msg.content)
    if msg.type == IMAGE:
        img = node.find("img") if node is not None else None
        size = _int(img.get("length")) if img is not None else None
        return "image", "", {**media, "size": size}
    if msg.type == VOICE:
        voice = node.find("voicemsg") if node is not None else None
        duration = _int(voice.get("voicelength")) if voice is not None else None
        return "voice", "", {"media_id": str(msg.id), "duration_ms": duration}
    if msg.type == VIDEO:
        video = node.find("videomsg") if node is not None else None
        seconds = _int(video.get("playlength")) if video is not None else None
        return "video", "", {**media, "seconds": seconds}
    if msg.type == EMOJI:
        emoji = node.find("emoji") if node is not None else None
        get = emoji.get if emoji is not None else (lambda _k, _d="": _d)
        return "emoji", "", {"md5": get("md5", ""), "url": get("cdnurl", "")}
    if msg.type == LOCATION:
        return _location(node)
    if msg.type == CARD:
        get = node.get if node is not None else (lambda _k, _d="": _d)
        name = get("nickname", "")
        return "contact_card", name, {"contact_id": get("username", ""), "name": name}
    if msg.type == APP:
        return _app(node, media)
    return "other", "", {"wx_type": msg.type}


def _location(node: ET.Element | None) -> tuple[MessageKind, str, dict[str, Any]]:
    loc = node.find("location") if node is not None else None
    get = loc.get if loc is not None else (lambda _k, _d="": _d)
    label = get("label", "")
    fields = {
        "label": label,
        "name": get("poiname", ""),
        "lat": _float(get("x", "")),  # PC WeChat's x is the latitude, y the longitude
        "lon": _float(get("y", "")),
    }
    return "location", label or fields["name"], fields


def _app(node: ET.Element | None, media: dict[str, Any]) -> tuple[MessageKind, str, dict[str, Any]]:
    app_type = _text(node, "appmsg/type")
    title = _text(node, "appmsg/title")
    kind = APP_KINDS.get(app_type)
    if app_type == APP_QUOTE:
        quoted = _text(node, "appmsg/refermsg/svrid")
        return "text", title, {"quote_of": quoted, "quoted_text": _text(node, "appmsg/refermsg/content")}
    if kind == "link":
        fields = {
            "title": title,
            "url": _text(node, "appmsg/url"),
            "description": _text(node, "appmsg/des"),
            "thumb_url": _text(node, "appmsg/thumburl"),
        }
        return "link", title, fields
    if kind == "file":
        size = _int(_text(node, "appmsg/appattach/totallen"))
        ext = _text(node, "appmsg/appattach/fileext")
        return "file", title, {**media, "name": title, "size": size, "ext": ext}
    if kind == "mini_program":
        fields = {
            "title": title,
            "app_id": _text(node, "appmsg/weappinfo/appid"),
            "page_path": _text(node, "appmsg/weappinfo/pagepath"),
            "username": _text(node, "appmsg/weappinfo/username"),
            "description": _text(node, "appmsg/des"),
        }
        return "mini_program", title, fields
    return "other", title, {"wx_type": APP, "app_type": app_type}


def left_names(notice: str) -> tuple[str | None, list[str]] | None:
    """(remover name, names who left) of a leave notice, else ``None``.  The remover is
    ``""`` when the account itself removed them, ``None`` when a member quit."""
    removed = REMOVED.match(notice)
    if removed:
        return removed.group("remover") or "", QUOTED.findall(removed.group("names"))
    quit_ = QUIT.match(notice)
    if quit_:
        return None, QUOTED.findall(quit_.group("names"))
    return None


def is_not_friend(notice: str) -> bool:
    """Whether a system notice says the chat's contact deleted the account."""
    return bool(NOT_FRIEND.search(notice))


def joined_names(notice: str) -> tuple[str, list[str]]:
    """(inviter, the names that joined) from a join notice; members are matched by name
    because the notice carries names, not wxids."""
    if "通过扫描" in notice:  # "B" joined through "A"'s QR code
        names = QUOTED.findall(notice)
        return (names[1] if len(names) > 1 else ""), names[:1]
    inviter, _, invited = notice.rpartition("邀请")
    inviter_names = QUOTED.findall(inviter)
    return (inviter_names[0] if inviter_names else ""), QUOTED.findall(invited)
