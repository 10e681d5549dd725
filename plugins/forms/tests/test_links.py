"""Tracked links end to end: ``{{ track() }}`` in an SOP renders a signed
per-customer link; opening it over real HTTP counts a read and redirects;
previews and prefetches count nothing; other hosts and forged links are refused."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import httpx
import pytest
from forms_support import LiveSopflow, add_customer, nurture, sent_texts
from sopflow_sdk.testing import run_due

KEY = "links-signing-key-0123456789abcdef-xyz"
ARTICLE = "https://mp.example.com/s/sunscreen-101?from=sop"


@pytest.fixture
def links(live: LiveSopflow) -> int:
    return live.account(
        "tracked_links",
        {"public_url": live.base_url + "/", "allowed_hosts": "mp.example.com, .shop.example.org"},
        {"signing_key": KEY},
    )


def _sent_link(live: LiveSopflow, sopflow_app, text: str) -> str:
    nurture(live.api, text, "vip")
    add_customer(live.api, "wm-ann", tags=["vip"])
    run_due(live.api, by=timedelta(days=2))
    [message] = sent_texts(sopflow_app, live.api)
    [link] = re.findall(r"http://127\.0\.0\.1:\d+/plugins/links/r/\S+", message)
    return link


def test_open_counts_a_read_and_redirects(live: LiveSopflow, links: int, sopflow_app) -> None:
    link = _sent_link(live, sopflow_app, f'Read this: {{{{ track("{ARTICLE}") }}}}')
    first = httpx.get(link, headers={"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0"})
    assert first.status_code == 302 and first.headers["location"] == ARTICLE
    assert first.headers["cache-control"] == "no-store"
    httpx.get(link)
    customer = live.customer("wecom", "wm-ann")
    assert customer["fields"]["reads.count"] == 2
    assert customer["fields"]["reads.last_at"].startswith(str(live.clock.now().date()))
    reads = live.events("article.read")
    assert [e["payload"]["count"] for e in reads] == [1, 2] and reads[0]["payload"]["url"] == ARTICLE


PREVIEWS = [
    {"method": "HEAD"},
    {"headers": {"Sec-Purpose": "prefetch;prerender"}},
    {"headers": {"Purpose": "prefetch"}},
    {"headers": {"User-Agent": "facebookexternalhit/1.1"}},
    {"headers": {"User-Agent": "Mozilla/5.0 CardFetcher/3 (our tenant's own list)"}},
]


def test_previews_and_prefetches_count_no_read(live: LiveSopflow, sopflow_app) -> None:
    live.account(
        "tracked_links",
        {"public_url": live.base_url, "allowed_hosts": "mp.example.com", "preview_agents": "cardfetcher"},
        {"signing_key": KEY},
    )
    link = _sent_link(live, sopflow_app, f'{{{{ track("{ARTICLE}", kind="link") }}}}')
    for fetch in PREVIEWS:
        r = httpx.request(fetch.get("method", "GET"), link, headers=fetch.get("headers"))
        assert r.status_code == 302 and r.headers["location"] == ARTICLE, fetch
    assert (
        live.events("link.clicked") == [] and "reads.count" not in live.customer("wecom", "wm-ann")["fields"]
    )
    assert httpx.get(link).status_code == 302  # and a person's open does count
    assert [e["payload"]["count"] for e in live.events("link.clicked")] == [1]


def test_host_not_on_the_allow_list_is_refused_at_render(live: LiveSopflow, links: int, sopflow_app) -> None:
    nurture(live.api, '{{ track("https://evil.example.net/phish") }}', "vip")
    customer = add_customer(live.api, "wm-ann", tags=["vip"])
    run_due(live.api, by=timedelta(days=2))
    assert sent_texts(sopflow_app, live.api) == []
    [touch] = live.api.get("/api/v1/touches", params={"customer_id": customer}).json()["items"]
    assert touch["status"] == "skipped" and "not on the allow-list" in touch["outcome"]["reason"]


def test_forged_or_redirected_links_are_refused(
    live: LiveSopflow, links: int, sopflow_app, caplog: pytest.LogCaptureFixture
) -> None:
    from sopflow_forms import link_tokens

    link = _sent_link(live, sopflow_app, f'{{{{ track("{ARTICLE}") }}}}')
    base, token = link.rsplit("/", 1)
    payload, mac = token.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    # a link signed under another key to a host off the list (an attempt at an open redirect)
    foreign = link_tokens.sign(
        "another-key-0123456789abcdef012345",
        {"c": 1, "u": "https://evil.example.net", "k": "article", "t": None},
    )
    with caplog.at_level(logging.WARNING, logger="sopflow_forms"):
        for bad in (tampered, foreign):
            r = httpx.get(f"{base}/{bad}")
            assert r.status_code == 403 and "location" not in r.headers
            assert r.headers["content-type"].startswith("application/problem+json")
    assert live.events("article.read") == []
    assert "provider=tracked_links" in caplog.text and KEY not in caplog.text
