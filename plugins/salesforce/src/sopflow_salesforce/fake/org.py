"""The fake org's data: objects with their describe metadata, records that carry
``SystemModstamp``, the delete log, and the edits a test makes "in Salesforce".

Field metadata follows the ``describe`` result (``name``, ``type``, ``label``,
``picklistValues``, ``externalId``, ``updateable``), and every write stamps
``SystemModstamp`` from the org's clock, strictly increasing by at least a
millisecond so a watermark poll can tell two edits apart.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

#: The system fields every object has (a subset of the real list).
SYSTEM_FIELDS = (
    {"name": "Id", "type": "id", "label": "Record ID", "updateable": False},
    {"name": "SystemModstamp", "type": "datetime", "label": "System Modstamp", "updateable": False},
    {"name": "LastModifiedDate", "type": "datetime", "label": "Last Modified Date", "updateable": False},
    {"name": "IsDeleted", "type": "boolean", "label": "Deleted", "updateable": False},
)
#: Key prefixes of record ids, as Salesforce's (003 Contact, 00Q Lead; a0X custom).
KEY_PREFIXES = {"Contact": "003", "Lead": "00Q", "Account": "001"}


def stamp(at: datetime) -> str:
    """``at`` the way Salesforce writes dateTime values: ``2026-01-02T03:04:05.000+0000``."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def field(name: str, type: str, label: str = "", **extra: Any) -> dict[str, Any]:
    """One describe field: ``field("Policy_Expiry__c", "date")``; ``values=[...]`` for picklists."""
    values = extra.pop("values", ())
    out = {
        "name": name,
        "type": type,
        "label": label or name,
        "updateable": extra.pop("updateable", True),
        "externalId": extra.pop("external_id", False),
        "picklistValues": [{"value": v, "label": v, "active": True} for v in values],
        "nillable": True,
    }
    out.update(extra)
    return out


class SObject:
    """One object type (Contact, Lead, ``Policy__c``): metadata and records."""

    def __init__(self, name: str, fields: list[dict[str, Any]], prefix: str) -> None:
        self.name = name
        self.fields = [dict(f) for f in (*SYSTEM_FIELDS, *fields)]  # copies: a test may change one
        self.prefix = prefix
        self.records: dict[str, dict[str, Any]] = {}
        self.deleted: list[dict[str, str]] = []

    def field_named(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self.fields if f["name"] == name), None)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.name,
            "keyPrefix": self.prefix,
            "custom": self.name.endswith("__c"),
            "queryable": True,
            "updateable": True,
            "fields": [dict(f) for f in self.fields],
        }


class Org:
    """Objects and records, behind one lock (the HTTP server is threaded)."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.objects: dict[str, SObject] = {}
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self._last_stamp: datetime | None = None

    def add_object(self, name: str, fields: list[dict[str, Any]]) -> SObject:
        prefix = KEY_PREFIXES.get(name, f"a{len(self.objects):02d}")
        self.objects[name] = SObject(name, fields, prefix)
        return self.objects[name]

    def _next_stamp(self) -> str:
        at = self.now().astimezone(UTC)
        if self._last_stamp is not None and at <= self._last_stamp:
            at = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = at
        return stamp(at)

    def new_id(self, obj: SObject) -> str:
        return f"{obj.prefix}{next(self._ids):012d}AAA"[:18]

    def create(self, object_name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """A record created in Salesforce (by a user or by an upsert)."""
        with self.lock:
            obj = self.objects[object_name]
            rid = self.new_id(obj)
            record = {f["name"]: None for f in obj.fields}
            record.update(values)
            ts = self._next_stamp()
            record.update(Id=rid, SystemModstamp=ts, LastModifiedDate=ts, IsDeleted=False)
            obj.records[rid] = record
            return dict(record)

    def edit(self, object_name: str, record_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """A change made in Salesforce: the values and a new ``SystemModstamp``."""
        with self.lock:
            record = self.objects[object_name].records[record_id]
            record.update(values)
            ts = self._next_stamp()
            record.update(SystemModstamp=ts, LastModifiedDate=ts)
            return dict(record)

    def delete(self, object_name: str, record_id: str) -> None:
        """A record moved to the recycle bin: gone from queries, in the delete log."""
        with self.lock:
            obj = self.objects[object_name]
            obj.records.pop(record_id)
            obj.deleted.append({"id": record_id, "deletedDate": self._next_stamp()})

    def record(self, object_name: str, record_id: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.objects[object_name].records[record_id])

    def find(self, object_name: str, field_name: str, value: Any) -> list[dict[str, Any]]:
        with self.lock:
            recs = self.objects[object_name].records.values()
            return [dict(r) for r in recs if r.get(field_name) == value]
