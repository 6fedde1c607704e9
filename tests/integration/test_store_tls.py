"""The store over TLS: a gateway whose Sub2apiStore is rediss://, on a
redis-server that listens with TLS and asks for a password, serves and bills
as over plain TCP; the pool's state is in that server. A CA that did not sign
the server's certificate keeps every request away from the upstream."""
import concurrent.futures
import shutil

import pytest

import harness


@pytest.fixture(scope="module")
def tls_gateway(mock_upstreams):
    if not harness.Redis.available() or not shutil.which("openssl"):
        pytest.fail("redis-server and openssl are needed", pytrace=False)
    root = harness.new_root("s2a-store-tls-")
    gw = harness.Gateway(root, "sqlite", mock_upstreams, store="redis-tls")
    gw.start()
    offset = gw.log_offset()
    try:
        yield gw
    finally:
        gw.stop()
        bad = gw.bad_log_lines(offset)
        shutil.rmtree(root, ignore_errors=True)
        assert bad == [], "unexpected error-log lines:\n%s" % "\n".join(bad)


def test_requests_served_with_the_store_over_tls(tls_gateway):
    gw = tls_gateway
    assert gw.redis.url.startswith("rediss://")
    t = gw.new_tenant(concurrency=2)
    status, _, raw = gw.post_messages(harness.messages_body(), key=t.api_key)
    assert status == 200, raw
    res = gw.stream_messages(harness.messages_body(stream=True), key=t.api_key)
    assert res.status == 200 and res.events[-1][0] == "message_stop"
    # at once, more than the account carries: its places are counted in Redis
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(
            lambda _: gw.post_messages(harness.messages_body(mock={"delay_ms": 300}),
                                       key=t.api_key), range(6)))
    assert sorted(a[0] for a in answers) == [200] * 6
    rows = gw.wait_usage({"key_id": t.key["id"]}, count=8)
    assert len(rows) == 8
    # the pool's state lives in the TLS server (its keys), and no place is left
    assert any(k.startswith("s2a:") for k in gw.redis.command("KEYS", "s2a:*"))
    assert gw.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])["state"]["in_flight"] == 0


def test_an_untrusted_certificate_refuses_every_request(mock_upstreams):
    root = harness.new_root("s2a-store-tls-untrusted-")
    gw = harness.Gateway(root, "sqlite", mock_upstreams, store="redis-tls")
    other = harness.Redis(root / "other", tls=True)  # its certificate: another CA
    gw.expect_error(r"S2A0012: .*cannot connect over TLS: the server's certificate is refused")
    gw.start()
    try:
        t = gw.new_tenant()
        gw.redis_url = gw.redis.url.replace(str(gw.redis.cert), str(other.cert))
        gw.reload("Sub2apiStore %s\n" % gw.redis_url)
        gw.mock_clear()
        status, headers, raw = gw.post_messages(harness.messages_body(), key=t.api_key)
        assert status == 503, raw
        assert headers.get("retry-after") == "1"
        assert gw.mock_requests() == []
    finally:
        gw.stop()
        bad = gw.bad_log_lines(0)
        shutil.rmtree(root, ignore_errors=True)
    assert bad == []
