"""WeComClient against the fake WeCom over real HTTP: tokens, errors, budgets."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx
import pytest
from sopflow_sdk import AmbiguousSendError, FatalError, RetriableError, Secret, SkippableError
from sopflow_wecom.client import WeComClient
from sopflow_wecom.fake import FakeClock, FakeWeCom
from sopflow_wecom.limits import Limit, RequestBudget
from sopflow_wecom.tokens import MemoryTokenCache, RedisTokenCache, redis_lock_factory

LIST = "externalcontact/get_follow_user_list"


def errcodes(fake: FakeWeCom, path: str) -> list[int | None]:
    return [r.errcode for r in fake.requests if r.path == path]


def test_token_is_cached_across_calls(fake: FakeWeCom, client: WeComClient) -> None:
    fake.add_staff("zhangsan")
    for _ in range(20):
        assert client.get_follow_user_list() == ["zhangsan"]
    assert fake.count("gettoken") == 1
    assert fake.count(LIST) == 20


def test_clients_sharing_a_cache_share_the_token(
    make_client: Callable[..., WeComClient], fake: FakeWeCom
) -> None:
    cache = MemoryTokenCache()
    make_client(token_cache=cache).get_follow_user_list()
    make_client(token_cache=cache).get_follow_user_list()
    assert fake.count("gettoken") == 1


@pytest.mark.parametrize(("break_tokens", "code"), [("expire_tokens", 42001), ("invalidate_tokens", 40014)])
def test_bad_token_refreshes_once_and_retries(
    fake: FakeWeCom, client: WeComClient, break_tokens: str, code: int
) -> None:
    client.get_follow_user_list()
    getattr(fake, break_tokens)()
    client.get_follow_user_list()
    client.get_follow_user_list()
    assert fake.count("gettoken") == 2
    assert errcodes(fake, LIST) == [0, code, 0, 0]


def test_token_refused_twice_is_fatal(fake: FakeWeCom, client: WeComClient) -> None:
    fake.fail_next(LIST, 40014, times=2)
    with pytest.raises(FatalError, match="40014"):
        client.get_follow_user_list()
    assert fake.count(LIST) == 2


def test_proactive_refresh_before_expiry(fake: FakeWeCom, client: WeComClient, clock: FakeClock) -> None:
    client.get_follow_user_list()
    clock.advance(7200 - 300 + 1)
    client.get_follow_user_list()
    assert fake.count("gettoken") == 2
    assert 42001 not in errcodes(fake, LIST)
    clock.advance(299)  # the old token has expired at WeCom by now
    client.get_follow_user_list()
    assert 42001 not in errcodes(fake, LIST)


def test_concurrent_callers_fetch_one_token(fake: FakeWeCom, client: WeComClient) -> None:
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            client.get_follow_user_list()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert fake.count("gettoken") == 1
    assert fake.count(LIST) == 10


def test_bad_secret_is_fatal_and_names_no_secret(fake: FakeWeCom) -> None:
    client = WeComClient(fake.corp_id, "wrong-secret-value-xyz", base_url=fake.base_url)
    with pytest.raises(FatalError, match="40001") as info:
        client.get_token()
    assert "wrong-secret-value-xyz" not in f"{info.value} {info.value!r} {info.value.internal_message}"
    client.close()


@pytest.mark.parametrize(("code", "retry_after"), [(45009, 60.0), (-1, 1.0), (45033, 1.0), (41096, 1.0)])
def test_retriable_errcodes(fake: FakeWeCom, client: WeComClient, code: int, retry_after: float) -> None:
    fake.fail_next(LIST, code)
    with pytest.raises(RetriableError) as info:
        client.get_follow_user_list()
    assert info.value.retry_after == retry_after
    assert str(code) in str(info.value)


def test_real_45009_from_the_fakes_limit(fake: FakeWeCom, client: WeComClient) -> None:
    fake.set_limit(LIST, (3, 60))
    for _ in range(3):
        client.get_follow_user_list()
    with pytest.raises(RetriableError) as info:
        client.get_follow_user_list()
    assert info.value.retry_after == 60.0


@pytest.mark.parametrize("code", [41051, 40096, 84061, 60111])
def test_skippable_errcodes(fake: FakeWeCom, client: WeComClient, code: int) -> None:
    fake.fail_next(LIST, code)
    with pytest.raises(SkippableError, match=str(code)):
        client.get_follow_user_list()


def test_other_errcodes_are_fatal_with_errcode_and_errmsg(fake: FakeWeCom, client: WeComClient) -> None:
    fake.fail_next(LIST, 48002, "api forbidden")
    with pytest.raises(FatalError) as info:
        client.get_follow_user_list()
    assert "48002" in str(info.value) and "api forbidden" in str(info.value)
    assert info.value.errcode == 48002  # type: ignore[attr-defined]


def test_budget_keeps_a_burst_under_the_fakes_limit(
    make_client: Callable[..., WeComClient], fake: FakeWeCom, clock: FakeClock
) -> None:
    fake.set_limit(LIST, (20, 60))
    budget = RequestBudget(overrides={LIST: [Limit(20, 60, burst=5)]}, clock=clock)
    client = make_client(budget=budget)
    ok = refused = 0
    for _ in range(12):  # a burst every 10 s for two minutes
        for _ in range(10):
            try:
                client.get_follow_user_list()
                ok += 1
            except RetriableError as exc:
                assert exc.retry_after and exc.retry_after > 0
                refused += 1
        clock.advance(10)
    assert ok > 20 and refused > 0
    times = [r.at for r in fake.requests if r.path == LIST]
    assert 45009 not in errcodes(fake, LIST)
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= 20


def test_app_message_member_limit(fake: FakeWeCom, client: WeComClient, clock: FakeClock) -> None:
    fake.add_staff("lisi")
    for i in range(30):
        client.send_app_message(1000002, "lisi", f"reminder {i}")
        clock.advance(1)
    with pytest.raises(RetriableError) as info:
        client.send_app_message(1000002, ["lisi"], "one too many")
    assert 0 < info.value.retry_after <= 31
    clock.advance(info.value.retry_after)
    client.send_app_message(1000002, "lisi", "fits again")
    assert fake.dropped_app_messages == []
    assert len(fake.app_messages["lisi"]) == 31


def test_app_message_hourly_member_limit(fake: FakeWeCom, client: WeComClient, clock: FakeClock) -> None:
    fake.add_staff("lisi")
    sent = 0
    for _ in range(3600 // 2):
        try:
            client.send_app_message(1000002, "lisi", "x")
            sent += 1
        except RetriableError:
            pass
        clock.advance(2)
    assert sent <= 1000 and fake.dropped_app_messages == []


def test_batch_get_by_user_pages(fake: FakeWeCom, client: WeComClient) -> None:
    for i in range(250):
        fake.add_customer("zhangsan", f"wm{i:04d}", welcome=False)
    page = client.batch_get_by_user(["zhangsan"], limit=100)
    assert len(page["external_contact_list"]) == 100 and page["next_cursor"]
    items = list(client.iter_batch_get_by_user(["zhangsan"], limit=100))
    assert len({i["external_contact"]["external_userid"] for i in items}) == 250
    assert items[0]["follow_info"]["userid"] == "zhangsan"
    assert client.list_external_contacts("zhangsan")[:2] == ["wm0000", "wm0001"]
    fake.add_staff("lisi")  # WeCom answers 84061 for a member without customers (document 92113)
    assert client.list_external_contacts("lisi") == []
    assert fake.requests[-1].errcode == 84061
    detail = client.get_external_contact("wm0001")
    assert detail["follow_user"][0]["userid"] == "zhangsan"


# -- secrets ---------------------------------------------------------------------------------------


def _mock_client(fake_token: str, fail: Callable[[httpx.Request], httpx.Response]) -> WeComClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gettoken"):
            return httpx.Response(200, json={"errcode": 0, "access_token": fake_token, "expires_in": 7200})
        return fail(request)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return WeComClient("wwmock", "mock-secret-abcdef-123", base_url="https://wecom.test/cgi-bin", http=http)


@pytest.mark.parametrize(
    ("exc", "send", "expected"),
    [
        (httpx.ReadTimeout, True, AmbiguousSendError),
        (httpx.WriteTimeout, True, AmbiguousSendError),
        (httpx.RemoteProtocolError, True, AmbiguousSendError),
        (httpx.ReadTimeout, False, RetriableError),
        (httpx.ConnectTimeout, True, RetriableError),
        (httpx.ConnectError, True, RetriableError),
    ],
)
def test_transport_errors(exc: type[httpx.HTTPError], send: bool, expected: type[Exception]) -> None:
    token = "TOKEN-mock-access-token-7f3a9c"

    def fail(request: httpx.Request) -> httpx.Response:
        raise exc(f"boom while talking to {request.url}", request=request)

    client = _mock_client(token, fail)
    with pytest.raises(expected) as info:
        if send:
            client.send_welcome_msg("WELCOME", "hi")
        else:
            client.get_follow_user_list()
    text = f"{info.value} {info.value!r} {info.value.internal_message}"
    assert token not in text and "mock-secret-abcdef-123" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_http_5xx_after_send_is_ambiguous() -> None:
    client = _mock_client("TOKEN-xyz-123456", lambda r: httpx.Response(502, text="bad gateway"))
    with pytest.raises(AmbiguousSendError):
        client.add_msg_template(external_userid=["wm1"], text="hi")
    with pytest.raises(RetriableError):
        client.get_follow_user_list()


def test_secret_and_token_never_leak(
    fake: FakeWeCom, client: WeComClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.get_follow_user_list()
    token = next(iter(fake.tokens))
    errors: list[Exception] = []
    fake.fail_next(LIST, 40078, f"see https://qyapi.weixin.qq.com/x?access_token={token}&a=1")
    fake.fail_next(LIST, 45009)
    for _ in range(2):
        try:
            client.get_follow_user_list()
        except Exception as exc:
            errors.append(exc)
    assert len(errors) == 2
    texts = [f"{e} {e!r} {getattr(e, 'internal_message', '')}" for e in errors]
    texts += [repr(client), repr(client.get_token()), str(client.get_token()), caplog.text]
    assert any("access_token" in r.getMessage() for r in caplog.records)  # httpx did log URLs
    for text in texts:
        assert token not in text
        assert fake.secret not in text


# -- shared caches and locks (redis-py API, stand-in objects) -----------------------------------------


class _StubRedis:
    """Just the redis-py calls the cache and lock use."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.ttl: dict[str, int] = {}
        self.locks: list[str] = []
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str, ex: int) -> None:
        self.data[key], self.ttl[key] = value, ex

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def lock(self, name: str, timeout: float, blocking_timeout: float) -> threading.Lock:
        self.locks.append(name)
        return self._lock


