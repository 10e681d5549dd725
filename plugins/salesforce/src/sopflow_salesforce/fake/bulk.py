"""Bulk API 2.0 query jobs in the fake: ``POST jobs/query`` creates a job,
``GET jobs/query/{id}`` reports its state (``UploadComplete`` → ``InProgress``
→ ``JobComplete`` over a few polls, as a real job does), and
``GET jobs/query/{id}/results?locator=&maxRecords=`` serves CSV pages with the
``Sforce-Locator`` (``null`` on the last page) and ``Sforce-NumberOfRecords``
headers.  The result set is fixed when the job completes.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

from sopflow_salesforce.fake import soql
from sopflow_salesforce.fake.rest import error

#: How many status polls a job stays ``InProgress`` for.
POLLS_TO_COMPLETE = 2


class BulkJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def create(self, fake: Any, raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw or b"{}")
            parsed = soql.parse(body["query"])
        except (ValueError, KeyError, TypeError) as exc:
            return error(400, "INVALIDJOB", f"invalid query job: {exc}")
        if body.get("operation") not in ("query", "queryAll"):
            return error(400, "INVALIDJOB", "operation must be query or queryAll")
        obj = fake.org.objects.get(parsed.object)
        if obj is None:
            return error(400, "INVALIDENTITY", f"Entity '{parsed.object}' is not supported")
        job_id = f"750{len(self.jobs) + 1:015d}"
        self.jobs[job_id] = {
            "id": job_id,
            "state": "UploadComplete",
            "polls": 0,
            "query": parsed,
            "rows": None,
        }
        return 200, self._info(job_id)

    def _info(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        info = {"id": job_id, "operation": "query", "object": job["query"].object, "state": job["state"]}
        if job["rows"] is not None:
            info["numberRecordsProcessed"] = len(job["rows"])
        return info

    def status(self, fake: Any, job_id: str) -> tuple[int, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        job["polls"] += 1
        if job["state"] != "JobComplete":
            job["state"] = "InProgress"
            if job["polls"] > POLLS_TO_COMPLETE:
                obj = fake.org.objects[job["query"].object]
                with fake.org.lock:
                    job["rows"] = soql.run(job["query"], list(obj.records.values()))
                job["state"] = "JobComplete"
        return 200, self._info(job_id)

    def results(self, job_id: str, params: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        job = self.jobs.get(job_id)
        if job is None:
            return (*error(404, "NOT_FOUND", "The requested resource does not exist"), {})
        if job["state"] != "JobComplete":
            return (*error(400, "INVALIDJOBSTATE", "job is not complete"), {})
        locator = params.get("locator") or ""
        try:
            start = int(base64.b64decode(locator).decode()) if locator else 0
        except ValueError:
            return (*error(400, "INVALIDLOCATOR", "invalid locator"), {})
        size = int(params.get("maxRecords") or 50000)
        rows = job["rows"][start : start + size]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job["query"].fields)
        for row in rows:
            writer.writerow(
                ["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row.values()]
            )
        nxt = start + size
        headers = {
            "Sforce-Locator": base64.b64encode(str(nxt).encode()).decode()
            if nxt < len(job["rows"])
            else "null",
            "Sforce-NumberOfRecords": str(len(rows)),
        }
        return 200, out.getvalue(), headers
