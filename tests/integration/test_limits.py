"""Account concurrency: load spreads over accounts, a full account is passed
over, and a request waits a bounded time for a free one."""

import concurrent.futures
import http.client
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from harness import messages_body, within_one_minute


def run_parallel(gateway, key, n, mock):
    # each its own conversation: no session ties them to one account
    def one(_):
        return gateway.post_messages(messages_body(mock=mock), key=key,
                                     headers={"x-claude-code-session-id": gateway.unique("c")})
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_load_spreads_and_limits_hold(gateway):
    t = gateway.new_tenant(accounts=2, concurrency=2)
    results = run_parallel(gateway, t.api_key, 4, {"delay_ms": 800})
    assert [r[0] for r in results] == [200] * 4
    peaks = gateway.mock.stats()["max_in_flight_by_key"]
    assert [peaks.get(c) for c in t.credentials] == [2, 2]


def test_full_account_makes_requests_wait(gateway):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    start = time.monotonic()
    results = run_parallel(gateway, t.api_key, 3, {"delay_ms": 500})
    took = time.monotonic() - start
    assert [r[0] for r in results] == [200] * 3
    assert gateway.mock.stats()["max_in_flight_by_key"][t.credential] == 1
    # one after the other, never side by side
    assert took >= 1.4
    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=3)
    assert len(rows) == 3


def test_slots_are_released_after_errors_and_aborts(gateway):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    gateway.expect_error(r"S2A0205")
    status, _, _ = gateway.post_messages(messages_body(mock={"status": 500}), key=t.api_key)
    assert status == 502
    status, _, _ = gateway.post_messages(b'{"model": 1}', key=t.api_key)
    assert status == 400
    gateway.stream_messages(messages_body(mock={"events": 8, "event_delay_ms": 100}),
                            key=t.api_key, abort_after_events=2)
    deadline = time.monotonic() + 5
    while True:
        acct = gateway.admin_ok("GET", "/admin/accounts/%d" % t.account["id"])
        if acct["state"]["in_flight"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert acct["state"]["in_flight"] == 0
    status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw


@pytest.fixture
def short_wait(gateway):
    gateway.reload("Sub2apiSlotWait 1")
    yield
    gateway.reload("")


def test_busy_accounts_give_429_after_the_wait(gateway, short_wait):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    results = run_parallel(gateway, t.api_key, 2, {"delay_ms": 2500})
    statuses = sorted(r[0] for r in results)
    assert statuses == [200, 429]
    busy = [r for r in results if r[0] == 429][0]
    body = json.loads(busy[2])
    assert body["error"]["type"] == "rate_limit_error"
    assert "concurrency" in body["error"]["message"]
    assert busy[1]["retry-after"] == "1"
    assert len(gateway.mock_requests()) == 1


def test_key_and_user_concurrency(gateway, short_wait):
    t = gateway.new_tenant(accounts=3)
    gateway.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"concurrency": 1})
    results = run_parallel(gateway, t.api_key, 2, {"delay_ms": 2500})
    assert sorted(r[0] for r in results) == [200, 429]
    busy = [json.loads(r[2]) for r in results if r[0] == 429][0]
    assert busy["error"]["type"] == "rate_limit_error" and "API key" in busy["error"]["message"]

    gateway.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"concurrency": 0})
    gateway.admin_ok("PATCH", "/admin/users/%d" % t.user["id"], {"concurrency": 1})
    second = gateway.create_key(t.user["id"], t.group["id"])
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(
            lambda k: gateway.post_messages(messages_body(mock={"delay_ms": 2500}), key=k,
                                            headers={"x-claude-code-session-id":
                                                     gateway.unique("c")}),
            [t.api_key, second["key"]]))
    assert sorted(r[0] for r in results) == [200, 429]
    busy = [json.loads(r[2]) for r in results if r[0] == 429][0]
    assert "user" in busy["error"]["message"]
    # places come back: both keys work again
    for key in (t.api_key, second["key"]):
        assert gateway.post_messages(messages_body(), key=key)[0] == 200


