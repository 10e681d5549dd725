"""Conversation-archive ingestion: recorded decrypted messages through the mapping,
then through ``pull_archive`` into a real sopflow app (SDK test harness)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import sopflow_wecom.plugin
from sopflow_sdk import ConfigError, InboundRequest, InboundResponse, RouteSpec, hookimpl
from sopflow_wecom.archive import ArchivedMessage, pull_archive, to_ingest_event, to_ingest_events

DATA = Path(__file__).parent / "data" / "wecom_archive_messages.json"
CORP = "wwarchivetest0001"
ALICE = "wmEAlECwAAHrbWYDOK5u3Af13xlYDDNQ"  # private chats with zhangsan
BOB = "wmEAlECwAAQm6UQ0dGtBUE_J3M8fFtDA"  # speaks only in the customer group
CAROL = "woAJ2GCAAAd1NPGHKSD4wKmE8Aabj9AA"  # a "wo" external id, chats with lisi


def recorded() -> list[ArchivedMessage]:
    raw = json.loads(DATA.read_text(encoding="utf-8"))["messages"]
    return [ArchivedMessage(seq=m["seq"], record=m["record"]) for m in raw]


def by_seq(seq: int) -> ArchivedMessage:
    return next(m for m in recorded() if m.seq == seq)


class RecordedArchive:
    """An ``ArchiveSource`` answering as GetChatData does: after ``seq``, oldest first, ``limit`` at most."""

    def __init__(self, messages: list[ArchivedMessage]) -> None:
        self.messages = sorted(messages, key=lambda m: m.seq)
        self.calls: list[tuple[int, int]] = []

    def fetch(self, seq: int, limit: int) -> list[ArchivedMessage]:
        self.calls.append((seq, limit))
        return [m for m in self.messages if m.seq > seq][:limit]


# -- the mapping ------------------------------------------------------------------------------------


def test_customers_messages_become_message_received() -> None:
    events = [e for e in to_ingest_events(recorded(), CORP) if e.type == "message.received"]
    assert [
        (e.identity.external_id, e.identity.staff_external_id, e.payload.get("room_id"), e.payload["text"])
        for e in events
    ] == [
        (ALICE, "zhangsan", None, "你好，请问这款防晒霜多少钱？"),
        (BOB, None, "wrjc7bDwAASxc8tZvBErFE02BtPWyAAA", "群里买有优惠吗？"),  # a group: the room, no staff
        (ALICE, "zhangsan", None, ""),  # the image: metadata only
        (CAROL, "lisi", None, "太贵了，等活动再说吧"),
        (ALICE, "zhangsan", None, "已经下单了，发货了吗？"),
    ]
    first = events[0]
    assert first.identity.channel == "wecom"
    assert first.idempotency_key == f"wecom:archive:{CORP}:8797638201239802372_1700000000123"
    assert first.occurred_at == "2023-11-14T22:13:20.123000+00:00"
    assert first.payload == {
        "text": "你好，请问这款防晒霜多少钱？",
        "msg_id": "8797638201239802372_1700000000123",
        "from": ALICE,
        "staff_userid": "zhangsan",
        "corp_id": CORP,
        "via": "conversation_archive",
    }
    assert events[2].payload["media"] == {
        "type": "image",
        "md5sum": "50de8e5ae8ffe4f1df7a93841f71993a",
        "filesize": 70961,
    }


def test_a_staff_message_is_a_staff_reply_that_sets_the_last_contact() -> None:
    event = to_ingest_event(by_seq(102), CORP)
    assert event is not None and event.type == "message.staff_sent"
    assert (event.identity.external_id, event.identity.staff_external_id) == (ALICE, "zhangsan")
    assert event.payload["text"] == "您好，这款是 129 元，今天下单送小样"
    assert event.fields == {"wecom.last_contact_at": "2023-11-14T22:14:02.877000+00:00"}


def test_a_recall_names_the_recalled_message() -> None:
    event = to_ingest_event(by_seq(105), CORP)
    assert event is not None and event.type == "message.revoked"
    assert event.payload["pre_msgid"] == "CAQQvPnc4QUY0On2rYSAgAMgooLa0Q8="
    assert event.identity.external_id == ALICE


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(by_seq(106).record, id="switch-marker"),
        pytest.param({**by_seq(102).record, "roomid": "wrRoom"}, id="staff-in-a-group"),
        pytest.param({**by_seq(102).record, "tolist": ["lisi"]}, id="staff-to-staff"),
        pytest.param(
            {**by_seq(101).record, "msgtype": "agree", "agree": {"userid": ALICE, "agree_time": 1}},
            id="agree",
        ),
        pytest.param({**by_seq(101).record, "msgtype": "disagree"}, id="disagree"),
        pytest.param({**by_seq(101).record, "msgtype": "location"}, id="other-type"),
    ],
)
def test_other_records_are_left_out(record: dict[str, Any]) -> None:
    assert to_ingest_event(ArchivedMessage(seq=1, record=record), CORP) is None


def test_malformed_records_are_left_out() -> None:
    text = by_seq(101)
    for broken in (
        {**text.record, "text": "not an object"},
        {**text.record, "msgid": ""},
        {**text.record, "from": "wbRobot001"},
        {k: v for k, v in text.record.items() if k != "text"},
    ):
        assert to_ingest_event(attrs.evolve(text, record=broken), CORP) is None
    no_time = to_ingest_event(attrs.evolve(text, record={**text.record, "msgtime": None}), CORP)
    assert no_time is not None and no_time.occurred_at is None  # core stamps it with the ingest time


def test_limit_is_getchatdatas_range() -> None:
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        pull_archive(None, 1, RecordedArchive([]), limit=0)  # type: ignore[arg-type]


# -- pulled into a real app ---------------------------------------------------------------------------


class ArchivePuller:
    """A test plugin: ``POST /plugins/archive_pull/pull/{account_id}`` with
    ``{"seq", "limit", "max_batches"}`` runs one ``pull_archive`` with a real Host."""

    def __init__(self, source: RecordedArchive) -> None:
        self.source = source

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register(RouteSpec(path="pull/{account_id:int}", handler=self.pull))
        register(RouteSpec(path="cursor/{account_id:int}", handler=self.cursor, methods=("GET",)))

    def cursor(self, request: InboundRequest, host: Any) -> InboundResponse:
        """The stored cursor, as the plugin's state holds it."""
        tenant_id = host.authenticate(request.headers, "admin")
        key = f"archive.seq.{request.path_params['account_id']}"
        return InboundResponse(200, json.dumps(host.state(tenant_id).get(key)), media_type="application/json")

    def pull(self, request: InboundRequest, host: Any) -> InboundResponse:
        if host.authenticate(request.headers, "admin") is None:
            return InboundResponse(401, "admin key required")
        body = json.loads(request.body)
        try:
            result = pull_archive(host, int(request.path_params["account_id"]), self.source, **body)
        except Exception as exc:
            return InboundResponse(500, f"{type(exc).__name__}: {exc}")
        return InboundResponse(200, json.dumps(attrs.asdict(result)), media_type="application/json")


