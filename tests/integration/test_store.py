"""The redis store going away and coming back: clients get a clear 503 while
it is gone, nothing is billed for those requests, and every child serves
again once it is back, without a restart of httpd."""

import threading
import time

import pytest

from harness import messages_body, parse_json


@pytest.fixture
def redis_gateway(gateway):
    if not gateway.redis:
        pytest.skip("the shm store has no server to lose")
    gateway.expect_error(r"S2A0012: redis store failed|S2A0209: a balance hold")
    yield gateway
    if gateway.redis.proc is None:
        gateway.redis.start()


def test_redis_down_gives_503_and_bills_nothing(redis_gateway):
    gw = redis_gateway
    t = gw.new_tenant()
    status, _, _ = gw.post_messages(messages_body("before"), key=t.api_key)
    assert status == 200
    gw.mock_clear()

    gw.redis.stop()
    for stream in (False, True):
        status, headers, raw = gw.post_messages(messages_body("while down", stream=stream),
                                                key=t.api_key)
        assert status == 503, raw
        body = parse_json(raw)
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
        assert "shared state" in body["error"]["message"]
        assert headers.get("retry-after") == "1"
    assert gw.mock_requests() == []  # refused before any upstream saw it

    gw.redis.start()
    # a process waits 0.5 s after a failed connect before it tries again; then
    # every child (each with connections of its own) serves at once
    time.sleep(0.6)
    for i in range(8):
        status, _, raw = gw.post_messages(messages_body("after %d" % i), key=t.api_key)
        assert status == 200, raw
    gw.wait_usage({"key_id": t.key["id"]}, count=9)
    time.sleep(0.3)
    assert len(gw.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]) == 9
    log = gw.error_log(gw.test_offset)
    assert "S2A0012" in log and "127.0.0.1:%d" % gw.redis.port in log
    assert gw.redis.password not in log


def test_redis_refusing_the_password_gives_503(redis_gateway):
    """The gateway logs in as an ACL user (the whole redis configuration runs
    so); with a wrong password it serves 503 and says why, never the secret."""
    gw = redis_gateway
    t = gw.new_tenant()
    wrong = "not-" + gw.redis.password
    gw.reload("Sub2apiStore redis://gateway:%s@127.0.0.1:%d/0" % (wrong, gw.redis.port))
    try:
        status, _, raw = gw.post_messages(messages_body("refused"), key=t.api_key)
        assert status == 503, raw
        assert "shared state" in parse_json(raw)["error"]["message"]
        assert gw.mock_requests() == []
        log = gw.error_log(gw.test_offset)
        assert "S2A0012" in log and "AUTH refused" in log
        assert wrong not in log and gw.redis.password not in log
    finally:
        gw.reload("")
    status, _, raw = gw.post_messages(messages_body("again"), key=t.api_key)
    assert status == 200, raw


def test_redis_restart_mid_run(redis_gateway):
    """Clients keep sending while Redis restarts (its state is lost: no
    persistence). Each request gets an answer or a 503, each answer one usage
    row, and no place stays taken afterwards."""
    gw = redis_gateway
    t = gw.new_tenant(accounts=2, concurrency=3)
    gw.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"concurrency": 4})
    stop = threading.Event()
    results = []
    lock = threading.Lock()

    def client(n):
        i = 0
        while not stop.is_set():
            i += 1
            stream = i % 2 == 0
            try:
                status, _, raw = gw.post_messages(
                    messages_body("c%d-%d" % (n, i), stream=stream,
                                  mock={"delay_ms": 50} if i % 3 == 0 else None),
                    key=t.api_key, timeout=30)
            except OSError as exc:
                status, raw = "error", repr(exc).encode()
            with lock:
                results.append((status, raw))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    time.sleep(1.0)
    gw.redis.restart(down_seconds=0.7)
    time.sleep(1.5)
    stop.set()
    for th in threads:
        th.join(60)

    statuses = [s for s, _ in results]
    answered = statuses.count(200)
    assert set(statuses) <= {200, 503}, [r for r in results if r[0] not in (200, 503)][:3]
    assert 503 in statuses          # the outage was seen...
    assert statuses[-4:].count(200) >= 1 and answered > 20   # ...and served through
    gw.wait_usage({"key_id": t.key["id"], "limit": 10000}, count=answered)
    time.sleep(0.3)
    rows = gw.admin_ok("GET", "/admin/usage?key_id=%d&limit=10000" % t.key["id"])["data"]
    assert len(rows) == answered
    assert len({r["request_id"] for r in rows}) == answered
    for a in t.accounts:
        state = gw.admin_ok("GET", "/admin/accounts/%d" % a["id"])["state"]
        assert state["in_flight"] == 0