def test_requests_per_minute_per_key(gateway):
    t = gateway.new_tenant()
    gateway.admin_ok("PATCH", "/admin/keys/%d" % t.key["id"], {"rpm_limit": 3})
    within_one_minute(15)
    statuses = [gateway.post_messages(messages_body(), key=t.api_key)[0] for _ in range(3)]
    assert statuses == [200] * 3
    status, headers, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 429
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert 1 <= int(headers["retry-after"]) <= 61
    assert len(gateway.mock_requests()) == 3
    other = gateway.create_key(t.user["id"], t.group["id"])
    assert gateway.post_messages(messages_body(), key=other["key"])[0] == 200


def test_limits_are_validated(gateway, tenant):
    status, body = gateway.admin("PATCH", "/admin/keys/%d" % tenant.key["id"],
                                 {"rpm_limit": -1})
    assert status == 400 and "rpm_limit" in body["error"]["message"]
    status, body = gateway.admin("PATCH", "/admin/users/%d" % tenant.user["id"],
                                 {"concurrency": "two"})
    assert status == 400
    key = gateway.admin_ok("GET", "/admin/keys/%d" % tenant.key["id"])
    assert key["concurrency"] == 0 and key["rpm_limit"] == 0


def children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def test_places_of_a_crashed_child_come_back(gateway):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    gateway.expect_error(r"exit signal|AH00052|AH00046|AH02804|AH01102|proxy_http:error")
    parent = gateway.httpd.proc.pid
    def slow_request():
        try:
            gateway.post_messages(messages_body(mock={"delay_ms": 4000}), key=t.api_key,
                                  timeout=20)
        except (OSError, http.client.HTTPException):
            pass  # its child is killed under it
    slow = threading.Thread(target=slow_request)
    slow.start()
    gateway.wait_in_flight(t.account["id"])
    # every child dies at once, the one serving the slow request with them
    for pid in children_of(parent):
        os.kill(pid, signal.SIGKILL)
    slow.join()
    gateway.httpd.wait_ready()
    start = time.monotonic()
    status, _, raw = gateway.post_messages(messages_body(), key=t.api_key)
    assert status == 200, raw
    assert time.monotonic() - start < 5  # not after waiting out Sub2apiSlotWait


def test_waiting_stream_gets_pings_then_its_answer(gateway):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    slow = gateway.hold_account(t, 2800)
    res = gateway.stream_messages(messages_body("waiting", mock={"usage": {"output_tokens": 7}}),
                                  key=t.api_key)
    assert slow.result()[0] == 200
    assert res.status == 200
    assert res.headers["content-type"].startswith("text/event-stream")
    assert res.headers["x-sub2api-request-id"].startswith("req_")
    names = [n for n, _ in res.events]
    # pings while it waited, then the upstream's stream, whole
    assert names[0] == "ping" and names.index("message_start") >= 1
    assert set(names[:names.index("message_start")]) == {"ping"}
    assert names[-1] == "message_stop"
    assert res.chunks[0][0] < 1.6  # the first ping came while waiting
    rows = gateway.wait_usage({"key_id": t.key["id"]}, count=2)
    assert sorted(r["output_tokens"] for r in rows) == [5, 7]


@pytest.fixture
def two_second_wait(gateway):
    gateway.reload("Sub2apiSlotWait 2")
    yield
    gateway.reload("")


def test_waiting_stream_that_gets_no_place_ends_with_an_error_event(gateway, two_second_wait):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    slow = gateway.hold_account(t, 3500)
    res = gateway.stream_messages(messages_body("waiting"), key=t.api_key)
    assert res.status == 200  # sent with the first ping
    names = [n for n, d in res.events]
    assert names[0] == "ping" and names[-1] == "error"
    error = res.events[-1][1]
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    assert "concurrency" in error["error"]["message"]
    assert "message_start" not in names
    assert slow.result()[0] == 200
    time.sleep(0.3)
    rows = gateway.admin_ok("GET", "/admin/usage?key_id=%d" % t.key["id"])["data"]
    assert len(rows) == 1  # the one that was answered


def test_waiting_stream_gets_the_upstreams_own_error_as_an_event(gateway):
    t = gateway.new_tenant(accounts=1, concurrency=1)
    slow = gateway.hold_account(t, 2000)
    res = gateway.stream_messages(messages_body("bad", mock={"status": 400}), key=t.api_key)
    assert slow.result()[0] == 200
    assert res.status == 200
    names = [n for n, _ in res.events]
    assert names[0] == "ping" and names[-1] == "error"
    error = res.events[-1][1]
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
