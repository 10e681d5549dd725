"""Callbacks end to end: the fake POSTs like WeCom, the plugin's route ingests."""

from __future__ import annotations

import logging

import httpx
import pytest
from sopflow_wecom.crypto import WeComCrypto, build_envelope, parse_envelope, parse_xml
from sopflow_wecom.fake import FakeWeCom
from wecom_support import CALLBACK_AES_KEY, CALLBACK_TOKEN, StubHost


def test_url_verification_handshake(fake: FakeWeCom, callback_receiver: tuple[str, StubHost]) -> None:
    assert fake.verify_callback_url()


def test_url_verification_with_wrong_token_fails(
    fake: FakeWeCom, callback_receiver: tuple[str, StubHost]
) -> None:
    url, _ = callback_receiver
    fake.set_callback(url, "someOtherToken0123456789abcdefgh", CALLBACK_AES_KEY)
    assert not fake.verify_callback_url()


def test_add_customer_callback_is_ingested(fake: FakeWeCom, callback_receiver: tuple[str, StubHost]) -> None:
    _, host = callback_receiver
    code = fake.add_customer("zhangsan", "wmAnn", "Ann", state="poster_a")
    assert fake.callback_responses[-1].status_code == 200
    assert fake.callback_responses[-1].content == b""
    [(tenant_id, event)] = host.events
    assert tenant_id == 3
    assert event.type == "customer.added"
    assert event.identity.external_id == "wmAnn"
    assert event.identity.staff_external_id == "zhangsan"
    assert event.payload["welcome_code"] == code
    assert event.source == "poster_a"


def test_churn_delete_and_message_callbacks(fake: FakeWeCom, callback_receiver: tuple[str, StubHost]) -> None:
    _, host = callback_receiver
    fake.add_customer("zhangsan", "wmA", welcome=False)
    fake.delete_follow_user("zhangsan", "wmA")
    fake.add_customer("lisi", "wmB", welcome=False)
    fake.delete_external_contact("lisi", "wmB")
    fake.customer_message("wmB", "hello there")
    assert [e.type for _, e in host.events] == [
        "customer.added",
        "customer.churned",
        "customer.added",
        "customer.deleted_by_staff",
        "message.received",
    ]
    assert host.events[-1][1].payload["text"] == "hello there"


def test_replayed_callback_is_a_duplicate(fake: FakeWeCom, callback_receiver: tuple[str, StubHost]) -> None:
    _, host = callback_receiver
    fake.add_customer("zhangsan", "wmA", state="s1")
    request = fake.callback_responses[-1].request
    replay = httpx.post(str(request.url), content=request.content)
    assert replay.status_code == 200
    assert len(host.events) == 1 and len(host.keys) == 1


def test_delivered_callback_decrypts_with_the_crypto_module(
    fake: FakeWeCom, callback_receiver: tuple[str, StubHost]
) -> None:
    fake.add_customer("zhangsan", "wmA", state="s1")
    request = fake.callback_responses[-1].request
    q = dict(request.url.params)
    envelope = parse_envelope(request.content)
    assert envelope.to_user_name == fake.corp_id and envelope.agent_id == "1000002"
    crypto = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, fake.corp_id)
    fields = parse_xml(crypto.decrypt(q["msg_signature"], q["timestamp"], q["nonce"], envelope.encrypt))
    assert fields["Event"] == "change_external_contact"
    assert fields["ChangeType"] == "add_external_contact"
    assert fields["State"] == "s1" and fields["WelcomeCode"]
    assert fields["CreateTime"] == q["timestamp"]


def test_forged_or_unknown_callbacks_are_refused(
    fake: FakeWeCom, callback_receiver: tuple[str, StubHost]
) -> None:
    url, host = callback_receiver
    fake.add_customer("zhangsan", "wmA")
    request = fake.callback_responses[-1].request
    q = dict(request.url.params)
    forged = httpx.post(url, params={**q, "msg_signature": "0" * 40}, content=request.content)
    assert forged.status_code == 403 and b"signature" in forged.content
    unknown = httpx.post(url.rsplit("/", 1)[0] + "/999", params=q, content=request.content)
    assert unknown.status_code == 404
    missing = httpx.post(url, content=request.content)
    assert missing.status_code == 400
    assert len(host.events) == 1