@pytest.fixture
def archive() -> RecordedArchive:
    return RecordedArchive(recorded())


@pytest.fixture
def puller(archive: RecordedArchive) -> ArchivePuller:
    return ArchivePuller(archive)


@pytest.fixture
def sopflow_plugins(puller: ArchivePuller) -> list[tuple[str, Any]]:
    return [("wecom", sopflow_wecom.plugin), ("archive_pull", puller)]


@pytest.fixture
def account_id(api: Any) -> int:
    r = api.post(
        "/api/v1/channel-accounts",
        json={
            "channel": "wecom",
            "name": "main",
            "config": {"corp_id": CORP},
            "secrets": {"secret": "s" * 32},
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def pull(api: Any, account_id: int, **body: Any) -> dict[str, Any]:
    r = api.post(f"/plugins/archive_pull/pull/{account_id}", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def messages_by_customer(api: Any) -> dict[str, list[str]]:
    events = api.get("/api/v1/events?type=message.received").json()["items"]
    out: dict[str, list[str]] = {}
    for event in sorted(events, key=lambda e: e["occurred_at"]):
        customer = api.get(f"/api/v1/customers/{event['customer_id']}").json()
        [identity] = customer["identities"]
        key = f"{identity['external_id']}@{identity['staff_external_id']}"
        out.setdefault(key, []).append(event["payload"]["text"])
    return out


def test_pull_creates_message_events_on_the_right_customers(
    api: Any, account_id: int, archive: RecordedArchive
) -> None:
    assert pull(api, account_id, seq=0, limit=3) == {
        "seq": 108,
        "fetched": 8,
        "created": 7,
        "duplicates": 0,
        "skipped": 0,
    }
    assert archive.calls == [(0, 3), (103, 3), (106, 3)]  # the third page is short: caught up
    assert messages_by_customer(api) == {
        f"{ALICE}@zhangsan": ["你好，请问这款防晒霜多少钱？", "", "已经下单了，发货了吗？"],  # "": the image
        f"{BOB}@None": ["群里买有优惠吗？"],  # seen in the group only: no staff member of their own
        f"{CAROL}@lisi": ["太贵了，等活动再说吧"],
    }
    staff_sent = api.get("/api/v1/events?type=message.staff_sent").json()["items"]
    assert [e["payload"]["text"] for e in staff_sent] == ["您好，这款是 129 元，今天下单送小样"]
    alice = api.get(f"/api/v1/customers/{staff_sent[0]['customer_id']}").json()
    assert alice["fields"]["wecom.last_contact_at"].startswith("2023-11-14T22:14:02")
    [first] = [
        e
        for e in api.get("/api/v1/events?type=message.received").json()["items"]
        if e["payload"]["msg_id"] == "8797638201239802372_1700000000123"
    ]
    assert first["occurred_at"].startswith("2023-11-14T22:13:20.123")
    assert first["source"] == "archive_pull"  # the plugin that ingested it


def test_pulling_again_adds_nothing(api: Any, account_id: int) -> None:
    pull(api, account_id, seq=0)
    before = api.get("/api/v1/events").json()["items"]
    customers = api.get("/api/v1/customers").json()["items"]
    assert pull(api, account_id, seq=108) == {
        "seq": 108,
        "fetched": 0,
        "created": 0,
        "duplicates": 0,
        "skipped": 0,
    }
    # A lost cursor re-reads the archive; the msgid keys make every event a duplicate.
    assert pull(api, account_id, seq=0) == {
        "seq": 108,
        "fetched": 8,
        "created": 0,
        "duplicates": 7,
        "skipped": 0,
    }
    assert api.get("/api/v1/events").json()["items"] == before
    assert api.get("/api/v1/customers").json()["items"] == customers


def test_pull_stops_after_max_batches_and_resumes(api: Any, account_id: int) -> None:
    assert pull(api, account_id, seq=0, limit=1, max_batches=2) == {
        "seq": 102,
        "fetched": 2,
        "created": 2,
        "duplicates": 0,
        "skipped": 0,
    }
    assert pull(api, account_id, seq=102, limit=1000)["created"] == 5
    assert sum(len(texts) for texts in messages_by_customer(api).values()) == 5


def test_unknown_and_other_channels_accounts_are_left_alone(api: Any, archive: RecordedArchive) -> None:
    log = api.post("/api/v1/channel-accounts", json={"channel": "log", "name": "log", "config": {}})
    assert log.status_code == 201, log.text
    for account in (9999, log.json()["id"]):
        assert pull(api, account, seq=5) == {
            "seq": 5,
            "fetched": 0,
            "created": 0,
            "duplicates": 0,
            "skipped": 0,
        }
    assert archive.calls == []


def test_the_cursor_is_kept_in_plugin_state(api: Any, account_id: int, archive: RecordedArchive) -> None:
    """Without ``seq`` a pull starts where the last one stopped; the cursor is the
    calling plugin's state, stored with the batch's events."""
    assert pull(api, account_id, limit=1, max_batches=2)["seq"] == 102
    assert pull(api, account_id, limit=1000) == {
        "seq": 108,
        "fetched": 6,
        "created": 5,
        "duplicates": 0,
        "skipped": 0,
    }
    assert archive.calls[-1] == (102, 1000)  # resumed from the stored cursor
    assert pull(api, account_id) == {"seq": 108, "fetched": 0, "created": 0, "duplicates": 0, "skipped": 0}


def test_a_batch_that_fails_to_ingest_leaves_the_cursor_behind(
    api: Any, account_id: int, archive: RecordedArchive, puller: ArchivePuller
) -> None:
    """The cursor moves only with the events it covers: a batch whose events are
    refused is fetched again by the next pull."""
    puller.source = BrokenArchive(archive)
    refused = api.post(f"/plugins/archive_pull/pull/{account_id}", json={"limit": 3})
    assert refused.status_code == 500 and "idempotency_key" in refused.text, refused.text
    cursor = api.get(f"/plugins/archive_pull/cursor/{account_id}").json()
    assert cursor == {"corp_id": CORP, "seq": 103}  # the first batch only
    puller.source = archive
    assert pull(api, account_id)["seq"] == 108
    assert sum(len(texts) for texts in messages_by_customer(api).values()) == 5  # none lost, none twice


class BrokenArchive:
    """The recorded archive whose second batch carries an event core refuses."""

    def __init__(self, inner: RecordedArchive) -> None:
        self.inner, self.batches = inner, 0

    def fetch(self, seq: int, limit: int) -> list[ArchivedMessage]:
        self.batches += 1
        batch = self.inner.fetch(seq, limit)
        if self.batches == 2:
            bad = dict(batch[0].record, msgid="x" * 300, action="send", msgtype="text", roomid="")
            bad.update({"from": "wmBad", "text": {"content": "hi"}})
            batch = [*batch, ArchivedMessage(batch[-1].seq, bad)]
        return batch


def test_parsed_keys_are_reused_until_the_secret_changes() -> None:
    from archive_support import pem
    from sopflow_sdk import Secret
    from sopflow_wecom.archive.keys import parse_keys

    one = json.dumps({"1": pem(1)})
    first = parse_keys(one)
    assert parse_keys(Secret(one)) is first  # the same secret: not loaded again
    rotated = parse_keys(json.dumps({"1": pem(1), "2": pem(2)}))
    assert rotated is not first and rotated.versions == [1, 2]
    with pytest.raises(ConfigError):
        parse_keys(json.dumps({"1": "not a key"}))  # an error is never cached as keys
