"""Account concurrency: load spreads over accounts, a full account is passed
over, and a request waits a bounded time for a free one."""

import concurrent.futures
import json
import time

import pytest

from harness import messages_body


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
