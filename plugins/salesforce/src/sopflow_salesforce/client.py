"""``SalesforceClient``: the org as the connector sees it, over simple-salesforce.

simple-salesforce does the REST calls (``describe``, ``query``/``query_more``
with ``nextRecordsUrl``, ``deleted``, ``limits``, ``restful`` for sObject
Collections) and Bulk API 2.0's job calls.  What it does not do, and this
module adds: the token comes from ``tokens.py`` (cached per account, refreshed
single-flight on ``INVALID_SESSION_ID``, because it did not log in itself and
so does not refresh); 503 and ``REQUEST_LIMIT_EXCEEDED`` are retried with
backoff honouring ``Retry-After``; ``Sforce-Limit-Info`` is read on every
response (``limits.py``) and past the account's share of the daily allocation
each call waits first.  Bulk query results are read page by page through its
``get_query_results`` so the caller can checkpoint each ``Sforce-Locator``
(its ``query()`` generator cannot be resumed), and job status is polled here
with an injectable sleep rather than its ``wait_for_job`` wall-clock loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
)
from sopflow_sdk import FatalError, RetriableError

from sopflow_salesforce import limits
from sopflow_salesforce.limits import Pacing, UsageRecorder
from sopflow_salesforce.tokens import TOKENS, AccessToken, TokenCache

log = logging.getLogger("sopflow_salesforce")
T = TypeVar("T")


def _error_code(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""


class SalesforceClient:
    """One account's API: built per job run, sharing the process's tokens."""

    def __init__(
        self,
        account: Any,
        *,
        tokens: TokenCache = TOKENS,
        pacing: Pacing | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.account = account
        self.tokens = tokens
        share = float(account.config.get("limit_share", 0.8))
        self.pacing = pacing or Pacing(limit_share=share)
        self.session = session or requests.Session()
        self.recorder = UsageRecorder()
        self.session.hooks["response"].append(self.recorder)
        self.version = str(account.config.get("api_version", "62.0"))
        self._token: AccessToken | None = None
        self._sf: Salesforce | None = None

    def sleep(self, seconds: float) -> None:
        (self.pacing.sleep or limits.sleep)(seconds)

    @property
    def usage(self) -> Any:
        return self.recorder.usage

    def _api(self) -> Salesforce:
        token = self.tokens.get(self.account, self.session)
        if self._sf is None or token is not self._token:
            self._token = token
            self._sf = Salesforce(
                instance_url=token.instance_url,
                session_id=token.value.reveal(),
                version=self.version,
                session=self.session,
            )
        return self._sf

    def call(self, fn: Callable[[Salesforce], T], what: str) -> T:
        """``fn(sf)`` with pacing, one single-flight re-login and backoff on refusals."""
        relogged = False
        for attempt in range(self.pacing.attempts):
            if self.usage.share >= self.pacing.limit_share:
                log.info(
                    "salesforce %s: %d/%d API calls used, slowing down", what, self.usage.used, self.usage.max
                )
                self.sleep(self.pacing.slowdown_seconds)
            sf = self._api()
            try:
                return fn(sf)
            except SalesforceExpiredSession:
                if relogged:
                    raise FatalError(f"Salesforce refused a fresh token for {what}") from None
                relogged = True
                self.tokens.refresh(self.account, self.session, stale=self._token)
                continue
            except SalesforceError as exc:
                retriable = exc.status == 503 or _error_code(exc) == "REQUEST_LIMIT_EXCEEDED"
                if not retriable:
                    raise FatalError(f"Salesforce refused {what}: {exc.status} {_error_code(exc)}") from None
                delay = self.pacing.backoff(attempt, self.usage.retry_after)
                if attempt + 1 == self.pacing.attempts:
                    raise RetriableError(
                        f"Salesforce {what}: {exc.status} {_error_code(exc) or 'unavailable'}; try later",
                        retry_after=delay,
                    ) from None
                log.info("salesforce %s: %s, retrying in %.1fs", what, exc.status, delay)
                self.sleep(delay)
            except requests.RequestException as exc:
                raise RetriableError(f"Salesforce {what}: {type(exc).__name__}", retry_after=30) from None
        raise RetriableError(f"Salesforce {what}: no answer after {self.pacing.attempts} attempts")

    # -- reads ----------------------------------------------------------------

    def describe(self, object_name: str) -> dict[str, Any]:
        return self.call(lambda sf: getattr(sf, object_name).describe(), f"describe {object_name}")

    def query_pages(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """Each batch of a SOQL query, following ``nextRecordsUrl``."""
        page = self.call(lambda sf: sf.query(soql), "query")
        yield page["records"]
        while not page.get("done", True):
            url = page["nextRecordsUrl"]
            page = self.call(lambda sf, url=url: sf.query_more(url, identifier_is_url=True), "query more")
            yield page["records"]

    def deleted(self, object_name: str, start: datetime, end: datetime) -> dict[str, Any]:
        return self.call(lambda sf: getattr(sf, object_name).deleted(start, end), f"getDeleted {object_name}")

    def limits(self) -> dict[str, Any]:
        return self.call(lambda sf: sf.limits(), "limits")

    # -- writes ---------------------------------------------------------------

    def upsert(self, object_name: str, key_field: str, records: Sequence[Mapping[str, Any]]) -> list[dict]:
        """sObject Collections upsert by ``key_field`` (at most 200): one SaveResult per record."""
        if len(records) > 200:
            raise ValueError("sObject Collections take at most 200 records a call")
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": object_name}, **r} for r in records],
        }
        path = f"composite/sobjects/{object_name}/{key_field}"
        return self.call(lambda sf: sf.restful(path, method="PATCH", json=body), f"upsert {object_name}")

    # -- Bulk API 2.0 ---------------------------------------------------------

    def _bulk(self, sf: Salesforce, object_name: str) -> Any:
        return getattr(sf.bulk2, object_name)._client

    def bulk_query_start(self, object_name: str, soql: str) -> str:
        job = self.call(
            lambda sf: self._bulk(sf, object_name).create_job(Operation.query, soql), "bulk query"
        )
        return str(job["id"])

    def bulk_query_wait(
        self, object_name: str, job_id: str, max_poll_seconds: float = 10.0
    ) -> dict[str, Any]:
        """The job's info once ``JobComplete``, polling at 0.5 s, 1 s, 2 s … up to ``max_poll_seconds``."""
        poll_seconds = 0.5
        while True:
            info = self.call(lambda sf: self._bulk(sf, object_name).get_job(job_id, True), "bulk job status")
            if info["state"] == "JobComplete":
                return info
            if info["state"] in ("Failed", "Aborted"):
                raise FatalError(
                    f"Salesforce bulk query {job_id} {info['state']}: {info.get('errorMessage', '')}"
                )
            self.sleep(poll_seconds)
            poll_seconds = min(poll_seconds * 2, max_poll_seconds)

    def bulk_query_page(
        self, object_name: str, job_id: str, locator: str, max_records: int
    ) -> dict[str, Any]:
        """``{"locator", "number_of_records", "records"}``: CSV text; locator ``""`` on the last page."""
        return self.call(
            lambda sf: self._bulk(sf, object_name).get_query_results(job_id, locator, max_records),
            "bulk query results",
        )
