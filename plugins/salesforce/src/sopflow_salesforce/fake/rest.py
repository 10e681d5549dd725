"""The fake's REST resources under ``/services/data/vXX.X/``, as the public REST
API guide documents them: ``sobjects/{obj}/describe``, ``query`` with
``nextRecordsUrl`` paging, ``sobjects/{obj}/updated`` and ``/deleted``, sObject
Collections upsert by external id (at most 200 records, per-record results),
and ``limits``.  Bulk API 2.0 query jobs are in ``bulk.py``.

Each handler takes the fake, the path's parts, the query string and the body
and answers ``(status, json)``; errors are Salesforce's list of
``{"message", "errorCode"}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sopflow_salesforce.fake import soql
from sopflow_salesforce.fake.org import SObject

#: Records per query batch (Salesforce: up to 2,000, "may be fewer").
QUERY_BATCH = 2000
#: sObject Collections take at most this many records a call.
COLLECTION_LIMIT = 200


def error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, [{"message": message, "errorCode": code}]


def _object(fake: Any, name: str) -> SObject | None:
    return fake.org.objects.get(name)


def describe(fake: Any, name: str) -> tuple[int, Any]:
    obj = _object(fake, name)
    if obj is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    return 200, obj.describe()


def query(fake: Any, version: str, q: str) -> tuple[int, Any]:
    try:
        parsed = soql.parse(q)
    except soql.MalformedQuery as exc:
        return error(400, "MALFORMED_QUERY", str(exc))
    obj = _object(fake, parsed.object)
    if obj is None:
        return error(400, "INVALID_TYPE", f"sObject type '{parsed.object}' is not supported.")
    unknown = [f for f in parsed.fields + tuple(c[0] for c in parsed.conditions) if not obj.field_named(f)]
    if unknown:
        return error(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{obj.name}'.")
    with fake.org.lock:
        rows = soql.run(parsed, list(obj.records.values()))
    for row in rows:
        row["attributes"] = {
            "type": obj.name,
            "url": f"/services/data/v{version}/sobjects/{obj.name}/{row.get('Id')}",
        }
    return 200, fake.cursors.first_page(version, rows)


def query_more(fake: Any, version: str, locator: str) -> tuple[int, Any]:
    page = fake.cursors.next_page(version, locator)
    if page is None:
        return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return 200, page


class Cursors:
    """Open query results, served ``QUERY_BATCH`` records at a time."""

    def __init__(self, batch: int = QUERY_BATCH) -> None:
        self.batch = batch
        self._open: dict[str, list[dict[str, Any]]] = {}
        self._n = 0

    def _page(self, version: str, key: str, rows: list[dict[str, Any]], start: int, total: int) -> dict:
        chunk = rows[start : start + self.batch]
        done = start + self.batch >= len(rows)
        page: dict[str, Any] = {"totalSize": total, "done": done, "records": chunk}
        if not done:
            page["nextRecordsUrl"] = f"/services/data/v{version}/query/{key}-{start + self.batch}"
        return page

    def first_page(self, version: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        self._n += 1
        key = f"01g{self._n:015d}"
        self._open[key] = rows
        return self._page(version, key, rows, 0, len(rows))

    def next_page(self, version: str, locator: str) -> dict[str, Any] | None:
        key, _, start = locator.rpartition("-")
        rows = self._open.get(key)
        if rows is None or not start.isdigit():
            return None
        return self._page(version, key, rows, int(start), len(rows))


def _window(params: Mapping[str, str]) -> tuple[str, str] | None:
    start, end = params.get("start"), params.get("end")
    if not start or not end:
        return None
    return soql.normalise_datetime(start), soql.normalise_datetime(end)


def updated(fake: Any, name: str, params: Mapping[str, str]) -> tuple[int, Any]:
    obj, window = _object(fake, name), _window(params)
    if obj is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    if window is None:
        return error(400, "MALFORMED_QUERY", "start and end are required")
    with fake.org.lock:
        ids = [r["Id"] for r in obj.records.values() if window[0] <= r["SystemModstamp"] <= window[1]]
    return 200, {"ids": ids, "latestDateCovered": window[1]}


def deleted(fake: Any, name: str, params: Mapping[str, str]) -> tuple[int, Any]:
    obj, window = _object(fake, name), _window(params)
    if obj is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    if window is None:
        return error(400, "MALFORMED_QUERY", "start and end are required")
    with fake.org.lock:
        hits = [d for d in obj.deleted if window[0] <= d["deletedDate"] <= window[1]]
    earliest = fake.delete_log_starts or window[0]
    return 200, {
        "deletedRecords": hits,
        "earliestDateAvailable": earliest,
        "latestDateCovered": window[1],
    }


def _upsert_one(fake: Any, obj: SObject, key_field: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    """One record of a collection upsert: its SaveResult."""
    values = {k: v for k, v in rec.items() if k != "attributes"}
    key = values.pop(key_field, None)
    bad = [k for k in values if not (obj.field_named(k) or {}).get("updateable")]
    fault = fake.record_faults.pop(str(key), None)
    if fault is not None or bad or key in (None, ""):
        code, message = fault or (
            ("INVALID_FIELD", f"No such column '{bad[0]}' on sobject of type {obj.name}")
            if bad
            else ("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{key_field}]")
        )
        return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]}
    with fake.org.lock:
        matches = [r for r in obj.records.values() if r.get(key_field) == key]
    if len(matches) > 1:
        ids = ", ".join(r["Id"] for r in matches)
        return {
            "success": False,
            "errors": [{"statusCode": "DUPLICATE_EXTERNAL_ID", "message": ids, "fields": []}],
        }
    if matches:
        fake.org.edit(obj.name, matches[0]["Id"], values)
        return {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
    if key_field == "Id":
        return {
            "success": False,
            "errors": [{"statusCode": "NOT_FOUND", "message": "no record", "fields": []}],
        }
    created = fake.org.create(obj.name, {key_field: key, **values})
    return {"id": created["Id"], "success": True, "errors": [], "created": True}


def upsert_collection(fake: Any, name: str, key_field: str, raw: bytes) -> tuple[int, Any]:
    obj = _object(fake, name)
    if obj is None:
        return error(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
    described = obj.field_named(key_field)
    if described is None or not (key_field == "Id" or described.get("externalId")):
        return error(400, "INVALID_FIELD", f"{key_field} is not an external id field of {name}")
    try:
        body = json.loads(raw or b"{}")
        records = body["records"]
    except (ValueError, KeyError, TypeError):
        return error(400, "JSON_PARSER_ERROR", 'send {"allOrNone": false, "records": [...]}')
    if len(records) > COLLECTION_LIMIT:
        return error(
            400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {COLLECTION_LIMIT}"
        )
    return 200, [_upsert_one(fake, obj, key_field, rec) for rec in records]


def limits(fake: Any) -> tuple[int, Any]:
    return 200, {
        "DailyApiRequests": {"Max": fake.daily_max, "Remaining": max(0, fake.daily_max - fake.api_used)},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(fake.bulk.jobs)},
    }
