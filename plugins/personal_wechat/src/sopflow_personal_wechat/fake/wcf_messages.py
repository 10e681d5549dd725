"""The fake WeChatFerry's messages as PC WeChat 3.9 writes them: a ``WxMsg`` type number and
the XML in ``content``, the media's file paths in ``extra`` / ``thumb``, and the system
notices (type 10000) of a room leave.  The field names of a scenario's message are the
ones ``GatewayState.receive_message`` documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from wcferry import wcf_pb2 as pb

from sopflow_personal_wechat.fake.state import FakeAccount

#: kind → (WxMsg type, appmsg type)
TYPES: dict[str, tuple[int, str]] = {
    "text": (1, ""),
    "image": (3, ""),
    "voice": (34, ""),
    "contact_card": (42, ""),
    "video": (43, ""),
    "emoji": (47, ""),
    "location": (48, ""),
    "link": (49, "5"),
    "file": (49, "6"),
    "mini_program": (49, "33"),
    "quote": (49, "57"),
    "other": (49, "2000"),  # a transfer (转账)
}
FILES = "C:\\Users\\staff\\Documents\\WeChat Files\\{self}\\FileStorage\\{where}\\{name}"


def _attrs(tag: str, **values: Any) -> str:
    return ET.tostring(ET.Element(tag, {k: str(v) for k, v in values.items()}), encoding="unicode")


def _sub(parent: ET.Element, tag: str, text: Any = "") -> ET.Element:
    node = ET.SubElement(parent, tag)
    node.text = str(text)
    return node


def _appmsg(app_type: str, m: dict[str, Any]) -> str:
    f = m["fields"]
    msg = ET.Element("msg")
    app = ET.SubElement(msg, "appmsg", {"appid": "", "sdkver": "0"})
    _sub(app, "title", f.get("title") or f.get("name") or m["text"])
    _sub(app, "des", f.get("description", ""))
    _sub(app, "type", app_type)
    if app_type == "5":
        _sub(app, "url", f.get("url", ""))
        _sub(app, "thumburl", f.get("thumb_url", ""))
    elif app_type == "6":
        attach = ET.SubElement(app, "appattach")
        _sub(attach, "totallen", f.get("size", 0))
        _sub(attach, "fileext", f.get("ext", ""))
    elif app_type == "33":
        info = ET.SubElement(app, "weappinfo")
        _sub(info, "appid", f.get("app_id", ""))
        _sub(info, "pagepath", f.get("page_path", ""))
        _sub(info, "username", f.get("username", ""))
    elif app_type == "57":
        refer = ET.SubElement(app, "refermsg")
        _sub(refer, "svrid", f.get("quoted_id", ""))
        _sub(refer, "content", f.get("quoted_text", ""))
    _sub(msg, "fromusername", m["from"])
    return ET.tostring(msg, encoding="unicode")


def content(kind: str, m: dict[str, Any]) -> str:
    """The ``content`` PC WeChat gives a message of this kind."""
    f = m["fields"]
    if kind == "text":
        return str(m["text"])
    if kind == "image":
        return f"<msg>{_attrs('img', aeskey='0' * 32, length=f.get('size', 0), md5='0' * 32)}</msg>"
    if kind == "voice":
        return f"<msg>{_attrs('voicemsg', endflag=1, voicelength=f.get('duration_ms', 0))}</msg>"
    if kind == "video":
        return f"<msg>{_attrs('videomsg', length=f.get('size', 0), playlength=f.get('seconds', 0))}</msg>"
    if kind == "emoji":
        return f"<msg>{_attrs('emoji', type=2, md5=f.get('md5', ''), cdnurl=f.get('url', ''))}</msg>"
    if kind == "location":
        where = {"x": f.get("lat", 0), "y": f.get("lon", 0), "scale": 15, "label": f.get("label", "")}
        return f"<msg>{_attrs('location', **where, maptype='roadmap', poiname=f.get('name', ''))}</msg>"
    if kind == "contact_card":
        return _attrs("msg", username=f.get("contact_id", ""), nickname=f.get("name", ""), sex=0)
    return _appmsg(TYPES[kind][1], m)


def message(account: FakeAccount, index: int, m: dict[str, Any], ts: int) -> pb.WxMsg:
    """The ``WxMsg`` of a received message (ids are the event's place: stable on a replay)."""
    kind = m.get("kind", "text")
    extra = thumb = ""
    if kind in ("image", "video", "file"):
        name = m["fields"].get("name") or f"{m['id']}.{ {'image': 'dat', 'video': 'mp4'}.get(kind, 'bin') }"
        extra = FILES.format(self=account.self_id, where="MsgAttach", name=name)
        thumb = (
            FILES.format(self=account.self_id, where="Thumb", name=f"{m['id']}.jpg") if kind != "file" else ""
        )
    return pb.WxMsg(
        id=index + 1,
        type=TYPES[kind][0],
        ts=ts,
        sender=m["from"],
        roomid=m["room"] or m["from"],
        is_group=bool(m["room"]),
        content=content(kind, m),
        extra=extra,
        thumb=thumb,
    )


def leave_notice(account: FakeAccount, payload: dict[str, Any]) -> str:
    """What the room shows the account for a leave: its own removal of members, another's, a quit."""

    def name(wxid: str) -> str:
        contact = account.contacts.get(wxid)
        return contact.name if contact and contact.name else wxid

    gone = payload["removeeIdList"]
    names = "、".join(f'"{name(w)}"' for w in gone)
    remover = payload.get("removerId", "")
    if remover == account.self_id:
        return f"你将{names}移出了群聊"
    if remover and remover not in gone:
        return f'"{name(remover)}"将{names}移出了群聊'
    return f"{names}退出了群聊"
