"""Form providers' pushes: each provider's own authentication, then one
``Submission`` (form id, dedupe id, answers by the provider's field ids).

- 简道云: ``X-JDY-Signature`` = sha1 hex of ``nonce:body:secret:timestamp``
  (nonce and timestamp in the query), a timestamp older or newer than
  ``MAX_SKEW`` refused; dedupe on ``X-JDY-DeliverId``.
- 问卷星: the body's ``sign`` = sha1 hex of ``activity + joinid + 推送密钥``;
  dedupe on ``activity:joinid``.
- 腾讯问卷 and 金数据 sign nothing: the push URL carries a random token that only
  sopflow and the form's settings know (compared in constant time).  Anyone who
  learns the URL can post answers — ``docs/plugins/forms.md`` says so.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from sopflow_forms.inbound import Rejected, header, parse_json, same

#: seconds a 简道云 timestamp may differ from sopflow's clock
MAX_SKEW = 300
JDY_META = frozenset(
    {
        "_id",
        "appId",
        "entryId",
        "creator",
        "updater",
        "deleter",
        "createTime",
        "updateTime",
        "deleteTime",
        "formName",
        "wx_open_id",
        "wx_nickname",
        "wx_gender",
    }
)
WJX_META = frozenset(
    {
        "activity",
        "name",
        "timetaken",
        "submittime",
        "joinid",
        "totalvalue",
        "sign",
        "sojumpparm",
        "ipaddress",
        "source",
    }
)


@attrs.frozen
class Submission:
    provider: str
    form_id: str
    #: the provider's unique id of this push / answer (the event's dedupe key)
    dedupe: str
    answers: dict[str, Any]


def jiandaoyun(request: Any, secret: str, now: float) -> Submission | None:
    """Verify and read a 简道云 push; ``None`` for an operation that is no answer."""
    sig, deliver = header(request, "X-JDY-Signature"), header(request, "X-JDY-DeliverId")
    nonce, ts = request.query.get("nonce", ""), request.query.get("timestamp", "")
    if not sig or not nonce or not ts:
        raise Rejected(401, "X-JDY-Signature, nonce or timestamp is missing")
    try:
        stamp = int(ts)
    except ValueError:
        raise Rejected(401, "timestamp is not Unix seconds") from None
    if abs(now - stamp) > MAX_SKEW:
        raise Rejected(401, f"timestamp is more than {MAX_SKEW} s away from now (a replay or a wrong clock)")
    try:
        text = request.body.decode()
    except UnicodeDecodeError:
        raise Rejected(400, "the body is not UTF-8") from None
    expected = hashlib.sha1(f"{nonce}:{text}:{secret}:{ts}".encode()).hexdigest()
    if not same(expected, sig):
        raise Rejected(403, "X-JDY-Signature does not match sha1(nonce:body:secret:timestamp)")
    if not deliver:
        raise Rejected(400, "X-JDY-DeliverId is missing")
    doc = parse_json(request.body)
    if doc.get("op") not in ("data_create", "data_update"):
        return None
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    form_id = str(data.get("entryId") or "")
    if not form_id:
        raise Rejected(400, "data.entryId is missing")
    answers = {k: v for k, v in data.items() if k not in JDY_META}
    return Submission("jiandaoyun", form_id, f"deliver:{deliver}", answers)


def wjx(request: Any, key: str) -> Submission:
    doc = parse_json(request.body)
    given = str(doc.get("sign") or "")
    if not given:
        raise Rejected(401, "sign is missing")
    activity, joinid = str(doc.get("activity") or ""), str(doc.get("joinid") or "")
    if not same(hashlib.sha1(f"{activity}{joinid}{key}".encode()).hexdigest(), given):
        raise Rejected(403, "sign does not match sha1(activity + joinid + push key)")
    if not activity or not joinid:
        raise Rejected(400, "activity and joinid are needed")
    answers = {k: v for k, v in doc.items() if k not in WJX_META}
    return Submission("wjx", activity, f"{activity}:{joinid}", answers)


def url_token(request: Any, token: str) -> None:
    """The unsigned providers: the path's token must be the account's ``url_token``."""
    given = request.path_params.get("token", "")
    if not given:
        raise Rejected(401, "the push URL lacks its token")
    if not token or not same(
        hashlib.sha256(token.encode()).hexdigest(), hashlib.sha256(given.encode()).hexdigest()
    ):
        raise Rejected(403, "the push URL's token is wrong")


def tencent_wj(request: Any) -> Submission | None:
    """A 腾讯问卷 webhook (``answer.create`` / ``answer.update``); other actions → ``None``."""
    doc = parse_json(request.body)
    if doc.get("action") not in ("answer.create", "answer.update"):
        return None
    payload = doc.get("payload") if isinstance(doc.get("payload"), dict) else {}
    form_id = str(payload.get("survey_id") or "")
    if not form_id or not doc.get("id"):
        raise Rejected(400, "id and payload.survey_id are needed")
    answers: dict[str, Any] = {}
    for item in payload.get("answer") or []:
        if isinstance(item, dict):
            qid = item.get("question_id") or item.get("id")
            if qid is not None:
                answers[str(qid)] = item.get("text", item.get("value"))
    return Submission("tencent_wj", form_id, f"event:{doc['id']}", answers)


def jinshuju(request: Any) -> Submission:
    doc = parse_json(request.body)
    entry = doc.get("entry") if isinstance(doc.get("entry"), dict) else {}
    form_id, serial = str(doc.get("form") or ""), entry.get("serial_number")
    if not form_id or serial is None:
        raise Rejected(400, "form and entry.serial_number are needed")
    answers = {k: v for k, v in entry.items() if k.startswith("field_") or k.startswith("x_field_")}
    edited = entry.get("updated_at") or entry.get("created_at") or ""  # an edit re-sends the serial
    return Submission("jinshuju", form_id, f"{form_id}:{serial}:{edited}", answers)