def test_redis_token_cache_and_lock(make_client: Callable[..., WeComClient], fake: FakeWeCom) -> None:
    redis = _StubRedis()
    cache = RedisTokenCache(redis, clock=fake.clock)
    make_client(token_cache=cache, lock_factory=redis_lock_factory(redis)).get_follow_user_list()
    other = make_client(token_cache=RedisTokenCache(redis, clock=fake.clock))
    other.get_follow_user_list()
    assert fake.count("gettoken") == 1
    [key] = redis.data
    assert fake.secret not in key and key.startswith("sopflow:wecom:token:")
    assert 0 < redis.ttl[key] <= 7200
    assert len(redis.locks) == 1 and redis.locks[0].startswith("sopflow:wecom:token-lock:")
    assert "access_token" not in repr(cache)
    assert isinstance(cache.get(key.removeprefix("sopflow:wecom:token:")).value, Secret)


@pytest.mark.redis
def test_real_redis_cache_and_lock(make_client: Callable[..., WeComClient], fake: FakeWeCom) -> None:
    import os

    url = os.environ.get("SOPFLOW_TEST_REDIS_URL")
    if not url:
        pytest.skip("set SOPFLOW_TEST_REDIS_URL to run against a real Redis")
    import redis as redis_py

    redis = redis_py.Redis.from_url(url)
    prefix = f"sopflow:wecom:test:{fake.corp_id}:{id(fake)}:"
    caches = [RedisTokenCache(redis, prefix=prefix, clock=fake.clock) for _ in range(2)]
    clients = [make_client(token_cache=c, lock_factory=redis_lock_factory(redis)) for c in caches]
    barrier = threading.Barrier(len(clients) * 4)

    def work(client: WeComClient) -> None:
        barrier.wait()
        client.get_follow_user_list()

    threads = [threading.Thread(target=work, args=(c,)) for c in clients for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert fake.count("gettoken") == 1
    for key in redis.scan_iter(prefix + "*"):
        redis.delete(key)