def _resend(request: httpx.Request, **params: str) -> httpx.Response:
    return httpx.post(str(request.url.copy_merge_params(params)), content=request.content)


def test_a_callback_outside_the_replay_window_is_refused_and_logged(
    fake: FakeWeCom, callback_receiver: tuple[str, StubHost], caplog: pytest.LogCaptureFixture
) -> None:
    _, host = callback_receiver
    fake.add_customer("zhangsan", "wmA", welcome=False)
    captured = fake.callback_responses[-1].request
    fake.clock.advance(301)  # the same, validly signed request, replayed later
    with caplog.at_level(logging.WARNING, logger="sopflow_wecom"):
        replay = httpx.post(str(captured.url), content=captured.content)
    assert replay.status_code == 403 and b"replay window" in replay.content
    assert "account 7" in caplog.text and "replay window" in caplog.text
    fake.add_customer("lisi", "wmB", welcome=False)  # a fresh one, signed now, still goes through
    assert [e.identity.external_id for _, e in host.events] == ["wmA", "wmB"]


def test_a_message_is_one_event_per_msgid_whatever_its_create_time(
    fake: FakeWeCom, callback_receiver: tuple[str, StubHost]
) -> None:
    _, host = callback_receiver
    fields = {
        "ToUserName": fake.corp_id,
        "FromUserName": "wmA",
        "CreateTime": int(fake.clock()),
        "MsgType": "text",
        "Content": "how much?",
        "MsgId": "1456453720",
        "AgentID": fake.agent_id,
    }
    fake.deliver(fields)
    fake.deliver({**fields, "CreateTime": int(fake.clock()) + 3})  # WeCom's retry, re-stamped
    fake.deliver({**fields, "MsgId": "1456453721"})
    assert [e.payload["msg_id"] for _, e in host.events] == ["1456453720", "1456453721"]


def test_every_refused_callback_is_logged_with_the_account_and_reason_never_a_secret(
    fake: FakeWeCom, callback_receiver: tuple[str, StubHost], caplog: pytest.LogCaptureFixture
) -> None:
    url, host = callback_receiver
    fake.add_customer("zhangsan", "wmA", welcome=False)
    request = fake.callback_responses[-1].request
    q = dict(request.url.params)
    other = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, "wwsomeoneelse")
    encrypted, sig, ts, nonce = other.encrypt("<xml/>", timestamp=int(fake.clock()))
    cases = {
        "signature": (q | {"msg_signature": "0" * 40}, request.content),
        "ReceiveId": (
            {"msg_signature": sig, "timestamp": ts, "nonce": nonce},
            build_envelope("wwsomeoneelse", encrypted).encode(),
        ),
        "XML": (q, b"<xml><Encrypt>"),
        "base64": (_signed_garbage(fake), None),
    }
    for reason, (params, body) in cases.items():
        caplog.clear()
        if body is None:
            params, body = params
        with caplog.at_level(logging.WARNING, logger="sopflow_wecom"):
            answer = httpx.post(url, params=params, content=body)
        assert answer.status_code == 403, (reason, answer.text)
        assert "account 7" in caplog.text and reason.lower() in caplog.text.lower(), (reason, caplog.text)
        for secret in (CALLBACK_TOKEN, CALLBACK_AES_KEY, fake.secret):
            assert secret not in caplog.text and secret not in answer.text
    assert len(host.events) == 1


def _signed_garbage(fake: FakeWeCom) -> tuple[dict[str, str], bytes]:
    """A correctly signed envelope whose ciphertext is not base64."""
    crypto = WeComCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, fake.corp_id)
    ts, nonce, garbage = str(int(fake.clock())), "n0nce", "!!not-base64!!"
    signature = crypto.signature(ts, nonce, garbage)
    return {"msg_signature": signature, "timestamp": ts, "nonce": nonce}, build_envelope(
        fake.corp_id, garbage
    ).encode()
