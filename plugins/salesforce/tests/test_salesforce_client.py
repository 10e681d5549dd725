"""The client against the fake org over real HTTPS: both OAuth flows, the token
cache and its single-flight refresh, limits, backoff, and no secret in logs."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from salesforce_support import account_for
from sopflow_salesforce.client import SalesforceClient
from sopflow_salesforce.fake import DemoOrg
from sopflow_salesforce.limits import Pacing
from sopflow_salesforce.tokens import TokenCache
from sopflow_sdk import ConfigError, FatalError, RetriableError


def client_for(org: DemoOrg, tokens: TokenCache, flow: str = "jwt_bearer", **kw: Any) -> SalesforceClient:
    return SalesforceClient(account_for(org, flow), tokens=tokens, **kw)


def recording_pacing(**kw: Any) -> tuple[Pacing, list[float]]:
    waits: list[float] = []
    return Pacing(sleep=waits.append, **kw), waits


@pytest.mark.parametrize("flow", ["jwt_bearer", "client_credentials"])
def test_both_flows_log_in_and_describe(org: DemoOrg, tokens: TokenCache, flow: str) -> None:
    client = client_for(org, tokens, flow)
    described = client.describe("Contact")
    assert {f["name"] for f in described["fields"]} >= {"Id", "Email", "Policy_Expiry__c"}
    [login] = [r for r in org.fake.requests if r.path == "/services/oauth2/token"]
    assert ("assertion" in login.body) == (flow == "jwt_bearer")
    assert client.usage.max == org.fake.daily_max and client.usage.used >= 1


def test_a_jwt_signed_by_another_key_is_refused(org: DemoOrg, tokens: TokenCache) -> None:
    from sopflow_salesforce.fake.scenario import key_and_certificate

    account = account_for(org)
    from sopflow_sdk import Secret

    account.secrets["private_key"] = Secret(key_and_certificate()[0].decode())
    with pytest.raises(ConfigError) as caught:
        SalesforceClient(account, tokens=tokens).describe("Contact")
    assert "invalid assertion" in caught.value.user_message


def test_wrong_client_secret_is_refused_without_repeating_it(org: DemoOrg, tokens: TokenCache) -> None:
    from sopflow_sdk import Secret

    account = account_for(org, "client_credentials")
    account.secrets["client_secret"] = Secret("wrong-secret-abcdef")
    with pytest.raises(ConfigError) as caught:
        SalesforceClient(account, tokens=tokens).describe("Contact")
    assert "invalid_client" in str(caught.value) and "wrong-secret-abcdef" not in str(caught.value)


def test_the_token_is_cached_and_refreshed_once_on_invalid_session(org: DemoOrg, tokens: TokenCache) -> None:
    first = client_for(org, tokens)
    first.describe("Contact")
    client_for(org, tokens).describe("Lead")  # another client, same account: no new login
    assert tokens.fetches == 1
    org.fake.expire_tokens()
    clients = [client_for(org, tokens) for _ in range(4)]
    for c in clients:
        c._api()  # each holds the now-stale token
    threads = [threading.Thread(target=c.describe, args=("Contact",)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tokens.fetches == 2  # one refresh for four callers that saw the stale token


def test_503_with_retry_after_is_retried_then_succeeds(org: DemoOrg, tokens: TokenCache) -> None:
    pacing, waits = recording_pacing()
    org.fake.fail_next(2, retry_after=7)
    assert client_for(org, tokens, pacing=pacing).describe("Contact")["name"] == "Contact"
    assert waits == [7.0, 7.0]


def test_a_503_storm_becomes_retriable_error(org: DemoOrg, tokens: TokenCache) -> None:
    pacing, waits = recording_pacing(attempts=3)
    org.fake.fail_next(10, retry_after=None)
    with pytest.raises(RetriableError) as caught:
        client_for(org, tokens, pacing=pacing).describe("Contact")
    assert waits == [1.0, 2.0] and caught.value.retry_after == 4.0


def test_request_limit_exceeded_backs_off(org: DemoOrg, tokens: TokenCache) -> None:
    pacing, waits = recording_pacing()
    org.fake.exceed_limit(1)
    client_for(org, tokens, pacing=pacing).describe("Contact")
    assert waits == [1.0]


def test_past_the_share_of_the_allocation_each_call_waits(org: DemoOrg, tokens: TokenCache) -> None:
    pacing, waits = recording_pacing(limit_share=0.5, slowdown_seconds=3)
    org.fake.daily_max, org.fake.api_used = 100, 40
    client = client_for(org, tokens, pacing=pacing)
    client.describe("Contact")  # 41/100: under the share
    assert waits == []
    org.fake.api_used = 60
    client.describe("Contact")  # the header said 41/100 before this call; now 61/100
    client.describe("Contact")
    assert waits == [3]


def test_other_refusals_are_fatal(org: DemoOrg, tokens: TokenCache) -> None:
    with pytest.raises(FatalError):
        client_for(org, tokens).describe("Nope__c")


def test_query_follows_next_records_url(org: DemoOrg, tokens: TokenCache) -> None:
    org.fake.cursors.batch = 3
    for i in range(7):
        org.fake.org.create("Contact", {"LastName": f"L{i}"})
    pages = list(client_for(org, tokens).query_pages("SELECT Id, LastName FROM Contact ORDER BY Id"))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r["LastName"] for p in pages for r in p] == [f"L{i}" for i in range(7)]


def test_no_secret_or_token_is_logged(
    org: DemoOrg, tokens: TokenCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    org.fake.fail_next(1, retry_after=0)
    client = client_for(org, tokens, pacing=recording_pacing()[0])
    client.describe("Contact")
    token = next(iter(org.fake.tokens))
    key_line = org.private_key_pem.splitlines()[1]
    assert caplog.records
    assert token not in caplog.text and key_line not in caplog.text
    assert token not in repr(client.tokens._tokens) and key_line not in repr(client.account)
